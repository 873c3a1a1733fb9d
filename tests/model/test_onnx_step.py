"""The ONNX step graph computes what the sampler's step network computes, for every architecture the trainer makes."""

import numpy as np
import pytest

from generate.model.builder import pack_labels
from generate.model.config import ModelConfig
from generate.model.network import StepNetwork

from ..helpers import perturbed_model

ort = pytest.importorskip("onnxruntime")

ARCHITECTURES = {
    "lstm": dict(cell="lstm", layers=2, units=16, embedding_dim=8),
    "gru": dict(cell="gru", layers=2, units=16, embedding_dim=8),
    "rnn": dict(cell="rnn", layers=3, units=16, embedding_dim=8),
    "residual lstm": dict(cell="lstm", layers=3, units=16, embedding_dim=16, residual=True),
    "layer-normalised gru": dict(cell="gru", layers=2, units=16, embedding_dim=16, residual=True, layer_norm=True),
    "tied lstm": dict(cell="lstm", layers=1, units=24, embedding_dim=8, tie_embeddings=True),
    "wide-embedding lstm": dict(cell="lstm", layers=2, units=16, embedding_dim=64),  # the fused table is smaller
    # Labelled: each step's label joins the input; the residual one adds the label's embedding in its skip too.
    "labelled gru": dict(cell="gru", layers=2, units=16, embedding_dim=8, label_count=3, label_dim=4),
    "labelled residual lstm": dict(cell="lstm", layers=2, units=16, embedding_dim=12, label_count=4, label_dim=4, residual=True),
}


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_onnx_step_matches_keras_over_a_thousand_teacher_forced_steps(name):
    from generate.model.onnx_step import state_names, step_graph

    cfg = ModelConfig(vocab_size=30, **{"residual": False, **ARCHITECTURES[name]})
    batch, steps = 3, 1000
    model = perturbed_model(cfg, batch, seed=3)
    ids = np.random.default_rng(0).integers(0, 30, size=(batch, steps))
    labels = np.random.default_rng(1).integers(0, max(cfg.label_count, 1), size=(batch, steps)) if cfg.label_count else None
    inputs = pack_labels(ids, labels, 30) if cfg.label_count else ids
    expected = model.predict(inputs.astype(np.int32), batch_size=batch, verbose=0)  # Keras's own layers, compiled
    net = StepNetwork.from_model(model, cfg)
    graph = step_graph(net)
    assert {i.name for i in graph.graph.initializer} >= ({"table"} if name.startswith("wide") else {"embedding", "first_kernel"})
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    states = dict(zip(state_names(net), net.initial_states(batch)))
    assert [i.name for i in graph.graph.input][:2] == (["ids", "label"] if cfg.label_count else ["ids", "state0"])
    worst = 0.0
    for t in range(steps):
        label = {"label": labels[:, t].astype(np.int64)} if cfg.label_count else {}
        logits, *new_states = session.run(None, {"ids": ids[:, t].astype(np.int64), **label, **states})
        states = dict(zip(states, new_states))
        worst = max(worst, float(np.abs(expected[:, t] - logits).max()))
    assert worst <= 1e-4, worst


def test_export_writes_a_checked_onnx_bundle_and_never_over_files(trained_run, tmp_path):
    import hashlib
    import json

    from click.testing import CliRunner

    from generate.cli import cli

    from ..helpers import one_line_error

    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(trained_run), str(tmp_path / "bundle"), "--format", "onnx"])
    assert result.exit_code == 0, result.stderr
    bundle = tmp_path / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json", "meta.json", "model.onnx", "vocab.json"]
    meta = json.loads((bundle / "meta.json").read_text())
    for name, digest in meta["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    assert meta["architecture"]["cell"] == "lstm" and meta["graph"]["inputs"] == ["ids", "state0", "state1", "state2", "state3"]
    assert meta["graph"]["self_check"]["largest_logit_difference"] <= 1e-4 and meta["corpus"]["kind"] == "text"
    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    zeros = np.zeros((2, 16), np.float32)
    logits, *_ = session.run(None, {"ids": np.array([1, 2], np.int64), **{f"state{k}": zeros for k in range(4)}})
    assert logits.shape == (2, meta["architecture"]["vocab_size"])  # any batch size
    half = runner.invoke(cli, ["export", str(trained_run), str(tmp_path / "half"), "--format", "onnx", "--float16"])
    assert half.exit_code == 0, half.stderr
    half_meta = json.loads((tmp_path / "half" / "meta.json").read_text())
    assert half_meta["weights_dtype"] == "float16" and half_meta["graph"]["self_check"]["largest_logit_difference"] <= 1e-4
    assert (tmp_path / "half" / "model.onnx").stat().st_size < 0.6 * (bundle / "model.onnx").stat().st_size
    before = (bundle / "model.onnx").read_bytes()
    one_line_error(runner.invoke(cli, ["export", str(trained_run), str(bundle), "--format", "onnx"]), 2, "found files")
    assert (bundle / "model.onnx").read_bytes() == before
