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


def split_train_val(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Splits ids into a training head and a validation tail (views, no copy)."""
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


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
        rows drop to `<none>` now and then (`labels.label_dropout`, drawn from the epoch and step).
        """
        if not 0 <= k < self.num_batches:
            raise IndexError(f"batch {k} out of range [0, {self.num_batches})")
        cols = slice(k * self.seq_len, (k + 1) * self.seq_len)
        inputs, targets = self._inputs[:, cols].astype(np.int32), self._targets[:, cols].astype(np.int32)
        if self.labels is None:
            return inputs, targets
        rows = np.arange(self.batch_size, dtype=np.int64)[:, None] * self.stream_len
        positions = rows + np.arange(k * self.seq_len + 1, (k + 1) * self.seq_len + 1, dtype=np.int64)[None, :]
        labels = self.labels.spans.at(positions)
        dropped = label_dropout(self.batch_size, self.labels.dropout, self.labels.seed, epoch, k)
        labels[dropped] = 0
        return inputs + np.int32(self.labels.vocab_size) * labels.astype(np.int32), targets


@dataclass(frozen=True)
class Labels:
    """How a labelled run's batches carry labels: the spans of its split, and the training's label dropout."""

    spans: LabelSpans
    vocab_size: int
    dropout: float = 0.0
    seed: int = 0


def validation_batches(ids: np.ndarray, batch_size: int, seq_len: int, labels: Labels | None = None) -> StreamBatches | None:
    """Streams for the validation tail, with fewer rows if the tail is short.

    Returns:
        None when the tail cannot hold a single stream of T+1 characters.
    """
    rows = min(batch_size, (len(ids) - 1) // seq_len) if len(ids) > seq_len else 0
    return StreamBatches(ids, rows, seq_len, labels) if rows >= 1 else None
