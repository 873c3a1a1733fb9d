"""Rendering encoded music text to MIDI; never fails on malformed text."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from ..errors import GenerateError
from . import RENDER_SUFFIXES
from .chorale import VOICES, decode_chorale
from .media import render_musicxml, render_png, render_score_png, render_wav
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


def render_music(text: str, path: Path, encoding: str = "melody", bpm: float = 120.0, program: int = 0,
                 velocity: int = 80, renders: tuple[str, ...] = ()) -> dict:
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
    voices: list[list[Event]] = [[] for _ in range(VOICES if encoding == "chorale" else 1)]
    meter, sharps, pieces, dropped, offset = "4/4", 0, 0, 0, Fraction(0)
    bar_lines: list[Fraction] = []
    fermatas: list[Fraction] = []  # onsets of chorale frames that carry a fermata
    for line in text.splitlines():
        if not line.strip():
            continue
        if encoding == "chorale":
            piece, report = decode_chorale(line.strip())
            parts = piece.voices
        else:
            piece, report = decode_tune(line.strip())
            parts = [piece.events]
        dropped += report.dropped
        if pieces == 0:
            meter, sharps = piece.meter, piece.sharps
        for target, events in zip(voices, parts):
            target.extend(Event(e.onset + offset, e.pitch, e.duration) for e in events)
        bar_lines.extend([offset] * (offset > 0) + [b + offset for b in piece.bar_lines])
        fermatas.extend(f + offset for f in getattr(piece, "fermatas", []))
        offset = max((v[-1].onset + v[-1].duration for v in voices if v), default=offset)
        pieces += 1
    write_midi(path, voices, bpm=bpm, program=program, velocity=velocity, meter=meter, sharps=sharps)
    facts = {"encoding": encoding, "pieces": pieces, "voices": len(voices),
             "notes": sum(e.pitch is not None for v in voices for e in v), "dropped_chars": dropped}
    if facts["notes"] == 0:
        log.warning("%s: the sample decoded to no notes, so the file holds silence (--valid-only redraws such samples)", path)
    makers = {
        "png": lambda target: render_png(target, voices, bar_lines, title=f"{path.name}: {meter}, {facts['notes']} notes"),
        "musicxml": lambda target: render_musicxml(target, voices, meter, sharps, title=path.stem, fermatas=fermatas),
        "score": lambda target: render_score_png(target, voices, meter, sharps, title=path.stem, fermatas=fermatas),
        "wav": lambda target: render_wav(path, target),
    }
    for name in (n for n in makers if n in renders):
        try:
            makers[name](render_path(path, name))
        except GenerateError as exc:  # a missing tool: the MIDI file stands, and the sidecar says what is missing
            facts.setdefault("render_errors", {})[name] = str(exc)
            continue
        facts[name] = str(render_path(path, name))
    return facts
