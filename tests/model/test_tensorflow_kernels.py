"""The fused training kernels compute Keras's LSTM and GRU exactly, gradients and carried state included."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.model.backend import import_keras
from generate.model.backend.tensorflow_kernels import use_fused_kernels
from generate.model.builder import build_model, recurrent_layers
from generate.model.config import ModelConfig, TrainConfig
from generate.training.trainer import compile_for_training

from ..helpers import perturbed_model

keras = import_keras()
import tensorflow as tf  # noqa: E402  (the fused kernels are TensorFlow's)


def twin_models(cfg, batch):
    """The same weights and non-zero hidden states, Keras's loop in the first, the fused kernels in the second."""
    plain = perturbed_model(cfg, batch)
    fused = build_model(cfg, batch)
    fused.set_weights(plain.get_weights())
    rng = np.random.default_rng(5)
    for a, b in zip(recurrent_layers(plain), recurrent_layers(fused)):
        for sa, sb in zip(a.states, b.states):
            value = rng.normal(0, 0.5, sa.shape).astype("float32")
            sa.assign(value)
            sb.assign(value)
    assert use_fused_kernels(fused) == cfg.layers
    return plain, fused


@pytest.mark.parametrize("cell,residual", [("lstm", False), ("gru", True)])
def test_outputs_gradients_and_states_match_keras(cell, residual):
    cfg = ModelConfig(cell=cell, layers=2, units=12, embedding_dim=12, residual=residual, vocab_size=9)
    plain, fused = twin_models(cfg, batch=3)
    x = np.random.default_rng(1).integers(0, 9, (3, 11)).astype("int32")
    weights = np.random.default_rng(2).normal(size=(3, 11, 9)).astype("float32")
    results = []
    for model in (plain, fused):
        with tf.GradientTape() as tape:
            logits = model(x)
            loss = tf.reduce_sum(logits * weights)
        grads = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_weights)]
        states = [s.numpy() for layer in recurrent_layers(model) for s in layer.states]
        results.append((logits.numpy(), grads, states))
    (logits_a, grads_a, states_a), (logits_b, grads_b, states_b) = results
    np.testing.assert_allclose(logits_b, logits_a, atol=1e-5)
    for a, b in zip(states_a, states_b):
        np.testing.assert_allclose(b, a, atol=1e-5)
    for a, b in zip(grads_a, grads_b):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_steps_match_keras(cell):
    """Compiled `train_on_batch` steps, where the state variables are read and reassigned in one graph."""
    cfg = ModelConfig(cell=cell, layers=2, units=16, embedding_dim=8, vocab_size=11)
    plain, fused = twin_models(cfg, batch=4)
    rng = np.random.default_rng(3)
    batches = [(rng.integers(0, 11, (4, 9)).astype("int32"), rng.integers(0, 11, (4, 9)).astype("int32")) for _ in range(3)]
    losses = []
    for model in (plain, fused):
        compile_for_training(model, TrainConfig(), steps_per_epoch=10)
        losses.append([float(model.train_on_batch(x, y)) for x, y in batches])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    for a, b in zip(plain.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(b, a, atol=1e-5)


def test_options_the_kernels_do_not_cover_keep_keras_loop():
    cfg = ModelConfig(cell="lstm", layers=2, units=8, embedding_dim=4, vocab_size=7, recurrent_dropout=0.2)
    assert use_fused_kernels(build_model(cfg, 2)) == 0
    assert use_fused_kernels(build_model(ModelConfig(cell="rnn", layers=1, units=8, vocab_size=7), 2)) == 0


def test_mixed_precision_trains_resumes_and_validates_in_float32(tmp_path, verse_file):
    run = tmp_path / "run"
    common = ["--layers", "1", "--units", "16", "--embedding-dim", "8", "--batch-size", "4", "--seq-len", "16"]
    result = CliRunner().invoke(cli, ["-q", "train", str(run), str(verse_file), *common, "--epochs", "1", "--precision", "mixed"])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["precision"] == "mixed"
    model = keras.saving.load_model(run / "latest.keras")
    assert model.get_layer("lstm_0").dtype_policy.name == "mixed_bfloat16"  # no GPU here
    assert model.get_layer("logits").dtype_policy.name == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    result = CliRunner().invoke(cli, ["-q", "train", str(run), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "epochs 2" in result.output
    info = CliRunner().invoke(cli, ["info", str(run)])
    assert "precision mixed" in info.output


def test_unknown_precision_is_a_usage_error(tmp_path, verse_file):
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "r"), str(verse_file), "--precision", "half"])
    assert result.exit_code == 2
    assert "--precision" in result.output and not (tmp_path / "r").exists()
