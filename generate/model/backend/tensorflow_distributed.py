"""Data-parallel training on `tf.distribute`: many GPUs in one process, or many processes and hosts.

The engine does the communication: `MirroredStrategy` over one host's GPUs,
`MultiWorkerMirroredStrategy` across processes and hosts (TF_CONFIG, gRPC and
NCCL or ring collectives). What it cannot do is carry stateful recurrent
layers: no Keras version supports `stateful=True` under a strategy
(tensorflow#39098; Keras 3 replicates the state variables and silently
broadcasts a mismatched batch, keras#21183). So each replica runs
`build_explicit_state_model` on its own contiguous block of the B streams
and carries that block's hidden states in and out of every step itself.

One step, on every replica at once:

1. forward and backward on the replica's block, the loss summed over its
   characters and divided by the global B x T, so that
2. one batched all-reduce (SUM) of the gradients and the loss gives exactly
   the single-device mean-loss gradient; then
3. Adam, with its global-norm clip, applies that sum once, in cross-replica
   context: the clip sees the whole gradient, as it does on one device.
   (Keras's own distributed path clips each replica's share before summing.)

Checkpoints stay single-device `.keras` files: `synced_model` copies the
weights, the optimizer's slots and the gathered states (in stream order)
into an ordinary stateful model at batch B, which saves, validates and
samples as any other. So a run can stop on N replicas and resume on M.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf

from ...errors import UsageError, WorkerLostError
from ..config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)

# A collective that waits longer than this is a lost worker. The longest honest
# wait is the chief writing a checkpoint while the others wait at the next step.
# It is enforced by one watchdog thread, never by the engine's own per-collective
# `timeout_seconds`: TensorFlow starts a detached thread for every collective
# that has one, which sleeps out the whole timeout (tensorflow#62466), so a run
# of a few hundred steps a second started thousands of threads a minute and
# aborted when the process could start no more.
COLLECTIVE_TIMEOUT_S = float(os.environ.get("GENERATE_COLLECTIVE_TIMEOUT", "900"))
# Tests only: split this host's CPU into N logical devices, so that `--devices N`
# runs N replicas in one process without a GPU.
VIRTUAL_CPUS_ENVIRONMENT = "GENERATE_VIRTUAL_CPUS"


def make_strategy(multi_worker: bool, device_count: int | None):
    """The engine for this process; call before any other TensorFlow work.

    Args:
        multi_worker: TF_CONFIG names a cluster of processes this one belongs to.
        device_count: local devices to use; None for all, 0 for one.

    Raises:
        UsageError: more devices asked for than this host has.
    """
    gpus = tf.config.list_physical_devices("GPU")
    virtual = int(os.environ.get(VIRTUAL_CPUS_ENVIRONMENT, "0") or 0)
    if virtual > 1 and not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * virtual)
    available = len(gpus) if gpus else max(virtual, 1)
    kind = "GPU" if gpus else "CPU"
    if device_count and device_count > available:
        raise UsageError(f"--devices {device_count}: this host has {available if gpus else 0} GPU(s) that TensorFlow can see; "
                         f"expected at most {len(gpus)} (or --local-workers N for N processes on CPUs)")
    wanted = available if device_count is None else max(device_count, 1)
    if gpus:
        tf.config.set_visible_devices(gpus[:wanted], "GPU")
    if multi_worker:
        # No timeout_seconds here (see COLLECTIVE_TIMEOUT_S): a dead peer is found by the
        # strategy's own health checks, a stuck one by the watchdog.
        _WATCHDOG.start()
        _fixed_instance_keys()
        with _engine_errors():
            return tf.distribute.MultiWorkerMirroredStrategy()
    devices = [f"/{kind.lower()}:{i}" for i in range(wanted)]
    return tf.distribute.MirroredStrategy(devices=devices)


def _fixed_instance_keys() -> None:
    """Gives each collective in a traced step one instance key for good, instead of a new one at every call.

    With a new key per call (TensorFlow's default in eager programs), the engine keeps every key's
    parameters: a worker's memory grew by about 9 KB a step, 30 MB a minute on a small model, for as
    long as it trained (benchmarks/distributed_soak.py). Keys fixed when a step is traced need every
    worker to trace the same functions in the same order, which they do: each runs the same steps, and
    a step's shapes never change within a run.
    """
    from tensorflow.python.distribute import cross_device_utils  # the switch has no public API

    launcher = getattr(cross_device_utils, "CollectiveReplicaLauncher", None)
    if launcher is not None and hasattr(launcher, "_prefer_unique_instance_key"):
        launcher._prefer_unique_instance_key = False
    else:
        log.warning("this TensorFlow has no fixed collective keys; a distributed run's memory may grow by a few KB a step")


def check_supported(model_cfg: ModelConfig, policy: str) -> None:
    """Refuses what the replicated step does not carry, before anything is written.

    Raises:
        UsageError: float16 training (it needs loss scaling), or recurrent dropout
            (Keras draws it inside the cell, from no step-numbered seed).
    """
    if policy == "mixed_float16":
        raise UsageError("--precision: float16 training needs loss scaling, which distributed runs do not carry yet; "
                         "expected --precision float32 or mixed-bfloat16 with --devices, --local-workers or TF_CONFIG")
    if model_cfg.recurrent_dropout:
        raise UsageError("--recurrent-dropout: distributed runs draw dropout from the step number so that every replica "
                         "count trains alike, and Keras draws recurrent dropout inside the cell; expected 0")


def check_same_setup(strategy, fingerprint: dict[str, object], worker_of_replica) -> None:
    """Refuses to train unless every worker resolved the same options, corpus, vocabulary and starting point.

    Called before anything is written, on every worker at once.

    Args:
        strategy: from `make_strategy`.
        fingerprint: named parts of this worker's setup, as JSON-able values.
        worker_of_replica: maps a replica index to its worker's name, for the error.

    Raises:
        UsageError: naming the first worker and part that differ from the chief's.
    """
    names = list(fingerprint)
    digests = [int.from_bytes(hashlib.sha256(json.dumps(fingerprint[n], sort_keys=True).encode()).digest()[:7], "big")
               for n in names]
    with _engine_errors():
        mine = strategy.experimental_distribute_values_from_function(lambda ctx: tf.constant([digests], tf.int64))
        everyone = np.asarray(strategy.gather(mine, axis=0))
    for replica, row in enumerate(everyone):
        differing = [n for n, a, b in zip(names, row, everyone[0]) if a != b]
        if differing:
            raise UsageError(
                f"{worker_of_replica(replica)} does not match the chief, {worker_of_replica(0)}, in its {differing[0]}; "
                "expected every worker to run the same 'generate train' command on the same corpus"
            )


class ReplicatedSteps:
    """Training steps over every replica of a strategy, with each replica's block of hidden states.

    Args:
        strategy: from `make_strategy`.
        model: the run's stateful model at the global batch B, compiled, with any
            checkpoint's weights, optimizer slots and states loaded; it receives
            them back in `synced_model`.
        build_replica: called inside the strategy's scope with a replica's
            batch; returns the explicit-state model (`build_explicit_state_model`,
            with any faster kernels in place), its optimizer, and the width of
            each state and of each dropout mask.
        model_cfg, train_cfg: the run's configuration, accepted by `check_supported`.
        is_chief: this process writes the run directory.
    """

    def __init__(self, strategy, model, build_replica, model_cfg: ModelConfig, train_cfg: TrainConfig, is_chief: bool):
        self.strategy = strategy
        self.model = model
        self.cfg = model_cfg
        self.train_cfg = train_cfg
        self.is_chief = is_chief
        self.replicas = strategy.num_replicas_in_sync
        self.global_batch = train_cfg.batch_size
        self.block = self.global_batch // self.replicas
        with strategy.scope():
            self.replica_model, self.optimizer, self.state_widths, self.mask_widths = build_replica(self.block)
            self.optimizer.build(self.replica_model.trainable_variables)
        self._load_from(model)
        self._step = tf.function(self._distributed_step, reduce_retracing=True)
        self._sum = tf.function(self._distributed_sum, reduce_retracing=True)
        self._gather = tf.function(lambda states: [strategy.gather(s, axis=0) for s in states], reduce_retracing=True)

    # ------------------------------------------------------------ what the trainer calls

    def train(self, x: np.ndarray, y: np.ndarray, global_step: int) -> float:
        """One step on the global batch (B, T); each replica takes its block. Returns the batch's mean loss."""
        with _engine_errors():
            loss, self.states = self._step(self._split(x), self._split(y), self.states, tf.constant(global_step, tf.int64))
            return float(loss)

    def reset_states(self) -> None:
        self.states = [self._split(np.zeros((self.global_batch, w), np.float32)) for w in self.state_widths]

    def synced_model(self):
        """The stateful model at batch B with this run's current weights, optimizer and states (every worker calls it)."""
        with _engine_errors():
            states = [np.asarray(s) for s in self._gather(self.states)]
            for layer in self.model.layers:
                if layer.weights:
                    layer.set_weights(self.replica_model.get_layer(layer.name).get_weights())
            for target, source in zip(self.model.optimizer.variables, self.optimizer.variables):
                target.assign(np.asarray(source.numpy()))
            for variable, value in zip(_state_variables(self.model), states):
                variable.assign(value)
        return self.model

    def agree(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag is true on every worker if it is true on any: a signal or the chief's clock stops everyone at one step."""
        total = self._all_sum(np.array(flags, np.float32), chief_only=False)
        return tuple(bool(v > 0) for v in total)

    def from_chief(self, value: float | None) -> float | None:
        """The chief's value on every worker, so decisions on it (early stopping) agree bit for bit."""
        if value is None:
            return None
        return float(self._all_sum(np.array([value], np.float64), chief_only=True)[0])

    # ------------------------------------------------------------ inside the engine

    def _distributed_step(self, x, y, states, global_step):
        loss, grads, new_states = self.strategy.run(self._replica_step, args=(x, y, states, global_step))
        local = self.strategy.experimental_local_results
        loss = local(loss)[0]
        grads = [local(g)[0] for g in grads]
        self.optimizer.apply(grads, self.replica_model.trainable_variables)
        return loss, new_states

    def _replica_step(self, x, y, states, global_step):
        context = tf.distribute.get_replica_context()
        masks = self._masks(global_step, context.replica_id_in_sync_group)
        with tf.GradientTape() as tape:
            logits, *new_states = self.replica_model([x, *states, *masks], training=True)
            losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            loss = tf.reduce_sum(losses) / float(self.global_batch * self.train_cfg.seq_len)
        grads = tape.gradient(loss, self.replica_model.trainable_variables)
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [*grads, loss])
        return summed[-1], summed[:-1], new_states

    def _masks(self, global_step, replica):
        """Dropout keep-masks for this replica's block, cut from masks drawn for the whole batch at this step."""
        masks = []
        for site, width in enumerate(self.mask_widths):
            seed = tf.stack([tf.constant(self.train_cfg.seed * 64 + site, tf.int64), global_step])
            draw = tf.random.stateless_uniform((self.global_batch, self.train_cfg.seq_len, width), seed=seed)
            keep = tf.cast(draw >= self.cfg.dropout, tf.float32) / (1.0 - self.cfg.dropout)
            masks.append(keep[replica * self.block : (replica + 1) * self.block])
        return masks

    def _distributed_sum(self, values):
        # tf.identity: an all-reduce needs a value made on the replica's device, not a captured constant.
        return self.strategy.run(lambda v: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(v)),
                                 args=(values,))

    def _all_sum(self, vector: np.ndarray, chief_only: bool) -> np.ndarray:
        zeros = np.zeros_like(vector)
        values = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(vector if not chief_only or ctx.replica_id_in_sync_group == 0 else zeros))
        with _engine_errors():
            return np.asarray(self.strategy.experimental_local_results(self._sum(values))[0])

    def _split(self, array: np.ndarray):
        return self.strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array[ctx.replica_id_in_sync_group * self.block : (ctx.replica_id_in_sync_group + 1) * self.block]))

    def _load_from(self, model) -> None:
        """Weights, optimizer slots and hidden states from the stateful model into the replicas."""
        for layer in model.layers:
            if layer.weights:
                self.replica_model.get_layer(layer.name).set_weights(layer.get_weights())
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        mine, theirs = self.optimizer.variables, model.optimizer.variables
        if len(mine) != len(theirs) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(mine, theirs)):
            raise UsageError("the checkpoint's optimizer does not match this run's model; expected a checkpoint this run wrote")
        for target, source in zip(mine, theirs):
            target.assign(np.asarray(source.numpy() if hasattr(source, "numpy") else source.value))
        self.states = [self._split(np.asarray(v.numpy())) for v in _state_variables(model)]


def _state_variables(model) -> list:
    return [v for layer in model.layers if getattr(layer, "stateful", False) for v in layer.states]


class _CollectiveWatchdog:
    """Aborts this process's collectives when one call into the engine waits past COLLECTIVE_TIMEOUT_S.

    One daemon thread for the life of the process, started only by a multi-worker
    strategy; each guarded call arms it with a deadline and disarms it on return.
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.fired = ""  # what the watchdog told the engine, once it has aborted the collectives
        self._deadline: float | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None and self.timeout_s > 0:
                self._thread = threading.Thread(target=self._watch, name="generate-collective-watchdog", daemon=True)
                self._thread.start()

    @contextmanager
    def armed(self):
        with self._lock:
            outer, self._deadline = self._deadline, time.monotonic() + self.timeout_s
        try:
            yield
        finally:
            with self._lock:
                self._deadline = outer

    def _watch(self) -> None:
        while True:
            time.sleep(min(5.0, self.timeout_s / 4))
            with self._lock:
                overdue = self._deadline is not None and time.monotonic() > self._deadline
                if overdue:
                    self._deadline = None
            if overdue:
                from tensorflow.python.eager import context  # the public API has no way to abort a waiting collective

                self.fired = f"a collective step waited over {self.timeout_s:g} s for another worker"
                context.context().abort_collective_ops(tf.errors.DEADLINE_EXCEEDED, self.fired)


_WATCHDOG = _CollectiveWatchdog(COLLECTIVE_TIMEOUT_S)


@contextmanager
def _engine_errors():
    """An engine error in a collective means a lost or failed worker: one line, with the engine's reason."""
    try:
        with _WATCHDOG.armed():
            yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError, tf.errors.InternalError,
            tf.errors.CancelledError, tf.errors.UnknownError, tf.errors.FailedPreconditionError) as exc:
        # The engine's first line is often a header ("Graph execution error:"); its reason follows.
        lines = [line.strip() for line in exc.message.strip().splitlines()
                 if line.strip() and not line.strip().endswith(":") and not line.strip().startswith(("Detected at node", "File ", "[["))]
        reason = _WATCHDOG.fired or (lines[0] if lines else type(exc).__name__)
        raise WorkerLostError(reason, exc.message, reason) from None
