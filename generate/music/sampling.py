"""What sampling needs to know about music: limits and key penalties.

`--bars` and `--notes` become sampler limits over the encodings'
characters; a tune too short to be one is replaced by the next; and pitches
outside the header's key are penalised by a default that depends on the
encoding. (A MIDI, ABC or MusicXML primer is encoded by `dataset.encode_primer`.)
"""

from __future__ import annotations

from ..limits import Limit
from . import chorale, melody

MIN_MUSIC_CHARS = 100  # a sampled tune or piece shorter than this (a failed header, say) is replaced by the next
# Nats off out-of-key pitch logits by default, per encoding: enough to keep a model's melodies in key
# at least as often as the corpus (benchmarks/RESULTS.md, "Staying in key") while leaving accidentals
# possible; chorales get less, since Bach's harmony needs its leading tones.
DEFAULT_KEY_PENALTY = {"melody": 1.5, "chorale": 1.0}


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
