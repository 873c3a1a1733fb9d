"""Planning a run: options checked, corpus read and split, the checkpoint to continue from chosen.

Nothing here writes; `trainer.execute` carries a `Plan` out. Configs are
frozen once checked: what planning settles (an automatic batch size, the
vocabulary's size, an adopted architecture, a resumable override) makes a new
config with `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.batching import Labels, StreamBatches, segment_starts, split_run, validation_batches
from ..data.config import CorpusConfig
from ..data.corpus import CorpusChanged, load_corpus, load_run_corpus
from ..data.labels import Labelling
from ..data.vocab import Vocab
from ..errors import CheckpointError, UsageError
from ..fileio import check_writable_location
from ..model.backend import require_keras
from ..model.checkpoint import read_training_state
from ..model.config import ARCHITECTURE_FIELDS, ModelConfig, RunConfig, TrainConfig, auto_batch_size
from ..model.rundir import RunDir, resolve_run, resume_point
from ..music.melody import BAR
from ..music.sampling import piece_lengths, piece_meters, piece_repeats

log = logging.getLogger(__name__)
# Options a resumed run may change; everything else shapes the model or data.
RESUMABLE_OVERRIDES = ("epochs", "max_minutes", "checkpoint_every", "checkpoint_seconds", "preview_every", "preview_chars", "patience",
                       "val_every")


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
    pieces: dict | None = None  # music: how many bars the corpus's pieces run to (`RunDir.pieces`)
    done: TrainResult | None = None  # nothing to train: the run already finished its epochs
    labelling: Labelling | None = None  # a labelled run: which label each character of the corpus carries
    split_spans: tuple = ()  # a labelled run: the label spans of the training and the validation ids

    def batch_labels(self, split: str) -> Labels | None:
        """How the `train` or `val` split's batches carry labels; None for a run without labels."""
        if self.labelling is None:
            return None
        train = self.config.train
        train_spans, val_spans = self.split_spans
        if split == "train":
            return Labels(train_spans, self.config.model.vocab_size, train.label_dropout, train.seed,
                          segment_starts(self.train_ids, self.vocab.id_of("\n")))
        return Labels(val_spans, self.config.model.vocab_size)


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
        GenerateError: Keras is not installed (said before the corpus is read or anything is printed).
    """
    require_keras()
    run = RunDir(Path(run_path))
    if chief:
        _check_new_run_directory(run)
    for cfg in (corpus_cfg, model_cfg, train_cfg):
        cfg.validate()
    source = None
    if train_cfg.init_from:
        source, model_cfg = _adopt_architecture(train_cfg.init_from, model_cfg)
    corpus = load_corpus(corpus_cfg, show_progress, skipped_report=skipped_report)
    vocab = Vocab.from_counts(corpus.counts, corpus_cfg.min_count)
    if source is not None:
        check_same_characters(train_cfg.init_from, source, vocab)
    labelling, model_cfg = _labels(corpus, corpus_cfg, model_cfg)
    ids = corpus.ids(vocab, show_progress)
    if labelling is not None:
        train_cfg = dataclasses.replace(train_cfg, val_by_label=True)  # every label validated
    train_ids, val_ids, *split_spans = split_run(ids, train_cfg.val_fraction, labelling and labelling.spans,
                                                 train_cfg.val_by_label)
    if not train_cfg.batch_size:
        train_cfg = dataclasses.replace(train_cfg, batch_size=auto_batch_size(len(train_ids), train_cfg.seq_len))
        log.info("batch size %d for %d training characters (--batch-size sets it)", train_cfg.batch_size, len(train_ids))
    StreamBatches.checked(train_ids, train_cfg.batch_size, train_cfg.seq_len, "training")
    if train_cfg.val_fraction > 0 and validation_batches(val_ids, train_cfg.batch_size, train_cfg.seq_len) is None:
        raise UsageError(
            f"--val-fraction {train_cfg.val_fraction}: the validation tail holds {len(val_ids)} characters, "
            f"expected at least seq-len + 1 = {train_cfg.seq_len + 1} (raise it, or use 0 to skip validation)"
        )
    config = RunConfig(
        model=dataclasses.replace(model_cfg, vocab_size=len(vocab)), train=train_cfg, corpus=corpus_cfg,
        corpus_sha256=corpus.sha256, vocab_sha256=vocab.sha256,
        corpus_chars=corpus.n_chars, train_chars=len(train_ids), val_chars=len(val_ids),
    )
    pieces = music_pieces(ids, vocab, labelling) if corpus_cfg.kind == "music" else None
    return Plan(run, config, vocab, train_ids, val_ids, create=True, pieces=pieces, labelling=labelling,
                split_spans=tuple(split_spans))


def _check_new_run_directory(run: RunDir) -> None:
    """A new run goes into a new or empty, writable directory; a run killed before its first checkpoint resumes.

    Raises:
        UsageError: a run or other files are there, or the place cannot be written.
    """
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


def music_pieces(ids: np.ndarray, vocab: Vocab, labelling: Labelling | None) -> dict | None:
    """What `pieces.json` records of a music corpus: its pieces' lengths in bars, the meters they use, and how
    often they repeat a part."""
    pieces = piece_lengths(ids, vocab.id_of(BAR), vocab.id_of("\n"))
    if pieces is None:
        return None
    piece_labels = None
    if labelling is not None:
        line_starts = np.concatenate([[0], np.flatnonzero(ids == vocab.id_of("\n")) + 1])
        piece_labels = [labelling.names[i] for i in labelling.spans.at(line_starts)]
    meters = piece_meters(ids, vocab.chars, piece_labels)
    repeats = piece_repeats(ids, vocab.chars, piece_labels) if meters else None
    return {**pieces, **({"meters": meters} if meters else {}), **({"repeats": repeats} if repeats else {})}


def _labels(corpus, corpus_cfg: CorpusConfig, model_cfg: ModelConfig) -> tuple[Labelling | None, ModelConfig]:
    """A labelled corpus's labels, and the model options that make room for them; (None, as given) without labels."""
    if not corpus_cfg.labels:
        return None, model_cfg
    labelling = corpus.labelling(corpus_cfg.labels)
    log.info("labels from %s: %s", corpus_cfg.labels,
             ", ".join(f"{name} ({labelling.units[name]} {labelling.unit})" for name in labelling.names))
    return labelling, dataclasses.replace(model_cfg, label_count=len(labelling.names))


def _adopt_architecture(init_from: str, model_cfg: ModelConfig) -> tuple[RunDir, ModelConfig]:
    """`model_cfg` with the architecture of the run `init_from`, whose weights a new run starts from.

    Architecture options left at their defaults take the source's values; one
    set to another value is refused.

    Returns:
        The source run, and the model options with its architecture.

    Raises:
        UsageError: no such run, or another architecture asked for.
    """
    source = resolve_run(init_from)
    source_model, default, adopted = source.load_config().model, ModelConfig(), {}
    for name in ARCHITECTURE_FIELDS:
        wanted, theirs = getattr(model_cfg, name), getattr(source_model, name)
        if wanted != theirs and wanted != getattr(default, name):
            raise UsageError(f"--{name.replace('_', '-')}: --init-from {init_from} has {theirs!r}, received {wanted!r}; "
                             "leave it out to take the model's own")
        adopted[name] = theirs
    return source, dataclasses.replace(model_cfg, **adopted)


def check_same_characters(init_from: str, source: RunDir, vocab: Vocab) -> None:
    source_vocab = source.load_vocab()
    if source_vocab.chars != vocab.chars:
        raise UsageError(
            f"--init-from {init_from}: its vocabulary has {len(source_vocab)} characters, this corpus's {len(vocab)} "
            f"({len(set(vocab.chars) ^ set(source_vocab.chars))} differ); expected the same characters (check --min-count)"
        )


def _resume_checkpoint(run: RunDir) -> tuple[Path | None, list[str], dict]:
    """The newest intact checkpoint to resume from, the damaged ones passed over, and its training state.

    Raises:
        UsageError: a bundle (a step graph, no Keras weights) or an export (no optimizer state): neither resumes.
        CheckpointError: checkpoints exist but none is intact.
    """
    if run.is_bundle() and not any(path.exists() for path in (run.latest, run.previous, run.best)):
        raise UsageError(f"run {str(run.path)!r} is a bundle (a step graph for sampling, without weights Keras can "
                         "train) and cannot resume; train the run it was exported from, or start a new run from "
                         "that: generate train NEW_RUN SOURCES --init-from SOURCE_RUN")
    checkpoint, skipped = resume_point(run)
    if checkpoint is None and skipped:
        raise CheckpointError(
            f"run {str(run.path)!r}: no intact checkpoint to resume from: {'; '.join(skipped)}; move the damaged files "
            "out of the run directory and --resume starts the run again from its recorded configuration"
        )
    state = read_training_state(checkpoint) if checkpoint is not None else {}
    if state.get("exported_from"):  # weights only: Adam's moments and step count are gone, so nothing resumes exactly
        raise UsageError(f"run {str(run.path)!r} is an export (weights without optimizer state) and cannot resume; to "
                         f"train its weights further, start a new run from them: generate train NEW_RUN SOURCES "
                         f"--init-from {run.path}")
    return checkpoint, skipped, state


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
        UsageError: not a run, an export (no optimizer state), a changed corpus or vocabulary,
            or an override of an option that shapes the model or data.
        CheckpointError: checkpoints exist but none is intact.
    """
    require_keras()
    run = RunDir(Path(run_path))
    if new_run is not None and sources and not run.is_run() and not (run.path.exists() and any(run.path.iterdir())):
        log.warning("run %s was never started (or was stopped before it recorded its configuration): starting it now", run.path)
        return plan_new_run(run.path, *new_run, show_progress=show_progress, skipped_report=skipped_report, chief=chief)
    run.require()
    if chief:
        run.remove_stale_temp_files()
    checkpoint, skipped, state = _resume_checkpoint(run)
    config = run.load_config()
    vocab = run.load_vocab()
    # A time limit belongs to the command that set it, not to the run: the "continue with" a pause
    # prints finishes the run, unless that command sets a limit of its own.
    config = _with_overrides(config, {"max_minutes": 0.0, **(overrides or {})})
    if sources:
        config = dataclasses.replace(config, corpus=dataclasses.replace(config.corpus, sources=list(sources)))
    train_ids, val_ids, labelling, split_spans = _same_corpus_split(run, config, vocab, show_progress, skipped_report)
    plan = Plan(run, config, vocab, train_ids, val_ids, checkpoint=checkpoint, labelling=labelling,
                split_spans=split_spans)
    if checkpoint is None:
        log.warning("run %s stopped before its first checkpoint: starting it again from its recorded configuration", run.path)
        return plan
    if skipped:  # a damaged best.keras is replaced at the next validation improvement
        log.warning("passed over %s; resuming from %s", ", ".join(skipped), checkpoint.name)
    if state["epoch"] >= config.train.epochs:
        log.info("run %s already finished %d epoch(s); pass --epochs N to train further", run.path, state["epoch"])
        plan.done = TrainResult(run.path, state["epoch"], state["global_step"], state["best_val_loss"], False, True)
    return plan


def _with_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """`config` with the resumable options changed; any other option given a new value is refused.

    Raises:
        UsageError: naming an option that shapes the model or data.
    """
    for key, value in overrides.items():
        if key in RESUMABLE_OVERRIDES:
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, **{key: value}))
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
    return config


def _same_corpus_split(run: RunDir, config: RunConfig, vocab: Vocab, show_progress: bool,
                       skipped_report: Path | None) -> tuple[np.ndarray, np.ndarray, Labelling | None, tuple]:
    """The run's corpus, refused if its bytes, characters or labels changed: (train, validation) ids, its labels,
    and each split's label spans."""
    try:
        corpus = load_run_corpus(config.corpus, config.corpus_sha256, show_progress=show_progress, skipped_report=skipped_report)
    except CorpusChanged as exc:
        raise UsageError(
            f"corpus changed: run {str(run.path)!r} was trained on sha256 {exc.expected[:12]}..., "
            f"the sources now hash to {exc.actual[:12]}...; resuming on other data is refused (start a new run)"
        ) from None
    if vocab.sha256 != config.vocab_sha256 or Vocab.from_counts(corpus.counts, config.corpus.min_count) != vocab:
        raise UsageError(f"vocabulary changed: {run.vocab} no longer matches the corpus; resuming is refused")
    labelling = corpus.labelling(config.corpus.labels) if config.corpus.labels else None
    if labelling is not None and list(labelling.names) != list(run.label_names()):
        raise UsageError(f"labels changed: the corpus's {config.corpus.labels} labels are now {', '.join(labelling.names)}, "
                         f"not the {', '.join(run.label_names())} of {run.labels}; resuming is refused")
    train_ids, val_ids, *split_spans = split_run(corpus.ids(vocab, show_progress), config.train.val_fraction,
                                                 labelling and labelling.spans, config.train.val_by_label)
    return train_ids, val_ids, labelling, tuple(split_spans)
