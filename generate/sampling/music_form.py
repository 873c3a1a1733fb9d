"""Music that decodes as it was sampled: each piece's header, notes, bars and length as one automaton.

A music model writes its encoding one character at a time, and nothing in
a softmax stops it writing `M:4/x K:9|`, a pitch with no duration, a hold
in a voice that is silent, or a chorale seventy bars long. The decoders
repair all of these (and count the repairs), but a repaired piece is not the
piece that was sampled. This automaton forbids, as each character is drawn,
every character the decoder would have to drop or repair:

- the header is `M:<1-32>/<1|2|4|8|16|32> K:<-7..7>|`, checked character by
  character, as the verse forms are;
- melody: every pitch or rest has a duration; a tie follows a note and has
  a duration; a bar holds at least one note;
- chorale: every frame has one character per voice and then its end; a hold
  continues a voice that is sounding;
- a piece ends (its newline) only after a bar line, and only within the
  corpus's usual number of bars when the run records it (`RunDir.piece_bars`):
  no newline before the shortest usual length, and nothing but the newline
  once the longest is reached.

The automaton starts at the beginning of a piece; every newline begins the
next. Its distance table lets the sampling loop end a piece cleanly within
the sample's length.
"""

from __future__ import annotations

import functools

import numpy as np

from ..music import chorale, melody
from .constraints import Automaton, AutomatonBuilder, distances_to_end, explore

METER_DENOMINATORS = ("1", "2", "4", "8", "16", "32")
MAX_METER_NUMERATOR = 32
MAX_SHARPS = 7
ENDING_BONUS = 8.0  # nats added to a piece's newline at its longest usual length, from 0 at the median


@functools.lru_cache(maxsize=16)  # a co-writing session asks again for every draw; a chorale's takes 0.3 s
def music_automaton(chars: tuple[str, ...], encoding: str, min_bars: int = 1, max_bars: int | None = None,
                    median_bars: int | None = None) -> Automaton:
    """The well-formedness automaton for `encoding` (`melody` or `chorale`) over a run's vocabulary.

    Args:
        chars: the vocabulary, in id order.
        encoding: how the run writes music.
        min_bars: a piece may end after this many bars, not before (at least 1).
        max_bars: after this many bars a piece must end; None for no limit.
        median_bars: the corpus's median; past it, ending a piece at a bar line is made steadily likelier
            (up to `ENDING_BONUS` nats at `max_bars`), so that pieces end around the corpus's lengths
            rather than at the limit. None: no encouragement.
    """
    min_bars = max(min_bars, 1)
    if max_bars is not None and max_bars < min_bars:
        raise ValueError(f"max_bars: expected at least min_bars ({min_bars}), received {max_bars}")
    b = AutomatonBuilder(chars)
    _header(b, start="piece", body=("bar start", 0, 0, False))
    counted = max_bars if max_bars is not None else min_bars  # bars past this count are all alike
    body = _melody_body if encoding == "melody" else _chorale_body
    body(b, min_bars, max_bars, counted)
    if median_bars is not None and max_bars is not None and median_bars < max_bars:
        for name in b.names:
            if name[0] == "bar start" and name[1] > median_bars:
                b.penalize(name, "\n", -ENDING_BONUS * (name[1] - median_bars) / (max_bars - median_bars))
    for _, bias in b.rows:
        if not np.isfinite(bias).any():  # its only characters are missing from a small vocabulary: no constraint
            bias[:] = 0.0
    built = b.build(f"music({encoding})", "piece", {"syntax": "music", "min_bars": min_bars, "max_bars": max_bars,
                                                    "median_bars": median_bars})
    ends = np.zeros(built.transitions.shape[0], bool)
    ends[built.start] = True  # just after a newline: a whole piece written
    distance = distances_to_end(built.transitions, built.bias, ends)
    return Automaton(built.name, built.transitions, built.bias, built.start, built.settings, distance)


def _header(b: AutomatonBuilder, start: object, body: object) -> None:
    """`M:<numerator>/<denominator> K:<sharps>|`, each character forced or chosen from what is valid."""
    def expect(state: object, text: str, then: object) -> None:
        for i, c in enumerate(text):
            target = then if i == len(text) - 1 else (state, text[: i + 1])
            b.allow_only(state if i == 0 else (state, text[:i]), c)
            b.move(state if i == 0 else (state, text[:i]), c, target)

    expect(start, "M:", "numerator")
    b.allow_only("numerator", "123456789")
    for first in "123456789":
        b.move("numerator", first, ("numerator", first))
        seconds = "".join(d for d in "0123456789" if int(first + d) <= MAX_METER_NUMERATOR)
        b.allow_only(("numerator", first), seconds + "/")
        b.move(("numerator", first), "/", "denominator")
        for second in seconds:
            b.move(("numerator", first), second, ("numerator", first + second))
            expect(("numerator", first + second), "/", "denominator")
    b.allow_only("denominator", "12483")
    b.move("denominator", "248", "meter done")
    b.move("denominator", "1", ("denominator", "1"))
    b.move("denominator", "3", ("denominator", "3"))
    b.allow_only(("denominator", "1"), "6 ")
    b.move(("denominator", "1"), "6", "meter done")
    b.move(("denominator", "1"), " ", "K")
    expect(("denominator", "3"), "2", "meter done")
    expect("meter done", " ", "K")
    expect("K", "K:", "sharps")
    digits = "".join(str(d) for d in range(MAX_SHARPS + 1))
    b.allow_only("sharps", "-" + digits)
    b.move("sharps", digits, "key done")
    b.move("sharps", "-", "flats")
    b.allow_only("flats", digits[1:])
    b.move("flats", digits[1:], "key done")
    expect("key done", melody.BAR, body)
    for state in list(b.names):
        b.default(state, state)  # every other character is forbidden, so where it would lead never matters


def _melody_body(b: AutomatonBuilder, min_bars: int, max_bars: int | None, counted: int) -> None:
    """Notes with durations, ties after notes, bars with a note, and the newline after a bar line."""
    notes = melody.PITCH_CHARS + melody.REST
    durations = "".join(melody.DURATIONS)
    for bars in range(counted + 1):
        for noted in (False, True) if bars == 0 else (True,):  # after a bar line, a note was written
            bar_start = ("bar start", bars, 0, noted)
            full = max_bars is not None and bars >= max_bars
            ends = bars >= min_bars and noted
            allowed = ("\n" if ends else "") + ("" if full else notes + (melody.TIE if noted else ""))
            b.allow_only(bar_start, allowed)
            b.move(bar_start, "\n", "piece")
            b.move(bar_start, notes, ("note", bars))
            b.move(bar_start, melody.TIE, ("tie", bars))
            b.default(bar_start, bar_start)
        b.allow_only(("note", bars), durations)
        b.move(("note", bars), durations, ("duration", bars))
        b.default(("note", bars), ("note", bars))
        b.allow_only(("tie", bars), durations)
        b.move(("tie", bars), durations, ("duration", bars))
        b.default(("tie", bars), ("tie", bars))
        after = min(bars + 1, counted)
        b.allow_only(("duration", bars), durations + notes + melody.TIE + melody.BAR)
        b.move(("duration", bars), durations, ("duration", bars))
        b.move(("duration", bars), notes, ("note", bars))
        b.move(("duration", bars), melody.TIE, ("tie", bars))
        b.move(("duration", bars), melody.BAR, ("bar start", after, 0, True))
        b.default(("duration", bars), ("duration", bars))


def _chorale_body(b: AutomatonBuilder, min_bars: int, max_bars: int | None, counted: int) -> None:
    """Frames of one character per voice and an end, holds only in a sounding voice, bar lines between frames.

    The state after the header is `("bar start", 0, 0, False)`: no bars, no voice sounding, no frame yet.
    A voice sounds from its pitch until its next rest; `sounding` holds one bit per voice.
    """
    pitches, frame_ends = chorale.PITCH_CHARS, chorale.FRAME_END + chorale.FERMATA_END
    for bars in range(counted + 1):
        for sounding in range(1 << chorale.VOICES):
            for framed in (False, True) if bars == 0 else (True,):  # after a bar line, a frame was written
                # Between frames: at the start of a bar (after `|`) or after a frame's end.
                for place in ("bar start", "between"):
                    if place == "between" and not framed:
                        continue
                    state = (place, bars, sounding, framed)
                    full = place == "bar start" and max_bars is not None and bars >= max_bars
                    ends = place == "bar start" and framed and bars >= min_bars
                    bar_line = place == "between"
                    first_voice = "" if full else _voice_chars(pitches, sounding, 0)
                    b.allow_only(state, first_voice + ("\n" if ends else "") + (chorale.BAR if bar_line else ""))
                    b.move(state, "\n", "piece")
                    b.move(state, chorale.BAR, ("bar start", min(bars + 1, counted), sounding, True))
                    _voice_moves(b, state, pitches, sounding, 0, ("frame", bars, 1))
                    b.default(state, state)
            for voice in range(1, chorale.VOICES):
                state = ("frame", bars, voice, sounding)
                b.allow_only(state, _voice_chars(pitches, sounding, voice))
                _voice_moves(b, state, pitches, sounding, voice, ("frame", bars, voice + 1))
                b.default(state, state)
            done = ("frame", bars, chorale.VOICES, sounding)
            b.allow_only(done, frame_ends)
            b.move(done, frame_ends, ("between", bars, sounding, True))
            b.default(done, done)


def _voice_chars(pitches: str, sounding: int, voice: int) -> str:
    """What voice `voice` may write in a frame: a pitch, a rest, or a hold if it is sounding."""
    return pitches + chorale.REST + (chorale.HOLD if sounding >> voice & 1 else "")


def _voice_moves(b: AutomatonBuilder, state: object, pitches: str, sounding: int, voice: int, then: tuple) -> None:
    """Moves for voice `voice`'s character, to `then + (new sounding bits,)`."""
    bit = 1 << voice
    b.move(state, pitches, (*then, sounding | bit))
    b.move(state, chorale.REST, (*then, sounding & ~bit))
    b.move(state, chorale.HOLD, (*then, sounding))


# ---------------------------------------------------------------- meters and full bars

_UNITS_PER_QUARTER = 24  # every melody duration is a whole number of 1/24 quarter notes
_MELODY_UNITS = {c: int(v * _UNITS_PER_QUARTER) for c, v in melody.DURATIONS.items()}
# Header characters the bar automaton reads; in a piece's body some of them are pitches or durations.
_HEADER_CHARS = frozenset("M:/ K-0123456789")


def bar_length(meter: str, unit: int) -> int:
    """A bar of `meter` ("6/8") in units of 1/`unit` quarter notes; 0 if it is not a whole number of them."""
    length = melody.meter_quarters(meter) * unit
    return int(length) if length.denominator == 1 else 0


@functools.lru_cache(maxsize=16)
def bar_automaton(chars: tuple[str, ...], encoding: str, meters: tuple[str, ...]) -> Automaton:
    """Headers that name one of `meters`, and bars that hold exactly their meter's length.

    A bar line comes only when the bar is full, and no note overflows it (a
    longer note is carried across by a tie, as the corpus writes it); the first
    bar alone may be shorter, a pickup. In a melody the lengths are the
    duration characters' (in 1/24 quarters); in a chorale, frames (sixteenths).
    Runs beside `music_automaton`, which keeps the syntax and the piece's length.

    Args:
        chars: the vocabulary, in id order.
        encoding: `melody` or `chorale`.
        meters: the meters a header may name (`music.sampling.usual_meters`).
    """
    unit = _UNITS_PER_QUARTER if encoding == "melody" else 4
    lengths = {m: n for m in meters if (n := bar_length(m, unit)) > 0}
    if not lengths:
        raise ValueError(f"meters: expected at least one whose bar is a whole number of 1/{unit} quarters, received {meters}")
    rules = _BarRules(encoding, lengths)
    return explore(f"bars({encoding})", chars, ("header", ""), rules.step, rules.forbids, {"meters": list(lengths)},
                   ends=lambda state: state == ("header", ""), char_class=rules.char_class)


class _BarRules:
    """`bar_automaton`'s moves over states `("header", typed)`, `("key", meter)`, `("free",)` and
    `("body", bar length, position in it, first bar?, phase)`, for `explore` to tabulate."""

    def __init__(self, encoding: str, lengths: dict[str, int]):
        self.melody, self.lengths, self.durations = encoding == "melody", lengths, _MELODY_UNITS
        self.notes = set(melody.PITCH_CHARS + melody.REST + melody.TIE) if self.melody else \
            set(chorale.PITCH_CHARS + chorale.REST + chorale.HOLD)
        self.frame_ends = chorale.FRAME_END + chorale.FERMATA_END

    def char_class(self, c: str) -> str:
        if c in _HEADER_CHARS or c in "|\n" or (self.melody and c in self.durations) or c in self.frame_ends:
            return c
        return "note" if c in self.notes else "other"

    @staticmethod
    def fits(length: int, position: int, duration: int) -> bool:
        left = length - position - duration
        return left >= 0 and left != 1  # one 1/24 quarter is no duration: a bar left that short could not be filled

    def forbids(self, state, c) -> bool:
        kind = state[0]
        if kind == "header":
            typed = state[1]
            if len(typed) < 2:
                return False  # `M:` is the music automaton's to insist on
            meter = typed[2:]
            return not (any(m.startswith(meter + c) for m in self.lengths) or (c == " " and meter in self.lengths))
        if kind != "body":
            return False  # the key, or a header the meters do not cover (a primed one): no constraint
        _, length, position, first, phase = state
        if c == "\n":
            return not (phase == "start" and not first)
        if c == "|":
            ready = phase in ("duration", "between")
            return not (ready and (position == length or (first and 0 < position < length)))
        if self.melody:
            if c in self.durations:
                return phase == "start" or not self.fits(length, position, self.durations[c])
            return c in self.notes and (phase == "note" or length - position < 2)
        if c in self.frame_ends:
            return phase != "frame"
        return c in self.notes and phase != "frame" and position >= length  # a new frame only in a bar with room

    def step(self, state, c):
        if c == "\n":
            return ("header", "")
        if self.forbids(state, c):
            # Only a forced character (a prime's) takes a forbidden move: the rest of its piece is left free.
            return ("free",)
        kind = state[0]
        if kind == "header":
            typed, meter = state[1] + c, state[1][2:]
            if len(typed) <= 2:
                return ("header", typed) if "M:".startswith(typed) else ("free",)
            return ("key", meter) if c == " " else ("header", typed)
        if kind in ("key", "free"):
            return ("body", self.lengths[state[1]], 0, True, "start") if c == "|" and kind == "key" else state
        _, length, position, first, phase = state
        if c == "|":
            return ("body", length, 0, False, "start")
        if self.melody:
            if c in self.durations and phase != "start":
                return ("body", length, position + self.durations[c], first, "duration")
            return ("body", length, position, first, "note") if c in self.notes else state
        if c in self.notes:
            return ("body", length, position, first, "frame")
        return ("body", length, position + 1, first, "between") if c in self.frame_ends else state


# ---------------------------------------------------------------- endings

# Nats off a tune's newline when its last note is not the key's tonic, and onto it when it is: tunes end
# on the tonic more often than the corpus's do (97% against 78%), and run to its median length (17 bars).
TONIC_ENDING_PENALTY = 3.0
TONIC_ENDING_BONUS = 4.0


@functools.lru_cache(maxsize=16)
def ending_automaton(chars: tuple[str, ...], penalty: float = TONIC_ENDING_PENALTY,
                     bonus: float = TONIC_ENDING_BONUS) -> Automaton:
    """Tunes that end on their key's tonic: the newline after a last note that is not one is discouraged.

    The tonic is the major key's of the header's signature or its relative minor's, as a folk player reads
    `K:`. A discouragement, not a rule: a tune that must end (its longest usual length) still can.
    """
    b = AutomatonBuilder(chars)
    for name in ("header", "K", "K:", "K:-"):
        b.default(name, "header")
        b.move(name, "\n", "header")
        b.move(name, melody.BAR, "free")
        b.move(name, "K", "K")
    b.move("K", ":", "K:")
    b.move("K:", "-", "K:-")
    for digit in range(MAX_SHARPS + 1):
        for sign, state in ((1, "K:"), (-1, "K:-")):
            sharps = sign * digit
            b.move(state, str(digit), ("keyed", sharps))
            b.default(("keyed", sharps), ("keyed", sharps))
            b.move(("keyed", sharps), "\n", "header")
            major = (7 * sharps) % 12
            tonic_chars = "".join(c for i, c in enumerate(melody.PITCH_CHARS)
                                  if (melody.LOWEST_PITCH + i) % 12 in (major, (major + 9) % 12))
            other_pitches = "".join(c for c in melody.PITCH_CHARS if c not in tonic_chars)
            for on_tonic in (False, True):
                state = ("body", sharps, on_tonic)
                b.move(state, tonic_chars, ("body", sharps, True))
                b.move(state, other_pitches, ("body", sharps, False))
                b.move(state, "\n", "header")
                b.default(state, state)
                b.penalize(state, "\n", -bonus if on_tonic else penalty)
            b.move(("keyed", sharps), melody.BAR, ("body", sharps, False))
    b.default("free", "free")
    b.move("free", "\n", "header")
    return b.build("ending", "header", {"tonic_ending_penalty": penalty, "tonic_ending_bonus": bonus})


@functools.lru_cache(maxsize=16)
def cadence_automaton(chars: tuple[str, ...], penalty: float = TONIC_ENDING_PENALTY,
                      bonus: float = TONIC_ENDING_BONUS) -> Automaton:
    """Chorales that end on a fermata, as Bach's end on the last phrase's: the newline after a fermata chord
    (held, or followed by silence, to the bar line) is encouraged, any other discouraged."""
    b = AutomatonBuilder(chars)
    b.default("header", "header")
    b.move("header", chorale.BAR, ("body", False))
    for held in (False, True):
        state = ("body", held)
        b.default(state, state)
        b.move(state, chorale.FERMATA_END, ("body", True))
        b.move(state, chorale.PITCH_CHARS, ("body", False))  # a new note after the fermata: the phrase goes on
        b.move(state, "\n", "header")
        b.penalize(state, "\n", -bonus if held else penalty)
    b.move("header", "\n", "header")
    return b.build("cadence", "header", {"fermata_ending_penalty": penalty, "fermata_ending_bonus": bonus})
