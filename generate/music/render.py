"""Rendering encoded music text to MIDI; never fails on malformed text."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import GenerateError
from . import RENDER_SUFFIXES
from .chorale import VOICES, decode_chorale
from .keys import key_words
from .media import render_abc, render_musicxml, render_png, render_score_png, render_wav
from .melody import Event, decode_tune
from .midi import write_midi

log = logging.getLogger(__name__)


def render_path(path: Path, render: str) -> Path:
    """The file a render (one of `music.RENDER_SUFFIXES`) of the MIDI file `path` goes to."""
    return path.with_suffix(RENDER_SUFFIXES[render])


MAX_MALFORMED_SHARE = 0.2  # a sample with a few repairs renders; licence text, 77% malformed, does not


def malformed_characters(text: str, encoding: str = "melody") -> tuple[int, int]:
    """(characters the decoder would drop or repair, characters that are not whitespace) of music `text`."""
    decode = decode_chorale if encoding == "chorale" else decode_tune
    dropped = sum(decode(line.strip())[1].dropped for line in text.splitlines() if line.strip())
    return dropped, sum(not c.isspace() for c in text)


@dataclass
class DecodedMusic:
    """Every piece of a music text, one after another: the voices' events, and where bars and fermatas fall."""

    voices: list[list[Event]]
    meter: str = "4/4"  # the first piece's
    sharps: int = 0  # the first piece's key signature
    pieces: int = 0
    dropped: int = 0  # characters the decoder could not read
    bar_lines: list[Fraction] = field(default_factory=list)
    fermatas: list[Fraction] = field(default_factory=list)  # onsets of chorale frames that carry a fermata


def decode_music(text: str, encoding: str = "melody") -> DecodedMusic:
    """Decodes each line of `text` as a piece (a tune, or a chorale) and lays the pieces end to end."""
    decoded = DecodedMusic([[] for _ in range(VOICES if encoding == "chorale" else 1)])
    offset = Fraction(0)
    for line in text.splitlines():
        if not line.strip():
            continue
        if encoding == "chorale":
            piece, report = decode_chorale(line.strip())
            parts = piece.voices
        else:
            piece, report = decode_tune(line.strip())
            parts = [piece.events]
        decoded.dropped += report.dropped
        if decoded.pieces == 0:
            decoded.meter, decoded.sharps = piece.meter, piece.sharps
        for target, events in zip(decoded.voices, parts):
            target.extend(Event(e.onset + offset, e.pitch, e.duration) for e in events)
        decoded.bar_lines.extend([offset] * (offset > 0) + [b + offset for b in piece.bar_lines])
        decoded.fermatas.extend(f + offset for f in getattr(piece, "fermatas", []))
        offset = max((v[-1].onset + v[-1].duration for v in decoded.voices if v), default=offset)
        decoded.pieces += 1
    return decoded


def render_music(text: str, path: Path, encoding: str = "melody", bpm: float = 120.0, program: int = 0,
                 velocity: int = 80, renders: tuple[str, ...] = (), gain: float = 0.0) -> dict:
    """Decodes every piece in `text` and writes them one after another as MIDI.

    Melodies become one track; chorales one track per voice. Each of
    `renders` (`png`, `wav`, `musicxml`, `score`) adds a piano roll, an audio
    rendering, a MusicXML score or an engraved score (`NAME.score.png`,
    LilyPond) beside the MIDI file, with the same name.

    Returns:
        Facts for the sidecar: pieces, notes, characters the decoder dropped,
        each render's path, and `render_errors` (render name: message) for
        the renders a missing or failing tool could not make.
    """
    decoded = decode_music(text, encoding)
    voices, meter, sharps, bar_lines, fermatas = decoded.voices, decoded.meter, decoded.sharps, decoded.bar_lines, decoded.fermatas
    pieces, dropped = decoded.pieces, decoded.dropped
    pickup = bar_lines[0] if bar_lines else 0  # the first piece's: an anacrusis in the MIDI file and the scores
    write_midi(path, voices, bpm=bpm, program=program, velocity=velocity, meter=meter, sharps=sharps, pickup=pickup)
    facts = {"encoding": encoding, "pieces": pieces, "voices": len(voices),
             "notes": sum(e.pitch is not None for v in voices for e in v), "dropped_chars": dropped}
    if facts["notes"] == 0:
        log.warning("%s: the sample decoded to no notes, so the file holds silence (--valid-only redraws such samples)", path)
    makers = {
        "png": lambda target: render_png(target, voices, bar_lines, title=f"{path.name}: {meter}, {key_words(sharps)}, {facts['notes']} notes"),
        "musicxml": lambda target: render_musicxml(target, voices, meter, sharps, title=path.stem, fermatas=fermatas,
                                                   pickup=pickup),
        "score": lambda target: render_score_png(target, voices, meter, sharps, title=path.stem, fermatas=fermatas,
                                                 pickup=pickup),
        "wav": lambda target: render_wav(path, target, gain=gain),
        "abc": lambda target: render_abc(target, voices, meter, sharps, bar_lines, title=path.stem),
    }
    for name in (n for n in makers if n in renders):
        try:
            makers[name](render_path(path, name))
        except GenerateError as exc:  # a missing tool: the MIDI file stands, and the sidecar says what is missing
            facts.setdefault("render_errors", {})[name] = str(exc)
            continue
        facts[name] = str(render_path(path, name))
    return facts
