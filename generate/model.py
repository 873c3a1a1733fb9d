"""The model: Embedding -> N stateful recurrent layers -> Dense logits.

One builder makes every copy of a model: the training model at batch B, the
validation model at its own batch, and sampling models at any batch N. They
share layer names, so weights move between them with `set_weights` or
`load_weights`. Only Keras 3 public API is used here, so the JAX and PyTorch
backends can build the same model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import numpy as np

from .config import ModelConfig
from .errors import UsageError

log = logging.getLogger(__name__)


def import_keras():
    """Imports Keras (and so the backend) on first use.

    TensorFlow's C++ layer writes start-up notices (oneDNN, missing CUDA
    drivers) straight to file descriptor 2, ignoring TF_CPP_MIN_LOG_LEVEL in
    2.21, so stderr is muted at the descriptor level while it loads and
    probes devices. Debug logging (`-v`) or GENERATE_TF_LOGS=1 keeps them.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    verbose = os.environ.get("GENERATE_TF_LOGS") == "1" or log.isEnabledFor(logging.DEBUG)
    with contextlib.nullcontext() if verbose else _muted_stderr_fd():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
    return keras


@contextlib.contextmanager
def _muted_stderr_fd():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def recurrent_layer_name(cfg: ModelConfig, index: int) -> str:
    return f"{cfg.cell}_{index}"


def has_gpu() -> bool:
    """Whether the active Keras backend computes on a GPU."""
    backend = import_keras().backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def dtype_policy(precision: str, cell: str = "lstm") -> str:
    """The Keras dtype policy for a `TrainConfig.precision`.

    "mixed" is float16 on a GPU, where cuDNN's recurrent kernels run it on
    tensor cores, and bfloat16 on a CPU, which needs no loss scaling.

    Raises:
        UsageError: a 16-bit LSTM on Keras's JAX backend with a GPU, whose
            cuDNN LSTM (`jax.experimental.rnn`) takes float32 only.
    """
    policy = precision.replace("-", "_")
    if precision == "mixed":
        policy = "mixed_float16" if has_gpu() else "mixed_bfloat16"
    if policy != "float32" and cell == "lstm" and import_keras().backend.backend() == "jax" and has_gpu():
        raise UsageError(
            f"--precision {precision}: Keras on JAX runs LSTMs on the GPU through cuDNN in float32 only; "
            "expected --precision float32 there (or KERAS_BACKEND=tensorflow)"
        )
    return policy


def build_model(cfg: ModelConfig, batch_size: int, seq_len: int | None = None, policy: str = "float32"):
    """Builds the stateful character model.

    With default layer settings (tanh/sigmoid activations, no recurrent
    dropout, no unrolling) Keras picks the cuDNN kernel on a GPU.

    Args:
        cfg: the model configuration; `cfg.vocab_size` must be set.
        batch_size: the static batch size the stateful layers are built for.
        seq_len: a static sequence length, or None to accept any length.
        policy: a Keras dtype policy such as "mixed_float16" for every layer
            but the logits, which stay float32 so the softmax loss is exact.
            Weights are float32 under every policy, so any copy of the model
            loads them.

    Returns:
        An uncompiled `keras.Model` mapping int ids (B, T) to logits (B, T, V).
    """
    keras = import_keras()
    layers = keras.layers
    cell_class = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}[cfg.cell]
    inputs = keras.Input(batch_shape=(batch_size, seq_len), dtype="int32", name="ids")
    x = layers.Embedding(cfg.vocab_size, cfg.embedding_dim, name="embedding", dtype=policy)(inputs)
    width = cfg.embedding_dim
    for i in range(cfg.layers):
        layer_input = x
        if cfg.dropout:
            x = layers.Dropout(cfg.dropout, name=f"dropout_{i}", dtype=policy)(x)
        x = cell_class(
            cfg.units,
            return_sequences=True,
            stateful=True,
            recurrent_dropout=cfg.recurrent_dropout,
            name=recurrent_layer_name(cfg, i),
            dtype=policy,
        )(x)
        if cfg.residual and width == cfg.units:
            x = layers.Add(name=f"residual_{i}", dtype=policy)([x, layer_input])
        width = cfg.units
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="dropout_out", dtype=policy)(x)
    logits = layers.Dense(cfg.vocab_size, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=f"char_{cfg.cell}")


def recurrent_layers(model) -> list:
    return [layer for layer in model.layers if getattr(layer, "stateful", False)]


def reset_states(model) -> None:
    """Zeroes the hidden state of every stateful layer."""
    for layer in recurrent_layers(model):
        layer.reset_state()


def runtime_variables(model) -> list:
    """Variables a `.keras` file does not save but exact resumption needs.

    These are the stateful layers' hidden states and the dropout layers'
    random seed states, in a stable order.
    """
    variables = []
    for layer in model._flatten_layers(include_self=False):
        variables.extend(getattr(layer, "states", None) or [])
        variables.extend(sg.state for sg in getattr(layer, "_seed_generators", []))
    return variables


def get_runtime_state(model) -> list[np.ndarray]:
    return [np.asarray(v.numpy() if hasattr(v, "numpy") else v.value) for v in runtime_variables(model)]


def set_runtime_state(model, values: list[np.ndarray]) -> bool:
    """Restores `get_runtime_state` output; returns False if shapes disagree."""
    variables = runtime_variables(model)
    if len(variables) != len(values) or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
        return False
    for variable, value in zip(variables, values):
        variable.assign(value)
    return True


def count_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
