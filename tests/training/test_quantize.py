"""int8 bundles: written only after they are measured against float32, honest about themselves in meta.json,
and refused in one line when they lose too much or are asked of the wrong format."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from generate.cli import cli

from ..helpers import one_line_error, perturbed_model

pytest.importorskip("onnxruntime.quantization")


def test_an_int8_bundle_records_its_checks_and_scores_as_it_says(trained_run, tmp_path):
    runner = CliRunner()
    dest = tmp_path / "int8"
    result = runner.invoke(cli, ["export", str(trained_run), str(dest), "--quantize", "int8"])
    assert result.exit_code == 0, result.stderr
    meta = json.loads((dest / "meta.json").read_text())
    facts = meta["quantization"]
    assert meta["weights_dtype"] == "int8" and facts["model_bytes"] == (dest / "model.onnx").stat().st_size
    assert facts["model_bytes"] < facts["float32_model_bytes"]
    assert facts["validation_bpc"]["int8"] <= 1.01 * facts["validation_bpc"]["float32"]
    assert abs(facts["samples_read_by_float32"]["difference"]) <= 0.02
    scored = runner.invoke(cli, ["score", str(dest), "--split", "val"])
    assert scored.exit_code == 0 and scored.stdout.split()[-2] == f"{facts['validation_bpc']['int8']:.4f}"
    first, again = (runner.invoke(cli, ["sample", str(dest), "--seed", "3", "-n", "80"]).stdout for _ in range(2))
    assert first == again and len(first) > 40


def test_an_int8_graph_that_loses_too_much_writes_nothing(trained_run, tmp_path, monkeypatch):
    from generate.training import quantize

    monkeypatch.setattr(quantize, "MAX_VALIDATION_LOSS", -0.5)  # no graph is that much better than its float32 self
    dest = tmp_path / "int8"
    result = CliRunner().invoke(cli, ["export", str(trained_run), str(dest), "--quantize", "int8"])
    one_line_error(result, 1, "validation")
    assert not dest.exists()


@pytest.mark.parametrize("extra", [["--float16"], ["--format", "savedmodel"]])
def test_int8_is_refused_with_float16_or_another_format(trained_run, tmp_path, extra):
    result = CliRunner().invoke(cli, ["export", str(trained_run), str(tmp_path / "x"), "--quantize", "int8", *extra])
    one_line_error(result, 2, "--quantize")
    assert not (tmp_path / "x").exists()


def test_a_tied_embedding_is_stored_once_as_int8_and_still_steps_the_model(tmp_path):
    import onnx

    from generate.model.backend.onnxruntime_step import OnnxStepNetwork
    from generate.model.config import ModelConfig
    from generate.model.network import StepNetwork
    from generate.model.onnx_step import state_names, step_graph
    from generate.training.quantize import int8_graph

    cfg = ModelConfig(vocab_size=1000, cell="lstm", layers=1, units=256, embedding_dim=16, tie_embeddings=True)
    net = StepNetwork.from_model(perturbed_model(cfg, 1, seed=2), cfg)
    path = tmp_path / "float32.onnx"
    path.write_bytes(step_graph(net).SerializeToString())
    quantized = int8_graph(path)
    stored = {t.name for t in onnx.load_from_string(quantized).graph.initializer}
    assert "embedding" not in stored and "embedding_quantized" not in stored and "embedding_Transposed_quantized" in stored
    assert len(quantized) < 0.3 * path.stat().st_size
    nets = [OnnxStepNetwork(graph, net.cell, net.units, net.num_layers, state_names(net), net.vocab_size)
            for graph in (path.read_bytes(), quantized)]
    states = [n.initial_states(4) for n in nets]
    for char_id in (5, 77, 999, 0):
        (float_logits, states[0]), (int8_logits, states[1]) = (n.step(np.full(4, char_id), s) for n, s in zip(nets, states))
        assert np.abs(float_logits - int8_logits).max() < 0.05 * np.abs(float_logits).max()
