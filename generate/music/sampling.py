"""What sampling needs to know about music: limits and key penalties.

`--bars` and `--notes` become sampler limits over the encodings'
characters; a tune too short to be one is replaced by the next; and pitches
outside the header's key are penalised by a default that depends on the
encoding. (A MIDI, ABC or MusicXML primer is encoded by `dataset.encode_primer`.)
"""

from __future__ import annotations

import math

import numpy as np

from ..limits import Limit
from . import chorale, melody

MIN_MUSIC_CHARS = 100  # a sampled tune or piece shorter than this (a failed header, say) is replaced by the next
# Nats off out-of-key pitch logits by default, per encoding: enough to keep a model's melodies in key
# at least as often as the corpus (benchmarks/RESULTS.md, "Staying in key") while leaving accidentals
# possible; chorales get less, since Bach's harmony needs its leading tones.
DEFAULT_KEY_PENALTY = {"melody": 1.5, "chorale": 1.0}
PIECE_PERCENTILES = (5, 95)  # a sampled piece runs from the corpus's 5th to its 95th percentile of bars


def piece_lengths(ids: np.ndarray, bar_id: int | None, newline_id: int | None) -> dict | None:
    """How many bars a music corpus's pieces run to, from its ids: what a sampled piece should run to.

    Each piece is one line; its bars are its bar lines after the header's. Returns
    `{"bars": [low, high], "percentiles": [5, 95], "median": m, "pieces": n}` (low rounded down, high up),
    or None for ids with no whole piece.
    """
    if bar_id is None or newline_id is None:
        return None
    ends = np.flatnonzero(ids == newline_id)
    if not len(ends):
        return None
    bar_lines_before = np.cumsum(ids == bar_id)[ends]
    bars = np.diff(np.concatenate([[0], bar_lines_before])) - 1  # the header's own bar line starts no bar
    bars = bars[bars > 0]
    if not len(bars):
        return None
    low, high = np.percentile(bars, PIECE_PERCENTILES)
    return {"bars": [max(int(math.floor(low)), 1), int(math.ceil(high))], "percentiles": list(PIECE_PERCENTILES),
            "median": int(round(float(np.median(bars)))), "pieces": int(len(bars))}


def limit_for(encoding: str, bars: int | None, notes: int | None, primed_header: bool) -> Limit | None:
    """The sampler limit for `--bars N` or `--notes N`.

    Bars end just after the Nth bar line of the continuation (a fresh tune's
    header has one more); notes end just before the (N+1)th note starts,
    counting only past the header, whose `M` and `K` are also pitch letters.
    """
    if bars:
        return Limit(melody.BAR, bars + (0 if primed_header else 1), True, "")
    if notes:
        pitches = chorale.PITCH_CHARS if encoding == "chorale" else melody.PITCH_CHARS
        return Limit(pitches, notes + 1, False, "" if primed_header else melody.BAR)
    return None
