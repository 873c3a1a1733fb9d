"""Exporting a run: what another program or machine needs to sample it, and nothing it does not.

`export_run` writes a sampling-only copy of a run (config, vocabulary, weights
without the optimizer, optionally as float16); `export_bundle` writes one step
of the network for another runtime: ONNX, a SavedModel, or LiteRT.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import GenerateError, UsageError
from ..fileio import atomic_directory, atomic_path, atomic_write_text, sha256_file
from .backend import backend_name
from .backend.onnxruntime_step import OnnxStepNetwork
from .builder import build_model, pack_labels
from .bundle import BUNDLE_FORMATS, BUNDLE_VERSION, META_FILE, MODEL_FILE
from .checkpoint import WEIGHTS_MEMBER, load_weights_into, read_training_state, record_checksum, save_checkpoint
from .label_schedule import fixed_labels
from .network import StepNetwork
from .onnx_step import IR_VERSION, OPSET, state_names, step_graph
from .rundir import RunDir


def export_run(run: RunDir, dest: Path, which: str = "best", float16: bool = False, overwrite: bool = False) -> Path:
    """Copies a run into `dest` for sampling only: config, vocab and weights, no optimizer.

    The exported `best.keras` is a third of the training checkpoint's size,
    which is what keeps shipped models small; `float16` halves it again
    (Keras casts the stored weights back to float32 on loading).

    Raises:
        UsageError: `dest` already holds files (without `overwrite`, or not an export's), or the checkpoint is missing.
    """
    source = run.checkpoint(which)
    check_export_target(run, Path(dest), overwrite)
    config = run.load_config()
    model = build_model(config.model, 1)
    load_weights_into(model, source)
    state = read_training_state(source)
    with atomic_directory(Path(dest), replace=overwrite) as staging:
        target = RunDir(staging)
        run.load_vocab().save(target.vocab)
        config.save(target.config)
        save_checkpoint(model, target.best, {**state, "exported_from": str(source),
                                             "weights_dtype": "float16" if float16 else "float32"})
        if float16:
            _store_weights_as_float16(target.best)
        if run.history.exists():
            target.write_history(run.read_history())
        for facts in (run.sampling, run.pieces, run.labels, run.lines):  # its sampling defaults, pieces' lengths, labels and verse lines travel with its weights
            if facts.is_file():
                atomic_write_text(target.path / facts.name, facts.read_text(encoding="utf-8"))
    return RunDir(Path(dest)).best


def _store_weights_as_float16(path: Path) -> None:
    """Rewrites the float32 arrays of a `.keras` file's weights as float16, atomically."""
    import h5py  # installed with Keras; only exporting needs it

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    halved = io.BytesIO()
    with h5py.File(io.BytesIO(members[WEIGHTS_MEMBER]), "r") as source, h5py.File(halved, "w") as target:
        def copy(name, item):
            if isinstance(item, h5py.Dataset):
                data = item[()]
                target.create_dataset(name, data=data.astype(np.float16) if data.dtype == np.float32 else data)
            else:
                target.require_group(name)
            target[name].attrs.update(dict(item.attrs))

        source.visititems(copy)
        target.attrs.update(dict(source.attrs))
    members[WEIGHTS_MEMBER] = halved.getvalue()
    written = []

    def accept(tmp: Path) -> None:
        written.append(sha256_file(tmp))
        record_checksum(path.parent, path.name, written[0], replacing=True)

    with atomic_path(path, suffix=".keras", verify=accept) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    record_checksum(path.parent, path.name, written[0], replacing=False)


SELF_CHECK_STEPS = 64  # teacher-forced steps the exported graph must match Keras on before it is written
SELF_CHECK_TOLERANCE = 1e-4


def check_export_target(run: RunDir, target: Path, overwrite: bool) -> None:
    """An export goes to a new or empty directory, or (`overwrite`) replaces an earlier export; never the run itself.

    Raises:
        UsageError: the target is the run, holds files without `overwrite`, or holds files no export wrote.
    """
    if target.exists() and target.resolve() == run.path.resolve():
        raise UsageError(f"export target {str(target)!r}: expected another directory than the run it exports")
    if target.exists() and not target.is_dir():
        raise UsageError(f"export target {str(target)!r}: expected a directory, found a file")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise UsageError(f"export target {str(target)!r}: expected a new or empty directory, found files "
                             "(--overwrite replaces an earlier export)")
        earlier = RunDir(target)
        if not (earlier.is_bundle() or earlier.config.is_file()):
            raise UsageError(f"export target {str(target)!r}: --overwrite replaces an earlier export, and this "
                             "directory holds files no export wrote; expected a bundle or an exported run")


def export_bundle(run: RunDir, dest: Path, which: str = "best", kind: str = "onnx", float16: bool = False,
                  overwrite: bool = False, rewrite_graph: Callable | None = None) -> Path:
    """Writes a bundle of `run` into `dest` (`bundle.py`): one step of the network, the run's config,
    vocabulary, sampling defaults and piece lengths, and `meta.json`.

    `kind` is `onnx` (`model.onnx`, see `onnx_step`: what `generate` itself samples anywhere),
    `savedmodel` (a TensorFlow SavedModel for TF Serving) or `litert` (`model.tflite`, built-in
    operators only). `meta.json` records the format, the architecture, the graph's inputs and
    outputs, the corpus kind and encoding, the run's sampling defaults and piece lengths, the
    source checkpoint and its sha256, the package version, and a sha256 for every other file.
    Before the bundle appears, its graph runs `SELF_CHECK_STEPS` teacher-forced steps in its own
    runtime and must give Keras's logits within `SELF_CHECK_TOLERANCE`. `dest` appears whole or
    not at all. With `float16` (ONNX only) the weights are stored as float16, and the self-check
    compares with Keras on the same rounded weights. `rewrite_graph(path, network)`, after the
    self-check, rewrites the ONNX graph at `path` (its int8 form: `training.quantize`) and returns
    what `meta.json` records of it under `quantization`; `network(graph_bytes)` steps a graph of
    this model on onnxruntime. It may raise to write nothing.

    Raises:
        UsageError: `dest` already holds files, the checkpoint is missing, a runtime is missing,
            or `float16` with another format than ONNX.
        GenerateError: the graph disagrees with Keras (a bug: nothing is written).
    """
    target = Path(dest)
    check_export_target(run, target, overwrite)
    if float16 and kind != "onnx":
        raise UsageError(f"--float16: expected --format onnx or keras, received {kind}")
    if rewrite_graph is not None and (kind != "onnx" or float16):
        raise UsageError("--quantize: expected --format onnx without --float16 (its weights are quantized from float32's)")
    source = run.checkpoint(which)
    config = run.load_config()
    model = build_model(config.model, 1)
    load_weights_into(model, source)
    if float16:  # what the bundle will compute: Keras on the same rounded weights
        model.set_weights([np.asarray(w).astype(np.float16).astype(np.float32) for w in model.get_weights()])
    net = StepNetwork.from_model(model, config.model)
    if net.labels and kind != "onnx":
        raise UsageError(f"--format {kind}: a labelled model exports as onnx (its label is one more input of the step graph)")
    ids, expected = _self_check_inputs(model, net)
    with atomic_directory(target, replace=overwrite) as staging:
        graph = _GRAPH_WRITERS[kind](net, staging, run.path.name, float16)
        worst = _largest_difference(graph.pop("runner"), net, ids, expected)
        if worst > SELF_CHECK_TOLERANCE:
            raise GenerateError(f"the {kind} graph of {run.path} differs from Keras by {worst:.2e} in a logit (expected at "
                                f"most {SELF_CHECK_TOLERANCE:g}); nothing was written: please report it")
        graph["self_check"] = {"steps": SELF_CHECK_STEPS, "largest_logit_difference": worst}
        rewritten = None
        if rewrite_graph is not None:
            states = state_names(net)
            rewritten = rewrite_graph(staging / MODEL_FILE, lambda model: OnnxStepNetwork(
                model, net.cell, net.units, net.num_layers, states, net.vocab_size, net.labels))
        for facts in (run.config, run.vocab, run.sampling, run.pieces, run.labels, run.lines):  # as they are: the run reads them already
            if facts.is_file():
                atomic_write_text(staging / facts.name, facts.read_text(encoding="utf-8"))
        meta = _bundle_meta(run, config, source, graph, float16)
        if rewritten is not None:
            meta["weights_dtype"], meta["quantization"] = rewritten["weights"], rewritten
        meta["files"] = {path.relative_to(staging).as_posix(): sha256_file(path)
                         for path in sorted(staging.rglob("*")) if path.is_file()}
        atomic_write_text(staging / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return target / graph["model_file"]


def onnx_network(run: RunDir, checkpoint: Path):
    """A run's Keras checkpoint as a step graph on onnxruntime, in memory, checked as an export is.

    A server steps every stream through one graph call whatever the batch, where the compiled loop would
    compile again for each new number of streams.

    Raises:
        UsageError: onnx or onnxruntime is missing.
        GenerateError: the graph disagrees with Keras (a bug).
    """
    config = run.load_config()
    model = build_model(config.model, 1)
    load_weights_into(model, checkpoint)
    net = StepNetwork.from_model(model, config.model)
    try:
        graph = step_graph(net, name=run.path.name).SerializeToString()
    except ImportError:
        raise UsageError("serving a run's .keras checkpoint: expected the onnx package (pip install onnx)") from None
    states = state_names(net)
    onnx_net = OnnxStepNetwork(graph, net.cell, net.units, net.num_layers, states, net.vocab_size, net.labels)
    ids, expected = _self_check_inputs(model, net)
    worst = _largest_difference(onnx_net.step, net, ids, expected)
    if worst > SELF_CHECK_TOLERANCE:
        raise GenerateError(f"the ONNX graph of {run.path} differs from Keras by {worst:.2e} in a logit: please report it")
    return onnx_net


def _bundle_meta(run: RunDir, config, source: Path, graph: dict, float16: bool) -> dict:
    return {
        "format": BUNDLE_FORMATS[graph.pop("kind")], "format_version": BUNDLE_VERSION,
        "model_file": graph["model_file"],
        "architecture": {key: getattr(config.model, key) for key in ("cell", "layers", "units", "embedding_dim", "residual",
                                                                     "layer_norm", "tie_embeddings", "vocab_size", "label_count",
                                                                     "label_dim")},
        "graph": graph,
        "corpus": {"kind": config.corpus.kind, "encoding": config.corpus.encoding if config.corpus.kind == "music" else None,
                   "sources": list(config.corpus.sources)},
        "sampling_defaults": run.sampling_defaults(),
        "pieces": _json_or_none(run.pieces),
        "source": {"run": run.path.resolve().name, "checkpoint": source.name, "sha256": sha256_file(source)},
        "weights_dtype": "float16" if float16 else "float32",
        "version": __version__,
    }


def _onnx_graph(net: StepNetwork, staging: Path, name: str, float16: bool) -> dict:
    """Writes `model.onnx`; returns what meta.json records of it, and a runner for the self-check."""
    try:
        import onnxruntime  # noqa: F401 - only an ONNX export needs the runtime (for its self-check): missing, say so now

        graph = step_graph(net, name=name, float16=float16)
    except ImportError:
        raise UsageError("--format onnx: expected the onnx and onnxruntime packages (pip install onnx onnxruntime)") from None
    (staging / MODEL_FILE).write_bytes(graph.SerializeToString())
    states = state_names(net)
    runner = OnnxStepNetwork(staging / MODEL_FILE, net.cell, net.units, net.num_layers, states, net.vocab_size, net.labels)
    return {"kind": "onnx", "model_file": MODEL_FILE, "opset": OPSET, "ir_version": IR_VERSION, "runner": runner.step,
            **_signature(net, states)}


def _tensorflow_graph(net: StepNetwork, staging: Path, name: str, float16: bool, litert: bool = False) -> dict:
    """Writes a SavedModel (or, with `litert`, `model.tflite`); returns its meta.json facts and a runner."""
    if backend_name() != "tensorflow":
        raise UsageError(f"--format {'litert' if litert else 'savedmodel'}: expected KERAS_BACKEND=tensorflow, "
                         f"received {backend_name()!r}")
    from .backend import tensorflow_export  # imports TensorFlow: only these formats need it

    states = state_names(net)
    net.prepare()
    saved = staging / ("saved_model" if litert else "")
    tensorflow_export.save_step_model(net, states, saved)
    if not litert:
        return {"kind": "savedmodel", "model_file": "saved_model.pb", "signature": tensorflow_export.SIGNATURE,
                "runner": tensorflow_export.saved_model_runner(saved, states), **_signature(net, states)}
    try:
        flatbuffer = tensorflow_export.litert_bytes(saved)
    except ValueError as exc:
        raise GenerateError(f"--format litert: the converter refused the step of {name} ({exc}); nothing was written") from None
    shutil.rmtree(saved)
    (staging / "model.tflite").write_bytes(flatbuffer)
    return {"kind": "litert", "model_file": "model.tflite", "signature": tensorflow_export.SIGNATURE,
            "runner": tensorflow_export.litert_runner(flatbuffer, states), **_signature(net, states)}


def _signature(net: StepNetwork, states: list[str]) -> dict:
    inputs = ["ids", *(["label"] if net.labels else []), *states]
    return {"inputs": inputs, "outputs": ["logits", *(f"{s}_out" for s in states)], "state_units": net.units}


_GRAPH_WRITERS = {
    "onnx": _onnx_graph,
    "savedmodel": _tensorflow_graph,
    "litert": lambda net, staging, name, float16: _tensorflow_graph(net, staging, name, float16, litert=True),
}


def _self_check_inputs(model, net: StepNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced inputs for a self-check (every label in turn, for a labelled model), and Keras's logits for them."""
    ids = np.arange(SELF_CHECK_STEPS) % net.vocab_size
    if net.labels:
        ids = pack_labels(ids, np.arange(SELF_CHECK_STEPS) // 4 % net.labels, net.vocab_size)
    return ids, model.predict(ids[None, :].astype(np.int32), batch_size=1, verbose=0)[0]


def _largest_difference(run, net: StepNetwork, ids: np.ndarray, expected: np.ndarray) -> float:
    """The largest |Keras logit - exported logit| over the teacher-forced `ids` (packed with labels, for a labelled model)."""
    states, worst = net.initial_states(1), 0.0
    for t, packed in enumerate(ids):
        char_id, label = (packed % net.vocab_size, packed // net.vocab_size) if net.labels else (packed, 0)
        if net.labels:
            states = [*states[:-1], fixed_labels(np.array([label]))]
        logits, states = run(np.array([char_id]), states)
        worst = max(worst, float(np.abs(expected[t] - np.asarray(logits)[0]).max()))
    return worst


def _json_or_none(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
