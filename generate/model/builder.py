"""The model: Embedding -> N stateful recurrent layers (each with an optional skip and normalisation) -> Dense logits.

One builder makes every copy of a model: the training model at batch B, the
validation model at its own batch, and sampling models at any batch N. They
share layer names, so weights move between them with `set_weights` or
`load_weights`. Only Keras 3 public API is used here, so every backend builds
the same model; what differs by backend lives in `model.backend`.
"""

from __future__ import annotations

import functools

import numpy as np

from .backend import import_keras
from .config import ModelConfig, TrainConfig


def recurrent_layer_name(cfg: ModelConfig, index: int) -> str:
    return f"{cfg.cell}_{index}"


def layer_norm_name(index: int) -> str:
    return f"layer_norm_{index}"


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
    embedding = _embedding_layer(cfg, policy)
    x = _first_input(cfg, inputs, embedding, policy)
    width = cfg.input_width
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
        if cfg.layer_norm:
            x = layers.LayerNormalization(name=layer_norm_name(i), dtype=policy)(x)
        width = cfg.units
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="dropout_out", dtype=policy)(x)
    logits = _logits(cfg, x, embedding, policy)
    return keras.Model(inputs, logits, name=f"char_{cfg.cell}")


def _first_input(cfg: ModelConfig, ids, embedding, policy: str):
    """The first layer's input: each character's embedding, joined in a labelled model by its label's.

    A labelled model's ids carry both: `char + vocab_size * label` (`pack_labels`), so every
    path that feeds a model (training, validation, the replicas of a distributed run) feeds one tensor.
    """
    if not cfg.label_count:
        return embedding(ids)
    chars, label_vectors = label_layer()(cfg.vocab_size, cfg.label_count, cfg.label_dim, name=LABEL_LAYER, dtype=policy)(ids)
    return import_keras().layers.Concatenate(name="labelled_input", dtype=policy)([embedding(chars), label_vectors])


def pack_labels(ids: np.ndarray, labels: np.ndarray, vocab_size: int) -> np.ndarray:
    """A labelled model's input: each character's id with its label's (`_first_input`)."""
    return (ids.astype(np.int32) + np.int32(vocab_size) * labels.astype(np.int32)).astype(np.int32)


@functools.cache
def label_layer():
    """The `StepLabels` layer class, registered with Keras so saved models load it (see `logit_bias_layer`)."""
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="generate")
    class StepLabels(keras.layers.Layer):
        """Splits packed ids into character ids and the label's embedding.

        Args:
            vocab_size: characters; a packed id is `char + vocab_size * label`.
            labels: label ids, `<none>` (0) included.
            dim: the label embedding's width.
        """

        def __init__(self, vocab_size: int, labels: int, dim: int, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.labels, self.dim = vocab_size, labels, dim

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.labels, self.dim), initializer="uniform", name="embeddings")

        def call(self, packed):
            ops = keras.ops
            packed = ops.cast(packed, "int32")
            labels = ops.floor_divide(packed, self.vocab_size)
            chars = packed - labels * self.vocab_size
            return chars, ops.cast(ops.take(self.embeddings, labels, axis=0), self.compute_dtype)

        def compute_output_shape(self, input_shape):
            return tuple(input_shape), (*input_shape, self.dim)

        def get_config(self):
            return {**super().get_config(), "vocab_size": self.vocab_size, "labels": self.labels, "dim": self.dim}

    return StepLabels


LABEL_LAYER = "labels"


def _embedding_layer(cfg: ModelConfig, policy: str):
    keras = import_keras()
    if cfg.tie_embeddings:
        # Its reverse call is the output layer's matrix, computed in float32 like an untied logits layer.
        return keras.layers.ReversibleEmbedding(cfg.vocab_size, cfg.embedding_dim, tie_weights=True, reverse_dtype="float32",
                                                name="embedding", dtype=policy)
    return keras.layers.Embedding(cfg.vocab_size, cfg.embedding_dim, name="embedding", dtype=policy)


def _logits(cfg: ModelConfig, x, embedding, policy: str):
    """The output layer: a Dense layer, or with tied embeddings the embedding matrix transposed plus a bias."""
    keras = import_keras()
    if not cfg.tie_embeddings:
        return keras.layers.Dense(cfg.vocab_size, name="logits", dtype="float32")(x)
    if cfg.units != cfg.embedding_dim:
        x = keras.layers.Dense(cfg.embedding_dim, name="tie_projection", dtype=policy)(x)
    return logit_bias_layer()(name="logits", dtype="float32")(embedding(x, reverse=True))


@functools.cache
def logit_bias_layer():
    """The `LogitBias` layer class, registered with Keras so saved models load it.

    Defined on first use, because Keras itself loads lazily. Checkpoints call
    this before loading a model, so a tied model loads in a process that has
    not built one.
    """
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="generate")
    class LogitBias(keras.layers.Layer):
        """Adds a trainable bias to the last axis: the bias of a tied output layer."""

        def build(self, input_shape):
            self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

        def call(self, inputs):
            return keras.ops.cast(inputs, self.compute_dtype) + self.bias

    return LogitBias


def start_at_frequencies(model, frequencies: np.ndarray) -> None:
    """Sets the logits' bias to the log of each character's training frequency.

    The untrained model then predicts the unigram distribution, so the first
    steps learn context instead of spending themselves on frequencies. With a
    large vocabulary (thousands of Han characters) a zero bias starts at
    ln V, far above the unigram entropy, and Adam's early steps can settle
    the network where it never leaves the entropy; this start avoids that.
    Characters the split never holds get half the rarest one's share, not minus infinity.
    """
    bias = model.get_layer("logits").bias
    floor = 0.5 * float(frequencies[frequencies > 0].min()) if np.any(frequencies > 0) else 1.0
    bias.assign(np.log(np.maximum(frequencies, floor)).astype(np.float32))


def recurrent_layers(model) -> list:
    return [layer for layer in model.layers if getattr(layer, "stateful", False)]


def reset_states(model) -> None:
    """Zeroes the hidden state of every stateful layer."""
    for layer in recurrent_layers(model):
        layer.reset_state()


def count_params(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def state_shapes(cfg: ModelConfig) -> list[int]:
    """The width of each hidden-state tensor, in the order stateful layers list them (LSTM: h, then c)."""
    return [cfg.units] * (cfg.layers * (2 if cfg.cell == "lstm" else 1))


def dropout_widths(cfg: ModelConfig) -> list[int]:
    """The feature width at each dropout site of `build_model`: every layer's input, then the last output."""
    if not cfg.dropout:
        return []
    return [cfg.input_width] + [cfg.units] * cfg.layers


def build_explicit_state_model(cfg: ModelConfig, batch_size: int, seq_len: int | None = None, policy: str = "float32"):
    """The same network as `build_model`, with its hidden states and dropout masks passed in and out.

    No Keras version supports stateful layers under a distribution strategy,
    so each replica of a distributed run carries its own block of streams'
    states through this model. Dropout masks come in as inputs, drawn for
    the whole global batch from the step number: the masks a stream sees do
    not depend on how many replicas share the batch. Layer names match
    `build_model`'s, so weights move between the two by name.

    Args:
        cfg: the model configuration; `recurrent_dropout` must be 0.
        batch_size: this replica's streams.
        seq_len: a static sequence length, or None.
        policy: as for `build_model`.

    Returns:
        An uncompiled `keras.Model` mapping [ids, *states, *masks] to [logits, *final states];
        masks are the keep-masks scaled by 1/(1 - dropout), one per `dropout_widths` entry.
    """
    keras = import_keras()
    layers = keras.layers
    cell_class = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}[cfg.cell]
    ids = keras.Input(batch_shape=(batch_size, seq_len), dtype="int32", name="ids")
    per_layer = 2 if cfg.cell == "lstm" else 1
    states = [keras.Input(batch_shape=(batch_size, width), name=f"state_{k}") for k, width in enumerate(state_shapes(cfg))]
    masks = [keras.Input(batch_shape=(batch_size, seq_len, width), name=f"mask_{k}") for k, width in enumerate(dropout_widths(cfg))]
    embedding = _embedding_layer(cfg, policy)
    x = _first_input(cfg, ids, embedding, policy)
    width = cfg.input_width
    final_states = []
    for i in range(cfg.layers):
        layer_input = x
        if masks:
            x = layers.Multiply(name=f"dropout_{i}", dtype=policy)([x, masks[i]])
        x, *layer_states = cell_class(cfg.units, return_sequences=True, return_state=True, name=recurrent_layer_name(cfg, i),
                                      dtype=policy)(x, initial_state=states[per_layer * i : per_layer * (i + 1)])
        final_states += layer_states
        if cfg.residual and width == cfg.units:
            x = layers.Add(name=f"residual_{i}", dtype=policy)([x, layer_input])
        if cfg.layer_norm:
            x = layers.LayerNormalization(name=layer_norm_name(i), dtype=policy)(x)
        width = cfg.units
    if masks:
        x = layers.Multiply(name="dropout_out", dtype=policy)([x, masks[-1]])
    logits = _logits(cfg, x, embedding, policy)
    return keras.Model([ids, *states, *masks], [logits, *final_states], name=f"char_{cfg.cell}_explicit_state")


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int, policy: str = "float32"):
    """Adam with the per-epoch staircase decay and global-norm clipping every training path uses.

    float16 gradients underflow without loss scaling; bfloat16 has float32's
    range and needs none.
    """
    keras = import_keras()
    schedule = keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, decay_steps=max(steps_per_epoch, 1), decay_rate=cfg.lr_decay, staircase=True
    )
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=cfg.clip_norm or None)
    return keras.optimizers.LossScaleOptimizer(optimizer) if policy == "mixed_float16" else optimizer
