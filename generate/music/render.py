"""Rendering encoded music text to MIDI; never fails on malformed text."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from .chorale import VOICES, decode_chorale
from .melody import Event, decode_tune
from .midi import write_midi


def score_png_path(path: Path) -> Path:
    return path.with_suffix(".score.png")


def render_music(text: str, path: Path, encoding: str = "melody", bpm: float = 120.0, program: int = 0,
                 velocity: int = 80, png: bool = False, wav: bool = False, musicxml: bool = False,
                 score: bool = False) -> dict:
    """Decodes every piece in `text` and writes them one after another as MIDI.

    Melodies become one track; chorales one track per voice. With `png`,
    `wav`, `musicxml` or `score`, a piano roll, an audio rendering, a
    MusicXML score or an engraved score (`NAME.score.png`, LilyPond) goes
    beside the MIDI file, with the same name.

    Returns:
        Facts for the sidecar: pieces, notes, and characters the decoder dropped.
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
    if png:
        from .media import render_png

        render_png(path.with_suffix(".png"), voices, bar_lines, title=f"{path.name}: {meter}, {facts['notes']} notes")
        facts["png"] = str(path.with_suffix(".png"))
    if musicxml:
        from .media import render_musicxml

        render_musicxml(path.with_suffix(".musicxml"), voices, meter, sharps, title=path.stem, fermatas=fermatas)
        facts["musicxml"] = str(path.with_suffix(".musicxml"))
    if score:
        from .media import render_score_png

        render_score_png(score_png_path(path), voices, meter, sharps, title=path.stem, fermatas=fermatas)
        facts["score"] = str(score_png_path(path))
    if wav:
        from .media import render_wav

        render_wav(path, path.with_suffix(".wav"))
        facts["wav"] = str(path.with_suffix(".wav"))
    return facts
