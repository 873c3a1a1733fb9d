"""What sampling needs to know about music: lengths, limits, primers and key penalties.

A tune ends at its newline and a chorale needs about five characters a
sixteenth note, so music samples get their own default lengths. `--bars`
and `--notes` become sampler limits over the encodings' characters, and a
MIDI, ABC or MusicXML file becomes a primer in the run's encoding.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError
from . import chorale, melody
from .dataset import abc_numbers, encode_piece

MIN_MUSIC_CHARS = 100  # a sampled tune or piece shorter than this (a failed header, say) is replaced by the next
# Nats off out-of-key pitch logits by default, per encoding: enough to keep a model's melodies in key
# at least as often as the corpus (benchmarks/RESULTS.md, "Staying in key") while leaving accidentals
# possible; chorales get less, since Bach's harmony needs its leading tones.
DEFAULT_KEY_PENALTY = {"melody": 1.5, "chorale": 1.0}


def encode_primer(path: Path, encoding: str) -> str:
    """Encodes a MIDI, ABC or MusicXML file (its first tune) as a primer.

    Raises:
        OptionError: the file cannot be parsed as music (named as `prime_file`).
    """
    number = abc_numbers(Path(path))[0] if Path(path).suffix.lower() == ".abc" else None
    text, _, error = encode_piece((str(path), number), encoding)
    if error:
        raise OptionError("prime_file", f"{str(path)!r} cannot be read as music ({error})")
    return text


def limit_for(encoding: str, bars: int | None, notes: int | None, primed_header: bool) -> tuple[str, int, bool, str] | None:
    """The sampler limit for `--bars N` or `--notes N`.

    Bars end just after the Nth bar line of the continuation (a fresh tune's
    header has one more); notes end just before the (N+1)th note starts,
    counting only past the header, whose `M` and `K` are also pitch letters.
    """
    if bars:
        return (melody.BAR, bars + (0 if primed_header else 1), True, "")
    if notes:
        pitches = chorale.PITCH_CHARS if encoding == "chorale" else melody.PITCH_CHARS
        return (pitches, notes + 1, False, "" if primed_header else melody.BAR)
    return None
