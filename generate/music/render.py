"""Rendering encoded music text to MIDI; never fails on malformed text."""

from __future__ import annotations

from pathlib import Path

from .melody import Event, decode_tune
from .midi import write_midi


def render_melody(text: str, path: Path, bpm: float = 120.0, program: int = 0, velocity: int = 80) -> dict:
    """Decodes every tune in `text` and writes them one after another as MIDI.

    Returns:
        Facts for the sidecar: tunes, notes, and characters the decoder dropped.
    """
    events: list[Event] = []
    meter, sharps, tunes, dropped = "4/4", 0, 0, 0
    for line in text.splitlines():
        if not line.strip():
            continue
        tune, report = decode_tune(line.strip())
        dropped += report.dropped
        if tunes == 0:
            meter, sharps = tune.meter, tune.sharps
        offset = events[-1].onset + events[-1].duration if events else 0
        events.extend(Event(e.onset + offset, e.pitch, e.duration) for e in tune.events)
        tunes += 1
    write_midi(path, [events], bpm=bpm, program=program, velocity=velocity, meter=meter, sharps=sharps)
    return {"tunes": tunes, "notes": sum(e.pitch is not None for e in events), "dropped_chars": dropped}
