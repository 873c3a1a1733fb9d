"""The `melody` encoding: monophonic tunes as text, about two characters per note.

A tune is one line:

    M:6/8 K:1|Vh<hVh|X9Vh<9|...\n

- the header `M:<meter> K:<sharps>|` gives the time signature and the key
  signature as a count of sharps (negative for flats);
- each note is a pitch character followed by one or more duration
  characters, whose values add up (so 5/6 of a quarter is `6` + `4`);
- pitch characters: `A`..`Z` then `a`..`z` are MIDI 48..99; `_` is a rest;
- `-` followed by durations continues the previous note (a tie across a bar);
- `|` ends each bar, and the newline ends the tune.

Durations are in quarter notes, from a table of common values (triplet 32nd
up to a breve, with dots and triplets); sums of them spell every multiple of
1/24 quarter from 1/12 up to 64 quarters. Anything else, such as quintuplets,
is approximated, and the tune no longer round-trips exactly. Lost on purpose:
pitch spelling (C# vs Db), grace notes, dynamics, articulations and lyrics.
Pitches outside 48..99 move by octaves into range.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

PITCH_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LOWEST_PITCH = 48  # MIDI note of PITCH_CHARS[0]
HIGHEST_PITCH = LOWEST_PITCH + len(PITCH_CHARS) - 1
REST = "_"
TIE = "-"
BAR = "|"
# Duration characters and their lengths in quarter notes.
DURATIONS: dict[str, Fraction] = {
    "0": Fraction(1, 12), "1": Fraction(1, 8), "2": Fraction(1, 6), "3": Fraction(1, 4), "4": Fraction(1, 3),
    "5": Fraction(3, 8), "6": Fraction(1, 2), "7": Fraction(2, 3), "8": Fraction(3, 4),
    "9": Fraction(1), "=": Fraction(4, 3), ">": Fraction(3, 2), "?": Fraction(2),
    "@": Fraction(3), "^": Fraction(4), "`": Fraction(6), "{": Fraction(8),
}
_UNIT = 24  # every table duration is a whole number of 1/24 quarters
_MAX_UNITS = 64 * _UNIT


class Event(NamedTuple):
    """One note or rest. A named tuple, not a dataclass: corpora make millions, and a tuple is made 5x faster."""

    onset: Fraction  # quarter notes from the start of the tune
    pitch: int | None  # MIDI note number, or None for a rest
    duration: Fraction  # quarter notes


@dataclass
class Tune:
    meter: str = "4/4"  # time signature, e.g. "6/8"
    sharps: int = 0  # key signature: sharps (> 0) or flats (< 0)
    events: list[Event] = field(default_factory=list)  # notes and rests in time order
    bar_lines: list[Fraction] = field(default_factory=list)  # onsets where a new bar begins
    # 0: times are Fractions of a quarter note. N > 0: whole numbers of 1/N quarter notes, as the fast
    # MIDI path makes them for the encoder (`in_quarters` turns them into Fractions).
    unit: int = 0

    def in_quarters(self) -> Tune:
        """This tune with its times as Fractions of a quarter note."""
        if not self.unit:
            return self
        def q(value: int) -> Fraction:
            return Fraction(value, self.unit)
        return Tune(self.meter, self.sharps, [Event(q(e.onset), e.pitch, q(e.duration)) for e in self.events],
                    [q(b) for b in self.bar_lines])


@dataclass
class DecodeReport:
    dropped: int = 0  # characters or events the decoder skipped or repaired

    def __iadd__(self, other: DecodeReport) -> DecodeReport:
        self.dropped += other.dropped
        return self


def pitch_char(midi: int, table: str = PITCH_CHARS, lowest: int = LOWEST_PITCH) -> str:
    """The character for a MIDI pitch, moved by octaves into the table's range."""
    while midi < lowest:
        midi += 12
    while midi > lowest + len(table) - 1:
        midi -= 12
    return table[midi - lowest]


@functools.lru_cache(maxsize=1)
def _decompositions() -> list[tuple[str, ...] | None]:
    """Fewest duration characters summing to n/24 quarters, for every n up to 64 quarters."""
    coins = sorted(((int(v * _UNIT), c) for c, v in DURATIONS.items()), reverse=True)
    best: list[tuple[str, ...] | None] = [None] * (_MAX_UNITS + 1)
    best[0] = ()
    for n in range(1, _MAX_UNITS + 1):
        for units, char in coins:
            if units <= n and best[n - units] is not None:
                candidate = (char,) + best[n - units]
                if best[n] is None or len(candidate) < len(best[n]):
                    best[n] = candidate
    return best


@functools.lru_cache(maxsize=4096)  # a corpus uses a few dozen durations, millions of times
def duration_chars(duration: Fraction) -> tuple[str, bool]:
    """Encodes a duration; returns (characters, exact)."""
    units = duration * _UNIT
    n = min(max(round(units), 2), _MAX_UNITS)  # at least a triplet 32nd
    exact = units == n and _decompositions()[n] is not None
    while _decompositions()[n] is None:  # only 1/24 has no spelling; take the next one up
        n += 1
    return "".join(sorted(_decompositions()[n], key=lambda c: -DURATIONS[c])), exact


def encode_tune(tune: Tune) -> tuple[str, bool]:
    """Encodes one tune as a line of text; returns (text, exact)."""
    exact = True
    parts = [f"M:{tune.meter} K:{tune.sharps}{BAR}"]
    bars_q = sorted(b for b in set(tune.bar_lines) if b > 0)
    # Whole numbers of 1/scale quarter notes: integer arithmetic, not Fractions, in the loop below.
    scale = tune.unit or 1
    if not tune.unit:
        for time in itertools.chain((t for e in tune.events for t in (e.onset, e.duration)), bars_q):
            if scale % time.denominator:
                scale = math.lcm(scale, time.denominator)
    bars = [b if tune.unit else b.numerator * (scale // b.denominator) for b in bars_q]
    spell: dict[int, tuple[str, bool]] = {}  # this tune's durations, spelled once each
    symbols: dict[int | None, str] = {None: REST}
    append = parts.append
    bar_index, bar_count = 0, len(bars)
    next_bar = bars[0] if bars else None
    for onset, pitch, duration in tune.events:
        if tune.unit:
            start, end = onset, onset + duration
        else:
            start = onset.numerator * (scale // onset.denominator)
            end = start + duration.numerator * (scale // duration.denominator)
        if pitch not in symbols:
            symbols[pitch] = pitch_char(pitch)
            exact &= LOWEST_PITCH <= pitch <= HIGHEST_PITCH
        symbol = symbols[pitch]
        while True:
            # Split the event at every bar line it crosses; the pieces after the first are ties.
            while next_bar is not None and next_bar <= start:
                append(BAR)
                bar_index += 1
                next_bar = bars[bar_index] if bar_index < bar_count else None
            stop = end if next_bar is None or end < next_bar else next_bar
            units = stop - start
            if units not in spell:
                spell[units] = duration_chars(Fraction(units, scale))
            chars, piece_exact = spell[units]
            exact &= piece_exact
            append(symbol + chars)
            symbol, start = TIE, stop
            if start >= end:
                break
    append(BAR)
    return "".join(parts), exact


def decode_tune(line: str) -> tuple[Tune, DecodeReport]:
    """Decodes one line, repairing what it must; never raises.

    A broken header falls back to 4/4 in C; stray characters are skipped; a
    pitch without a duration lasts a quarter; a tie with nothing to extend is
    dropped. Each repair counts in the report.
    """
    report = DecodeReport()
    tune = Tune()
    tune.meter, tune.sharps, body = split_header(line, report)
    now = Fraction(0)
    pending: tuple[int | None, Fraction] | None = None  # (pitch or None, duration so far)
    pending_onset = now
    symbol: str | None = None

    def flush():
        nonlocal pending
        if pending is not None:
            pitch, duration = pending
            if duration == 0:
                duration = Fraction(1)
                report.dropped += 1
            tune.events.append(Event(pending_onset, pitch, duration))
            pending = None

    for char in body:
        if char in DURATIONS:
            if pending is None and symbol == TIE and tune.events:
                last = tune.events.pop()  # a tie extends the last note
                pending, pending_onset = (last.pitch, last.duration), last.onset
            if pending is None:
                report.dropped += 1
                continue
            pending = (pending[0], pending[1] + DURATIONS[char])
            continue
        if char in PITCH_CHARS or char == REST:
            flush()
            pending_onset = tune.events[-1].onset + tune.events[-1].duration if tune.events else Fraction(0)
            pending = (None if char == REST else LOWEST_PITCH + PITCH_CHARS.index(char), Fraction(0))
        elif char == TIE:
            flush()
        elif char == BAR:
            flush()
            end = tune.events[-1].onset + tune.events[-1].duration if tune.events else Fraction(0)
            if end > 0 and (not tune.bar_lines or tune.bar_lines[-1] != end):
                tune.bar_lines.append(end)
        elif not char.isspace():
            report.dropped += 1
        symbol = char
    flush()
    if tune.bar_lines and tune.events and tune.bar_lines[-1] == tune.events[-1].onset + tune.events[-1].duration:
        tune.bar_lines.pop()  # the closing bar line starts no bar
    return tune, report


def split_header(line: str, report: DecodeReport) -> tuple[str, int, str]:
    """(meter, sharps, body) of an encoded line; a missing or broken header gives 4/4 in C.

    A line that starts a header but never closes it holds nothing usable.
    """
    if line.startswith("M:") and BAR in line:
        header, body = line.split(BAR, 1)
        meter, sharps = _parse_header(header, report)
        return meter, sharps, body
    if line.startswith("M:"):
        report.dropped += 1
        return "4/4", 0, ""
    return "4/4", 0, line


def _parse_header(header: str, report: DecodeReport) -> tuple[str, int]:
    meter, sharps = "4/4", 0
    for token in header.split():
        key, _, value = token.partition(":")
        if key == "M" and _valid_meter(value):
            meter = value
        elif key == "K" and value.lstrip("-").isdigit() and abs(int(value)) <= 7:
            sharps = int(value)
        else:
            report.dropped += 1
    return meter, sharps


def meter_quarters(meter: str) -> Fraction:
    """How many quarter notes a bar of `meter` ("6/8") holds."""
    top, _, bottom = meter.partition("/")
    return Fraction(4 * int(top), int(bottom))


def _valid_meter(text: str) -> bool:
    top, _, bottom = text.partition("/")
    return top.isdigit() and bottom in ("1", "2", "4", "8", "16", "32") and 0 < int(top) <= 32
