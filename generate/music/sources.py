"""Reading music with music21 into `melody.Tune` events.

A score becomes one tune: repeats are expanded (so training data and MIDI
output agree), tied notes are merged, grace notes are dropped, chords and
polyphony reduce to their highest pitch, and gaps become rests. Multi-tune
ABC files are read one tune at a time with `number=`, because parsing the
whole file builds a slow opus.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

from .melody import Event, Tune

log = logging.getLogger(__name__)
_ABC_TUNE_NUMBER = re.compile(r"^X:\s*(\d+)", re.MULTILINE)


def abc_tune_numbers(path: Path) -> list[int]:
    """The `X:` numbers of the tunes in an ABC file, in order."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [int(n) for n in _ABC_TUNE_NUMBER.findall(text)]


def parse_abc_tune(path: Path, number: int):
    from music21 import converter

    return converter.parse(str(path), number=number, format="abc")


def tune_from_score(score) -> Tune:
    """Reduces a music21 score (or part) to one monophonic `Tune`.

    Raises:
        ValueError: the score holds no notes.
    """
    from music21 import key, meter, stream

    try:
        score = score.expandRepeats()
    except Exception as exc:  # music21 raises several types for odd repeat marks
        log.debug("repeats left unexpanded: %s", exc)
    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    line = parts[0] if len(parts) == 1 else score.chordify()
    line = line.stripTies(inPlace=False)
    signatures = list(line.recurse().getElementsByClass(meter.TimeSignature))
    keys = list(line.recurse().getElementsByClass((key.KeySignature, key.Key)))
    tune = Tune(meter=signatures[0].ratioString if signatures else "4/4", sharps=keys[0].sharps if keys else 0)
    measures = list(line.getElementsByClass(stream.Measure))
    tune.bar_lines = sorted({Fraction(m.offset).limit_denominator(10_000) for m in measures[1:]})
    now = Fraction(0)
    for element in line.flatten().notesAndRests:
        duration = Fraction(element.quarterLength).limit_denominator(10_000)
        if duration == 0:  # grace notes
            continue
        onset = Fraction(element.offset).limit_denominator(10_000)
        if onset < now:  # overlapping notes in a "monophonic" line: keep the earlier one
            if onset + duration <= now:
                continue
            duration, onset = onset + duration - now, now
        if onset > now:
            tune.events.append(Event(now, None, onset - now))
        if element.isRest:
            pitch = None
        else:
            pitch = max(p.midi for p in element.pitches)
        if tune.events and pitch is None and tune.events[-1].pitch is None and tune.events[-1].onset + tune.events[-1].duration == onset:
            last = tune.events.pop()  # merge adjacent rests
            tune.events.append(Event(last.onset, None, last.duration + duration))
        else:
            tune.events.append(Event(onset, pitch, duration))
        now = onset + duration
    if not any(e.pitch is not None for e in tune.events):
        raise ValueError("no notes")
    return tune
