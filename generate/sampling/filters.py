"""Logit filters: each maps logits (N, V) to logits, masking with -inf, applied in order.

As in whisper's decoding, sampling rules are a chain of small filters, built
once per run of the loop from the resolved settings. A new filter is a class
here and a line in `build_filters`; the option that turns it on goes in
`options.SampleOptions`.

A filter's `setting` is fed to the compiled loop as a value per stream, not
built into it: a writer who changes the temperature ten times reuses one
compiled loop rather than tracing ten, and a server runs requests with
different temperatures in one batch. What must be known when the loop is traced (top-k's
k, the banned ids) is part of the filter's `shape`, which keys the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class LogitFilter:
    @property
    def setting(self) -> float:
        """The value fed to the compiled loop at run time (0.0 for a filter with none)."""
        return 0.0

    @property
    def shape(self) -> tuple:
        """What the compiled loop is built around: a loop with the same shapes serves any settings."""
        return (type(self).__name__,)

    def apply(self, logits, ops, setting=None):
        """`logits` filtered with `ops` (`keras.ops`, or NumPy's for a bundle); `setting` (inside the loop, one
        value per stream, so streams of different requests share a loop) defaults to the filter's own."""
        raise NotImplementedError


@dataclass
class TokenMask(LogitFilter):
    banned: tuple[int, ...]  # ids that may never be sampled

    @property
    def shape(self) -> tuple:
        return ("TokenMask", self.banned)

    def apply(self, logits, ops, setting=None):
        allowed = np.ones(logits.shape[-1], dtype=bool)
        allowed[list(self.banned)] = False
        return ops.where(ops.convert_to_tensor(allowed)[None, :], logits, float("-inf"))


@dataclass
class Temperature(LogitFilter):
    temperature: float

    @property
    def setting(self) -> float:
        return self.temperature

    def apply(self, logits, ops, setting=None):
        return logits / (self.temperature if setting is None else setting[:, None])


@dataclass
class TopK(LogitFilter):
    k: int

    @property
    def shape(self) -> tuple:
        return ("TopK", self.k)  # top_k needs k when traced

    def apply(self, logits, ops, setting=None):
        kth_largest = ops.top_k(logits, self.k, sorted=True)[0][:, -1:]
        return ops.where(logits < kth_largest, float("-inf"), logits)


@dataclass
class TopP(LogitFilter):
    p: float

    @property
    def setting(self) -> float:
        return self.p

    def apply(self, logits, ops, setting=None):
        p = self.p if setting is None else setting[:, None]
        descending = ops.flip(ops.sort(logits, axis=-1), axis=-1)
        probs = ops.softmax(descending, axis=-1)
        mass_before = ops.cumsum(probs, axis=-1) - probs
        # The most likely character always has mass_before == 0 < p, so one survives.
        threshold = ops.min(ops.where(mass_before < p, descending, float("inf")), axis=-1, keepdims=True)
        return ops.where(logits < threshold, float("-inf"), logits)


def filter_settings(filters: list[LogitFilter], streams: int):
    """The loop's `settings` for `streams` streams drawn with `filters`: (filters, streams), one row per filter."""
    return np.tile(np.array([[f.setting] for f in filters] or [[0.0]], np.float32), (1, streams))


def build_filters(cfg) -> list[LogitFilter]:
    """The filters a `loop.SamplingConfig` asks for, in the order they apply."""
    filters: list[LogitFilter] = []
    if cfg.banned:
        filters.append(TokenMask(tuple(sorted(cfg.banned))))
    if not cfg.is_greedy:  # at 1.0 too (dividing by 1.0 is exact), so every temperature shares one loop
        filters.append(Temperature(cfg.temperature))
    if cfg.top_k:
        filters.append(TopK(cfg.top_k))
    if cfg.top_p < 1.0 and not cfg.is_greedy:
        filters.append(TopP(cfg.top_p))
    return filters
