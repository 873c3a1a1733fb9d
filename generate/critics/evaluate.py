"""`generate eval`: sample a model (or read files of its writing) and judge the pieces beside its corpus."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..data.corpus import load_corpus
from ..data.prosody import SONNET
from ..errors import CorpusError, UsageError
from ..model.rundir import RunDir
from ..sampling import novelty
from . import critic_for
from .base import Critic, Judged, Measure, similarity
from .code import CodeCritic
from .english import EnglishVerseCritic

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """One model's pieces judged, beside the same measures on its corpus."""

    model: str
    critic: Critic
    source: str  # where the judged pieces came from, in words
    samples: Judged
    corpus: Judged | None  # None when the corpus is not at hand
    corpus_source: str = ""
    similarity: dict[str, dict[str, float] | None] = field(default_factory=dict)  # feature -> overlap and KL

    def rows(self) -> list[tuple[str, str, str]]:
        """(what is measured, the samples' value, the corpus's value) for each measure that applies."""
        rows = []
        for measure in (*self.critic.measures, BPC):
            mine = self.samples.values.get(measure.key)
            theirs = self.corpus.values.get(measure.key) if self.corpus else None
            if mine is None and theirs is None:
                continue
            rows.append((measure.what, measure.format(mine), measure.format(theirs)))
        return rows

    def as_dict(self) -> dict:
        def measures(judged: Judged | None) -> dict | None:
            if judged is None:
                return None
            return {m.key: judged.values.get(m.key) for m in (*self.critic.measures, BPC) if m is not BPC
                    or "bpc" in judged.values}

        return {
            "model": self.model, "critic": self.critic.key, "label": self.critic.label or None,
            "samples": {"source": self.source, "pieces": self.samples.count, "measures": measures(self.samples)},
            "corpus": None if self.corpus is None else {"source": self.corpus_source, "pieces": self.corpus.count,
                                                        "measures": measures(self.corpus)},
            "distribution": self.similarity or None,
        }


def evaluate(model: str, files: list[Path] | None = None, num_samples: int = 100, seed: int = 1, label: str = "",
             judging: dict | None = None, **options) -> Evaluation:
    """Judges `files` (the model's encoding, as `generate sample` prints it), or `num_samples` fresh samples.

    Args:
        model: a run directory or a shipped model's name.
        files: text files to judge instead of sampling.
        num_samples: how many samples to draw, in one batch.
        seed: the samples' seed.
        label: a labelled model: sample with this label, and judge the label's meters too.
        judging: the critic's own settings (English verse: `rhyme`, a scheme, and `meter`); others are refused.
        **options: other `generate sample` settings, as the API takes them (temperature=0.9, ...).

    Raises:
        UsageError: a model no critic judges, unreadable files, or no piece to judge.
    """
    from ..pipeline.loaded import load  # a model loads only when one is judged

    loaded = load(model)
    facts = loaded.facts
    critic_class = critic_for(facts.kind, facts.encoding, facts.vocab.chars)
    unknown = sorted(set(judging or {}) - set(critic_class.settings))
    if unknown:
        raise UsageError(f"--{unknown[0]}: the {critic_class.key} critic takes no such setting")
    judging = dict(judging or {})
    if critic_class.key == EnglishVerseCritic.key:
        if str(options.get("form", "")).lower() == "sonnet":
            judging = {"rhyme": SONNET, "meter": "pentameter", **judging}
        if not files:
            options.update(judging)  # the samples are written in the scheme and meter they are judged by
    critic = critic_class(facts.meters, label, **judging)
    corpus, corpus_source = corpus_reference(loaded.run_dir, critic)  # first: a critic may judge copies against it
    if isinstance(critic, CodeCritic):  # after the corpus is read (and built, where it can be)
        index, why = novelty.optional_copy_index(loaded.run_dir.load_config(), facts.vocab)
        if index is not None:
            critic.copied = lambda text: novelty.longest_copy(facts.vocab, index, text)
        else:
            log.warning("the corpus of %s is not at hand (%s): copied stretches are left out", loaded.name, why)
    if files:
        texts = [_read(path) for path in files]
        source = f"{len(files)} file(s)"
    else:
        if label:
            options["label"] = label
        texts = [output.text for output in loaded.samples(num_samples=num_samples, seed=seed, **options)]
        source = f"{num_samples} samples at seed {seed}"
    pieces = [piece for text in texts for piece in critic.pieces(text)]
    if not pieces:
        where = "the files" if files else "the samples"
        raise UsageError(f"generate eval: {where} hold no piece a {critic.key} critic can judge")
    judged = critic.judge(pieces)
    if facts.kind != "music":  # any text: how likely the model finds what it wrote, beside its validation split
        judged.values["bpc"], corpus_bpc = _bits_per_character(loaded.run_dir, texts, label)
        if corpus is not None:
            corpus.values["bpc"] = corpus_bpc
    evaluation = Evaluation(loaded.name, critic, source, judged, corpus, corpus_source)
    if corpus is not None:
        critic.relative(judged, corpus)
        evaluation.similarity = {name: similarity(corpus.features.get(name, []), judged.features.get(name, []))
                                 for name in critic.features}
    return evaluation


def _bits_per_character(run: RunDir, texts: list[str], label: str) -> tuple[float | None, float | None]:
    """The model's bits per character over `texts` (each a stream from a fresh state, characters outside its
    vocabulary skipped), and its best validation figure as training recorded it."""
    from ..training.scoring import TextScorer  # the scorer loads the network: only for text that is judged

    scorer = TextScorer(run, label=label or None)
    nats = chars = 0.0
    for text in texts:
        if len(text) > 1:
            score = scorer.score(text, oov="drop")
            nats, chars = nats + score.nats * score.chars, chars + score.chars
    history = [row for row in run.read_history() if row.get("val_bpc")] if run.history.is_file() else []
    best = min((float(row["val_bpc"]) for row in history), default=None)
    return (nats / chars / math.log(2) if chars else None), best


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: expected a UTF-8 text file of the model's writing ({exc})") from None


REFERENCE_KEY = "critique"
# Any text's: the model's bits per character over its samples, beside its validation split (a sample far likelier
# than the corpus is a model repeating itself; far less likely, one that wandered off).
BPC = Measure("bpc", "bits per character under the model (the corpus: validation)", unit="value", better="closer")
LABEL_MEASURES = ("label_meter", "repeated_part", "tonic_ending", "median_bars")  # what a label's own tunes set  # where a shipped music model's `pieces.json` keeps its corpus's measures


def corpus_reference(run: RunDir, critic: Critic) -> tuple[Judged | None, str]:
    """The corpus's measures: recorded in the run (a shipped model), or taken from its corpus when at hand."""
    try:
        recorded = json.loads(run.pieces.read_text(encoding="utf-8")).get(REFERENCE_KEY)
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded and recorded.get("critic") == critic.key:
        values = dict(recorded["values"])
        if critic.label:
            values.update(recorded.get("by_label", {}).get(critic.label, {}))
        return Judged(recorded["pieces"], values, recorded["features"]), recorded["source"]
    pieces = corpus_pieces(run, critic)
    if pieces is None:
        return None, ""
    critic.with_corpus(pieces)
    return critic.reference(pieces), ", ".join(run.load_config().corpus.sources)


def corpus_pieces(run: RunDir, critic: Critic) -> list[str] | None:
    """The pieces of the run's training corpus (read, or encoded again as training did), or None when it
    cannot be had here (a download that fails, files since moved)."""
    config = run.load_config()
    try:
        corpus = load_corpus(config.corpus, show_progress=False)
        text = "\n".join(path.read_text(encoding="utf-8") for path in corpus.files)
    except (CorpusError, UsageError, OSError, UnicodeDecodeError) as exc:  # not built here, or moved
        log.warning("the corpus of %s is not at hand (%s): its measures are left out", run.path, exc)
        return None
    return critic.pieces(text)


def reference_record(critic: Critic, pieces: list[str], source: str,
                     pieces_by_label: dict[str, list[str]] | None = None) -> dict:
    """What a shipped music model's `pieces.json` keeps under `critique`: its corpus's measures and features,
    so that `generate eval` needs no corpus on a fresh machine."""
    judged = critic.reference(pieces)
    by_label = {}
    for label, own in (pieces_by_label or {}).items():
        values = type(critic)(critic.meters, label).judge(own).values
        by_label[label] = {key: values.get(key) for key in LABEL_MEASURES if values.get(key) is not None}
    return {"critic": critic.key, "source": source, "pieces": judged.count, "values": judged.values,
            "by_label": by_label, "features": judged.features}
