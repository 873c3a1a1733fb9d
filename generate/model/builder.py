"""The model: Embedding -> N stateful recurrent layers -> Dense logits.

One builder makes every copy of a model: the training model at batch B, the
validation model at its own batch, and sampling models at any batch N. They
share layer names, so weights move between them with `set_weights` or
`load_weights`. Only Keras 3 public API is used here, so every backend builds
the same model; what differs by backend lives in `model.backend`.
"""

from __future__ import annotations

import numpy as np

from .backend import import_keras
from .config import ModelConfig


def recurrent_layer_name(cfg: ModelConfig, index: int) -> str:
    return f"{cfg.cell}_{index}"


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


def count_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
