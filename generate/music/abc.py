"""ABC notation out: a tune (or a chorale's four voices) as a folk player reads it.

Each note is spelled against the key signature the header states, with an
accidental wherever its letter differs from the signature or was altered
earlier in the bar (so readers that carry accidentals through a bar and
readers that do not both read the same pitches). Notes that cross a bar line
are split there and tied; the first bar may be a pickup.
"""

from __future__ import annotations

from fractions import Fraction

from .keys import MAJOR_KEYS
from .melody import Event

UNIT = Fraction(1, 2)  # L:1/8, in quarter notes
_SHARP_NAMES = ("C", "^C", "D", "^D", "E", "F", "^F", "G", "^G", "A", "^A", "B")
_FLAT_NAMES = ("C", "_D", "D", "_E", "E", "F", "_G", "G", "_A", "A", "_B", "B")
_ORDER_OF_SHARPS = "FCGDAEB"
VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")


def signature_alterations(sharps: int) -> dict[str, str]:
    """Letter -> its accidental under the key signature (`^` or `_`; letters left out are natural)."""
    if sharps >= 0:
        return {letter: "^" for letter in _ORDER_OF_SHARPS[:sharps]}
    return {letter: "_" for letter in _ORDER_OF_SHARPS[::-1][:-sharps]}


def _length(quarters: Fraction) -> str:
    multiple = Fraction(quarters) / UNIT
    if multiple == 1:
        return ""
    if multiple.denominator == 1:
        return str(multiple.numerator)
    return f"{multiple.numerator if multiple.numerator != 1 else ''}/{multiple.denominator}"


def _octave(letter: str, octave: int) -> str:
    """ABC's octave marks: C is middle C (C4), c the octave above, C, and c' further out."""
    if octave >= 5:
        return letter.lower() + "'" * (octave - 5)
    return letter + "," * (4 - octave)


def _bars(events: list[Event], bar_lines: list[Fraction]) -> list[list[tuple[Event, bool]]]:
    """The events bar by bar, split at bar lines; each piece says whether it ties into the next."""
    bars: list[list[tuple[Event, bool]]] = [[]]
    lines = sorted(b for b in bar_lines if b > 0)
    index = 0
    for event in events:
        start, end = event.onset, event.onset + event.duration
        while True:
            while index < len(lines) and lines[index] <= start:
                bars.append([])
                index += 1
            stop = end if index >= len(lines) or end <= lines[index] else lines[index]
            bars[-1].append((Event(start, event.pitch, stop - start), stop < end and event.pitch is not None))
            if stop >= end:
                break
            start = stop
    return [bar for bar in bars if bar]


def voice_abc(events: list[Event], bar_lines: list[Fraction], sharps: int) -> str:
    """One voice's body: notes, rests, ties and bar lines."""
    key = signature_alterations(sharps)
    names = _SHARP_NAMES if sharps >= 0 else _FLAT_NAMES
    written = []
    for bar in _bars(events, bar_lines):
        current = dict(key)  # each letter's accidental as this bar has it so far
        changed: set[str] = set()
        tokens = []
        for event, tied in bar:
            if event.pitch is None:
                tokens.append("z" + _length(event.duration))
                continue
            name = names[event.pitch % 12]
            letter, accidental = name[-1], name[:-1]
            # A held-over tie keeps its pitch; any other note states its accidental where a reader could doubt it.
            mark = ""
            if accidental != current.get(letter, "") or letter in changed:
                mark = accidental or "="
                current[letter] = accidental
                changed.add(letter)
            tokens.append(mark + _octave(letter, event.pitch // 12 - 1) + _length(event.duration) + ("-" if tied else ""))
        written.append(" ".join(tokens))
    return " | ".join(written) + " |]"


def to_abc(voices: list[list[Event]], meter: str, sharps: int, bar_lines: list[Fraction], title: str = "") -> str:
    """A whole ABC file: one tune, or a chorale's four voices as V:1 to V:4."""
    header = ["X:1", f"T:{title or 'Untitled'}", f"M:{meter}", "L:1/8", f"K:{MAJOR_KEYS[sharps % 15]}"]
    if len(voices) == 1:
        return "\n".join(header + [voice_abc(voices[0], bar_lines, sharps)]) + "\n"
    body = []
    for index, events in enumerate(voices):
        clef = " clef=bass" if index == 3 else (" clef=treble-8" if index == 2 else "")
        name = VOICE_NAMES[index] if len(voices) == len(VOICE_NAMES) else f"Voice {index + 1}"
        body += [f"V:{index + 1} name=\"{name}\"{clef}", voice_abc(events, bar_lines, sharps)]
    return "\n".join(header + body) + "\n"
