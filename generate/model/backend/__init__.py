"""Everything that depends on which Keras backend runs: the one place for it.

- importing Keras (and so TensorFlow, JAX or PyTorch) on first use, quietly;
- device and precision detection (`has_gpu`, `dtype_policy`);
- compiling the sampling loop (`tf.function` with XLA, or `jax.jit`);
- the TensorFlow CPU training kernels (`tensorflow_kernels`);
- data-parallel training on tf.distribute (`tensorflow_distributed`);
- TensorBoard logs, and the versions recorded in a run's config;
- one batch's loss on every Keras version (`train_batch`, `test_batch`);
- the variables a `.keras` file does not save, reached through Keras internals.

Every other module uses Keras's public API and `keras.ops`, so any backend
runs it; here each backend-specific path has a portable fallback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...errors import GenerateError, UsageError, WriteError

log = logging.getLogger(__name__)


MISSING_KERAS = ("this needs Keras and its backend, which are not installed{why}: training, export and sampling a "
                 "run's .keras checkpoints come with pip install 'generate[train]'; bundles and the shipped models "
                 "sample without them")


def require_keras() -> None:
    """Raises at once, before any work or output, where Keras is not installed (the light install).

    Raises:
        GenerateError: no Keras to import.
    """
    import importlib.util  # a lookup on the path, not an import of Keras

    if "keras" not in sys.modules and importlib.util.find_spec("keras") is None:
        raise GenerateError(MISSING_KERAS.format(why=""))


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
        try:
            import keras  # the backend loads here: seconds, so never at module import
        except ImportError as exc:
            raise GenerateError(MISSING_KERAS.format(why=f" ({exc})")) from None

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf  # only the active backend is installed and loaded

            tf.config.list_physical_devices()
    return keras


def backend_name() -> str:
    return import_keras().backend.backend()


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


def silence_engine_stderr() -> None:
    """Sends what the C++ runtime writes to file descriptor 2 to /dev/null from now on; Python's stderr stays.

    A distributed run's gRPC and collective layers log every lost
    connection there, past TF_CPP_MIN_LOG_LEVEL; the run reports it in one
    line of its own. Debug logging (`-v`) or GENERATE_TF_LOGS=1 keeps them.
    """
    if os.environ.get("GENERATE_TF_LOGS") == "1" or log.isEnabledFor(logging.DEBUG):
        return
    sys.stderr.flush()
    python_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(python_stderr, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace")


def has_gpu() -> bool:
    """Whether the active Keras backend computes on a GPU."""
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf  # only the active backend is installed and loaded

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax  # only the active backend is installed and loaded

        return jax.default_backend() == "gpu"
    if backend == "torch":
        import torch  # only the active backend is installed and loaded

        return torch.cuda.is_available()
    return False


def limit_cpu_threads(threads: int) -> None:
    """Caps the backend's CPU threads, for processes that share one host's cores; call before any computation."""
    if backend_name() == "tensorflow":
        import tensorflow as tf  # only the active backend is installed and loaded

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


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
    if policy != "float32" and cell == "lstm" and backend_name() == "jax" and has_gpu():
        raise UsageError(
            f"--precision {precision}: Keras on JAX runs LSTMs on the GPU through cuDNN in float32 only; "
            "expected --precision float32 there (or KERAS_BACKEND=tensorflow)"
        )
    return policy


def compile_loop(fn: Callable) -> Callable:
    """Compiles `fn` for the active Keras backend; other backends run it eagerly.

    TensorFlow gets `tf.function` with XLA: on a 2-core CPU it ran a 2x256
    LSTM at batch 1 3.6x faster than the plain graph loop and compiled in
    about as long. JAX gets `jax.jit`.
    """
    backend = backend_name()
    if backend == "tensorflow":
        import tensorflow as tf  # only the active backend is installed and loaded

        # The loop's Python control flow is all static (keras.ops.fori_loop does
        # the looping), so AutoGraph has nothing to convert: skipping it cut
        # about 1.5 s of tracing from the time to the first sampled character.
        return tf.function(fn, jit_compile=True, reduce_retracing=True, autograph=False)
    if backend == "jax":
        import jax  # only the active backend is installed and loaded

        return jax.jit(fn)
    return fn


def use_fast_training_kernels(model) -> int:
    """Routes eligible recurrent layers through faster kernels where this backend has them.

    Returns:
        How many layers changed (0 off TensorFlow, or on a GPU, where cuDNN is faster).
    """
    if backend_name() != "tensorflow" or has_gpu():
        return 0
    from .tensorflow_kernels import use_fused_kernels  # imports TensorFlow: only on that backend

    return use_fused_kernels(model)


def distributed_engine():
    """The module that trains on many replicas: `tensorflow_distributed`, on tf.distribute.

    Raises:
        UsageError: another Keras backend is active.
    """
    if backend_name() != "tensorflow":
        raise UsageError(
            f"distributed training (--devices, --local-workers, TF_CONFIG) runs on TensorFlow's tf.distribute; "
            f"expected KERAS_BACKEND=tensorflow, received {backend_name()!r}"
        )
    from . import tensorflow_distributed  # imports TensorFlow: only on that backend

    return tensorflow_distributed


def versions() -> dict[str, str]:
    """Library versions for a run's config: Keras, its backend and NumPy (and TensorFlow's)."""
    keras = import_keras()
    found = {"keras": keras.__version__, "backend": keras.backend.backend(), "numpy": np.__version__}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only the active backend is installed and loaded

        found["tensorflow"] = tf.__version__
    return found


# ---------------------------------------------------------------- one batch at a time


def train_batch(model, x, y) -> float:
    """One optimizer step on one batch; returns that batch's loss.

    Keras before 3.13 (the newest on Python 3.10) never resets its loss
    tracker in `train_on_batch` and `test_on_batch`, so each call returned the
    mean loss of every call since the last reset; resetting first gives the
    batch's own loss on every version.
    """
    model.reset_metrics()
    return float(model.train_on_batch(x, y))


def test_batch(model, x, y) -> float:
    """The loss of one batch, with no update but the stateful layers' states (see `train_batch`)."""
    model.reset_metrics()
    return float(model.test_on_batch(x, y))


# ---------------------------------------------------------------- state Keras does not save


def runtime_variables(model) -> list:
    """Variables a `.keras` file does not save but exact resumption needs.

    These are the stateful layers' hidden states and the dropout layers'
    random seed states, in a stable order. Keras exposes neither publicly:
    `_flatten_layers` walks nested layers and `_seed_generators` lists a
    layer's random state.
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


# ---------------------------------------------------------------- TensorBoard


class TensorBoardLog:
    """Scalar logs for TensorBoard; a no-op off the TensorFlow backend."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.writer = None
        if backend_name() == "tensorflow":
            import tensorflow as tf  # only the active backend is installed and loaded

            try:
                self.writer = tf.summary.create_file_writer(str(logdir))
            except tf.errors.OpError as exc:
                raise WriteError(logdir, _first_cause(exc.message)) from None

    def scalars(self, step: int, **values) -> None:
        if self.writer is None:
            return
        import tensorflow as tf  # only the active backend is installed and loaded

        try:
            with self.writer.as_default(step=step):
                for name, value in values.items():
                    if value is not None:
                        tf.summary.scalar(name, value)
            self.writer.flush()
        except ImportError as exc:  # tf.summary needs the tensorboard package
            log.warning("TensorBoard logs disabled: %s (pip install tensorboard)", exc)
            self.writer = None
        except tf.errors.OpError as exc:  # TensorFlow's own I/O errors, e.g. ResourceExhaustedError for ENOSPC
            raise WriteError(self.logdir, _first_cause(exc.message)) from None

    def close(self) -> None:
        if self.writer is not None:
            import tensorflow as tf  # only the active backend is installed and loaded

            try:
                self.writer.close()
            except tf.errors.OpError as exc:
                raise WriteError(self.logdir, _first_cause(exc.message)) from None


def _first_cause(message: str) -> str:
    """The OS's words from a TensorFlow I/O error (`...; No space left on device`), else its first line."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return first.rsplit("; ", 1)[-1]
