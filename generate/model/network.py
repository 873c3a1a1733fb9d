"""The fused step network: a trained model's layers as plain matrices for one-step decoding.

Beside the builder, because a cell type is two things: its Keras layer
(`builder.py`), and its single step here, which the sampler's compiled loop runs.

The embedding is folded into the first layer's input projection, LSTM gates
are reordered so one sigmoid covers three of them, and deeper layers multiply
`[input, state]` by one stacked matrix. All math is `keras.ops`, so every
backend runs it inside the compiled loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backend import compile_loop, import_keras
from .builder import LABEL_LAYER, layer_norm_name, recurrent_layer_name
from .config import ModelConfig
from .label_schedule import guided_initial_states, guided_step

SPLIT_COLUMNS = 512  # per-step weight matrices at least this wide run as two half-width products...
SPLIT_MIN_STREAMS = 16  # ...when at least this many streams are sampled together


@dataclass
class StepNetwork:
    """The trained network as plain arrays, arranged for single-step decoding."""

    cell: str
    units: int
    first_table: np.ndarray  # (V, G*H): embedding @ W_in + input bias of layer 0
    input_kernels: list[np.ndarray]  # layers >= 1: W_in, stacked over W_rec for LSTM/RNN
    recurrent_kernels: list[np.ndarray]  # layer 0 always; layers >= 1 for GRU only
    biases: list[np.ndarray]  # layers >= 1 input biases (layer 0's is in first_table)
    recurrent_biases: list[np.ndarray]  # GRU only: one per layer
    residual: list[bool]  # whether layer i adds its input to its output
    out_kernel: np.ndarray  # (H, V)
    out_bias: np.ndarray  # (V,)
    embedding: np.ndarray | None = None  # (V, E), kept only when layer 0 is residual
    norms: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (gamma, beta) of each layer's normalisation, if any
    norm_epsilon: float = 1e-3  # the normalisation layers' epsilon
    # The same weights unfused, for a compact exported graph (`onnx_step`); the sampler never reads them.
    unfused: dict[str, np.ndarray] = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)
    # A labelled model (`builder._first_input`): each label's share of layer 0's input projection, (L, G*H).
    label_table: np.ndarray | None = None
    label_embedding: np.ndarray | None = None  # (L, D), kept only when layer 0 is residual

    @classmethod
    def from_model(cls, model, cfg: ModelConfig) -> StepNetwork:
        """Reads the weights of any model made by `model.build_model`."""
        embedding = np.asarray(model.get_layer("embedding").get_weights()[0], dtype=np.float32)
        net = cls(cfg.cell, cfg.units, None, [], [], [], [], [], None, None)  # type: ignore[arg-type]
        width = cfg.input_width
        for i in range(cfg.layers):
            kernel, recurrent, bias = (np.asarray(w, np.float32) for w in model.get_layer(recurrent_layer_name(cfg, i)).get_weights())
            if cfg.cell == "lstm":
                kernel, recurrent, bias = (_lstm_gate_order(w, cfg.units) for w in (kernel, recurrent, bias))
            input_bias = bias[0] if cfg.cell == "gru" else bias
            if cfg.cell == "gru":
                net.recurrent_biases.append(bias[1])
            if i == 0:
                E = cfg.embedding_dim
                net.first_table = embedding @ kernel[:E] + input_bias
                net.unfused.update(embedding=embedding, first_kernel=kernel[:E], first_bias=input_bias)
                if cfg.label_count:
                    label_embedding = np.asarray(model.get_layer(LABEL_LAYER).get_weights()[0], np.float32)
                    net.label_table = label_embedding @ kernel[E:]
                net.recurrent_kernels.append(recurrent)
            elif cfg.cell == "gru":
                net.input_kernels.append(kernel)
                net.recurrent_kernels.append(recurrent)
                net.biases.append(input_bias)
            else:
                net.input_kernels.append(np.concatenate([kernel, recurrent], axis=0))
                net.biases.append(input_bias)
            net.residual.append(bool(cfg.residual and width == cfg.units))
            if i == 0 and net.residual[0]:
                net.embedding = embedding
                if cfg.label_count:  # the skip adds the whole input, the label's embedding joined to the character's
                    net.label_embedding = label_embedding
            if cfg.layer_norm:
                norm = model.get_layer(layer_norm_name(i))
                gamma, beta = (np.asarray(w, np.float32) for w in norm.get_weights())
                net.norms.append((gamma, beta))
                net.norm_epsilon = float(norm.epsilon)
            width = cfg.units
        if cfg.tie_embeddings:
            net.out_kernel = embedding.T
            net.out_bias = np.asarray(model.get_layer("logits").get_weights()[0], np.float32)
            if cfg.units != cfg.embedding_dim:
                # The projection folds into the transposed embedding, so a tied model steps at an untied one's cost.
                kernel, bias = (np.asarray(w, np.float32) for w in model.get_layer("tie_projection").get_weights())
                net.unfused.update(tie_kernel=kernel, tie_bias=bias, tie_out_bias=net.out_bias)
                net.out_kernel, net.out_bias = kernel @ embedding.T, bias @ embedding.T + net.out_bias
        else:
            net.out_kernel, net.out_bias = (np.asarray(w, np.float32) for w in model.get_layer("logits").get_weights())
        return net

    @property
    def ops(self):
        """The array operations the sampling loops run with on this network: `keras.ops`."""
        return import_keras().ops

    @staticmethod
    def compile(fn):
        """`fn` compiled for the active Keras backend (`backend.compile_loop`)."""
        return compile_loop(fn)

    @property
    def num_layers(self) -> int:
        return len(self.residual)

    @property
    def vocab_size(self) -> int:
        return self.out_bias.shape[0]

    @property
    def labels(self) -> int:
        """Label ids a labelled network takes (`<none>` included); 0 for one without labels."""
        return 0 if self.label_table is None else self.label_table.shape[0]

    def initial_states(self, batch: int) -> list:
        """Zero states; a labelled network's are two branches' and each stream's label schedule (`label_schedule`)."""
        per_layer = 2 if self.cell == "lstm" else 1
        states = [np.zeros((batch, self.units), np.float32) for _ in range(per_layer * self.num_layers)]
        return guided_initial_states(states) if self.labels else states

    def prepare(self) -> StepNetwork:
        """Converts every array to a backend tensor, outside any compiled trace.

        Backend tensors are made once, eagerly: a tensor first made inside one
        trace cannot be used by the next.
        """
        ops = import_keras().ops
        # Each bias rides as the last row of its matrix, times a column of ones
        # that `_product` appends to the input. XLA's CPU compiler fused a
        # separate bias add into the product itself and emitted that as its own
        # slow loop; without it one stream of a 2x512 LSTM sampled 1.3x faster
        # (benchmarks/RESULTS.md).
        arrays = {"table": self.first_table, "out": _with_bias(self.out_kernel, self.out_bias)}
        arrays["rec0"] = _with_bias(self.recurrent_kernels[0], self.recurrent_biases[0]) if self.cell == "gru" else self.recurrent_kernels[0]
        if self.embedding is not None:
            arrays["embedding"] = self.embedding
        if self.label_table is not None:
            arrays["label_table"] = self.label_table
        if self.label_embedding is not None:
            arrays["label_embedding"] = self.label_embedding
        for i, (gamma, beta) in enumerate(self.norms):
            arrays[f"gamma{i}"], arrays[f"beta{i}"] = gamma, beta
        for i in range(1, self.num_layers):
            arrays[f"in{i}"] = _with_bias(self.input_kernels[i - 1], self.biases[i - 1])
            if self.cell == "gru":
                arrays[f"rec{i}"] = _with_bias(self.recurrent_kernels[i], self.recurrent_biases[i])
        self.tensors = {name: ops.convert_to_tensor(value) for name, value in arrays.items()}
        # With many streams, each wide product also runs as two over halves of
        # the columns, which XLA's CPU runtime can overlap on the two cores:
        # 1.06x for the products of 64 streams. At one stream it never did,
        # and the whole product was faster.
        self.column_blocks = {name: [ops.convert_to_tensor(block) for block in np.array_split(value, 2, axis=1)]
                              for name, value in arrays.items()
                              if value.ndim == 2 and name not in ("table", "embedding") and value.shape[1] >= SPLIT_COLUMNS}
        return self

    def _product(self, x, name: str, affine: bool = False):
        """x @ the named matrix; `affine` for a matrix whose last row is a bias."""
        ops = import_keras().ops
        if affine:
            x = ops.concatenate([x, ops.ones((ops.shape(x)[0], 1), x.dtype)], axis=-1)
        blocks = self.column_blocks.get(name)
        if blocks is None or (x.shape[0] or 0) < SPLIT_MIN_STREAMS:
            return ops.matmul(x, self.tensors[name])
        return ops.concatenate([ops.matmul(x, block) for block in blocks], axis=-1)

    def step(self, tokens, states, guided: bool = True):
        """One time step: ids (N,) and states -> logits (N, V) and new states (a labelled network's: `guided_step`)."""
        if self.labels:
            return guided_step(self._core, tokens, states, import_keras().ops, guided)
        return self._core(tokens, None, states)

    def _core(self, tokens, labels, states):
        """The layers' step for plain rows: ids (M,), label ids (M,) or None, and the layers' states."""
        ops = import_keras().ops
        H = self.units
        new_states = []
        x = ops.take(self.tensors["embedding"], tokens, axis=0) if self.residual[0] else None
        if x is not None and self.labels:
            x = ops.concatenate([x, ops.take(self.tensors["label_embedding"], labels, axis=0)], axis=-1)
        for i in range(self.num_layers):
            h = states[2 * i] if self.cell == "lstm" else states[i]
            if i == 0:
                projected = ops.take(self.tensors["table"], tokens, axis=0)
                if self.labels:
                    projected = projected + ops.take(self.tensors["label_table"], labels, axis=0)
            elif self.cell == "gru":
                projected = self._product(x, f"in{i}", affine=True)
            else:
                projected = self._product(ops.concatenate([x, h], axis=-1), f"in{i}", affine=True)
            if self.cell == "lstm":
                z = projected if i else projected + self._product(h, "rec0")
                gates = ops.sigmoid(z[:, : 3 * H])
                c = gates[:, H : 2 * H] * states[2 * i + 1] + gates[:, :H] * ops.tanh(z[:, 3 * H :])
                h = gates[:, 2 * H : 3 * H] * ops.tanh(c)
                new_states += [h, c]
            elif self.cell == "gru":
                inner = self._product(h, f"rec{i}", affine=True)
                zr = ops.sigmoid(projected[:, : 2 * H] + inner[:, : 2 * H])
                candidate = ops.tanh(projected[:, 2 * H :] + zr[:, H:] * inner[:, 2 * H :])
                h = zr[:, :H] * h + (1.0 - zr[:, :H]) * candidate
                new_states.append(h)
            else:
                z = projected if i else projected + self._product(h, "rec0")
                h = ops.tanh(z)
                new_states.append(h)
            x = h + x if self.residual[i] else h
            if self.norms:
                x = ops.layer_normalization(x, self.tensors[f"gamma{i}"], self.tensors[f"beta{i}"], epsilon=self.norm_epsilon)
        logits = self._product(x, "out", affine=True)
        return logits, new_states


def _with_bias(matrix: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.concatenate([matrix, bias[None, :]], axis=0)


def _lstm_gate_order(weights: np.ndarray, units: int) -> np.ndarray:
    # Keras stores gates as [i, f, c, o]; [i, f, o, c] lets one sigmoid cover i, f and o.
    i, f, c, o = (weights[..., k * units : (k + 1) * units] for k in range(4))
    return np.concatenate([i, f, o, c], axis=-1)
