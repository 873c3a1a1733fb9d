"""Writing and reading MIDI files for note events, one track per voice.

Timing uses 960 ticks per quarter note, so every duration the encodings can
express (down to 1/8 and 1/6 of a quarter) lands on a whole tick. Writes are
atomic. A note-on always has its note-off in the same track, so no note hangs.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..errors import OptionError
from ..fileio import atomic_path
from .melody import Event

TICKS_PER_QUARTER = 960
# A few General MIDI programs by friendly name; any number 0-127 also works.
INSTRUMENTS = {
    "piano": 0, "harpsichord": 6, "organ": 19, "guitar": 24, "nylon-guitar": 24, "bass": 32,
    "violin": 40, "fiddle": 40, "viola": 41, "cello": 42, "strings": 48, "choir": 52,
    "trumpet": 56, "trombone": 57, "horn": 60, "sax": 65, "oboe": 68, "bassoon": 70,
    "clarinet": 71, "piccolo": 72, "flute": 73, "recorder": 74, "whistle": 78, "pan-flute": 75,
    "accordion": 21, "harmonica": 22, "bagpipe": 109, "banjo": 105, "harp": 46,
}


def instrument_program(name: str | int) -> int:
    """A General MIDI program number from a name or a number.

    Raises:
        OptionError: an unknown name, or a number outside 0-127 (named as `instrument`).
    """
    text = str(name).strip().lower()
    if text.isdigit() and 0 <= int(text) <= 127:
        return int(text)
    if text in INSTRUMENTS:
        return INSTRUMENTS[text]
    raise OptionError("instrument", f"expected a General MIDI number 0-127 or one of {', '.join(sorted(INSTRUMENTS))}, "
                                    f"received {name!r}")


def write_midi(path: Path, voices: list[list[Event]], bpm: float = 120.0, program: int = 0, velocity: int = 80,
               meter: str = "4/4", sharps: int = 0, pickup: Fraction = Fraction(0)) -> None:
    """Writes voices (each a list of events in time order) as a type-1 MIDI file.

    With a `pickup` (quarters before the first bar line, shorter than a bar), the file opens with a bar of
    the pickup's own time signature (1/8 for an eighth) and changes to `meter` at the first bar line, as
    notation programs write an anacrusis: every later bar line falls where the encoding has it.
    """
    import mido  # only MIDI files need it, never --help

    numerator, _, denominator = meter.partition("/")
    signatures = [(0, int(numerator), int(denominator))]
    bar = Fraction(4 * int(numerator), int(denominator))
    if 0 < pickup < bar:
        unit = next(d for d in (1, 2, 4, 8, 16, 32, 64) if (pickup * d / 4).denominator == 1)
        signatures = [(0, int(pickup * unit / 4), unit), (_ticks(pickup), int(numerator), int(denominator))]
    (_, top, bottom), later = signatures[0], signatures[1:]
    conductor = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
        mido.MetaMessage("time_signature", numerator=top, denominator=bottom, time=0),
        mido.MetaMessage("key_signature", key=_key_name(sharps), time=0),
    ])
    now = 0
    for tick, top, bottom in later:
        conductor.append(mido.MetaMessage("time_signature", numerator=top, denominator=bottom, time=tick - now))
        now = tick
    conductor.append(mido.MetaMessage("end_of_track", time=0))
    midi_file = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER, tracks=[conductor])
    for channel, events in enumerate(voices):
        channel = channel if channel < 9 else channel + 1  # channel 10 is percussion
        timed = []
        for event in events:
            if event.pitch is None:
                continue
            start, end = _ticks(event.onset), _ticks(event.onset + event.duration)
            timed.append((start, 1, mido.Message("note_on", note=event.pitch, velocity=velocity, channel=channel)))
            timed.append((end, 0, mido.Message("note_off", note=event.pitch, velocity=0, channel=channel)))
        track = mido.MidiTrack([mido.Message("program_change", program=program, channel=channel, time=0)])
        now = 0
        for tick, _, message in sorted(timed, key=lambda item: (item[0], item[1])):  # offs before ons
            track.append(message.copy(time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        midi_file.tracks.append(track)
    with atomic_path(Path(path), suffix=".mid") as tmp:
        midi_file.save(str(tmp))


def read_midi_notes(path: Path) -> list[list[tuple[Fraction, int, Fraction]]]:
    """Per track with notes: (onset, pitch, duration) in quarter notes, for checking files."""
    import mido  # only MIDI files need it, never --help

    midi_file = mido.MidiFile(str(path))
    tracks = []
    for track in midi_file.tracks:
        now, sounding, notes = 0, {}, []
        for message in track:
            now += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding[(message.channel, message.note)] = now
            elif message.type in ("note_off", "note_on") and (message.channel, message.note) in sounding:
                start = sounding.pop((message.channel, message.note))
                notes.append((Fraction(start, midi_file.ticks_per_beat), message.note, Fraction(now - start, midi_file.ticks_per_beat)))
        if notes:
            tracks.append(sorted(notes))
    return tracks


def _ticks(quarters: Fraction) -> int:
    return round(quarters * TICKS_PER_QUARTER)


_MAJOR_BY_SHARPS = {-7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C",
                    1: "G", 2: "D", 3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#"}


def _key_name(sharps: int) -> str:
    return _MAJOR_BY_SHARPS.get(max(-7, min(7, sharps)), "C")
