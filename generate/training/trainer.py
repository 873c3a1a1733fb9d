"""Training: stateful truncated BPTT over contiguous streams, resumable exactly.

The loop is a plain Python loop over `train_on_batch`, so it owns every
step: it resets hidden state at epoch boundaries, validates on a separate
model (leaving the training state untouched), checkpoints atomically every
few hundred steps, and on SIGINT/SIGTERM saves a checkpoint before exiting.
A checkpoint records the epoch, step, optimizer (with its learning-rate
schedule position), hidden states and dropout seeds, so `--resume` continues
as if never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.batching import StreamBatches, split_train_val, validation_batches
from ..data.config import CorpusConfig
from ..data.corpus import CorpusChanged, load_corpus, load_run_corpus
from ..data.vocab import Vocab, character_frequencies
from ..errors import CheckpointError, GenerateError, UsageError, WorkerLostError
from ..fileio import atomic_directory, check_writable_location
from ..model.backend import (
    TensorBoardLog,
    distributed_engine,
    dtype_policy,
    import_keras,
    limit_cpu_threads,
    silence_engine_stderr,
    test_batch,
    train_batch,
    use_fast_training_kernels,
    versions,
)
from ..model.builder import (
    build_explicit_state_model,
    build_model,
    count_params,
    dropout_widths,
    make_optimizer,
    reset_states,
    start_at_frequencies,
    state_shapes,
)
from ..model.checkpoint import load_trainable_model, load_weights_into, read_training_state, save_checkpoint
from ..model.config import ARCHITECTURE_FIELDS, ModelConfig, RunConfig, TrainConfig, auto_batch_size
from ..model.network import StepNetwork
from ..model.rundir import RunDir, resolve_run, resume_point
from ..progress import ProgressBar
from ..sampling.loop import Sampler, SamplingConfig
from ..units import bits
from .cluster import Replication, check_batch_split, lost_worker_in
from .watch import LearningWatch

log = logging.getLogger(__name__)
# Options a resumed run may change; everything else shapes the model or data.
RESUMABLE_OVERRIDES = ("epochs", "max_minutes", "checkpoint_every", "checkpoint_seconds", "preview_every", "patience")


class TrainingInterrupted(GenerateError):
    """Raised after a signal stopped training and a checkpoint was saved."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


@dataclass
class TrainResult:
    run: Path
    epochs_done: int
    global_step: int
    best_val_loss: float | None
    stopped_early: bool
    finished: bool


@dataclass
class Plan:
    """A run checked and read, ready to train; nothing is written until `execute`.

    Every worker of a distributed run plans alone, from its own command and
    corpus; only the chief then writes.
    """

    run: RunDir
    config: RunConfig
    vocab: Vocab
    train_ids: np.ndarray
    val_ids: np.ndarray
    checkpoint: Path | None = None  # the checkpoint to continue from; None: initialise from the recorded seed
    create: bool = False  # the run directory is still to be written (a new run)
    done: TrainResult | None = None  # nothing to train: the run already finished its epochs


def create_run(run_path: Path, corpus_cfg: CorpusConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, show_progress: bool = True,
               skipped_report: Path | None = None) -> TrainResult:
    """Starts a new run in `run_path` and trains it on this process's one device (see `plan_new_run`)."""
    return execute(plan_new_run(run_path, corpus_cfg, model_cfg, train_cfg, show_progress, skipped_report), show_progress)


def resume_run(run_path: Path, sources: list[str] | None = None, overrides: dict | None = None, show_progress: bool = True,
               new_run: tuple[CorpusConfig, ModelConfig, TrainConfig] | None = None,
               skipped_report: Path | None = None) -> TrainResult:
    """Continues a run exactly where it stopped, on this process's one device (see `plan_resume`)."""
    return execute(plan_resume(run_path, sources, overrides, show_progress, new_run, skipped_report), show_progress)


def plan_new_run(run_path: Path, corpus_cfg: CorpusConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, show_progress: bool = True,
                 skipped_report: Path | None = None, chief: bool = True) -> Plan:
    """Checks the options and reads the corpus for a new run in `run_path` (`skipped_report`: music, every skipped piece).

    The run directory appears whole or not at all (see `execute`): its
    configuration and vocabulary are written into a hidden sibling directory
    that is renamed into place, so a kill leaves either nothing or a run
    `--resume` accepts.

    Args:
        chief: this process owns the run directory, so it refuses one that
            holds anything; the other workers of a cluster skip that check, as
            the chief may have made the directory already.

    Raises:
        UsageError: the directory already holds a run or other files, or an option is out of range.
        CorpusError: the corpus is unreadable, empty or too short for one batch.
    """
    run = RunDir(Path(run_path))
    if chief:
        if run.is_run():
            if not any(path.exists() for path in (run.latest, run.previous, run.best)):
                raise UsageError(
                    f"run {str(run.path)!r} exists but stopped before its first checkpoint: continue it with "
                    f"'generate train {run.path} --resume', which starts it again from its recorded configuration"
                )
            raise UsageError(f"run {str(run.path)!r} already exists: use --resume to continue it, or choose a new directory")
        if run.path.exists() and (not run.path.is_dir() or any(run.path.iterdir())):
            raise UsageError(f"run {str(run.path)!r}: expected a new or empty directory, found existing files")
        check_writable_location(run.path, "run")
    for cfg in (corpus_cfg, model_cfg, train_cfg):
        cfg.validate()
    source = _adopt_architecture(train_cfg.init_from, model_cfg) if train_cfg.init_from else None
    corpus = load_corpus(corpus_cfg, show_progress, skipped_report=skipped_report)
    vocab = Vocab.from_counts(corpus.counts, corpus_cfg.min_count)
    if source is not None:
        _check_same_characters(train_cfg.init_from, source, vocab)
    ids = corpus.ids(vocab, show_progress)
    train_ids, val_ids = split_train_val(ids, train_cfg.val_fraction)
    if not train_cfg.batch_size:
        train_cfg.batch_size = auto_batch_size(len(train_ids), train_cfg.seq_len)
        log.info("batch size %d for %d training characters (--batch-size sets it)", train_cfg.batch_size, len(train_ids))
    StreamBatches.checked(train_ids, train_cfg.batch_size, train_cfg.seq_len, "training")
    if train_cfg.val_fraction > 0 and validation_batches(val_ids, train_cfg.batch_size, train_cfg.seq_len) is None:
        raise UsageError(
            f"--val-fraction {train_cfg.val_fraction}: the validation tail holds {len(val_ids)} characters, "
            f"expected at least seq-len + 1 = {train_cfg.seq_len + 1} (raise it, or use 0 to skip validation)"
        )
    model_cfg.vocab_size = len(vocab)
    config = RunConfig(
        model=model_cfg, train=train_cfg, corpus=corpus_cfg,
        corpus_sha256=corpus.sha256, vocab_sha256=vocab.sha256,
        corpus_chars=corpus.n_chars, train_chars=len(train_ids), val_chars=len(val_ids),
    )
    return Plan(run, config, vocab, train_ids, val_ids, create=True)


def _adopt_architecture(init_from: str, model_cfg: ModelConfig) -> RunDir:
    """Gives `model_cfg` the architecture of the run `init_from`, whose weights a new run starts from.

    Architecture options left at their defaults take the source's values; one
    set to another value is refused.

    Returns:
        The source run.

    Raises:
        UsageError: no such run, or another architecture asked for.
    """
    source = resolve_run(init_from)
    source_model, default = source.load_config().model, ModelConfig()
    for name in ARCHITECTURE_FIELDS:
        wanted, theirs = getattr(model_cfg, name), getattr(source_model, name)
        if wanted != theirs and wanted != getattr(default, name):
            raise UsageError(f"--{name.replace('_', '-')}: --init-from {init_from} has {theirs!r}, received {wanted!r}; "
                             "leave it out to take the model's own")
        setattr(model_cfg, name, theirs)
    return source


def _check_same_characters(init_from: str, source: RunDir, vocab: Vocab) -> None:
    source_vocab = source.load_vocab()
    if source_vocab.chars != vocab.chars:
        raise UsageError(
            f"--init-from {init_from}: its vocabulary has {len(source_vocab)} characters, this corpus's {len(vocab)} "
            f"({len(set(vocab.chars) ^ set(source_vocab.chars))} differ); expected the same characters (check --min-count)"
        )


def plan_resume(run_path: Path, sources: list[str] | None = None, overrides: dict | None = None, show_progress: bool = True,
                new_run: tuple[CorpusConfig, ModelConfig, TrainConfig] | None = None,
                skipped_report: Path | None = None, chief: bool = True) -> Plan:
    """Checks a run and its corpus for continuing from its newest intact checkpoint exactly where it stopped.

    A run killed before its first checkpoint starts again from its recorded
    configuration and seed, which retraces the same steps. A damaged
    `latest.keras` is passed over, with a warning, for `previous.keras` or
    `best.keras`, whichever is newer.

    Args:
        run_path: the run directory.
        sources: corpus sources to use instead of the recorded ones (e.g. moved files);
            their content must hash the same.
        overrides: new values for options in RESUMABLE_OVERRIDES.
        new_run: the configurations to start the run with if it was killed
            before it recorded its own (there is no run directory yet).
        skipped_report: music: a file listing every skipped piece with its reason.
        chief: this process owns the run directory: it clears the temporary
            files a killed save left, and checks a new run's directory.

    Raises:
        UsageError: not a run, a changed corpus or vocabulary,
            or an override of an option that shapes the model or data.
        CheckpointError: checkpoints exist but none is intact.
    """
    run = RunDir(Path(run_path))
    if new_run is not None and sources and not run.is_run() and not (run.path.exists() and any(run.path.iterdir())):
        log.warning("run %s was never started (or was stopped before it recorded its configuration): starting it now", run.path)
        return plan_new_run(run.path, *new_run, show_progress=show_progress, skipped_report=skipped_report, chief=chief)
    run.require()
    if chief:
        run.remove_stale_temp_files()
    config = run.load_config()
    vocab = run.load_vocab()
    for key, value in (overrides or {}).items():
        if key in RESUMABLE_OVERRIDES:
            setattr(config.train, key, value)
            continue
        section = next((s for s in (config.model, config.train, config.corpus) if hasattr(s, key)), None)
        recorded = getattr(section, key, None)
        if isinstance(recorded, list):
            value = list(value)
        if section is None or recorded != value:
            raise UsageError(
                f"--{key.replace('_', '-')}: cannot change on --resume (the run has {recorded!r}, received {value!r}); "
                "it shapes the model or data, so start a new run instead"
            )
    config.train.validate()
    checkpoint, skipped = resume_point(run)
    if checkpoint is None and skipped:
        raise CheckpointError(
            f"run {str(run.path)!r}: no intact checkpoint to resume from: {'; '.join(skipped)}; move the damaged files "
            "out of the run directory and --resume starts the run again from its recorded configuration"
        )
    if sources:
        config = dataclasses.replace(config, corpus=dataclasses.replace(config.corpus, sources=list(sources)))
    try:
        corpus = load_run_corpus(config.corpus, config.corpus_sha256, show_progress=show_progress, skipped_report=skipped_report)
    except CorpusChanged as exc:
        raise UsageError(
            f"corpus changed: run {str(run.path)!r} was trained on sha256 {exc.expected[:12]}..., "
            f"the sources now hash to {exc.actual[:12]}...; resuming on other data is refused (start a new run)"
        ) from None
    if vocab.sha256 != config.vocab_sha256 or Vocab.from_counts(corpus.counts, config.corpus.min_count) != vocab:
        raise UsageError(f"vocabulary changed: {run.vocab} no longer matches the corpus; resuming is refused")
    ids = corpus.ids(vocab, show_progress)
    train_ids, val_ids = split_train_val(ids, config.train.val_fraction)
    plan = Plan(run, config, vocab, train_ids, val_ids, checkpoint=checkpoint)
    if checkpoint is None:
        log.warning("run %s stopped before its first checkpoint: starting it again from its recorded configuration", run.path)
        return plan
    if skipped:  # a damaged best.keras is replaced at the next validation improvement
        log.warning("passed over %s; resuming from %s", ", ".join(skipped), checkpoint.name)
    state = read_training_state(checkpoint)
    if state["epoch"] >= config.train.epochs:
        log.info("run %s already finished %d epoch(s); pass --epochs N to train further", run.path, state["epoch"])
        plan.done = TrainResult(run.path, state["epoch"], state["global_step"], state["best_val_loss"], False, True)
    return plan


def execute(plan: Plan, show_progress: bool = True, replication: Replication | None = None) -> TrainResult:
    """Trains a planned run: on this process's one device, or as one worker of a distributed run.

    Only the chief (always, on one device) writes into the run directory: the
    directory of a new run, the configuration, history, TensorBoard logs and
    checkpoints.

    Args:
        plan: from `plan_new_run` or `plan_resume`.
        replication: this process's devices and cluster; None for one device.

    Raises:
        TrainingInterrupted: SIGINT or SIGTERM; the checkpoint was saved first.
        WorkerLostError: a distributed run lost a worker; the last checkpoint is intact.
        WriteError: a checkpoint or log could not be written; the last good one is intact.
    """
    if plan.done is not None:
        return plan.done
    replication = replication or Replication()
    run, config, vocab = plan.run, plan.config, plan.vocab
    model_cfg, train_cfg = config.model, config.train
    steps_per_epoch = len(StreamBatches(plan.train_ids, train_cfg.batch_size, train_cfg.seq_len))
    engine = strategy = None
    if replication.cpu_threads:
        limit_cpu_threads(replication.cpu_threads)
    if replication.distributed:
        engine = distributed_engine()
        if replication.cluster is not None:
            silence_engine_stderr()
        # The engine must start before TensorFlow does any other work.
        strategy = engine.make_strategy(replication.cluster is not None, replication.device_count)
        if strategy.num_replicas_in_sync == 1 and replication.cluster is None:
            engine = strategy = None  # one device after all: the stateful path is the faster one
        else:
            check_batch_split(train_cfg.batch_size, strategy.num_replicas_in_sync, replication.describe(strategy.num_replicas_in_sync))
            engine.check_supported(model_cfg, dtype_policy(train_cfg.precision, model_cfg.cell))
            engine.check_same_setup(strategy, _setup_fingerprint(plan), replication.worker_namer(strategy.num_replicas_in_sync))
    chief = replication.is_chief
    policy = dtype_policy(train_cfg.precision, model_cfg.cell)
    if plan.checkpoint is None:
        if chief:
            if plan.create:
                config.versions = {"generate": __version__, **versions()}
                config.created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                _create_run_directory(run, config, plan.vocab)
            else:
                config.save(run.config)
            # What an attempt killed before its first checkpoint left would be repeated by this one.
            run.history.unlink(missing_ok=True)
            shutil.rmtree(run.logs, ignore_errors=True)
        keras = import_keras()
        keras.utils.set_random_seed(train_cfg.seed)
        model = build_model(model_cfg, train_cfg.batch_size, policy=policy)
        if train_cfg.init_from:
            # The plan took the source's architecture into config.model; its characters may have changed since.
            source = resolve_run(train_cfg.init_from)
            _check_same_characters(train_cfg.init_from, source, vocab)
            weights = source.checkpoint("best")
            load_weights_into(model, weights)  # before compiling: the source's optimizer is not wanted
            log.info("starting from the weights of %s", weights)
        else:
            start_at_frequencies(model, character_frequencies(plan.train_ids, len(vocab)))
        compile_for_training(model, train_cfg, steps_per_epoch)
        log.info("new run %s: %s %dx%d, %d parameters, vocab %d, %d train / %d val chars",
                 run.path, model_cfg.cell, model_cfg.layers, model_cfg.units, count_params(model), len(vocab),
                 len(plan.train_ids), len(plan.val_ids))
        state = {"epoch": 0, "step": 0, "global_step": 0, "best_val_loss": None, "bad_validations": 0,
                 "train_loss_sum": 0.0, "train_loss_count": 0, "elapsed_s": 0.0, "seed": train_cfg.seed, "finished": False}
    else:
        state = read_training_state(plan.checkpoint)
        if state.get("finished"):  # stopped early, and the user asks for more
            state["finished"], state["bad_validations"] = False, 0
        model = load_trainable_model(plan.checkpoint)
        if chief:
            # Rows logged after the checkpoint would be repeated by the resumed run.
            run.write_history([r for r in run.read_history() if int(r["global_step"]) <= state["global_step"]])
            config.save(run.config)
        log.info("resuming %s at epoch %d step %d (global step %d)", run.path, state["epoch"] + 1, state["step"], state["global_step"])
    if engine is None:
        use_fast_training_kernels(model)
        steps = LocalSteps(model)
    else:
        def build_replica(batch: int):
            replica_model = build_explicit_state_model(model_cfg, batch, train_cfg.seq_len, policy)
            use_fast_training_kernels(replica_model)
            return replica_model, make_optimizer(train_cfg, steps_per_epoch, policy), state_shapes(model_cfg), dropout_widths(model_cfg)

        steps = engine.ReplicatedSteps(strategy, model, build_replica, model_cfg, train_cfg, chief)
        log.info("training on %s", replication.describe(steps.replicas))
    state["replicas"] = steps.replicas
    trainer = Trainer(run, config, vocab, steps, plan.train_ids, plan.val_ids, state, show_progress and chief)
    try:
        return trainer.fit()
    except WorkerLostError as exc:
        lost = lost_worker_in(exc.engine_message, replication.cluster) if replication.cluster else "a device"
        raise WorkerLostError(
            f"lost {lost} ({exc}); the last checkpoint in {run.path} is intact: continue with "
            f"'generate train {run.path} --resume', with any number of workers", exc.engine_message) from None


def _create_run_directory(run: RunDir, config: RunConfig, vocab: Vocab) -> None:
    """Writes config.json and vocab.json so that the run directory appears whole or not at all."""
    with atomic_directory(run.path) as staging:
        vocab.save(staging / run.vocab.name)
        config.save(staging / run.config.name)


def _setup_fingerprint(plan: Plan) -> dict[str, object]:
    """What every worker of one run must agree on; source paths may differ between hosts, their content may not."""
    corpus = {k: v for k, v in dataclasses.asdict(plan.config.corpus).items() if k != "sources"}
    return {
        "model options": dataclasses.asdict(plan.config.model),
        "training options": dataclasses.asdict(plan.config.train),
        "corpus options": corpus,
        "corpus": plan.config.corpus_sha256,
        "vocabulary": plan.config.vocab_sha256,
        "starting point": "new" if plan.checkpoint is None else read_training_state(plan.checkpoint)["global_step"],
    }


class LocalSteps:
    """Training steps on this process's one device, through the stateful model itself."""

    replicas = 1
    is_chief = True

    def __init__(self, model):
        self.model = model

    def train(self, x, y, global_step: int) -> float:
        return train_batch(self.model, x, y)

    def reset_states(self) -> None:
        reset_states(self.model)

    def synced_model(self):
        return self.model

    def agree(self, *flags: bool) -> tuple[bool, ...]:
        return flags

    def from_chief(self, value: float | None) -> float | None:
        return value


def compile_for_training(model, cfg: TrainConfig, steps_per_epoch: int) -> None:
    keras = import_keras()
    policy = "mixed_float16" if any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers) else "float32"
    model.compile(optimizer=make_optimizer(cfg, steps_per_epoch, policy), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


class Trainer:
    """Runs epochs, validation, checkpoints and previews for one run."""

    def __init__(self, run: RunDir, config: RunConfig, vocab: Vocab, steps, train_ids, val_ids, state: dict, show_progress: bool):
        """`steps` trains the model: `LocalSteps`, or the engine's replicated steps on every worker of a distributed run."""
        self.run, self.config, self.vocab, self.steps = run, config, vocab, steps
        self.is_chief = steps.is_chief
        self.cfg = config.train
        self.state = state
        self.show_progress = show_progress
        self.batches = StreamBatches(train_ids, self.cfg.batch_size, self.cfg.seq_len)
        self.val_batches = validation_batches(val_ids, self.cfg.batch_size, self.cfg.seq_len) if self.cfg.val_fraction > 0 else None
        self.eval_model = None
        self.watch = LearningWatch(train_ids, len(vocab), self.cfg.learning_rate)
        self.history = run.read_history() if self.is_chief else []
        self.tensorboard = TensorBoardLog(run.logs) if self.is_chief else None
        self.stop_signal: int | None = None  # the first SIGINT/SIGTERM: save, then stop
        self.stop_now = False  # a second one: stop at once, but never mid-save
        self.saving = False

    def fit(self) -> TrainResult:
        """Trains until the last epoch, early stopping, the time limit or a signal.

        A time limit that falls mid-epoch pauses without validating, so a run
        paused and resumed any number of times validates, checkpoints `best`
        and logs history exactly as an uninterrupted one.

        Raises:
            TrainingInterrupted: SIGINT or SIGTERM; the checkpoint was saved first.
            WriteError: a checkpoint or log could not be written; the last good one is intact.
        """
        cfg = self.cfg
        steps = len(self.batches)
        started = time.monotonic()
        elapsed_before = self.state["elapsed_s"]
        last_save = time.monotonic()
        stopped_early = False
        paused = False
        with _signals_set_flag(self):
            while self.state["epoch"] < cfg.epochs and not stopped_early and not paused:
                epoch = self.state["epoch"]
                if self.state["step"] == 0:
                    self.steps.reset_states()
                    self.state["train_loss_sum"], self.state["train_loss_count"] = 0.0, 0
                bar = ProgressBar(steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="char",
                                  enabled=self.show_progress, initial=self.state["step"])
                bar.update(self.state["step"], rate_units=0)
                epoch_start, epoch_first_step = time.monotonic(), self.state["step"]
                try:
                    while self.state["step"] < steps:
                        x, y = self.batches.batch(self.state["step"])
                        loss = self.steps.train(x, y, self.state["global_step"])
                        if not math.isfinite(loss):
                            raise GenerateError(f"training diverged at global step {self.state['global_step']} (loss {loss}); lower --learning-rate")
                        self.state["step"] += 1
                        self.state["global_step"] += 1
                        self.state["train_loss_sum"] += loss
                        self.state["train_loss_count"] += 1
                        stuck = self.watch.after_step(self.state["global_step"], loss)
                        if stuck and self.is_chief:
                            log.warning(stuck)
                        self.state["elapsed_s"] = elapsed_before + time.monotonic() - started
                        mean = self.state["train_loss_sum"] / self.state["train_loss_count"]
                        chars = (self.state["step"] - epoch_first_step) * x.size
                        bar.update(self.state["step"], f"loss {mean:.3f} ({bits(mean):.3f} bpc)", rate_units=chars)
                        # Every worker acts on the same flags, at the same step: a signal to any, or the chief's clock.
                        signalled, time_up, save_due = self.steps.agree(
                            self.stop_signal is not None,
                            bool(cfg.max_minutes and time.monotonic() - started >= cfg.max_minutes * 60 and self.state["step"] < steps),
                            self.state["step"] % cfg.checkpoint_every == 0 or time.monotonic() - last_save >= cfg.checkpoint_seconds)
                        if signalled:
                            self._stop(bar)
                        if time_up:
                            paused = True  # at an epoch's last step the epoch ends first, as it would unpaused
                            break
                        if save_due:
                            self._save_latest()
                            last_save = time.monotonic()
                        if cfg.preview_every and self.state["global_step"] % cfg.preview_every == 0:
                            self._preview()
                finally:
                    bar.close()
                if paused:
                    self._save_latest()
                    break
                chars_per_s = (self.state["step"] - epoch_first_step) * self.batches.batch_size * cfg.seq_len / max(time.monotonic() - epoch_start, 1e-9)
                self.state["epoch"] += 1
                self.state["step"] = 0
                stopped_early = self._validate(epoch, chars_per_s)
                self._save_latest()
                last_save = time.monotonic()
                signalled, paused = self.steps.agree(
                    self.stop_signal is not None,
                    bool(cfg.max_minutes and time.monotonic() - started >= cfg.max_minutes * 60 and self.state["epoch"] < cfg.epochs))
                if signalled:
                    self._stop(None)
        finished = self.state["epoch"] >= cfg.epochs or stopped_early
        if finished:
            self.state["finished"] = True
            self._save_latest()
        if paused and not finished:
            log.info("time limit of %g minutes reached; continue with: generate train %s --resume", cfg.max_minutes, self.run.path)
        if self.tensorboard is not None:
            self.tensorboard.close()
        return TrainResult(self.run.path, self.state["epoch"], self.state["global_step"], self.state["best_val_loss"], stopped_early, finished)

    def _stop(self, bar: ProgressBar | None) -> None:
        """After a SIGINT or SIGTERM to this or any worker: saves `latest.keras` and raises TrainingInterrupted."""
        if bar is not None:
            bar.close()
        self._save_latest()
        raise TrainingInterrupted(
            f"interrupted at epoch {self.state['epoch'] + 1} step {self.state['step']}; checkpoint saved, "
            f"continue with: generate train {self.run.path} --resume",
            self.stop_signal or signal.SIGTERM,
        )

    def _validate(self, epoch: int, chars_per_s: float) -> bool:
        """Logs a history row, saves best.keras on improvement; True to stop early."""
        train_loss = self.state["train_loss_sum"] / max(self.state["train_loss_count"], 1)
        model = self.steps.synced_model()
        val_loss = self.steps.from_chief(self.evaluate(model)) if self.val_batches is not None else None
        lr = float(np.asarray(model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1, "step": self.state["step"], "global_step": self.state["global_step"],
            "train_loss": f"{train_loss:.5f}", "train_bpc": f"{bits(train_loss):.5f}",
            "val_loss": "" if val_loss is None else f"{val_loss:.5f}",
            "val_bpc": "" if val_loss is None else f"{bits(val_loss):.5f}",
            "learning_rate": f"{lr:.6g}", "elapsed_s": f"{self.state['elapsed_s']:.1f}", "chars_per_s": f"{chars_per_s:.0f}",
        }
        if self.is_chief:
            self.history.append(row)
            self.run.write_history(self.history)
            self.tensorboard.scalars(self.state["global_step"], train_loss=train_loss, val_loss=val_loss, learning_rate=lr)
        message = f"epoch {epoch + 1}: train {train_loss:.4f} nats ({bits(train_loss):.4f} bpc)"
        metric = val_loss if val_loss is not None else train_loss
        if val_loss is not None:
            message += f", val {val_loss:.4f} nats ({bits(val_loss):.4f} bpc)"
        log.info(message)
        stuck = self.watch.after_validation(metric, epoch + 1)
        if stuck and self.is_chief:
            log.warning(stuck)
        best = self.state["best_val_loss"]
        if best is None or metric < best:
            self.state["best_val_loss"] = metric
            self.state["bad_validations"] = 0
            self.state["val_loss"] = metric
            if self.is_chief:
                with self._saving():
                    save_checkpoint(model, self.run.best, self._state_record())
            return False
        self.state["bad_validations"] += 1
        if self.cfg.patience and self.state["bad_validations"] >= self.cfg.patience:
            log.info("stopping early: no validation improvement in %d validations (best %.4f nats)", self.cfg.patience, best)
            return True
        return False

    def evaluate(self, model) -> float:
        """Mean validation loss in nats of `model`'s weights, on a separate model so training state is untouched."""
        if self.eval_model is None:
            keras = import_keras()
            self.eval_model = build_model(self.config.model, self.val_batches.batch_size)
            self.eval_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.eval_model.set_weights(model.get_weights())
        reset_states(self.eval_model)
        losses = [test_batch(self.eval_model, *self.val_batches.batch(k)) for k in range(len(self.val_batches))]
        reset_states(self.eval_model)
        return float(np.mean(losses))

    def _preview(self) -> None:
        model = self.steps.synced_model()
        if not self.is_chief:
            return
        net = StepNetwork.from_model(model, self.config.model)
        prime = self.vocab.encode("\n", oov="drop") or [0]
        rng = np.random.default_rng([self.cfg.seed, self.state["global_step"]])
        text = Sampler(net, self.vocab.chars).generate(prime, SamplingConfig(length=200, temperature=0.8), rng)[0].text
        log.info("preview at step %d:\n%s", self.state["global_step"], text)

    def _state_record(self) -> dict:
        return {**self.state, "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def _save_latest(self) -> None:
        model = self.steps.synced_model()
        if not self.is_chief:
            return
        with self._saving():
            save_checkpoint(model, self.run.latest, self._state_record(), keep_previous=True)

    @contextlib.contextmanager
    def _saving(self):
        """Marks a checkpoint save in progress: a signal that arrives now waits for it to finish."""
        self.saving = True
        try:
            yield
        finally:
            self.saving = False
        if self.stop_signal is not None and self.stop_now:
            raise TrainingInterrupted(
                f"interrupted twice; the checkpoint being saved was finished first, continue with: generate train {self.run.path} --resume",
                self.stop_signal,
            )


@contextlib.contextmanager
def _signals_set_flag(trainer: Trainer):
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step.

    A second signal stops at once, except during a checkpoint save, which it
    lets finish: the files on disk are always whole.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_signal is None:
            trainer.stop_signal = signum
            log.warning("signal %d received: saving a checkpoint after this step", signum)
            return
        trainer.stop_now = True
        if trainer.saving:  # half a checkpoint is worse than a late exit
            log.warning("signal %d received again: finishing the checkpoint being saved, then stopping", signum)
            return
        raise TrainingInterrupted(
            f"interrupted twice: stopped without saving; the last checkpoint is intact, "
            f"continue with: generate train {trainer.run.path} --resume",
            signum,
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
