"""The `keras.ops` the sampling loops use, in NumPy: the sampler's ops where no Keras is installed.

The sampling loop (`sampling/loop.py`), its filters and beam search are
written once against `keras.ops`. A bundle's network steps on onnxruntime
(`onnxruntime_step`), which hands back NumPy arrays, so the same loop runs
with this module in place of `keras.ops`: one loop, two runtimes, and the
light install never imports Keras or TensorFlow.

Each function follows its `keras.ops` namesake for the arguments the loops
pass (and only those); float results stay float32, as on the compiled path.
Ties in `top_k` go to the lower index, as TensorFlow's do, so beam search
keeps the same beams.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_DTYPES = {"int32": np.int32, "float32": np.float32, "bool": np.bool_, "int64": np.int64}


def convert_to_tensor(x, dtype=None):
    return np.asarray(x, dtype=_DTYPES.get(dtype, dtype))


def convert_to_numpy(x):
    return np.asarray(x)


def cast(x, dtype):
    return np.asarray(x).astype(_DTYPES[dtype], copy=False)


def shape(x):
    return np.shape(x)


def zeros(shape, dtype="float32"):
    return np.zeros(shape, _DTYPES[dtype])


def zeros_like(x):
    return np.zeros_like(x)


def arange(n, dtype="int32"):
    return np.arange(n, dtype=_DTYPES[dtype])


def where(condition, x, y):
    result = np.where(condition, x, y)
    return result.astype(np.float32, copy=False) if result.dtype == np.float64 else result


def take(x, indices, axis=None):
    return np.take(x, indices, axis=axis)


def take_along_axis(x, indices, axis=None):
    return np.take_along_axis(x, indices, axis=axis)


def reshape(x, new_shape):
    return np.reshape(x, new_shape)


def maximum(x, y):
    return np.maximum(x, y)


def concatenate(xs, axis=0):
    return np.concatenate(xs, axis=axis)


# Reductions call the ufuncs' own `reduce`: the same result as `np.max` and the rest, without their
# Python-level dispatch, which the loops would pay on every step.
def any(x, axis=None, keepdims=False):  # noqa: A001 - the keras.ops name
    return np.logical_or.reduce(np.asarray(x, bool), axis=axis, keepdims=keepdims)


def all(x, axis=None, keepdims=False):  # noqa: A001 - the keras.ops name
    return np.logical_and.reduce(np.asarray(x, bool), axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001 - the keras.ops name
    return np.maximum.reduce(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001 - the keras.ops name
    return np.minimum.reduce(x, axis=axis, keepdims=keepdims)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the keras.ops name
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None):
    return np.argmax(x, axis=axis)


def exp(x):
    return np.exp(x)


def cumsum(x, axis=None):
    return np.cumsum(x, axis=axis, dtype=np.asarray(x).dtype)


def flip(x, axis=None):
    return np.flip(x, axis=axis)


def sort(x, axis=-1):
    return np.sort(x, axis=axis)


def softmax(x, axis=-1):
    weights = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return weights / np.sum(weights, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def top_k(x, k, sorted=True):  # noqa: A002 - the keras.ops signature
    """The k largest values along the last axis and their indices, largest first, ties to the lower index."""
    indices = np.argsort(-np.asarray(x), axis=-1, kind="stable")[..., :k].astype(np.int32)
    return np.take_along_axis(x, indices, axis=-1), indices


def fori_loop(lower, upper, body_fun: Callable, init_val):
    value = init_val
    for i in range(int(lower), int(upper)):
        value = body_fun(i, value)
    return value


def slice_update(x, start_indices, updates):
    """`updates` written into `x` at `start_indices`, in place: the loops keep only the array this returns."""
    x[tuple(slice(int(i), int(i) + n) for i, n in zip(start_indices, np.shape(updates)))] = updates
    return x


def bitwise_and(x, y):
    return np.bitwise_and(x, y)
