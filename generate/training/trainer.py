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
from ..data.corpus import load_corpus
from ..data.vocab import Vocab
from ..errors import CheckpointError, GenerateError, UsageError
from ..fileio import atomic_directory, check_writable_location
from ..model.backend import TensorBoardLog, dtype_policy, import_keras, test_batch, train_batch, use_fast_training_kernels, versions
from ..model.builder import build_model, count_params, reset_states
from ..model.checkpoint import RunDir, load_trainable_model, read_training_state, resume_point, save_checkpoint
from ..model.config import ModelConfig, RunConfig, TrainConfig
from ..model.network import StepNetwork
from ..progress import ProgressBar
from ..sampling.loop import Sampler, SamplingConfig
from ..units import bits

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


def create_run(run_path: Path, corpus_cfg: CorpusConfig, model_cfg: ModelConfig, train_cfg: TrainConfig, show_progress: bool = True,
               skipped_report: Path | None = None) -> TrainResult:
    """Starts a new run in `run_path` and trains it (`skipped_report`: music, a file listing every skipped piece).

    The run directory appears whole or not at all: its configuration and
    vocabulary are written into a hidden sibling directory that is renamed
    into place, so a kill leaves either nothing or a run `--resume` accepts.

    Raises:
        UsageError: the directory already holds a run or other files, or an option is out of range.
        CorpusError: the corpus is unreadable, empty or too short for one batch.
    """
    run = RunDir(Path(run_path))
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
    corpus = load_corpus(corpus_cfg, show_progress, skipped_report=skipped_report)
    vocab = Vocab.from_counts(corpus.counts, corpus_cfg.min_count)
    ids = corpus.ids(vocab, show_progress)
    train_ids, val_ids = split_train_val(ids, train_cfg.val_fraction)
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
        versions={"generate": __version__, **versions()}, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    _create_run_directory(run, config, vocab)
    return _train_from_scratch(run, config, vocab, train_ids, val_ids, show_progress)


def _create_run_directory(run: RunDir, config: RunConfig, vocab: Vocab) -> None:
    """Writes config.json and vocab.json so that the run directory appears whole or not at all."""
    with atomic_directory(run.path) as staging:
        vocab.save(staging / run.vocab.name)
        config.save(staging / run.config.name)


def _train_from_scratch(run: RunDir, config: RunConfig, vocab: Vocab, train_ids, val_ids, show_progress: bool) -> TrainResult:
    """Initialises the model from the recorded seed and trains: the same start for a new run and a restarted one."""
    model_cfg, train_cfg = config.model, config.train
    keras = import_keras()
    keras.utils.set_random_seed(train_cfg.seed)
    model = build_model(model_cfg, train_cfg.batch_size, policy=dtype_policy(train_cfg.precision, model_cfg.cell))
    use_fast_training_kernels(model)
    compile_for_training(model, train_cfg, steps_per_epoch=len(StreamBatches(train_ids, train_cfg.batch_size, train_cfg.seq_len)))
    # What an attempt killed before its first checkpoint left would be repeated by this one.
    run.history.unlink(missing_ok=True)
    shutil.rmtree(run.logs, ignore_errors=True)
    log.info("new run %s: %s %dx%d, %d parameters, vocab %d, %d train / %d val chars",
             run.path, model_cfg.cell, model_cfg.layers, model_cfg.units, count_params(model), len(vocab), len(train_ids), len(val_ids))
    state = {"epoch": 0, "step": 0, "global_step": 0, "best_val_loss": None, "bad_validations": 0,
             "train_loss_sum": 0.0, "train_loss_count": 0, "elapsed_s": 0.0, "seed": train_cfg.seed, "finished": False}
    return Trainer(run, config, vocab, model, train_ids, val_ids, state, show_progress).fit()


def resume_run(run_path: Path, sources: list[str] | None = None, overrides: dict | None = None, show_progress: bool = True,
               new_run: tuple[CorpusConfig, ModelConfig, TrainConfig] | None = None,
               skipped_report: Path | None = None) -> TrainResult:
    """Continues a run from its newest intact checkpoint exactly where it stopped.

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

    Raises:
        UsageError: not a run, a changed corpus or vocabulary,
            or an override of an option that shapes the model or data.
        CheckpointError: checkpoints exist but none is intact.
    """
    run = RunDir(Path(run_path))
    if new_run is not None and sources and not run.is_run() and not (run.path.exists() and any(run.path.iterdir())):
        log.warning("run %s was never started (or was stopped before it recorded its configuration): starting it now", run.path)
        return create_run(run.path, *new_run, show_progress=show_progress, skipped_report=skipped_report)
    run.require()
    config = run.load_config()
    vocab = run.load_vocab()
    run.remove_stale_temp_files()
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
        config.corpus.sources = list(sources)
    corpus = load_corpus(config.corpus, show_progress, skipped_report=skipped_report)
    if corpus.sha256 != config.corpus_sha256:
        raise UsageError(
            f"corpus changed: run {str(run.path)!r} was trained on sha256 {config.corpus_sha256[:12]}..., "
            f"the sources now hash to {corpus.sha256[:12]}...; resuming on other data is refused (start a new run)"
        )
    if vocab.sha256 != config.vocab_sha256 or Vocab.from_counts(corpus.counts, config.corpus.min_count) != vocab:
        raise UsageError(f"vocabulary changed: {run.vocab} no longer matches the corpus; resuming is refused")
    ids = corpus.ids(vocab, show_progress)
    train_ids, val_ids = split_train_val(ids, config.train.val_fraction)
    if checkpoint is None:
        log.warning("run %s stopped before its first checkpoint: starting it again from its recorded configuration", run.path)
        config.save(run.config)
        return _train_from_scratch(run, config, vocab, train_ids, val_ids, show_progress)
    if skipped:  # a damaged best.keras is replaced at the next validation improvement
        log.warning("passed over %s; resuming from %s", ", ".join(skipped), checkpoint.name)
    state = read_training_state(checkpoint)
    if state["epoch"] >= config.train.epochs:
        log.info("run %s already finished %d epoch(s); pass --epochs N to train further", run.path, state["epoch"])
        return TrainResult(run.path, state["epoch"], state["global_step"], state["best_val_loss"], False, True)
    if state.get("finished"):  # stopped early, and the user asks for more
        state["finished"], state["bad_validations"] = False, 0
    model = load_trainable_model(checkpoint)
    use_fast_training_kernels(model)
    # Rows logged after the checkpoint would be repeated by the resumed run.
    run.write_history([r for r in run.read_history() if int(r["global_step"]) <= state["global_step"]])
    config.save(run.config)
    log.info("resuming %s at epoch %d step %d (global step %d)", run.path, state["epoch"] + 1, state["step"], state["global_step"])
    return Trainer(run, config, vocab, model, train_ids, val_ids, state, show_progress).fit()


def compile_for_training(model, cfg: TrainConfig, steps_per_epoch: int) -> None:
    keras = import_keras()
    schedule = keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, decay_steps=max(steps_per_epoch, 1), decay_rate=cfg.lr_decay, staircase=True
    )
    optimizer = keras.optimizers.Adam(schedule, global_clipnorm=cfg.clip_norm or None)
    if any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers):
        # float16 gradients underflow without it; bfloat16 has float32's range and needs none.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


class Trainer:
    """Runs epochs, validation, checkpoints and previews for one run."""

    def __init__(self, run: RunDir, config: RunConfig, vocab: Vocab, model, train_ids, val_ids, state: dict, show_progress: bool):
        self.run, self.config, self.vocab, self.model = run, config, vocab, model
        self.cfg = config.train
        self.state = state
        self.show_progress = show_progress
        self.batches = StreamBatches(train_ids, self.cfg.batch_size, self.cfg.seq_len)
        self.val_batches = validation_batches(val_ids, self.cfg.batch_size, self.cfg.seq_len) if self.cfg.val_fraction > 0 else None
        self.eval_model = None
        self.history = run.read_history()
        self.tensorboard = TensorBoardLog(run.logs)
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
                    reset_states(self.model)
                    self.state["train_loss_sum"], self.state["train_loss_count"] = 0.0, 0
                bar = ProgressBar(steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="char",
                                  enabled=self.show_progress, initial=self.state["step"])
                bar.update(self.state["step"], rate_units=0)
                epoch_start, epoch_first_step = time.monotonic(), self.state["step"]
                try:
                    while self.state["step"] < steps:
                        x, y = self.batches.batch(self.state["step"])
                        loss = train_batch(self.model, x, y)
                        if not math.isfinite(loss):
                            raise GenerateError(f"training diverged at global step {self.state['global_step']} (loss {loss}); lower --learning-rate")
                        self.state["step"] += 1
                        self.state["global_step"] += 1
                        self.state["train_loss_sum"] += loss
                        self.state["train_loss_count"] += 1
                        self.state["elapsed_s"] = elapsed_before + time.monotonic() - started
                        mean = self.state["train_loss_sum"] / self.state["train_loss_count"]
                        chars = (self.state["step"] - epoch_first_step) * x.size
                        bar.update(self.state["step"], f"loss {mean:.3f} ({bits(mean):.3f} bpc)", rate_units=chars)
                        self._stop_if_signalled(bar)
                        if cfg.max_minutes and time.monotonic() - started >= cfg.max_minutes * 60 and self.state["step"] < steps:
                            paused = True  # at an epoch's last step the epoch ends first, as it would unpaused
                            break
                        if self.state["step"] % cfg.checkpoint_every == 0 or time.monotonic() - last_save >= cfg.checkpoint_seconds:
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
                if cfg.max_minutes and time.monotonic() - started >= cfg.max_minutes * 60 and self.state["epoch"] < cfg.epochs:
                    paused = True
                self._stop_if_signalled(None)
        finished = self.state["epoch"] >= cfg.epochs or stopped_early
        if finished:
            self.state["finished"] = True
            self._save_latest()
        if paused and not finished:
            log.info("time limit of %g minutes reached; continue with: generate train %s --resume", cfg.max_minutes, self.run.path)
        self.tensorboard.close()
        return TrainResult(self.run.path, self.state["epoch"], self.state["global_step"], self.state["best_val_loss"], stopped_early, finished)

    def _stop_if_signalled(self, bar: ProgressBar | None) -> None:
        """After a SIGINT or SIGTERM: saves `latest.keras` and raises TrainingInterrupted."""
        if self.stop_signal is None:
            return
        if bar is not None:
            bar.close()
        self._save_latest()
        raise TrainingInterrupted(
            f"interrupted at epoch {self.state['epoch'] + 1} step {self.state['step']}; checkpoint saved, "
            f"continue with: generate train {self.run.path} --resume",
            self.stop_signal,
        )

    def _validate(self, epoch: int, chars_per_s: float) -> bool:
        """Logs a history row, saves best.keras on improvement; True to stop early."""
        train_loss = self.state["train_loss_sum"] / max(self.state["train_loss_count"], 1)
        val_loss = self.evaluate() if self.val_batches is not None else None
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        row = {
            "epoch": epoch + 1, "step": self.state["step"], "global_step": self.state["global_step"],
            "train_loss": f"{train_loss:.5f}", "train_bpc": f"{bits(train_loss):.5f}",
            "val_loss": "" if val_loss is None else f"{val_loss:.5f}",
            "val_bpc": "" if val_loss is None else f"{bits(val_loss):.5f}",
            "learning_rate": f"{lr:.6g}", "elapsed_s": f"{self.state['elapsed_s']:.1f}", "chars_per_s": f"{chars_per_s:.0f}",
        }
        self.history.append(row)
        self.run.write_history(self.history)
        self.tensorboard.scalars(self.state["global_step"], train_loss=train_loss, val_loss=val_loss, learning_rate=lr)
        message = f"epoch {epoch + 1}: train {train_loss:.4f} nats ({bits(train_loss):.4f} bpc)"
        metric = val_loss if val_loss is not None else train_loss
        if val_loss is not None:
            message += f", val {val_loss:.4f} nats ({bits(val_loss):.4f} bpc)"
        log.info(message)
        best = self.state["best_val_loss"]
        if best is None or metric < best:
            self.state["best_val_loss"] = metric
            self.state["bad_validations"] = 0
            self.state["val_loss"] = metric
            with self._saving():
                save_checkpoint(self.model, self.run.best, self._state_record())
            return False
        self.state["bad_validations"] += 1
        if self.cfg.patience and self.state["bad_validations"] >= self.cfg.patience:
            log.info("stopping early: no validation improvement in %d validations (best %.4f nats)", self.cfg.patience, best)
            return True
        return False

    def evaluate(self) -> float:
        """Mean validation loss in nats, on a separate model so training state is untouched."""
        if self.eval_model is None:
            keras = import_keras()
            self.eval_model = build_model(self.config.model, self.val_batches.batch_size)
            self.eval_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.eval_model.set_weights(self.model.get_weights())
        reset_states(self.eval_model)
        losses = [test_batch(self.eval_model, *self.val_batches.batch(k)) for k in range(len(self.val_batches))]
        reset_states(self.eval_model)
        return float(np.mean(losses))

    def _preview(self) -> None:
        net = StepNetwork.from_model(self.model, self.config.model)
        prime = self.vocab.encode("\n", oov="drop") or [0]
        rng = np.random.default_rng([self.cfg.seed, self.state["global_step"]])
        text = Sampler(net, self.vocab.chars).generate(prime, SamplingConfig(length=200, temperature=0.8), rng)[0].text
        log.info("preview at step %d:\n%s", self.state["global_step"], text)

    def _state_record(self) -> dict:
        return {**self.state, "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def _save_latest(self) -> None:
        with self._saving():
            save_checkpoint(self.model, self.run.latest, self._state_record(), keep_previous=True)

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
