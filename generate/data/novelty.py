"""Novelty: the longest stretch a sample copies from the training corpus.

A suffix array of the corpus's ids is built once (prefix doubling in NumPy,
O(n log^2 n)) and cached by the corpus's content hash. For each position of
a sample, a binary search finds where its suffix would sort; the longest
match is with one of the two neighbours there. Comparisons run on big-endian
bytes, whose order is the ids' order, so each one is a single C-level
comparison.
"""

from __future__ import annotations

import logging

import numpy as np

from ..fileio import atomic_path
from ..paths import cache_root

log = logging.getLogger(__name__)
NOTICEABLE_CHARS = 200_000
WINDOW = 32  # ids compared at once per start; a longer match is followed up exactly


def build_suffix_array(ids: np.ndarray) -> np.ndarray:
    """Start positions of all suffixes of `ids`, in sorted order (int32 below 2**31 ids)."""
    n = len(ids)
    rank = np.asarray(ids, np.int64)
    order = np.argsort(rank, kind="stable")
    step = 1
    while step < n:
        # Sort by (rank of i, rank of i + step), -1 past the end: the first 2*step ids.
        second = np.full(n, -1, np.int64)
        second[: n - step] = rank[step:]
        order = np.lexsort((second, rank))
        pairs_first, pairs_second = rank[order], second[order]
        changed = np.empty(n, bool)
        changed[0] = True
        changed[1:] = (pairs_first[1:] != pairs_first[:-1]) | (pairs_second[1:] != pairs_second[:-1])
        new_rank = np.empty(n, np.int64)
        new_rank[order] = np.cumsum(changed) - 1
        rank = new_rank
        if changed.all():
            break
        step *= 2
    return order.astype(np.int32 if n < 2**31 else np.int64)


class CopyIndex:
    """Answers "how many characters in a row does this text share with the corpus?"."""

    def __init__(self, ids: np.ndarray, suffix_array: np.ndarray):
        self.bytes = np.asarray(ids, ">u2").tobytes()
        self.suffixes = np.asarray(suffix_array)  # a plain view of a memmap: its items read faster
        self.n = len(ids)
        self._padded: np.ndarray | None = None

    @classmethod
    def for_corpus(cls, ids: np.ndarray, key: str) -> CopyIndex:
        """Loads the cached suffix array for corpus `key` (its content hash), building it once."""
        path = cache_root() / "novelty" / f"{key[:32]}.npy"
        if path.exists():
            try:
                suffixes = np.load(path, mmap_mode="r")
                if len(suffixes) == len(ids):
                    return cls(ids, suffixes)
            except (OSError, ValueError):
                pass
        # Worth a line on stderr only where it takes a while (about 4 s a million characters).
        log.log(logging.INFO if len(ids) >= NOTICEABLE_CHARS else logging.DEBUG,
                "indexing %d corpus characters to measure copies (once; cached in %s)", len(ids), path.parent)
        suffixes = build_suffix_array(ids)
        with atomic_path(path, suffix=".npy") as tmp:
            np.save(tmp, suffixes)
        return cls(ids, suffixes)

    def _suffix(self, position: int, length: int) -> bytes:
        return self.bytes[2 * position : 2 * (position + length)]

    def longest_copy(self, sample_ids: list[int] | np.ndarray) -> int:
        """The length of the longest run of `sample_ids` that also occurs in the corpus.

        Every start of the sample is searched at once: its first `WINDOW` ids, as one fixed-width byte
        string, against the corpus's windows (views, not copies) in suffix-array order. Where a start's
        match fills its window, or its neighbour in that order runs past the corpus's end, the exact
        search below takes over for that start alone. A 1,000-character sample takes under a millisecond
        (benchmarks/copy_index.py); one start at a time took tens.
        """
        ids = np.asarray(sample_ids, np.int64)
        starts = len(ids) - WINDOW + 1  # the starts with a whole window; the last few are searched exactly
        if starts <= 0 or self.n <= WINDOW:
            return self._longest_copy_exact(ids, range(len(ids)), 0)
        windows = self._windows()
        queries = _byte_windows(np.frombuffer(np.asarray(ids, ">u2").tobytes(), np.uint8), starts)
        low, high = np.zeros(starts, np.int64), np.full(starts, self.n, np.int64)
        while (open_ := low < high).any():  # every start's first suffix >= its window, at once
            mid = (low + high) // 2
            below = open_ & (windows[self.suffixes[np.minimum(mid, self.n - 1)]] < queries)
            low, high = np.where(below, mid + 1, low), np.where(open_ & ~below, mid, high)
        query_bytes = np.ascontiguousarray(queries).view(np.uint8).reshape(starts, 2 * WINDOW)
        best, exact = 0, np.zeros(starts, bool)
        for neighbour in (low - 1, low):
            inside = (neighbour >= 0) & (neighbour < self.n)
            positions = self.suffixes[np.clip(neighbour, 0, self.n - 1)].astype(np.int64)
            found = windows[positions].view(np.uint8).reshape(starts, 2 * WINDOW)
            differs = found != query_bytes
            common = np.where(differs.any(axis=1), differs.argmax(axis=1), 2 * WINDOW) // 2
            common = np.where(inside, common, 0)
            exact |= inside & ((common == WINDOW) | (positions > self.n - WINDOW))
            best = max(best, int(common[~exact].max(initial=0)))
        return self._longest_copy_exact(ids, [*np.flatnonzero(exact), *range(starts, len(ids))], best)

    def _windows(self) -> np.ndarray:
        """Each corpus position's next `WINDOW` ids as one big-endian byte string (zeros past the end): a view."""
        if self._padded is None:
            self._padded = np.frombuffer(self.bytes + bytes(2 * WINDOW), np.uint8)
        return _byte_windows(self._padded, self.n)

    def _longest_copy_exact(self, ids: np.ndarray, starts, best: int) -> int:
        """`best`, or a longer run found from one of `starts`, each searched on its whole remainder."""
        sample = np.asarray(ids, ">u2").tobytes()
        for start in sorted(starts, key=int):
            start = int(start)
            if len(ids) - start <= best:
                continue  # nothing shorter can beat it
            query = sample[2 * start :]
            width = len(query) // 2
            low, high = 0, self.n
            while low < high:  # first suffix >= query (compared on the query's length)
                mid = (low + high) // 2
                if self._suffix(int(self.suffixes[mid]), width) < query:
                    low = mid + 1
                else:
                    high = mid
            for neighbour in (low - 1, low):
                if 0 <= neighbour < self.n:
                    best = max(best, _common_prefix(self._suffix(int(self.suffixes[neighbour]), width), query) // 2)
        return best


def _byte_windows(data: np.ndarray, count: int) -> np.ndarray:
    """`count` overlapping `WINDOW`-id strings of the big-endian ids in `data`, one per id, sharing its memory."""
    return np.ndarray((count,), dtype=f"S{2 * WINDOW}", buffer=data, strides=(2,))


def _common_prefix(a: bytes, b: bytes) -> int:
    """Bytes in common at the start of a and b, rounded down to whole ids by the caller."""
    low, high = 0, min(len(a), len(b))
    while low < high:  # binary search on the length: slices compare in C
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low - low % 2
