"""Scoring: how well a model predicts a text, in nats and bits per character.

Two measures:
- `score_validation` repeats training's own validation pass (the corpus's
  held-out tail, laid out as the same B streams of T steps, states reset
  first), so it reproduces the validation loss a run or model card reports;
- `score_text` reads any text as one stream from a zero state, predicting
  every character after the first. It is the honest number for a single
  file, and a filter for generated text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.batching import Labels, StreamBatches, split_run, validation_batches
from ..data.corpus import CorpusChanged, load_run_corpus
from ..data.labels import NONE
from ..errors import CorpusError, OptionError, UsageError
from ..model import bundle
from ..model.backend import import_keras, test_batch
from ..model.builder import build_model, pack_labels, reset_states
from ..model.checkpoint import load_weights_into
from ..model.label_schedule import fixed_labels
from ..model.rundir import RunDir, resolve_run
from ..units import bits

SCORE_STEPS = 256  # characters per model call when scoring a text


@dataclass
class Score:
    name: str  # the file, or "validation"
    chars: int  # characters predicted
    nats: float  # mean negative log-likelihood per character

    @property
    def bpc(self) -> float:
        return bits(self.nats)

    @classmethod
    def total(cls, scores: list[Score]) -> Score:
        """The character-weighted mean of several scores."""
        chars = sum(s.chars for s in scores)
        return cls("total", chars, sum(s.nats * s.chars for s in scores) / chars)

    def as_dict(self) -> dict:
        return {"name": self.name, "chars": self.chars, "nats": round(self.nats, 6), "bpc": round(self.bpc, 6)}


def score_validation(run: RunDir, which: str = "best", sources: list[str] | None = None) -> Score:
    """The run's validation loss, computed as training computes it.

    Args:
        run: the run or shipped model.
        which: the checkpoint to score.
        sources: where the corpus is now, if not where the run recorded it.

    Raises:
        UsageError: the corpus is not the one the run was trained on, or no validation split.
        CorpusError: the corpus cannot be read.
    """
    config = run.load_config()
    batches = _validation_batches(run, config, _run_corpus(run, config, sources))
    path = run.sampling_model(which)
    if config.model.label_count:
        nats, _ = _position_nats(run, config, batches, path)
        return Score("validation", nats.size, float(nats.mean()))
    if path.suffix == ".onnx":  # a bundle: the same streams, stepped through its graph
        nats, _ = _position_nats(run, config, batches, path)
        losses = list(nats.mean(axis=(1, 2)))
    else:
        keras = import_keras()
        model = build_model(config.model, batches.batch_size)
        load_weights_into(model, path)
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        reset_states(model)
        losses = [test_batch(model, *batches.batch(k)) for k in range(len(batches))]
    return Score("validation", len(batches) * batches.batch_size * batches.seq_len, float(np.mean(losses)))


def network_validation_nats(run: RunDir, net, sources: list[str] | None = None) -> np.ndarray:
    """Every validation character's loss (K, B, T) under `net` (a step network, such as a graph not yet in any
    bundle), the split laid out as training lays it.

    Raises:
        As `score_validation`.
    """
    config = run.load_config()
    return _network_nats(net, _validation_batches(run, config, _run_corpus(run, config, sources)))[0]


def score_validation_by_label(run: RunDir, which: str = "best", sources: list[str] | None = None) -> list[Score]:
    """A labelled run's validation loss with each character's own label, then per label, then with every label
    dropped to `<none>`: what the labels are worth.

    Raises:
        As `score_validation`.
    """
    config = run.load_config()
    corpus = load_run_corpus(config.corpus, config.corpus_sha256, sources, show_progress=False)
    batches = _validation_batches(run, config, corpus)
    path = run.sampling_model(which)
    names = run.label_names()
    nats, labels = _position_nats(run, config, batches, path)
    scores = [Score("validation", nats.size, float(nats.mean()))]
    for i, name in enumerate(names):
        mask = labels == i
        if mask.any():
            scores.append(Score(f"validation {name}", int(mask.sum()), float(nats[mask].mean())))
    unlabelled, _ = _position_nats(run, config, batches, path, drop_labels=True)
    return scores + [Score("validation without labels", unlabelled.size, float(unlabelled.mean()))]


def _run_corpus(run: RunDir, config, sources: list[str] | None):
    try:
        return load_run_corpus(config.corpus, config.corpus_sha256, sources, show_progress=False)
    except CorpusChanged as exc:
        raise UsageError(f"--corpus: expected the corpus run {str(run.path)!r} was trained on "
                         f"(sha256 {exc.expected[:12]}...), received sha256 {exc.actual[:12]}...") from None
    except (UsageError, CorpusError) as exc:
        raise type(exc)(f"{exc} (the validation split needs the run's corpus; pass --corpus with its location)") from None


def _validation_batches(run: RunDir, config, corpus) -> StreamBatches:
    vocab = run.load_vocab()
    spans = corpus.labelling(config.corpus.labels).spans if config.model.label_count else None
    _, val_ids, _, val_spans = split_run(corpus.ids(vocab, show_progress=False), config.train.val_fraction, spans,
                                         config.train.val_by_label)
    labels = Labels(val_spans, config.model.vocab_size) if val_spans is not None else None
    batches = validation_batches(val_ids, config.train.batch_size, config.train.seq_len, labels)
    if batches is None:
        raise UsageError(f"run {str(run.path)!r}: has no validation split (val-fraction {config.train.val_fraction})")
    return batches


def _position_nats(run: RunDir, config, batches: StreamBatches, path: Path,
                   drop_labels: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every validation character's loss (K, B, T) as training lays the split out, and the label each was predicted with."""
    if path.suffix == ".onnx":  # a bundle: the same streams, stepped through its graph
        return _network_nats(bundle.step_network(run.path), batches, drop_labels)
    vocab_size = config.model.vocab_size
    model = build_model(config.model, batches.batch_size)
    load_weights_into(model, path)
    reset_states(model)
    all_nats, all_labels = [], []
    for k in range(len(batches)):
        inputs, targets = batches.batch(k)
        if drop_labels:
            inputs = inputs % vocab_size
        logits = np.asarray(model.predict_on_batch(inputs), np.float64)
        all_nats.append(_nats(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).reshape(targets.shape))
        all_labels.append(inputs // vocab_size if config.model.label_count else np.zeros_like(inputs))
    return np.stack(all_nats), np.stack(all_labels)


def _network_nats(net, batches: StreamBatches, drop_labels: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """As `_position_nats`, for a step network (a bundle's graph on onnxruntime), its states carried across batches."""
    vocab_size, labelled = net.vocab_size, bool(getattr(net, "labels", 0))
    states, all_nats, all_labels = net.initial_states(batches.batch_size), [], []
    for k in range(len(batches)):
        inputs, targets = batches.batch(k)
        if drop_labels:
            inputs = inputs % vocab_size
        nats, states = _stepped_nats(net, inputs, targets, states)
        all_nats.append(nats)
        all_labels.append(inputs // vocab_size if labelled else np.zeros_like(inputs))
    return np.stack(all_nats), np.stack(all_labels)


def _stepped_nats(net, inputs: np.ndarray, targets: np.ndarray, states: list) -> tuple[np.ndarray, list]:
    """Each target's loss (B, T) after stepping `net` over `inputs` from `states`, and the states it ends in.

    A labelled network's inputs are packed (`builder.pack_labels`): each step feeds its own labels.
    """
    nats = np.zeros(inputs.shape, np.float64)
    for t in range(inputs.shape[1]):
        chars = inputs[:, t]
        if getattr(net, "labels", 0):
            vocab_size = net.vocab_size
            chars, labels = inputs[:, t] % vocab_size, inputs[:, t] // vocab_size
            states = [*states[:-1], fixed_labels(labels)]
            logits, states = net.step(chars, states, guided=False)  # strength 1: the label branch is the model's own
        else:
            logits, states = net.step(chars, states)
        nats[:, t] = _nats(np.asarray(logits, np.float64), targets[:, t])
    return nats, states


def _nats(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per row, in float64."""
    peak = logits.max(axis=-1, keepdims=True)
    log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=-1))
    return log_norm - logits[np.arange(len(targets)), targets]


class TextScorer:
    """Scores texts as single streams under one checkpoint or bundle; build once, score many."""

    def __init__(self, run: RunDir, which: str = "best", label: str | None = None):
        """`label`: for a labelled model, the label every character is predicted with (None or "none": `<none>`).

        Raises:
            OptionError: a label the model does not have, or a label for a model without labels.
        """
        self.config = run.load_config()
        self.vocab = run.load_vocab()
        self.label = _label_id(run, label)
        path = run.sampling_model(which)
        self.net = bundle.step_network(run.path) if path.suffix == ".onnx" else None
        if self.net is None:
            self.model = build_model(self.config.model, 1, seq_len=SCORE_STEPS)
            load_weights_into(self.model, path)

    def score(self, text: str, name: str = "text", oov: str = "error") -> Score:
        """Mean loss over every character after the first.

        Raises:
            UsageError: fewer than two characters, or characters outside the vocabulary under `oov="error"`.
        """
        ids = np.asarray(self.vocab.encode(text, oov=oov, what=name), np.int32)
        if len(ids) < 2:
            raise UsageError(f"{name}: expected at least 2 characters to score, received {len(ids)}")
        inputs, targets = ids[:-1], ids[1:]
        if self.config.model.label_count:
            inputs = pack_labels(inputs, np.full(inputs.shape, self.label), self.config.model.vocab_size)
        if self.net is not None:
            nats, _ = _stepped_nats(self.net, inputs[None, :], targets[None, :], self.net.initial_states(1))
            return Score(name, len(targets), float(nats.sum()) / len(targets))
        reset_states(self.model)
        total = 0.0
        for start in range(0, len(inputs), SCORE_STEPS):
            chunk = inputs[start : start + SCORE_STEPS]
            used = len(chunk)
            # The model's shape is fixed; padding at the very end only feeds states nobody reads.
            padded = np.zeros((1, SCORE_STEPS), np.int32)
            padded[0, :used] = chunk
            logits = np.asarray(self.model.predict_on_batch(padded))[0, :used].astype(np.float64)
            total += float(np.sum(_nats(logits, targets[start : start + used])))
        reset_states(self.model)
        return Score(name, len(targets), total / len(targets))


def _label_id(run: RunDir, label: str | None) -> int:
    names = run.label_names()
    if label is None or label.lower() in ("none", NONE):
        return 0
    if not names:
        raise OptionError("label", "this model was trained without labels")
    if label not in names:
        raise OptionError("label", f"expected one of {', '.join(names[1:])} or none, received {label!r}")
    return names.index(label)


def read_text_file(path: Path) -> str:
    """Raises UsageError for an unreadable or non-UTF-8 file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: invalid UTF-8 at byte {exc.start}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def score_run(run: str | Path, files: list[Path], validation: bool = False, sources: list[str] | None = None,
              which: str = "best", oov: str = "error", label: str | None = None) -> list[Score]:
    """Scores under one checkpoint: the validation split (first, if asked; for a labelled model, also per label
    and without labels), then each file (with `label`, for a labelled model), then their total when there are several files.

    Raises:
        UsageError: a bad run, checkpoint, corpus, file or label.
    """
    run_dir = resolve_run(run)
    results = []
    if validation:
        labelled = bool(run_dir.load_config().model.label_count)
        results = score_validation_by_label(run_dir, which, sources) if labelled else [score_validation(run_dir, which, sources)]
    if files:
        scorer = TextScorer(run_dir, which, label)
        scored = [scorer.score(read_text_file(path), str(path), oov=oov) for path in files]
        results += scored + ([Score.total(scored)] if len(scored) > 1 else [])
    return results
