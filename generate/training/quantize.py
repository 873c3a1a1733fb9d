"""int8 bundles: a quarter of the float32 graph, measured against it before it is written.

`generate export RUN DEST --quantize int8` writes a bundle whose step graph
has int8 weights: onnxruntime's dynamic quantization, per output channel, of
every MatMul's weights and the first layer's table (a Gather). Activations
stay float32 and are quantized per call; the graph keeps standard ONNX
operators (`MatMulInteger`, `DynamicQuantizeLinear`, `DequantizeLinear`),
so onnxruntime-web runs it too.

Before the bundle appears, the int8 graph is measured against the float32
graph it came from, and `meta.json` records both under `quantization`:

- the validation split, as training lays it out: the int8 graph's bits per
  character may be at most `MAX_VALIDATION_LOSS` (1%) above float32's;
- its samples, read by the float32 graph: `CHECK_STREAMS` streams of
  `CHECK_LENGTH` characters from each graph, same seed and settings, and the
  mean nats per character the float32 graph gives each set. The int8 set
  must read within `MAX_LIKELIHOOD_LOSS` (2%) of float32's own, either way:
  text much less likely is worse writing, and much more likely is duller.
  Bytes are not compared: int8 logits choose other characters now and then,
  and a sample then goes its own way.

Either check failing writes nothing and says by how much.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from ..errors import GenerateError, UsageError
from ..model.builder import pack_labels
from ..model.export import export_bundle
from ..model.rundir import RunDir
from ..sampling.config import SamplingConfig
from ..sampling.loop import Sampler
from ..sampling.resolve import RunFacts
from ..units import bits
from .scoring import _stepped_nats, network_validation_nats

log = logging.getLogger(__name__)

QUANTIZATIONS = ("int8",)
MAX_VALIDATION_LOSS = 0.01  # int8's validation bpc at most this share above float32's
MAX_LIKELIHOOD_LOSS = 0.02  # int8's samples, read by float32, within this share of float32's own, either way
# 64,000 characters a graph: the mean's standard error is then about 0.5%, well inside the 2% allowed.
CHECK_STREAMS, CHECK_LENGTH, CHECK_SEED = 64, 1000, 0
QUANTIZED_OPS = ["MatMul", "Gather"]


def export_quantized(run: RunDir, dest: Path, which: str = "best", quantize: str = "int8", overwrite: bool = False,
                     sources: list[str] | None = None, kind: str = "onnx", float16: bool = False) -> Path:
    """Writes an int8 bundle of `run` into `dest`, checked against its float32 graph (see the module's text).

    `kind` and `float16` are `generate export`'s: anything but an ONNX bundle without float16 is refused.

    Raises:
        UsageError: a bad target or checkpoint, an unknown quantization, another format or float16, onnx or onnxruntime's quantization
            tools missing, or the run's corpus not at hand (the validation split is measured).
        GenerateError: the int8 graph loses more than the module's limits allow; nothing is written.
    """
    if quantize not in QUANTIZATIONS:
        raise UsageError(f"--quantize: expected one of {', '.join(QUANTIZATIONS)}, received {quantize!r}")
    return export_bundle(run, dest, which, kind, float16, overwrite,
                         rewrite_graph=lambda path, network: _quantize_checked(run, path, network, sources))


def _quantize_checked(run: RunDir, path: Path, network, sources: list[str] | None) -> dict:
    """Rewrites the float32 graph at `path` as int8 once it passes both checks; returns what meta.json records."""
    float32_bytes = path.read_bytes()
    int8_bytes = int8_graph(path)
    float32_net, int8_net = network(float32_bytes), network(int8_bytes)
    validation = {name: bits(float(network_validation_nats(run, net, sources).mean()))
                  for name, net in (("float32", float32_net), ("int8", int8_net))}
    loss = validation["int8"] / validation["float32"] - 1
    if loss > MAX_VALIDATION_LOSS:
        raise GenerateError(f"--quantize int8: validation is {validation['int8']:.4f} bpc against float32's "
                            f"{validation['float32']:.4f} ({loss:+.1%}; expected at most +{MAX_VALIDATION_LOSS:.0%}): "
                            "nothing was written; export without --quantize")
    samples = _sample_likelihoods(run, float32_net, int8_net)
    drift = samples["int8"] / samples["float32"] - 1
    if abs(drift) > MAX_LIKELIHOOD_LOSS:
        raise GenerateError(f"--quantize int8: its samples read at {samples['int8']:.4f} nats a character under the "
                            f"float32 graph, float32's own at {samples['float32']:.4f} ({drift:+.1%}; expected at most "
                            f"{MAX_LIKELIHOOD_LOSS:.0%} either way): nothing was written; export without --quantize")
    path.write_bytes(int8_bytes)
    log.info("int8 graph: %d bytes (float32: %d), validation %.4f bpc (float32: %.4f)", len(int8_bytes),
             len(float32_bytes), validation["int8"], validation["float32"])
    return {
        "weights": "int8",
        "method": "onnxruntime dynamic quantization: int8 weights per output channel (MatMul, Gather), "
                  "float32 activations quantized per call",
        "model_bytes": len(int8_bytes), "float32_model_bytes": len(float32_bytes),
        "size_ratio": round(len(int8_bytes) / len(float32_bytes), 4),
        "validation_bpc": {name: round(value, 6) for name, value in validation.items()},
        "validation_loss": round(loss, 6),
        "samples_read_by_float32": {"streams": CHECK_STREAMS, "length": CHECK_LENGTH, "seed": CHECK_SEED,
                                    "nats_per_char": {name: round(value, 6) for name, value in samples.items()},
                                    "difference": round(drift, 6)},
        "self_check": "the float32 graph, against Keras, before quantization",
    }


def int8_graph(path: Path) -> bytes:
    """The int8 form of the float32 step graph at `path`.

    A tied model's embedding is one weight read twice: by the first layer's lookup (a Gather) and, transposed,
    by the output layer. Quantized as it stands, each use would keep its own int8 copy, and a large vocabulary's
    graph would stay over a third of float32's. So the lookup is left out of quantization, and afterwards reads
    its rows from the output layer's int8 copy, each row with its own scale (`_share_tied_embedding`).

    Raises:
        UsageError: onnx or onnxruntime's quantization tools are missing.
    """
    try:
        import onnx  # only an int8 export needs onnx and the quantization tools
        from onnxruntime.quantization import QuantType, quantize_dynamic  # (the same)
    except ImportError as exc:
        raise UsageError(f"--quantize int8: expected onnx and onnxruntime's quantization tools ({exc})") from None
    model = onnx.load(str(path))
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type.lower()}{i}"
    tied = _tied_lookups(model)
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "int8.onnx"
        logging.disable(logging.WARNING)  # its advice to pre-process the graph (for convolutions) is not the user's business
        try:
            quantize_dynamic(model, target, per_channel=True, weight_type=QuantType.QInt8,
                             op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=[node.name for node in tied])
        finally:
            logging.disable(logging.NOTSET)
        quantized = onnx.load(str(target))
    for lookup in tied:
        _share_tied_embedding(quantized, lookup)
    onnx.checker.check_model(quantized)
    return quantized.SerializeToString()


def _tied_lookups(model) -> list:
    """Gathers whose table an output Gemm also reads, transposed (a tied embedding)."""
    transposed = {node.input[1] for node in model.graph.node
                  if node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)}
    return [node for node in model.graph.node if node.op_type == "Gather" and node.input[0] in transposed]


def _share_tied_embedding(model, lookup) -> None:
    """Makes `lookup` (a float Gather of table E) read E's rows from the int8 transposed copy the quantizer made for
    the output layer (E_Transposed_quantized, D x V, one scale and zero point per row of E), then drops float E."""
    from onnx import helper  # an int8 export's, like int8_graph's

    table, ids, out = lookup.input[0], lookup.input[1], lookup.output[0]
    weights = {t.name for t in model.graph.initializer}
    quantized, scale, zero = (f"{table}_Transposed{suffix}" for suffix in ("_quantized", "_scale", "_zero_point"))
    if not {quantized, scale, zero} <= weights:
        return  # the quantizer kept the output layer in float: the lookup reads float E, as before
    columns, row_scales, row_zeros = f"{out}_columns", f"{out}_row_scales", f"{out}_row_zeros"
    replacement = [
        helper.make_node("Gather", [quantized, ids], [columns], axis=1, name=f"{lookup.name}_columns"),
        helper.make_node("Transpose", [columns], [f"{out}_rows"], perm=[1, 0], name=f"{lookup.name}_rows"),
        helper.make_node("Gather", [scale, ids], [row_scales], name=f"{lookup.name}_scales"),
        helper.make_node("Gather", [zero, ids], [row_zeros], name=f"{lookup.name}_zeros"),
        helper.make_node("DequantizeLinear", [f"{out}_rows", row_scales, row_zeros], [out], axis=0, name=f"{lookup.name}_float"),
    ]
    nodes = list(model.graph.node)
    at = next(i for i, node in enumerate(nodes) if node.name == lookup.name)
    nodes[at : at + 1] = replacement
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not any(table in node.input for node in model.graph.node):
        kept = [t for t in model.graph.initializer if t.name != table]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept)


def _sample_likelihoods(run: RunDir, float32_net, int8_net) -> dict[str, float]:
    """Mean nats a sampled character under the float32 graph, for float32's samples and for int8's."""
    facts = RunFacts.of(run)
    vocab = facts.vocab
    prime = vocab.encode(facts.default_prime())
    cfg = SamplingConfig(length=CHECK_LENGTH, num_samples=CHECK_STREAMS, seed=CHECK_SEED,
                         temperature=float(run.sampling_defaults().get("temperature", 1.0)))
    result = {}
    for name, net in (("float32", float32_net), ("int8", int8_net)):
        sampler = Sampler(net, vocab.chars, facts.labels)
        texts = [s.text for s in sampler.generate(prime, cfg, np.random.default_rng(CHECK_SEED))]
        ids = np.array([prime + vocab.encode(text) for text in texts], np.int64)
        inputs = pack_labels(ids, np.zeros_like(ids), net.vocab_size) if net.labels else ids  # label 0: none
        states = float32_net.initial_states(len(ids))
        nats, _ = _stepped_nats(float32_net, inputs[:, :-1], ids[:, 1:], states)
        result[name] = float(nats[:, len(prime) - 1 :].mean())
    return result
