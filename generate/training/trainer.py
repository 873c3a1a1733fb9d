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
import json
import logging
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.batching import Labels, StreamBatches, validation_batches
from ..data.config import CorpusConfig
from ..data.vocab import Vocab, character_frequencies
from ..errors import GenerateError, WorkerLostError
from ..fileio import atomic_directory
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
from ..model.config import ModelConfig, RunConfig, TrainConfig
from ..model.network import StepNetwork
from ..model.rundir import RunDir, resolve_run
from ..progress import ProgressBar
from ..sampling.loop import Sampler, SamplingConfig
from ..units import bits
from .cluster import Replication, check_batch_split, lost_worker_in
from .plan import Plan, TrainResult, check_same_characters, plan_new_run, plan_resume
from .state import TrainingState
from .watch import LearningWatch

log = logging.getLogger(__name__)
PREVIEW_GAP_S = 30.0  # seconds between validation previews (and before the first): each compiles a sampling loop


class TrainingInterrupted(GenerateError):
    """Raised after a signal stopped training and a checkpoint was saved."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def create_run(run_path: Path, corpus_cfg: CorpusConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, show_progress: bool = True,
               skipped_report: Path | None = None) -> TrainResult:
    """Starts a new run in `run_path` and trains it on this process's one device (see `plan_new_run`)."""
    return execute(plan_new_run(run_path, corpus_cfg, model_cfg, train_cfg, show_progress, skipped_report), show_progress)


def resume_run(run_path: Path, sources: list[str] | None = None, overrides: dict | None = None, show_progress: bool = True,
               new_run: tuple[CorpusConfig, ModelConfig, TrainConfig] | None = None,
               skipped_report: Path | None = None) -> TrainResult:
    """Continues a run exactly where it stopped, on this process's one device (see `plan_resume`)."""
    return execute(plan_resume(run_path, sources, overrides, show_progress, new_run, skipped_report), show_progress)


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
    train_cfg = plan.config.train
    steps_per_epoch = len(StreamBatches(plan.train_ids, train_cfg.batch_size, train_cfg.seq_len))
    engine, strategy = _start_engine(plan, replication)
    policy = dtype_policy(train_cfg.precision, plan.config.model.cell)
    if plan.checkpoint is None:
        if replication.is_chief:
            plan.config = _write_run_start(plan)
        model, state = _fresh_model(plan, policy, steps_per_epoch), TrainingState(seed=train_cfg.seed)
    else:
        model, state = _resumed_model(plan, replication.is_chief)
    steps = _training_steps(engine, strategy, model, plan, policy, steps_per_epoch, replication)
    state.replicas = steps.replicas
    trainer = Trainer(plan.run, plan.config, plan.vocab, steps, plan.train_ids, plan.val_ids, state,
                      show_progress and replication.is_chief, plan.batch_labels("train"), plan.batch_labels("val"))
    try:
        return trainer.fit()
    except WorkerLostError as exc:
        lost = lost_worker_in(exc.engine_message, replication.cluster) if replication.cluster else "a device"
        raise WorkerLostError(
            f"lost {lost} ({exc}); the last checkpoint in {plan.run.path} is intact: continue with "
            f"'generate train {plan.run.path} --resume', with any number of workers", exc.engine_message, exc.reason) from None


def _start_engine(plan: Plan, replication: Replication):
    """(engine, strategy) for a distributed run, after checking every worker agrees; (None, None) on one device."""
    if replication.cpu_threads:
        limit_cpu_threads(replication.cpu_threads)
    if not replication.distributed:
        return None, None
    model_cfg, train_cfg = plan.config.model, plan.config.train
    engine = distributed_engine()
    if replication.cluster is not None:
        silence_engine_stderr()
    # The engine must start before TensorFlow does any other work.
    strategy = engine.make_strategy(replication.cluster is not None, replication.device_count)
    if strategy.num_replicas_in_sync == 1 and replication.cluster is None:
        return None, None  # one device after all: the stateful path is the faster one
    check_batch_split(train_cfg.batch_size, strategy.num_replicas_in_sync, replication.describe(strategy.num_replicas_in_sync))
    engine.check_supported(model_cfg, dtype_policy(train_cfg.precision, model_cfg.cell))
    engine.check_same_setup(strategy, _setup_fingerprint(plan), replication.worker_namer(strategy.num_replicas_in_sync))
    return engine, strategy


def _write_run_start(plan: Plan) -> RunConfig:
    """Writes a new run's directory (or a restarted one's config) and clears what an earlier attempt logged."""
    config = plan.config
    if plan.create:
        config = dataclasses.replace(config, versions={"generate": __version__, **versions()},
                                     created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        labels = plan.labelling.summary(config.corpus_chars) if plan.labelling is not None else None
        _create_run_directory(plan.run, config, plan.vocab, plan.pieces, labels)
    else:
        config.save(plan.run.config)
    # What an attempt killed before its first checkpoint left would be repeated by this one.
    plan.run.history.unlink(missing_ok=True)
    shutil.rmtree(plan.run.logs, ignore_errors=True)
    return config


def _fresh_model(plan: Plan, policy: str, steps_per_epoch: int):
    """A new model from the recorded seed, or from another run's weights (`--init-from`), compiled."""
    model_cfg, train_cfg, vocab = plan.config.model, plan.config.train, plan.vocab
    keras = import_keras()
    keras.utils.set_random_seed(train_cfg.seed)
    model = build_model(model_cfg, train_cfg.batch_size, policy=policy)
    if train_cfg.init_from:
        # The plan took the source's architecture into config.model; its characters may have changed since.
        source = resolve_run(train_cfg.init_from)
        check_same_characters(train_cfg.init_from, source, vocab)
        weights = source.checkpoint("best")
        load_weights_into(model, weights, source.load_config().model)  # before compiling: the source's optimizer is not wanted
        log.info("starting from the weights of %s", weights)
    else:
        start_at_frequencies(model, character_frequencies(plan.train_ids, len(vocab)))
    compile_for_training(model, train_cfg, steps_per_epoch)
    log.info("new run %s: %s %dx%d, %d parameters, vocab %d, %d train / %d val chars",
             plan.run.path, model_cfg.cell, model_cfg.layers, model_cfg.units, count_params(model), len(vocab),
             len(plan.train_ids), len(plan.val_ids))
    return model


def _resumed_model(plan: Plan, chief: bool):
    """The checkpoint's model and state; the chief drops history rows the resumed run will log again."""
    state = TrainingState.from_record(read_training_state(plan.checkpoint))
    if state.finished:  # stopped early, and the user asks for more
        state.finished, state.bad_validations = False, 0
    model = load_trainable_model(plan.checkpoint)
    if chief:
        plan.run.write_history([r for r in plan.run.read_history() if int(r["global_step"]) <= state.global_step])
        plan.config.save(plan.run.config)
    log.info("resuming %s at epoch %d step %d (global step %d)", plan.run.path, state.epoch + 1, state.step, state.global_step)
    return model, state


def _training_steps(engine, strategy, model, plan: Plan, policy: str, steps_per_epoch: int, replication: Replication):
    """What trains the model: `LocalSteps` on one device, or the engine's replicated steps."""
    if engine is None:
        use_fast_training_kernels(model)
        return LocalSteps(model)
    model_cfg, train_cfg = plan.config.model, plan.config.train

    def build_replica(batch: int):
        replica_model = build_explicit_state_model(model_cfg, batch, train_cfg.seq_len, policy)
        use_fast_training_kernels(replica_model)
        return replica_model, make_optimizer(train_cfg, steps_per_epoch, policy), state_shapes(model_cfg), dropout_widths(model_cfg)

    steps = engine.ReplicatedSteps(strategy, model, build_replica, model_cfg, train_cfg, replication.is_chief)
    log.info("training on %s", replication.describe(steps.replicas))
    return steps


def _create_run_directory(run: RunDir, config: RunConfig, vocab: Vocab, pieces: dict | None = None,
                          labels: dict | None = None) -> None:
    """Writes config.json and vocab.json (for music, pieces.json; with labels, labels.json) so the run directory appears whole or not at all."""
    with atomic_directory(run.path) as staging:
        vocab.save(staging / run.vocab.name)
        config.save(staging / run.config.name)
        if pieces is not None:
            (staging / run.pieces.name).write_text(json.dumps(pieces) + "\n", encoding="utf-8")
        if labels is not None:
            (staging / run.labels.name).write_text(json.dumps(labels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


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


class _Clock:
    """Training time for a run of `fit`: the limit, the periodic saves, the epoch's speed."""

    def __init__(self, cfg: TrainConfig, elapsed_before: float):
        self.cfg, self.elapsed_before = cfg, elapsed_before
        self.started = self.last_save = self.epoch_started = time.monotonic()
        self.epoch_first_step = 0

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def time_up(self) -> bool:
        return bool(self.cfg.max_minutes and time.monotonic() - self.started >= self.cfg.max_minutes * 60)

    def start_epoch(self, step: int) -> None:
        self.epoch_started, self.epoch_first_step = time.monotonic(), step

    def chars_per_s(self, step: int, chars_per_step: int) -> float:
        return (step - self.epoch_first_step) * chars_per_step / max(time.monotonic() - self.epoch_started, 1e-9)


class Trainer:
    """Runs epochs, validation, checkpoints and previews for one run."""

    def __init__(self, run: RunDir, config: RunConfig, vocab: Vocab, steps, train_ids, val_ids, state: TrainingState,
                 show_progress: bool, train_labels: Labels | None = None, val_labels: Labels | None = None):
        """`steps` trains the model: `LocalSteps`, or the engine's replicated steps on every worker of a distributed run.

        A labelled run's batches carry `train_labels` and `val_labels` (`Plan.batch_labels`).
        """
        self.run, self.config, self.vocab, self.steps = run, config, vocab, steps
        self.is_chief = steps.is_chief
        self.cfg = config.train
        self.state = state
        self.show_progress = show_progress
        self.batches = StreamBatches(train_ids, self.cfg.batch_size, self.cfg.seq_len, train_labels)
        self.val_batches = (validation_batches(val_ids, self.cfg.batch_size, self.cfg.seq_len, val_labels)
                            if self.cfg.val_fraction > 0 else None)
        self.eval_model = None
        self.watch = LearningWatch(train_ids, len(vocab), self.cfg.learning_rate)
        self.history = run.read_history() if self.is_chief else []
        self.tensorboard = TensorBoardLog(run.logs) if self.is_chief else None
        self.last_preview = time.monotonic()  # when a validation last showed a preview (or training began)
        self.stop_signal: int | None = None  # the first SIGINT/SIGTERM: save, then stop
        self.stop_now = False  # a second one: stop at once, but never mid-save
        self.saving = False

    def fit(self) -> TrainResult:
        """Trains until the last epoch, early stopping, the time limit or a signal.

        A time limit that falls mid-epoch pauses without validating (unless the
        run has never validated: `_validate_at_pause`), so a run paused and
        resumed any number of times validates, checkpoints `best` and stops
        early exactly as an uninterrupted one.

        Raises:
            TrainingInterrupted: SIGINT or SIGTERM; the checkpoint was saved first.
            WriteError: a checkpoint or log could not be written; the last good one is intact.
        """
        clock = _Clock(self.cfg, self.state.elapsed_s)
        outcome = ""  # "paused" (the time limit) or "stopped" (early stopping) ends the run of epochs
        with _signals_set_flag(self):
            while self.state.epoch < self.cfg.epochs and not outcome:
                outcome = self._train_epoch(clock)
                if outcome == "paused":
                    if self.state.best_val_loss is None and self.val_batches is not None:
                        self._validate_at_pause(clock)
                    self._save_latest()
                    break
                if outcome == "":
                    outcome = self._end_epoch(clock)
        return self._finish(outcome)

    def _train_epoch(self, clock: _Clock) -> str:
        """Steps to the epoch's end; returns "paused" or "stopped" when the epoch ends early, else ""."""
        steps = len(self.batches)
        if self.state.step == 0:
            self.steps.reset_states()
            self.state.start_epoch()
        bar = ProgressBar(steps, desc=f"epoch {self.state.epoch + 1}/{self.cfg.epochs}", unit="char",
                          enabled=self.show_progress, initial=self.state.step)
        bar.update(self.state.step, rate_units=0)
        clock.start_epoch(self.state.step)
        try:
            while self.state.step < steps:
                outcome = self._step(bar, clock, steps)
                if outcome:
                    return outcome
        finally:
            bar.close()
        return ""

    def _step(self, bar: ProgressBar, clock: _Clock, steps: int) -> str:
        """One training step and what follows it: a validation, a save, a preview, or the reason to stop."""
        x, y = self.batches.batch(self.state.step, self.state.epoch)
        loss = self.steps.train(x, y, self.state.global_step)
        if not math.isfinite(loss):
            raise GenerateError(f"training diverged at global step {self.state.global_step} (loss {loss}); lower --learning-rate")
        self.state.count_step(loss, clock.elapsed())
        stuck = self.watch.after_step(self.state.global_step, loss)
        if stuck and self.is_chief:
            log.warning(stuck)
        mean = self.state.train_loss
        bar.update(self.state.step, f"loss {mean:.3f} ({bits(mean):.3f} bpc)",
                   rate_units=(self.state.step - clock.epoch_first_step) * x.size)
        if self.cfg.val_every and self.state.global_step % self.cfg.val_every == 0 and self.state.step < steps:
            if self._validate(self.state.epoch + 1, clock.chars_per_s(self.state.step, x.size), mid_epoch=True):
                return "stopped"
        # Every worker acts on the same flags, at the same step: a signal to any, or the chief's clock.
        signalled, time_up, save_due = self.steps.agree(
            self.stop_signal is not None, clock.time_up() and self.state.step < steps,
            self.state.step % self.cfg.checkpoint_every == 0 or time.monotonic() - clock.last_save >= self.cfg.checkpoint_seconds)
        if signalled:
            self._stop(bar)
        if time_up:
            return "paused"  # at an epoch's last step the epoch ends first, as it would unpaused
        if save_due:
            self._save_latest()
            clock.last_save = time.monotonic()
        if self.cfg.preview_every and self.state.global_step % self.cfg.preview_every == 0:
            self._preview(200)
        return ""

    def _end_epoch(self, clock: _Clock) -> str:
        """Validates the finished epoch and saves; returns "stopped", "paused" or ""."""
        chars_per_s = clock.chars_per_s(self.state.step, self.batches.batch_size * self.cfg.seq_len)
        self.state.end_epoch()
        stopped_early = self._validate(self.state.epoch, chars_per_s)
        self._save_latest()
        clock.last_save = time.monotonic()
        signalled, paused = self.steps.agree(self.stop_signal is not None, clock.time_up() and self.state.epoch < self.cfg.epochs)
        if signalled:
            self._stop(None)
        return "stopped" if stopped_early else "paused" if paused else ""

    def _finish(self, outcome: str) -> TrainResult:
        stopped_early = outcome == "stopped"
        finished = self.state.epoch >= self.cfg.epochs or stopped_early
        if finished:
            self.state.finished = True
            self._save_latest()
        if outcome == "paused" and not finished:
            log.info("time limit of %g minutes reached; continue with: generate train %s --resume "
                     "(trains to the end; add --max-minutes N to pause again)", self.cfg.max_minutes, self.run.path)
        if self.tensorboard is not None:
            self.tensorboard.close()
        return TrainResult(self.run.path, self.state.epoch, self.state.global_step, self.state.best_val_loss, stopped_early, finished)

    def _stop(self, bar: ProgressBar | None) -> None:
        """After a SIGINT or SIGTERM to this or any worker: saves `latest.keras` and raises TrainingInterrupted."""
        if bar is not None:
            bar.close()
        self._save_latest()
        raise TrainingInterrupted(
            f"interrupted at epoch {self.state.epoch + 1} step {self.state.step}; checkpoint saved, "
            f"continue with: generate train {self.run.path} --resume",
            self.stop_signal or signal.SIGTERM,
        )

    def _validate_at_pause(self, clock: _Clock) -> None:
        """A run paused before it ever validated: its validation loss now, and a provisional `best.keras`.

        Nothing that steers training changes (the best loss, patience, the watch): the first regular
        validation replaces this `best.keras` whatever it scores, so a run paused and resumed keeps the
        weights, checkpoints and early stopping of one never paused. The history gains a mid-epoch row.
        """
        model = self.steps.synced_model()
        val_loss = self.steps.from_chief(self.evaluate(model))
        chars_per_s = clock.chars_per_s(self.state.step, self.batches.batch_size * self.cfg.seq_len)
        self._log_validation(model, self.state.epoch + 1, val_loss, chars_per_s, mid_epoch=True)
        self._preview_at_validation(self.state.epoch + 1, val_loss)
        if self.is_chief:
            with self._saving():
                save_checkpoint(model, self.run.best, self.state.record())

    def _validate(self, epoch: int, chars_per_s: float, mid_epoch: bool = False) -> bool:
        """Scores the validation split, logs a history row, saves best.keras on improvement; True to stop early.

        Args:
            epoch: the epoch the row belongs to, from 1: the one just finished, or (`mid_epoch`) the one under way.
        """
        model = self.steps.synced_model()
        val_loss = self.steps.from_chief(self.evaluate(model)) if self.val_batches is not None else None
        self.state.val_loss = val_loss
        self._log_validation(model, epoch, val_loss, chars_per_s, mid_epoch)
        self._preview_at_validation(epoch, val_loss)
        metric = val_loss if val_loss is not None else self.state.train_loss
        stuck = self.watch.after_validation(metric, epoch)
        if stuck and self.is_chief:
            log.warning(stuck)
        best = self.state.best_val_loss
        if best is None or metric < best:
            self.state.best_val_loss, self.state.bad_validations = metric, 0
            if self.is_chief:
                with self._saving():
                    save_checkpoint(model, self.run.best, self.state.record())
            return False
        self.state.bad_validations += 1
        if self.cfg.patience and self.state.bad_validations >= self.cfg.patience:
            log.info("stopping early: no validation improvement in %d validations (best %.4f nats)", self.cfg.patience, best)
            return True
        return False

    def _log_validation(self, model, epoch: int, val_loss: float | None, chars_per_s: float, mid_epoch: bool) -> None:
        """The history row, TensorBoard's scalars and the log line of one validation."""
        train_loss = self.state.train_loss
        lr = float(np.asarray(model.optimizer.learning_rate))
        row = {
            "epoch": epoch, "step": self.state.step, "global_step": self.state.global_step,
            "train_loss": f"{train_loss:.5f}", "train_bpc": f"{bits(train_loss):.5f}",
            "val_loss": "" if val_loss is None else f"{val_loss:.5f}",
            "val_bpc": "" if val_loss is None else f"{bits(val_loss):.5f}",
            "learning_rate": f"{lr:.6g}", "elapsed_s": f"{self.state.elapsed_s:.1f}", "chars_per_s": f"{chars_per_s:.0f}",
        }
        if self.is_chief:
            self.history.append(row)
            self.run.write_history(self.history)
            self.tensorboard.scalars(self.state.global_step, train_loss=train_loss, val_loss=val_loss, learning_rate=lr)
        where = f"epoch {epoch} step {self.state.step}" if mid_epoch else f"epoch {epoch}"
        message = f"{where}: train {train_loss:.4f} nats ({bits(train_loss):.4f} bpc)"
        if val_loss is not None:
            message += f", val {val_loss:.4f} nats ({bits(val_loss):.4f} bpc)"
        log.info(message)

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

    def _preview_at_validation(self, epoch: int, val_loss: float | None) -> None:
        # At most one a PREVIEW_GAP_S, the first that long into training: a run of minutes previews at every
        # validation, a run of seconds (a test's) never pays for one.
        if self.cfg.preview_chars and time.monotonic() - self.last_preview >= PREVIEW_GAP_S:
            self.last_preview = time.monotonic()
            loss = f": validation {bits(val_loss):.4f} bpc" if val_loss is not None else ""
            self._preview(self.cfg.preview_chars, f"epoch {epoch}, step {self.state.global_step}{loss}")

    def _preview(self, length: int, heading: str = "") -> None:
        """A sample of `length` characters from the weights as they are: on stderr, and (`heading`, at a
        validation) kept in `logs/previews.txt`. Its random numbers are its own: training is untouched."""
        model = self.steps.synced_model()
        if not self.is_chief:
            return
        net = StepNetwork.from_model(model, self.config.model)
        prime = self.vocab.encode("\n", oov="drop") or [0]
        rng = np.random.default_rng([self.cfg.seed, self.state.global_step])
        text = Sampler(net, self.vocab.chars).generate(prime, SamplingConfig(length=length, temperature=0.8), rng)[0].text
        log.info("preview at step %d:\n%s", self.state.global_step, text)
        if heading:
            try:
                self.run.logs.mkdir(exist_ok=True)
                with self._saving(), open(self.run.logs / "previews.txt", "a", encoding="utf-8") as previews:
                    previews.write(f"--- {heading}\n{text}\n")
            except OSError as exc:  # a preview is a courtesy: a full disk stops the checkpoint, not this
                log.warning("%s: the preview was not kept (%s)", self.run.logs / "previews.txt", exc.strerror or exc)

    def _save_latest(self) -> None:
        model = self.steps.synced_model()
        if not self.is_chief:
            return
        with self._saving():
            save_checkpoint(model, self.run.latest, self.state.record(), keep_previous=True)

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
