"""Faster LSTM and GRU training on TensorFlow without a GPU.

Keras's generic recurrent loop on TensorFlow differentiates a `tf.while_loop`
step by step: every time step of the backward pass does four matrix products
per layer (two for the state, two to accumulate weight gradients) and pushes
and pops every intermediate. PyTorch's CPU `nn.LSTM` trained 1.6x faster at
our shape. Here the gradients are written out by hand instead:

- the forward pass projects the inputs of all T steps in one matrix product,
  so a step costs one product (the recurrent one) and keeps its activations;
- the backward loop carries only the state gradient: one product per step;
- the weight, bias and input gradients are then one large product each over
  all T steps, which runs at several times the rate of T small ones.

The result is the same function with the same gradients (checked against
Keras to float32 rounding in the tests), so trained weights do not depend on
which path ran. `use_fused_kernels` swaps the path into a model's layers; the
`.keras` file still names plain `LSTM`/`GRU` layers, and every other backend,
a GPU (cuDNN is faster there) or an option these kernels don't cover keeps
Keras's own loop (`backend.use_fast_training_kernels` decides). Nothing else
in training depends on TensorFlow for speed. Replacing a layer's
`inner_loop` is a Keras internal, which is why this lives in `backend`.
"""

from __future__ import annotations

import logging
import types

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


def use_fused_kernels(model) -> int:
    """Routes the model's eligible LSTM and GRU layers through the fused kernels.

    Args:
        model: a model from `model.builder.build_model` (or loaded from a
            checkpoint) on TensorFlow, before its first training step is traced.

    Returns:
        How many layers now use the fused kernels.
    """
    count = 0
    for layer in model.layers:
        kernel = {"LSTM": _lstm_inner_loop, "GRU": _gru_inner_loop}.get(type(layer).__name__)
        if kernel and _eligible(layer):
            layer.inner_loop = types.MethodType(kernel, layer)
            count += 1
    log.debug("fused recurrent kernels in %d layer(s)", count)
    return count


def _eligible(layer) -> bool:
    """The options the hand-written gradients cover: Keras's defaults for our models."""
    cell = layer.cell
    return (
        cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and cell.use_bias
        and not cell.dropout
        and not cell.recurrent_dropout
        and not layer.unroll
        and not layer.go_backwards
        and layer.return_sequences
        and getattr(cell, "reset_after", True)
    )


def _lstm_inner_loop(self, sequences, initial_state, mask, training=False):
    if mask is not None:
        return type(self).inner_loop(self, sequences, initial_state, mask, training)
    h0, c0 = initial_state
    outputs, h, c = lstm_sequence(sequences, h0, c0, self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias)
    return h, outputs, [h, c]


def _gru_inner_loop(self, sequences, initial_state, mask, training=False):
    if mask is not None:
        return type(self).inner_loop(self, sequences, initial_state, mask, training)
    h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
    outputs, h = gru_sequence(sequences, h0, self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias)
    return h, outputs, [h]


def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """A Keras LSTM (gates i, f, c, o) over a whole sequence, with hand-written gradients.

    Args:
        x: inputs (B, T, E).
        h0, c0: initial states (B, U).
        kernel, recurrent_kernel, bias: the layer's weights, (E, 4U), (U, 4U), (4U,).

    Returns:
        Outputs (B, T, U), and the final h and c (B, U).
    """
    units = recurrent_kernel.shape[0]
    # tanh(z) = 2 sigmoid(2z) - 1: doubling the cell-input columns lets one sigmoid cover all four gates.
    scale = tf.concat([tf.ones([2 * units]), tf.fill([units], 2.0), tf.ones([units])], 0)

    @tf.custom_gradient
    def run(x, h0, c0, kernel, recurrent_kernel, bias):
        scale_ = tf.cast(scale, kernel.dtype)
        batch, steps, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        k, rk = kernel * scale_, recurrent_kernel * scale_
        flat_x = tf.reshape(tf.transpose(x, [1, 0, 2]), [-1, width])  # time-major (T*B, E)
        projected = tf.reshape(tf.matmul(flat_x, k) + bias * scale_, [steps, batch, 4 * units])

        h_last, c_last, hs, cs, acts = _loop(_lstm_forward, projected.dtype)(projected, h0, c0, rk)

        def grad(d_outputs, d_h_last, d_c_last):
            d_hs = tf.transpose(d_outputs, [1, 0, 2])
            c_prev = tf.concat([c0[None], cs[:-1]], 0)
            d_h0, d_c0, dz = _loop(_lstm_backward, d_hs.dtype)(d_hs, d_h_last, d_c_last, acts, cs, c_prev, tf.transpose(rk))
            dz = tf.reshape(dz, [-1, 4 * units])
            h_prev = tf.reshape(tf.concat([h0[None], hs[:-1]], 0), [-1, units])
            d_x = tf.transpose(tf.reshape(tf.matmul(dz, k, transpose_b=True), [steps, batch, width]), [1, 0, 2])
            d_kernel = tf.matmul(flat_x, dz, transpose_a=True) * scale_
            d_recurrent = tf.matmul(h_prev, dz, transpose_a=True) * scale_
            d_bias = tf.reduce_sum(dz, 0) * scale_
            return d_x, d_h0, d_c0, d_kernel, d_recurrent, d_bias

        return (tf.transpose(hs, [1, 0, 2]), h_last, c_last), grad

    # States arrive as the layer's variables, which are reassigned after the forward pass: read them now.
    return run(x, _value(h0), _value(c0), _value(kernel), _value(recurrent_kernel), _value(bias))


def gru_sequence(x, h0, kernel, recurrent_kernel, bias):
    """A Keras GRU (reset_after=True, gates z, r, h) over a whole sequence, with hand-written gradients.

    Args:
        x: inputs (B, T, E).
        h0: initial state (B, U).
        kernel, recurrent_kernel, bias: the layer's weights, (E, 3U), (U, 3U), (2, 3U).

    Returns:
        Outputs (B, T, U), and the final h (B, U).
    """
    units = recurrent_kernel.shape[0]

    @tf.custom_gradient
    def run(x, h0, kernel, recurrent_kernel, bias):
        batch, steps, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        flat_x = tf.reshape(tf.transpose(x, [1, 0, 2]), [-1, width])
        projected = tf.reshape(tf.matmul(flat_x, kernel) + bias[0], [steps, batch, 3 * units])

        h_last, hs, gates, inner_hs = _loop(_gru_forward, projected.dtype)(projected, h0, recurrent_kernel, bias[1])

        def grad(d_outputs, d_h_last):
            d_hs = tf.transpose(d_outputs, [1, 0, 2])
            h_prev = tf.concat([h0[None], hs[:-1]], 0)
            d_h0, d_projected, d_inner = _loop(_gru_backward, d_hs.dtype)(d_hs, d_h_last, gates, inner_hs, h_prev, tf.transpose(recurrent_kernel))
            d_projected = tf.reshape(d_projected, [-1, 3 * units])
            d_inner = tf.reshape(d_inner, [-1, 3 * units])
            d_x = tf.transpose(tf.reshape(tf.matmul(d_projected, kernel, transpose_b=True), [steps, batch, width]), [1, 0, 2])
            d_kernel = tf.matmul(flat_x, d_projected, transpose_a=True)
            d_recurrent = tf.matmul(tf.reshape(h_prev, [-1, units]), d_inner, transpose_a=True)
            d_bias = tf.stack([tf.reduce_sum(d_projected, 0), tf.reduce_sum(d_inner, 0)])
            return d_x, d_h0, d_kernel, d_recurrent, d_bias

        return (tf.transpose(hs, [1, 0, 2]), h_last), grad

    return run(x, _value(h0), _value(kernel), _value(recurrent_kernel), _value(bias))


# The time loops. Each runs as one XLA cluster in float32, which cut the
# per-step overhead of ~20 small graph ops; XLA's CPU matrix products are
# slower than oneDNN's in bfloat16, so 16-bit loops stay plain graphs.


def _lstm_forward(projected, h0, c0, rk):
    steps = tf.shape(projected)[0]

    def step(t, h, c, hs, cs, acts):
        a = tf.sigmoid(projected[t] + tf.matmul(h, rk))
        i, f, g2, o = tf.split(a, 4, axis=1)
        c = f * c + i * (2 * g2 - 1)
        h = o * tf.tanh(c)
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), acts.write(t, a)

    arrays = (_array(projected.dtype, steps) for _ in range(3))
    _, h, c, hs, cs, acts = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, c0, *arrays), maximum_iterations=steps)
    return h, c, hs.stack(), cs.stack(), acts.stack()


def _lstm_backward(d_hs, d_h, d_c, acts, cs, c_prev, rk_t):
    steps = tf.shape(d_hs)[0]

    def back(t, dh, dc, dzs):
        a = acts[t]
        i, f, g2, o = tf.split(a, 4, axis=1)
        tanh_c = tf.tanh(cs[t])
        dh_t = d_hs[t] + dh
        dc = dc + dh_t * o * (1 - tanh_c * tanh_c)
        da = tf.concat([dc * (2 * g2 - 1), dc * c_prev[t], 2 * dc * i, dh_t * tanh_c], 1)
        dz = da * a * (1 - a)
        return t - 1, tf.matmul(dz, rk_t), dc * f, dzs.write(t, dz)

    _, dh, dc, dzs = tf.while_loop(lambda t, *_: t >= 0, back, (steps - 1, d_h, d_c, _array(d_hs.dtype, steps)), maximum_iterations=steps)
    return dh, dc, dzs.stack()


def _gru_forward(projected, h0, recurrent_kernel, recurrent_bias):
    steps, units = tf.shape(projected)[0], recurrent_kernel.shape[0]

    def step(t, h, hs, gates, inner_hs):
        x_zr, x_h = tf.split(projected[t], [2 * units, units], axis=1)
        inner = tf.matmul(h, recurrent_kernel) + recurrent_bias
        inner_zr, inner_h = tf.split(inner, [2 * units, units], axis=1)
        zr = tf.sigmoid(x_zr + inner_zr)
        z, r = tf.split(zr, 2, axis=1)
        candidate = tf.tanh(x_h + r * inner_h)
        h = candidate + z * (h - candidate)
        return t + 1, h, hs.write(t, h), gates.write(t, tf.concat([zr, candidate], 1)), inner_hs.write(t, inner_h)

    arrays = (_array(projected.dtype, steps) for _ in range(3))
    _, h, hs, gates, inner_hs = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, *arrays), maximum_iterations=steps)
    return h, hs.stack(), gates.stack(), inner_hs.stack()


def _gru_backward(d_hs, d_h, gates, inner_hs, h_prev, rk_t):
    steps, units = tf.shape(d_hs)[0], rk_t.shape[1]

    def back(t, dh, d_projected, d_inner):
        zr, candidate = tf.split(gates[t], [2 * units, units], axis=1)
        z, r = tf.split(zr, 2, axis=1)
        dh_t = d_hs[t] + dh
        d_candidate = dh_t * (1 - z) * (1 - candidate * candidate)
        d_zr = tf.concat([dh_t * (h_prev[t] - candidate), d_candidate * inner_hs[t]], 1) * zr * (1 - zr)
        d_rec = tf.concat([d_zr, d_candidate * r], 1)
        dh = dh_t * z + tf.matmul(d_rec, rk_t)
        return t - 1, dh, d_projected.write(t, tf.concat([d_zr, d_candidate], 1)), d_inner.write(t, d_rec)

    arrays = (_array(d_hs.dtype, steps) for _ in range(2))
    _, dh, d_projected, d_inner = tf.while_loop(lambda t, *_: t >= 0, back, (steps - 1, d_h, *arrays), maximum_iterations=steps)
    return dh, d_projected.stack(), d_inner.stack()


_COMPILED: dict = {}


def _loop(fn, dtype):
    """`fn` as an XLA cluster for float32, else as it is (traced into the caller's graph)."""
    if dtype != tf.float32:
        return fn
    if fn not in _COMPILED:
        compiled = tf.function(fn, jit_compile=True, autograph=False)
        # The gradient is written by hand: stop TF from tracing a differentiable
        # copy of the loop, whose accumulators XLA cannot compile.
        _COMPILED[fn] = lambda *args: compiled(*(tf.stop_gradient(a) for a in args))
    return _COMPILED[fn]


def _array(dtype, size):
    return tf.TensorArray(dtype, size=size)


def _value(variable):
    """A Keras variable's value in the layer's compute dtype (autocast applies under mixed precision)."""
    return tf.convert_to_tensor(variable)
