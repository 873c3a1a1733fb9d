"""Stream batching for stateful truncated BPTT (the char-rnn layout).

The id array is cut into B contiguous streams, one per batch row, and each
stream is walked T steps at a time. Row i of batch k+1 therefore continues
row i of batch k, which is what lets a stateful RNN carry its hidden state
from one batch to the next. Validation uses the held-out tail of the corpus,
never shuffled into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CorpusError
from .labels import LabelSpans, label_dropout

SEGMENT_CHARS = 512  # a labelled run's training segments: about this long, cut after a newline


def split_train_val(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Splits ids into a training head and a validation tail (views, no copy)."""
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


def split_run(ids: np.ndarray, val_fraction: float, spans: LabelSpans | None = None, by_label: bool = False,
              ) -> tuple[np.ndarray, np.ndarray, LabelSpans | None, LabelSpans | None]:
    """A run's training and validation ids, and (a labelled run) the label spans of each.

    Without `by_label`, the validation split is the corpus's tail (views, no copy); with it, the tail
    `val_fraction` of every label's own text is held out (copies), so each label is validated.
    """
    if spans is None or not by_label:
        train, val = split_train_val(ids, val_fraction)
        return train, val, spans, None if spans is None else spans.shifted(len(train))
    n = len(ids)
    starts, ends = np.clip(spans.starts, 0, n), np.clip(np.append(spans.starts[1:], n), 0, n)
    held = np.zeros(n, bool)
    for label in np.unique(spans.ids):
        own = np.flatnonzero(spans.ids == label)
        wanted = int((ends[own] - starts[own]).sum() * val_fraction)
        for k in own[::-1]:  # the label's last characters, span by span from its end
            if wanted <= 0:
                break
            taken = min(wanted, int(ends[k] - starts[k]))
            held[ends[k] - taken: ends[k]] = True
            wanted -= taken
    label_at = spans.at(np.arange(n))

    def spans_of(kept: np.ndarray) -> LabelSpans:
        labels = label_at[kept]
        first = np.concatenate([[0], np.flatnonzero(np.diff(labels)) + 1]).astype(np.int64)
        return LabelSpans(first, labels[first].astype(np.int32) if len(labels) else np.zeros(1, np.int32))

    return np.asarray(ids[~held]), np.asarray(ids[held]), spans_of(~held), spans_of(held)


@dataclass
class StreamBatches:
    """B contiguous streams of an id array, served T steps at a time.

    Args:
        ids: the token ids; may be a read-only memmap, it is never copied whole.
        batch_size: B, the number of streams (rows).
        seq_len: T, steps per batch.
    """

    ids: np.ndarray
    batch_size: int
    seq_len: int
    labels: Labels | None = None  # a labelled run's: which label each position carries, and how inputs carry it

    def __post_init__(self) -> None:
        self.stream_len = (len(self.ids) - 1) // self.batch_size
        self.num_batches = self.stream_len // self.seq_len
        # Inputs are ids[s : s + L] and targets ids[s + 1 : s + L + 1] for each stream start s.
        used = self.batch_size * self.stream_len
        self._inputs = self.ids[:used].reshape(self.batch_size, self.stream_len)
        self._targets = self.ids[1 : used + 1].reshape(self.batch_size, self.stream_len)

    @classmethod
    def checked(cls, ids: np.ndarray, batch_size: int, seq_len: int, what: str, labels: Labels | None = None) -> StreamBatches:
        """Like the constructor, but raises if not even one batch fits.

        Raises:
            CorpusError: the split holds fewer than B*T+1 characters.
        """
        needed = batch_size * seq_len + 1
        if len(ids) < needed:
            raise CorpusError(
                f"{what} split too short: expected at least batch-size x seq-len + 1 = "
                f"{batch_size} x {seq_len} + 1 = {needed} characters, received {len(ids)} "
                "(use a larger corpus or lower --batch-size/--seq-len)"
            )
        return cls(ids, batch_size, seq_len, labels)

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, k: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Returns batch k as int32 arrays (inputs, targets) of shape (B, T).

        A labelled run's inputs carry, with each character, the label of the
        character it is to predict (`builder.pack_labels`), so a file's first
        character is already predicted in its own style. In training, whole
        rows drop to `<none>` now and then (`labels.label_dropout`), and the
        streams read the split's segments in an order drawn for each epoch
        (`Labels.segments`); both are drawn from the seed, epoch and step alone.
        """
        if not 0 <= k < self.num_batches:
            raise IndexError(f"batch {k} out of range [0, {self.num_batches})")
        cols = slice(k * self.seq_len, (k + 1) * self.seq_len)
        if self.labels is None:
            return self._inputs[:, cols].astype(np.int32), self._targets[:, cols].astype(np.int32)
        rows = np.arange(self.batch_size, dtype=np.int64)[:, None] * self.stream_len
        steps = rows + np.arange(k * self.seq_len, (k + 1) * self.seq_len, dtype=np.int64)[None, :]
        if self.labels.segments is None:
            sources, target_sources = steps, steps + 1
        else:
            order = self._segment_order(epoch)
            sources, target_sources = order.source(steps), order.source(steps + 1)
        inputs, targets = self.ids[sources].astype(np.int32), self.ids[target_sources].astype(np.int32)
        labels = self.labels.spans.at(target_sources)
        labels[label_dropout(self.batch_size, self.labels.dropout, self.labels.seed, epoch, k)] = 0
        return inputs + np.int32(self.labels.vocab_size) * labels.astype(np.int32), targets

    def _segment_order(self, epoch: int) -> SegmentOrder:
        if getattr(self, "_order", (None, None))[0] != epoch:
            self._order = (epoch, SegmentOrder.drawn(self.labels.segments, len(self.ids), self.labels.seed, epoch))
        return self._order[1]


@dataclass(frozen=True)
class SegmentOrder:
    """An order of an id array's segments: which source position each position of the reordered array reads."""

    starts: np.ndarray  # (S,) where each segment starts in the source, in the new order
    offsets: np.ndarray  # (S,) where each starts in the reordered array

    @classmethod
    def drawn(cls, segments: np.ndarray, length: int, seed: int, epoch: int) -> SegmentOrder:
        sizes = np.diff(np.append(segments, length))
        order = np.random.default_rng([seed, epoch, 0x5e6]).permutation(len(segments))
        return cls(segments[order], np.concatenate([[0], np.cumsum(sizes[order])[:-1]]))

    def source(self, positions: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.offsets, positions, side="right") - 1
        return self.starts[index] + positions - self.offsets[index]


def segment_starts(ids: np.ndarray, boundary: int | None, every: int = SEGMENT_CHARS) -> np.ndarray:
    """Where segments of about `every` characters start: just after a `boundary` id (a newline), once per stretch.

    Read in blocks, so a memory-mapped corpus is never loaded whole.
    """
    if boundary is None:
        return np.arange(0, len(ids), every, dtype=np.int64)
    ends = [np.flatnonzero(np.asarray(ids[start : start + (1 << 24)]) == boundary) + start + 1
            for start in range(0, len(ids), 1 << 24)]
    ends = np.concatenate([np.zeros(1, np.int64), *ends])
    ends = ends[ends < len(ids)]
    _, first = np.unique(ends // every, return_index=True)  # the first boundary in each stretch of `every`
    return ends[first].astype(np.int64)


@dataclass(frozen=True)
class Labels:
    """How a labelled run's batches carry labels: the spans of its split, and the training's label dropout."""

    spans: LabelSpans
    vocab_size: int
    dropout: float = 0.0
    seed: int = 0
    # Training: where the split's segments start (`segment_starts`). The streams read them in an order drawn
    # afresh each epoch, so styles meet often and the model learns to follow a label that changes, not only
    # the text before it; None (validation) reads the split in order.
    segments: np.ndarray | None = None


def validation_batches(ids: np.ndarray, batch_size: int, seq_len: int, labels: Labels | None = None) -> StreamBatches | None:
    """Streams for the validation tail, with fewer rows if the tail is short.

    Returns:
        None when the tail cannot hold a single stream of T+1 characters.
    """
    rows = min(batch_size, (len(ids) - 1) // seq_len) if len(ids) > seq_len else 0
    return StreamBatches(ids, rows, seq_len, labels) if rows >= 1 else None
