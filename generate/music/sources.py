"""Reading music with music21 into `melody.Tune` events.

A score becomes one tune: repeats are expanded (so training data and MIDI
output agree), tied notes are merged, grace notes are dropped, chords and
polyphony reduce to their highest pitch, and gaps become rests. Multi-tune
ABC files are read one tune at a time with `number=`, because parsing the
whole file builds a slow opus.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from fractions import Fraction
from pathlib import Path

from .chorale import VOICES, Chorale
from .melody import Event, Tune

log = logging.getLogger(__name__)
_ABC_TUNE_NUMBER = re.compile(r"^X:\s*(\d+)", re.MULTILINE)


def abc_tune_numbers(path: Path) -> list[int]:
    """The `X:` numbers of the tunes in an ABC file, in order."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [int(n) for n in _ABC_TUNE_NUMBER.findall(text)]


def parse_abc_tune(path: Path, number: int):
    from music21 import converter  # music21 takes seconds to import: only parsing needs it

    return converter.parse(str(path), number=number, format="abc")


def shifted(piece, semitones: int, sharps: int):
    """A copy of a Tune or Chorale moved by `semitones`, with a new key signature."""
    def move(events):
        return [Event(e.onset, None if e.pitch is None else e.pitch + semitones, e.duration) for e in events]

    if semitones == 0:
        return piece
    if isinstance(piece, Chorale):
        return dataclasses.replace(piece, sharps=sharps, voices=[move(v) for v in piece.voices])
    return dataclasses.replace(piece, sharps=sharps, events=move(piece.events))


def _is_percussion(part) -> bool:
    # music21 reads MIDI channel 10 as Unpitched notes under a part named "Percussion".
    notes = list(part.recurse().notes)
    return bool(notes) and not any(getattr(n, "pitches", ()) for n in notes)


def _expand_repeats(score):
    try:
        return score.expandRepeats()
    except Exception as exc:  # music21 raises several types for odd repeat marks
        log.debug("repeats left unexpanded: %s", exc)
        return score


def chorale_from_score(score) -> Chorale:
    """Reads a four-part score (soprano, alto, tenor, bass) as a `Chorale`.

    Raises:
        ValueError: the score does not have exactly four parts, or has no notes.
    """
    from music21 import expressions, stream  # music21 takes seconds to import: only parsing needs it

    score = _expand_repeats(score)
    parts = list(score.parts) if isinstance(score, stream.Score) else []
    if len(parts) != VOICES:
        raise ValueError(f"expected four voices, found {len(parts)} part(s)")
    tunes = [tune_from_score(part, expand=False) for part in parts]
    end = max(t.events[-1].onset + t.events[-1].duration for t in tunes)
    for tune in tunes:  # every voice lasts to the end, so the encoded form is canonical
        last = tune.events[-1]
        if last.onset + last.duration < end:
            if last.pitch is None:
                tune.events[-1] = Event(last.onset, None, end - last.onset)
            else:
                tune.events.append(Event(last.onset + last.duration, None, end - last.onset - last.duration))
    soprano = parts[0].stripTies(inPlace=False).flatten().notes
    fermatas = sorted({Fraction(n.offset).limit_denominator(10_000) for n in soprano
                       if any(isinstance(e, expressions.Fermata) for e in n.expressions)})
    return Chorale(tunes[0].meter, tunes[0].sharps, [t.events for t in tunes], tunes[0].bar_lines, fermatas)


def tune_from_score(score, expand: bool = True) -> Tune:
    """Reduces a music21 score (or part) to one monophonic `Tune`.

    Raises:
        ValueError: the score holds no notes.
    """
    from music21 import key, meter, stream  # music21 takes seconds to import: only parsing needs it

    if expand:
        score = _expand_repeats(score)
    parts = list(score.parts) if isinstance(score, stream.Score) else [score]
    pitched = [part for part in parts if not _is_percussion(part)]
    if len(pitched) < len(parts):  # drums (MIDI channel 10) are not part of the melody
        score = stream.Score(pitched)
        parts = pitched
    if not parts:
        raise ValueError("only percussion")
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
        elif getattr(element, "pitches", ()):
            pitch = max(p.midi for p in element.pitches)
        else:  # unpitched percussion
            continue
        if tune.events and pitch is None and tune.events[-1].pitch is None and tune.events[-1].onset + tune.events[-1].duration == onset:
            last = tune.events.pop()  # merge adjacent rests
            tune.events.append(Event(last.onset, None, last.duration + duration))
        else:
            tune.events.append(Event(onset, pitch, duration))
        now = onset + duration
    if not any(e.pitch is not None for e in tune.events):
        raise ValueError("no notes")
    return tune
