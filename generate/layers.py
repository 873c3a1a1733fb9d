"""Recurrent layers that project all time steps' inputs in one matmul on CPUs.

Keras's generic (non-cuDNN) loop computes `x_t @ kernel` inside the time
loop: T small matmuls forward and T more backward. These subclasses compute
`x @ kernel + bias` for the whole sequence at once, a single large matmul
that runs near peak, and leave only `h @ recurrent_kernel` in the loop,
which runs on the same loop primitive as Keras's own RNN layers
(`keras.src.backend.rnn`; the public `ops.scan` on TensorFlow forces the
outputs into the carry's structure). The weights, their names and the math are the
parent layer's, so checkpoints load into either. On a GPU, or with options
the fast path does not cover (masks, recurrent dropout, cell dropout, going
backwards, unrolling), they defer to the parent, which picks cuDNN when it can.
"""

from __future__ import annotations

import functools

from .model import import_keras

keras = import_keras()  # this module is imported only when a model is built
ops = keras.ops
from keras.src import backend as keras_backend  # noqa: E402  the loop primitive Keras's RNN layers use


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    return False


class _ProjectedInputs:
    """Mixin: the hoisted-projection inner loop, given a per-step `recurrent_step`."""

    def _fast_path_applies(self, mask) -> bool:
        return not (
            gpu_available() or mask is not None or self.cell.dropout or self.cell.recurrent_dropout
            or self.go_backwards or self.unroll or not self.cell.use_bias
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if self._fast_path_applies(mask[0] if isinstance(mask, (list, tuple)) else mask):
            # One matmul for every time step's input projection; the loop does the rest.
            projected = ops.matmul(sequences, self.cell.kernel) + self._input_bias()
            return keras_backend.rnn(
                self.recurrent_step, projected, list(initial_state),
                input_length=sequences.shape[1], return_all_outputs=self.return_sequences,
            )
        return super().inner_loop(sequences, initial_state, mask, training=training)

    def _input_bias(self):
        return self.cell.bias


@keras.saving.register_keras_serializable(package="generate")
class ProjectedLSTM(_ProjectedInputs, keras.layers.LSTM):
    def recurrent_step(self, projected_t, states):
        h, c = states
        z = projected_t + ops.matmul(h, self.cell.recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(z_f) * c + ops.sigmoid(z_i) * ops.tanh(z_c)
        h = ops.sigmoid(z_o) * ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="generate")
class ProjectedGRU(_ProjectedInputs, keras.layers.GRU):
    def _fast_path_applies(self, mask) -> bool:
        return self.cell.reset_after and super()._fast_path_applies(mask)

    def _input_bias(self):
        return self.cell.bias[0]

    def recurrent_step(self, projected_t, states):
        (h,) = states
        inner = ops.matmul(h, self.cell.recurrent_kernel) + self.cell.bias[1]
        x_z, x_r, x_h = ops.split(projected_t, 3, axis=-1)
        r_z, r_r, r_h = ops.split(inner, 3, axis=-1)
        z = ops.sigmoid(x_z + r_z)
        r = ops.sigmoid(x_r + r_r)
        h = z * h + (1.0 - z) * ops.tanh(x_h + r * r_h)
        return h, [h]


@keras.saving.register_keras_serializable(package="generate")
class ProjectedSimpleRNN(_ProjectedInputs, keras.layers.SimpleRNN):
    def recurrent_step(self, projected_t, states):
        (h,) = states
        h = ops.tanh(projected_t + ops.matmul(h, self.cell.recurrent_kernel))
        return h, [h]
