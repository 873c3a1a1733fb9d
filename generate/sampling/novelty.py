"""Novelty of samples: the longest stretch each one copies from its run's training corpus.

The corpus is the one the run was trained on, found by the content hash in
its `config.json`: first as the id array training cached, else by reading the
sources again, but never by building or downloading a corpus that is not at
hand. A corpus whose content changed since training is not used: a copy
measured against other text would mean nothing. The suffix index over it is
built once per corpus and cached (`data.novelty.CopyIndex`).
"""

from __future__ import annotations

import hashlib
import logging

from ..data.corpus import CorpusChanged, cached_ids, load_run_corpus
from ..data.novelty import CopyIndex
from ..data.vocab import Vocab
from ..errors import CorpusError, UsageError
from ..model.config import RunConfig

log = logging.getLogger(__name__)

_indexes: dict[str, CopyIndex] = {}  # by corpus and vocabulary: a co-writing session asks many times


class CorpusUnavailable(Exception):
    """The run's training corpus is not at hand; the message says why."""


def copy_index(config: RunConfig, vocab: Vocab) -> CopyIndex:
    """The copy index of the training corpus of a run (its config and vocabulary), built once and cached.

    Raises:
        CorpusUnavailable: the corpus is not built, not readable, or not the text the run was trained on.
    """
    key = hashlib.sha256(f"{config.corpus_sha256}/{config.vocab_sha256}".encode()).hexdigest()
    if key in _indexes:
        return _indexes[key]
    ids = cached_ids(config.corpus_sha256, vocab, config.corpus_chars)
    if ids is None:
        try:
            corpus = load_run_corpus(config.corpus, config.corpus_sha256, show_progress=False, build=False)
        except CorpusChanged:
            raise CorpusUnavailable(f"corpus {', '.join(config.corpus.sources)} changed since the run was trained on it") from None
        except (CorpusError, UsageError) as exc:
            raise CorpusUnavailable(str(exc)) from None
        try:
            ids = corpus.ids(vocab, show_progress=False)
        except CorpusError as exc:
            raise CorpusUnavailable(str(exc)) from None
    _indexes[key] = CopyIndex.for_corpus(ids, key)
    return _indexes[key]


def optional_copy_index(config: RunConfig, vocab: Vocab) -> tuple[CopyIndex | None, str]:
    """(index, "") when the training corpus is at hand, else (None, why not)."""
    try:
        return copy_index(config, vocab), ""
    except CorpusUnavailable as exc:
        return None, str(exc)


def longest_copy(vocab: Vocab, index: CopyIndex, text: str) -> int:
    """Characters in a row that `text` (written in `vocab`) shares with the indexed corpus."""
    return index.longest_copy(vocab.encode(text, oov="unk")) if text else 0
