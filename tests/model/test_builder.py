import numpy as np
import pytest

from generate.model.backend import import_keras
from generate.model.builder import build_explicit_state_model, build_model, reset_states, state_shapes
from generate.model.checkpoint import load_trainable_model, save_checkpoint
from generate.model.config import ModelConfig
from generate.model.network import SPLIT_MIN_STREAMS, StepNetwork

from ..helpers import perturbed_model

keras = import_keras()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_stateful_carry_over_split_batch_equals_whole(cell):
    cfg = ModelConfig(cell=cell, layers=2, units=8, embedding_dim=4, vocab_size=7)
    model = perturbed_model(cfg, batch=3)
    x = np.random.default_rng(1).integers(0, 7, (3, 10)).astype("int32")
    whole = np.asarray(model(x))
    reset_states(model)
    halves = np.concatenate([np.asarray(model(x[:, :4])), np.asarray(model(x[:, 4:]))], axis=1)
    np.testing.assert_allclose(halves, whole, atol=1e-5)
    reset_states(model)
    fresh = np.asarray(model(x[:, 4:]))
    assert not np.allclose(fresh, whole[:, 4:], atol=1e-3)  # without carried state it differs


def stepped_logits(net: StepNetwork, x: np.ndarray) -> np.ndarray:
    """Logits (B, T, V) from feeding x one step at a time through the step network."""
    states = net.initial_states(x.shape[0])
    steps = []
    for t in range(x.shape[1]):
        logits, states = net.step(keras.ops.convert_to_tensor(x[:, t]), states)
        steps.append(np.asarray(logits))
    return np.stack(steps, axis=1)


@pytest.mark.parametrize("cell,residual,layer_norm", [("lstm", False, False), ("gru", True, False), ("rnn", True, False),
                                                      ("lstm", True, True), ("gru", False, True)])
def test_fused_sampling_step_matches_keras_logits(cell, residual, layer_norm):
    cfg = ModelConfig(cell=cell, layers=3, units=8, embedding_dim=8, residual=residual, layer_norm=layer_norm, vocab_size=9)
    model = perturbed_model(cfg, batch=2)
    x = np.random.default_rng(2).integers(0, 9, (2, 6)).astype("int32")
    net = StepNetwork.from_model(model, cfg).prepare()
    np.testing.assert_allclose(stepped_logits(net, x), np.asarray(model(x)), atol=1e-4)
    if layer_norm:  # the step network reads each normalisation's own scale
        net.tensors["gamma1"] = keras.ops.ones_like(net.tensors["gamma1"])
        assert not np.allclose(stepped_logits(net, x), np.asarray(model(x)), atol=1e-3)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_wide_layers_step_over_column_blocks_and_match_keras(cell):
    cfg = ModelConfig(cell=cell, layers=2, units=192, embedding_dim=8, vocab_size=9)  # 768 or 576 columns
    streams = SPLIT_MIN_STREAMS  # the fewest streams that take the column blocks
    model = perturbed_model(cfg, batch=streams)
    x = np.random.default_rng(4).integers(0, 9, (streams, 5)).astype("int32")
    net = StepNetwork.from_model(model, cfg).prepare()
    assert {"rec0", "in1"} <= set(net.column_blocks)
    blocked = stepped_logits(net, x)
    np.testing.assert_allclose(blocked, np.asarray(model(x)), atol=1e-4)
    # One stream fewer takes the whole matrices, and gives the same logits.
    np.testing.assert_allclose(stepped_logits(net, x[:-1]), blocked[:-1], atol=1e-5)
    # The blocks are what many streams multiply by: spoiling them changes only those logits.
    net.column_blocks["in1"] = [keras.ops.zeros_like(block) for block in net.column_blocks["in1"]]
    assert not np.allclose(stepped_logits(net, x), blocked, atol=1e-3)
    np.testing.assert_allclose(stepped_logits(net, x[:-1]), blocked[:-1], atol=1e-5)


def test_checkpoint_round_trip_gives_identical_logits_at_any_batch_size(tmp_path):
    cfg = ModelConfig(layers=2, units=8, embedding_dim=4, vocab_size=7, dropout=0.1)
    model = perturbed_model(cfg, batch=4)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(3).integers(0, 7, (4, 5)).astype("int32")
    model.train_on_batch(x, x)  # builds optimizer state and leaves a hidden state
    path = tmp_path / "latest.keras"
    save_checkpoint(model, path, {"epoch": 0})
    expected = np.asarray(model(x))  # continues from the saved hidden state
    loaded = load_trainable_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)
    assert int(loaded.optimizer.iterations.numpy()) == 1
    single = build_model(cfg, 1)
    single.load_weights(path)
    reset_states(model)
    np.testing.assert_allclose(np.asarray(single(x[:1])), np.asarray(model(x))[:1], atol=1e-5)



def test_batch_losses_are_each_batchs_own_on_every_keras_version():
    """Keras before 3.13 (Python 3.10's) returned running means from *_on_batch; ours match a predict chain."""
    from generate.model.backend import test_batch, train_batch

    cfg = ModelConfig(layers=1, units=8, embedding_dim=4, vocab_size=7)
    model = perturbed_model(cfg, batch=2)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    chunks = [(rng.integers(0, 7, (2, 6)).astype("int32"), rng.integers(0, 7, (2, 6)).astype("int32")) for _ in range(3)]
    expected = []
    reset_states(model)
    for x, y in chunks:
        logits = np.asarray(model.predict_on_batch(x)).astype(np.float64)
        log_norm = np.log(np.exp(logits).sum(-1))
        expected.append(float(np.mean(log_norm - np.take_along_axis(logits, y[..., None], -1)[..., 0])))
    for step in (test_batch, train_batch):
        reset_states(model)
        assert [step(model, x, y) for x, y in chunks] == pytest.approx(expected, abs=1e-5)
    assert len(set(np.round(expected, 4))) == 3  # distinct losses: a running mean would differ from them


@pytest.mark.parametrize("units", [8, 6])
def test_tied_embeddings_share_one_matrix_step_like_keras_and_reload(tmp_path, units):
    """The output layer is the embedding transposed (after a projection when the widths differ)."""
    import subprocess
    import sys

    from generate.model.builder import count_params, start_at_frequencies

    cfg = ModelConfig(layers=2, units=units, embedding_dim=6, vocab_size=11, tie_embeddings=True)
    untied = build_model(ModelConfig(layers=2, units=units, embedding_dim=6, vocab_size=11), batch_size=2)
    model = perturbed_model(cfg, batch=2)
    projection = 0 if units == 6 else units * 6 + 6
    assert count_params(model) == count_params(untied) - units * 11 + projection
    x = np.random.default_rng(5).integers(0, 11, (2, 6)).astype("int32")
    net = StepNetwork.from_model(model, cfg).prepare()
    np.testing.assert_allclose(stepped_logits(net, x), np.asarray(model(x)), atol=1e-4)
    # Training the embedding moves the output layer too: they are one matrix.
    embedding = model.get_layer("embedding")
    embedding.embeddings.assign(np.asarray(embedding.embeddings) * 2)
    reset_states(model)
    assert not np.allclose(np.asarray(model(x)), stepped_logits(net, x), atol=1e-3)
    frequencies = np.arange(1, 12, dtype=np.float64) / 66
    start_at_frequencies(model, frequencies)
    np.testing.assert_allclose(np.asarray(model.get_layer("logits").bias), np.log(frequencies), rtol=1e-6)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    path = tmp_path / "latest.keras"
    save_checkpoint(model, path, {"epoch": 0})
    reset_states(model)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", np.asarray(model(x)))
    if units == cfg.embedding_dim:
        return  # the projected case below loads the same registered layer and a projection besides (a process is ~5 s)
    # A fresh process, which has built no tied model, loads the checkpoint in safe mode.
    script = ("import numpy as np, sys; from generate.model.checkpoint import load_trainable_model; "
              "from generate.model.builder import reset_states; d = sys.argv[1]; m = load_trainable_model(d + '/latest.keras'); "
              "reset_states(m); np.testing.assert_allclose(np.asarray(m(np.load(d + '/x.npy'))), np.load(d + '/expected.npy'), atol=1e-6)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("layer_norm", [False, True])
def test_explicit_state_model_matches_the_stateful_one(layer_norm):
    """Distributed replicas run `build_explicit_state_model`: with the same weights and no dropout it is the same network."""
    cfg = ModelConfig(layers=2, units=8, embedding_dim=8, residual=True, layer_norm=layer_norm, vocab_size=9)
    model = perturbed_model(cfg, batch=2)
    explicit = build_explicit_state_model(cfg, batch_size=2)
    for layer in model.layers:
        if layer.get_weights():
            explicit.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(5).integers(0, 9, (2, 7)).astype("int32")
    states = [keras.ops.zeros((2, width)) for width in state_shapes(cfg)]
    logits, *final = explicit([keras.ops.convert_to_tensor(x[:, :4]), *states])
    more, *_ = explicit([keras.ops.convert_to_tensor(x[:, 4:]), *final])
    np.testing.assert_allclose(np.concatenate([np.asarray(logits), np.asarray(more)], axis=1), np.asarray(model(x)), atol=1e-5)
