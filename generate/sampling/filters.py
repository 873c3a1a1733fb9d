"""Logit filters: each maps logits (N, V) to logits, masking with -inf, applied in order.

As in whisper's decoding, sampling rules are a chain of small filters, built
once per run of the loop from the resolved settings. A new filter is a class
here and a line in `build_filters`; the option that turns it on goes in
`options.SampleOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.backend import import_keras


class LogitFilter:
    def apply(self, logits):
        raise NotImplementedError


@dataclass
class TokenMask(LogitFilter):
    banned: tuple[int, ...]  # ids that may never be sampled

    def apply(self, logits):
        ops = import_keras().ops
        allowed = np.ones(logits.shape[-1], dtype=bool)
        allowed[list(self.banned)] = False
        return ops.where(ops.convert_to_tensor(allowed)[None, :], logits, float("-inf"))


@dataclass
class Temperature(LogitFilter):
    temperature: float

    def apply(self, logits):
        return logits / self.temperature


@dataclass
class TopK(LogitFilter):
    k: int

    def apply(self, logits):
        ops = import_keras().ops
        kth_largest = ops.top_k(logits, self.k, sorted=True)[0][:, -1:]
        return ops.where(logits < kth_largest, float("-inf"), logits)


@dataclass
class TopP(LogitFilter):
    p: float

    def apply(self, logits):
        ops = import_keras().ops
        descending = ops.flip(ops.sort(logits, axis=-1), axis=-1)
        probs = ops.softmax(descending, axis=-1)
        mass_before = ops.cumsum(probs, axis=-1) - probs
        # The most likely character always has mass_before == 0 < p, so one survives.
        threshold = ops.min(ops.where(mass_before < self.p, descending, float("inf")), axis=-1, keepdims=True)
        return ops.where(logits < threshold, float("-inf"), logits)


def build_filters(cfg) -> list[LogitFilter]:
    """The filters a `loop.SamplingConfig` asks for, in the order they apply."""
    filters: list[LogitFilter] = []
    if cfg.banned:
        filters.append(TokenMask(tuple(sorted(cfg.banned))))
    if not cfg.is_greedy and cfg.temperature != 1.0:
        filters.append(Temperature(cfg.temperature))
    if cfg.top_k:
        filters.append(TopK(cfg.top_k))
    if cfg.top_p < 1.0 and not cfg.is_greedy:
        filters.append(TopP(cfg.top_p))
    return filters
