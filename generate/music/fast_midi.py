"""Reading MIDI files fast, with symusic (C++), into `melody.Tune` and `chorale.Chorale`.

music21 spends seconds to minutes on a multi-track MIDI file; symusic reads
one in about a millisecond. This module turns its notes into the same events
the music21 path (`sources.py`) makes, by the same rules:

- times are quantised as music21 quantises MIDI: to the nearer of the
  sixteenth-note and eighth-triplet grids (1/4 and 1/3 of a quarter), with a
  note never shorter than one grid step;
- a melody is the highest sounding pitch at every moment (music21's
  `chordify`, then the top note of each chord); a note held across a change
  below it stays one note, and gaps become rests;
- drums (MIDI channel 10) never enter a melody;
- the meter and key are the file's first time and key signatures (4/4 and no
  sharps without them), and bars follow the time signatures from time 0.

Which tracks a melody is read from is `track`: `auto` (one track, by the
heuristic in `choose_melody_track`), `all` (every pitched track, as the
music21 path reads a file), a track's index, or its name. A chorale takes four
pitched tracks as soprano, alto, tenor and bass, in their order; a file with
other than four splits the sounding notes by pitch (`split_voices`).

Files that are not usable raise `MidiSkip` with the reason a corpus build
counts: not MIDI, truncated, type 2, no tracks, too many tracks, drums only,
an absurd tempo, no notes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .chorale import VOICES, Chorale
from .melody import Event, Tune

GRID_DIVISORS = (4, 3)  # music21's quantisation: multiples of 1/4 and 1/3 of a quarter
UNITS = 12  # times are whole numbers of 1/12 quarter notes (both grids) until they become `Event`s
MAX_TRACKS = 256  # more than this is not music a person arranged
TEMPO_RANGE = (10.0, 1000.0)  # quarter notes per minute a real piece keeps to
MELODY_NAME_HINTS = ("melody", "lead", "vocal", "voice", "solo", "sing", "tune", "theme")
BASS_NAME_HINTS = ("bass",)
BASS_PROGRAMS = range(32, 40)  # General MIDI's basses


class MidiSkip(Exception):
    """A file a corpus skips; the message is the reason, counted and reported."""


@dataclass(frozen=True)
class TrackInfo:
    """One track, as `generate corpus inspect` shows it."""

    index: int  # position among the file's tracks (symusic splits them by channel and program)
    name: str
    program: int  # General MIDI program
    drum: bool  # MIDI channel 10
    notes: int
    low: int  # lowest and highest pitch (0, 0 without notes)
    high: int
    mean_pitch: float
    monophony: float  # share of notes that start after the previous one ended: 1.0 is a single line


@dataclass
class MidiFile:
    """A parsed file: its tracks' notes in quarter notes, and what it says about meter and key."""

    tracks: list[TrackInfo]
    notes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per track: onsets, durations (UNITS, quantised), pitches

    def note_list(self, indices: list[int]) -> list[tuple[int, int, int]]:
        """(onset, duration, pitch) of the tracks `indices`, merged, in time order."""
        onsets, durations, pitches = (np.concatenate([self.notes[i][k] for i in indices]) for k in range(3))
        order = np.lexsort((pitches, durations, onsets))
        return list(zip(onsets[order].tolist(), durations[order].tolist(), pitches[order].tolist()))
    meter: str
    sharps: int
    meters: list[tuple[int, int, int]]  # (time in UNITS, numerator, denominator) of every time signature


def read_midi(path: Path | str) -> MidiFile:
    """Parses a MIDI file with symusic.

    Raises:
        MidiSkip: the file cannot be used, with the reason.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            header = handle.read(14)
    except OSError as exc:
        raise MidiSkip(f"unreadable ({exc.strerror})") from None
    if header[:4] != b"MThd" or int.from_bytes(header[4:8], "big") != 6 or len(header) < 14:
        raise MidiSkip("not a MIDI file")
    midi_format, declared_tracks = int.from_bytes(header[8:10], "big"), int.from_bytes(header[10:12], "big")
    if midi_format == 2:
        raise MidiSkip("type-2 MIDI (independent sequences)")
    if declared_tracks == 0:
        raise MidiSkip("no tracks")
    if declared_tracks > MAX_TRACKS:
        raise MidiSkip(f"too many tracks ({declared_tracks}, expected at most {MAX_TRACKS})")
    import symusic  # the C++ reader: only parsing needs it

    try:
        score = symusic.Score(str(path))
    except Exception as exc:  # symusic raises RuntimeError with its parser's message
        message = str(exc).lower()
        raise MidiSkip("truncated or damaged" if "length" in message or "iostream" in message else
                       f"unreadable ({str(exc).splitlines()[0][:80]})") from None
    tpq = score.ticks_per_quarter
    if tpq <= 0:
        raise MidiSkip("SMPTE timing (no ticks per quarter note)")
    for tempo in score.tempos:
        if not TEMPO_RANGE[0] <= tempo.qpm <= TEMPO_RANGE[1]:
            raise MidiSkip(f"absurd tempo ({tempo.qpm:.4g} quarter notes a minute)")
    if len(score.tracks) > MAX_TRACKS:
        raise MidiSkip(f"too many tracks ({len(score.tracks)}, expected at most {MAX_TRACKS})")
    tracks, notes = [], []
    for index, track in enumerate(score.tracks):
        arrays = track.notes.numpy()
        ticks = arrays["time"].astype(np.int64)
        onsets = quantise(ticks, tpq)
        durations = np.maximum(quantise(ticks + arrays["duration"].astype(np.int64), tpq) - onsets,
                               quantise(arrays["duration"].astype(np.int64), tpq, zero_allowed=False))
        order = np.lexsort((arrays["pitch"], durations, onsets))
        onsets, durations, pitches = onsets[order], durations[order], arrays["pitch"][order].astype(np.int64)
        notes.append((onsets, durations, pitches))
        tracks.append(_describe(index, track, onsets, durations, pitches))
    if not any(t.notes for t in tracks):
        raise MidiSkip("no notes")
    if all(t.drum for t in tracks if t.notes):
        raise MidiSkip("drums only")
    meters = [(int(quantise(np.array([s.time]), tpq)[0]), s.numerator, s.denominator)
              for s in score.time_signatures if s.numerator > 0 and s.denominator > 0] or [(0, 4, 4)]
    keys = [k for k in score.key_signatures if -7 <= k.key <= 7]
    first = min(meters)
    return MidiFile(tracks, notes, f"{first[1]}/{first[2]}", keys[0].key if keys else 0, sorted(meters))


def quantise(ticks: np.ndarray, tpq: int, zero_allowed: bool = True) -> np.ndarray:
    """Tick times to the nearest point on the nearer grid (1/4 or 1/3 of a quarter; ties to 1/4), in UNITS.

    With `zero_allowed=False` (durations), nothing becomes 0: the smallest step is taken instead.
    """
    best_error = best = None
    for divisor in GRID_DIVISORS:
        steps = (2 * ticks * divisor + tpq) // (2 * tpq)  # nearest multiple of 1/divisor, halves rounded up
        if not zero_allowed:
            steps = np.maximum(steps, 1)
        match = steps * (UNITS // divisor)
        error = np.abs(ticks * UNITS - match * tpq)  # in 1/(UNITS * tpq) quarters: exact integers
        if best is None:
            best, best_error = match, error
        else:
            better = error < best_error
            best, best_error = np.where(better, match, best), np.where(better, error, best_error)
    return best


def _describe(index: int, track, onsets: np.ndarray, durations: np.ndarray, pitches: np.ndarray) -> TrackInfo:
    """`onsets`, `durations` and `pitches` in time order."""
    if not len(pitches):
        return TrackInfo(index, track.name or "", int(track.program), bool(track.is_drum), 0, 0, 0, 0.0, 0.0)
    overlapping = int(np.count_nonzero(onsets[1:] < onsets[:-1] + durations[:-1]))
    return TrackInfo(index, track.name or "", int(track.program), bool(track.is_drum), len(pitches),
                     int(pitches.min()), int(pitches.max()), float(pitches.mean()),
                     1.0 - overlapping / max(len(pitches) - 1, 1))


def choose_melody_track(tracks: list[TrackInfo]) -> TrackInfo:
    """The `auto` choice: the pitched track that most looks like a tune.

    Each pitched track with notes scores: 2 x its monophony (a tune is one
    line; chords and pads are not), + its mean pitch above middle C in
    octaves (tunes sit above their accompaniment), + 2 if its name says melody,
    lead, vocal, voice, solo, sing, tune or theme, - 3 if it is a bass (by name
    or General MIDI program 32-39), + 0.5 x log10 of its note count (a track
    of a few notes is an effect, not the tune). The highest score wins; ties go
    to the earlier track.

    Raises:
        MidiSkip: no pitched track has notes.
    """
    candidates = [t for t in tracks if not t.drum and t.notes]
    if not candidates:
        raise MidiSkip("drums only")

    def score(t: TrackInfo) -> float:
        name = t.name.lower()
        named = any(hint in name for hint in MELODY_NAME_HINTS)
        bass = any(hint in name for hint in BASS_NAME_HINTS) or t.program in BASS_PROGRAMS
        return 2 * t.monophony + (t.mean_pitch - 60) / 12 + 2 * named - 3 * bass + 0.5 * math.log10(t.notes)

    return max(candidates, key=lambda t: (score(t), -t.index))


def select_tracks(midi: MidiFile, track: str) -> list[int]:
    """The indices of the tracks a melody is read from, for `--track auto|all|INDEX|NAME`.

    Raises:
        MidiSkip: the named or numbered track is missing, a drum track, or empty.
    """
    pitched = [t for t in midi.tracks if not t.drum and t.notes]
    if track == "all":
        return [t.index for t in pitched]
    if track == "auto":
        return [choose_melody_track(midi.tracks).index]
    if track.isdigit():
        found = [t for t in midi.tracks if t.index == int(track)]
    else:
        found = [t for t in midi.tracks if t.name.strip().lower() == track.strip().lower()]
    if not found:
        raise MidiSkip(f"no track {track!r}")
    if found[0].drum or not found[0].notes:
        raise MidiSkip(f"track {track!r} is {'drums' if found[0].drum else 'empty'}")
    return [found[0].index]


def tune_from_midi(midi: MidiFile, track: str = "auto") -> Tune:
    """The melody of the chosen tracks: the highest sounding pitch at every moment.

    Raises:
        MidiSkip: no usable track.
    """
    line = skyline(midi.note_list(select_tracks(midi, track)))
    if not any(pitch is not None for _, pitch, _ in line):
        raise MidiSkip("no notes")
    end = _end(line)
    bar_end = next_bar(midi.meters, end)
    if bar_end > end:  # music21 fills the last bar with a rest
        line.append((end, None, bar_end - end))
    bars = bar_lines(midi.meters, end)
    if isinstance(bar_end, int) and all((b * UNITS).denominator == 1 for b in bars):
        # Integer times all the way to the encoder: no Fractions for the thousands of notes of a file.
        return Tune(midi.meter, midi.sharps, [Event(*e) for e in line], [int(b * UNITS) for b in bars], unit=UNITS)
    return Tune(midi.meter, midi.sharps, _events(line), bars)


def chorale_from_midi(midi: MidiFile) -> Chorale:
    """Four voices: four pitched tracks in order, or the notes split by pitch (`split_voices`).

    Raises:
        MidiSkip: nothing to make four voices of.
    """
    pitched = [t.index for t in midi.tracks if not t.drum and t.notes]
    if len(pitched) == VOICES:
        voices = [skyline(midi.note_list([i])) for i in pitched]
    else:
        voices = split_voices(midi.note_list(pitched))
    end = max(_end(v) for v in voices)
    for voice in voices:  # every voice lasts to the end, as the music21 path makes them
        if not voice:
            voice.append((0, None, end))
            continue
        last_end = _end(voice)
        if last_end < end:
            if voice[-1][1] is None:
                voice[-1] = (voice[-1][0], None, end - voice[-1][0])
            else:
                voice.append((last_end, None, end - last_end))
    return Chorale(midi.meter, midi.sharps, [_events(v) for v in voices], bar_lines(midi.meters, end), [])


def skyline(notes: list[tuple[int, int, int]]) -> list[tuple[int, int | None, int]]:
    """Monophonic (onset, pitch or None, duration) from (onset, duration, pitch) notes: the highest at every moment.

    A note stays one event while it is the highest, even when notes below it
    change; it is cut where a higher note starts, and comes back (as a new
    event, since MIDI sounds it again) only if it is struck again. Gaps are rests.
    """
    if all(a[0] + a[1] <= b[0] for a, b in zip(notes, notes[1:])):  # already one line: rests fill the gaps
        line, now = [], 0
        for on, dur, pitch in notes:
            if on > now:
                line.append((now, None, on - now))
            line.append((on, pitch, dur))
            now = on + dur
        return line
    boundaries = sorted({t for on, dur, _ in notes for t in (on, on + dur)})
    pending = sorted((on, on + dur, p, k) for k, (on, dur, p) in enumerate(notes))
    events: list[list] = []  # [onset, pitch, duration], extended in place
    active: list[tuple[int, int, int]] = []  # (pitch, end, note id) sounding
    position, current = 0, None  # current: (pitch, note id) of the event being extended, None for a rest
    for start, end in zip(boundaries, boundaries[1:]):
        while position < len(pending) and pending[position][0] <= start:
            _, off, pitch, k = pending[position]
            active.append((pitch, off, k))
            position += 1
        active = [a for a in active if a[1] > start]
        top = max(active, default=None, key=lambda a: (a[0], -a[2]))
        key = (top[0], top[2]) if top else None
        if events and key == current:
            events[-1][2] = end - events[-1][0]
        else:
            events.append([start, top[0] if top else None, end - start])
        current = key
    if events and events[0][0] > 0:
        events.insert(0, [0, None, events[0][0]])
    return [tuple(e) for e in events]


def split_voices(notes: list[tuple[int, int, int]]) -> list[list[tuple[int, int | None, int]]]:
    """Four voices of (onset, pitch or None, duration) from notes in any number of tracks, by pitch.

    At every moment the sounding pitches, highest first, go to soprano,
    alto, tenor and bass. With fewer than four sounding, the highest is the
    soprano and the lowest the bass, and the inner voices rest; with more, the
    inner voices take the second and third highest and the others are dropped.

    Raises:
        MidiSkip: no moment holds a note.
    """
    boundaries = sorted({t for on, dur, _ in notes for t in (on, on + dur)})
    voices: list[list[list]] = [[] for _ in range(VOICES)]
    pending = sorted((on, on + dur, p) for on, dur, p in notes)
    active: list[tuple[int, int]] = []  # (pitch, end) sounding
    position = 0
    for start, end in zip(boundaries, boundaries[1:]):
        struck = set()
        while position < len(pending) and pending[position][0] <= start:
            _, off, pitch = pending[position]
            active.append((pitch, off))
            struck.add(pitch)
            position += 1
        active = [a for a in active if a[1] > start]
        sounding = sorted({p for p, _ in active}, reverse=True)
        if len(sounding) >= VOICES:
            chosen = [sounding[0], sounding[1], sounding[2], sounding[-1]]
        else:
            chosen = [sounding[0] if sounding else None, sounding[1] if len(sounding) > 2 else None,
                      sounding[2] if len(sounding) > 3 else None, sounding[-1] if len(sounding) > 1 else None]
        for voice, pitch in zip(voices, chosen):
            if voice and voice[-1][1] == pitch and (pitch is None or pitch not in struck):
                voice[-1][2] = end - voice[-1][0]
            else:
                voice.append([start, pitch, end - start])
    if not any(e[1] is not None for v in voices for e in v):
        raise MidiSkip("no notes")
    return [[tuple(e) for e in v] for v in voices]


def bar_lines(meters: list[tuple[int, int, int]], end: int) -> list[Fraction]:
    """Where bars begin after the first, before `end` (UNITS): each time signature's bars from its own time
    (4/4 before the first)."""
    meters = sorted(meters) or [(0, 4, 4)]
    if meters[0][0] > 0:
        meters.insert(0, (0, 4, 4))
    starts = set()
    for i, (time, numerator, denominator) in enumerate(meters):
        stop = meters[i + 1][0] if i + 1 < len(meters) else end
        length = Fraction(numerator * 4 * UNITS, denominator)
        length = int(length) if length.denominator == 1 else length  # whole units for every usual meter
        at = time
        while length > 0 and at < stop:
            starts.add(at)
            at += length
    return [_quarters(t) for t in sorted(starts) if 0 < t < end]


def next_bar(meters: list[tuple[int, int, int]], time: int) -> int | Fraction:
    """The first bar line at or after `time` (UNITS), under the time signatures."""
    meters = sorted(meters) or [(0, 4, 4)]
    if meters[0][0] > 0:
        meters.insert(0, (0, 4, 4))
    start, numerator, denominator = [m for m in meters if m[0] <= time][-1]
    length = Fraction(numerator * 4 * UNITS, denominator)
    bars = math.ceil((time - start) / length) if length > 0 else 0
    at = start + bars * length
    return int(at) if at.denominator == 1 else at


def _end(events: list[tuple[int, int | None, int]]) -> int:
    return events[-1][0] + events[-1][2] if events else 0


def _events(line: list[tuple[int, int | None, int]]) -> list[Event]:
    return [Event(_quarters(onset), pitch, _quarters(duration)) for onset, pitch, duration in line]


@functools.lru_cache(maxsize=1 << 16)  # the same few thousand times recur in every file
def _quarters(units: int | Fraction) -> Fraction:
    return Fraction(units, UNITS)


def inspect_file(path: Path | str, encoding: str = "melody", track: str = "auto") -> dict:
    """What `generate corpus inspect` shows for one MIDI file: its tracks, and which of them a corpus takes."""
    try:
        midi = read_midi(path)
    except MidiSkip as exc:
        return {"file": str(path), "skip": str(exc), "tracks": []}
    pitched = [t.index for t in midi.tracks if not t.drum and t.notes]
    note = ""
    try:
        if encoding == "chorale":
            taken = pitched
            note = ("soprano, alto, tenor, bass: the four pitched tracks in order" if len(pitched) == VOICES else
                    f"{len(pitched)} pitched track(s): split by pitch into soprano, alto, tenor and bass")
        else:
            taken = select_tracks(midi, track)
            note = f"melody from --track {track}" + (": the top line of the tracks taken" if len(taken) > 1 else "")
    except MidiSkip as exc:
        return {"file": str(path), "skip": str(exc), "tracks": [_track_dict(t, False) for t in midi.tracks]}
    return {"file": str(path), "meter": midi.meter, "sharps": midi.sharps, "taken": note,
            "tracks": [_track_dict(t, t.index in taken) for t in midi.tracks]}


def _track_dict(t: TrackInfo, taken: bool) -> dict:
    return {"index": t.index, "name": t.name, "program": t.program, "drum": t.drum, "notes": t.notes,
            "low": t.low, "high": t.high, "monophony": round(t.monophony, 3), "taken": taken}
