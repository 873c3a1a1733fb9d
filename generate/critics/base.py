"""What every critic shares: measures, a reference drawn from the corpus, and the distribution comparison."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

REFERENCE_PIECES = 200  # corpus pieces whose features stand for the corpus in the distribution comparison
KDE_GRID = 1000  # points on which the distance curves are compared (as mgeval does)


@dataclass(frozen=True)
class Measure:
    """One thing a reader checks, as a number for a set of pieces."""

    key: str  # short name, the JSON key
    what: str  # what it counts, as the table prints it
    unit: str = "share"  # share (0..1, printed as a percentage), rate (per 100 of something), or value
    better: str = "higher"  # higher, lower, or closer (to the corpus)

    def format(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.unit == "share":
            return f"{100 * value:.1f}%"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


@dataclass
class Judged:
    """The measures of one set of pieces, and the features the distribution comparison reads."""

    count: int  # pieces judged
    values: dict[str, float | None]
    features: dict[str, list[list[float]]] = field(default_factory=dict)  # feature -> one vector per piece
    details: dict = field(default_factory=dict, repr=False)  # what `Critic.relative` reads; never recorded


class Critic:
    """Judges pieces of one kind. Subclasses say what a piece is, what they measure, and which features they compare."""

    key: ClassVar[str]
    measures: ClassVar[tuple[Measure, ...]]
    features: ClassVar[tuple[str, ...]] = ()  # per-piece feature vectors compared as distributions (Yang & Lerch)
    settings: ClassVar[tuple[str, ...]] = ()  # keywords its constructor takes beyond the meters and the label

    def __init__(self, meters: dict | None = None, label: str = ""):
        self.meters = meters  # music: the corpus's meters (`music.sampling.piece_meters`)
        self.label = label

    def pieces(self, text: str) -> list[str]:
        """The pieces in `text` (one per line by default)."""
        return [line for line in text.splitlines() if line.strip()]

    def judge(self, pieces: list[str]) -> Judged:
        raise NotImplementedError

    def with_corpus(self, pieces: list[str]) -> None:
        """Takes in the corpus's pieces before judging samples (a critic that checks copies keeps its lines)."""

    @staticmethod
    def relative(samples: Judged, corpus: Judged) -> None:
        """Fills in measures that compare the samples with the corpus (none by default)."""

    def reference(self, pieces: list[str], seed: int = 0) -> Judged:
        """The corpus's measures over every piece, with the features of a fixed draw of them."""
        judged = self.judge(pieces)
        draw = random.Random(seed).sample(range(len(pieces)), min(REFERENCE_PIECES, len(pieces)))
        drawn = self.judge([pieces[i] for i in sorted(draw)])
        return Judged(judged.count, judged.values, drawn.features)


def similarity(reference: list[list[float]], samples: list[list[float]]) -> dict[str, float] | None:
    """Yang & Lerch's comparison of two sets by one feature: overlap area and KL divergence of distance curves.

    The within-corpus distances (each reference piece to every other) and the
    corpus-to-samples distances (each sample to every reference piece) are
    smoothed into densities (Gaussian kernels, Scott's bandwidth); returned are
    the area both densities share (1: the samples sit in the corpus as its own
    pieces do) and KL(within || across) in nats (0 is best). None with fewer
    than two pieces on either side.
    """
    ref, smp = np.asarray(reference, float), np.asarray(samples, float)
    if len(ref) < 2 or len(smp) < 1:
        return None
    within = np.linalg.norm(ref[:, None, :] - ref[None, :, :], axis=-1)[~np.eye(len(ref), dtype=bool)]
    across = np.linalg.norm(smp[:, None, :] - ref[None, :, :], axis=-1).ravel()
    low, high = min(within.min(), across.min()), max(within.max(), across.max())
    span = high - low or 1.0
    grid = np.linspace(low - 0.1 * span, high + 0.1 * span, KDE_GRID)
    p, q = _density(within, grid), _density(across, grid)
    step = grid[1] - grid[0]
    overlap = float(np.minimum(p, q).sum() * step)
    mask = p > 0
    kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-300))) * step)
    return {"overlap": round(min(overlap, 1.0), 4), "kl": round(max(kl, 0.0), 4)}


def _density(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    std = float(values.std())
    bandwidth = max(std, 1e-3) * len(values) ** (-1 / 5)  # Scott's rule, as scipy's gaussian_kde uses by default
    # In blocks: a corpus's within distances number 40,000 for 200 pieces.
    density = np.zeros_like(grid)
    for start in range(0, len(values), 4096):
        block = values[start:start + 4096]
        density += np.exp(-0.5 * ((grid[:, None] - block[None, :]) / bandwidth) ** 2).sum(axis=1)
    return density / (len(values) * bandwidth * math.sqrt(2 * math.pi))
