"""Regulated verse by construction (`--regulated`): tones and rhymes of the four Tang forms, as each character is drawn.

A regulated poem (5 or 7 characters a line, 4 or 8 lines) follows one of the
standard tonal patterns, as Jiuge enforces them:

- the second, fourth (and sixth) characters of a line alternate level (平)
  and oblique (仄); within a couplet the second line opposes the first (對),
  and each couplet's first line follows the line before it (粘). The tone of
  the first line's second character, which the model chooses, sets them all;
- the even lines end on a level tone, in one Pingshui rhyme group, and no
  rhyme character comes twice; the first line may rhyme too (the model
  chooses), and the other odd lines end on an oblique tone;
- the first, third (and fifth) characters are free, except where freedom
  would break the line: a B-type line (平平仄仄平) keeps its first level
  tone (no 孤平), a D-type (仄仄仄平平) its third oblique one (no 三平尾), and an
  A-type (仄仄平平仄) its third level one.

Line ends are unambiguous (a character with both readings could be read as a
rhyme where none is meant); other fixed places may be polyphonic. The rule
needs what came before (the pattern, the rhyme group, the rhymes used), so it
is a tracker like `voice_leading.VoiceLeading`: a short vector per stream,
moved by gathers in the compiled loop. `poem_automaton` keeps the form itself
(lines, columns, punctuation, acrostic); this adds the tones and rhymes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..data.pingshui import pingshui
from ..data.vocab import han_chars
from .constraints import FORBID
from .options import REGULATED_FORMS

FORMS = REGULATED_FORMS
MAX_RHYMES = 5  # rhyme characters in an eight-line poem whose first line rhymes
# A stream's state, column by column.
LINE, COLUMN, OPENING, FIRST_END, FORCED_END, RHYMES, NEWLINE, USED_COUNT, USED = range(9)
STATE_SIZE = USED + MAX_RHYMES
UNKNOWN = -1
OBLIQUE, LEVEL = 0, 1
# What a place allows: any character, one that can be read level or oblique, or one read only so.
ANY, CAN_LEVEL, CAN_OBLIQUE, ONLY_LEVEL, ONLY_OBLIQUE, ONLY_EITHER = range(6)
START = (0, 0, UNKNOWN, UNKNOWN, UNKNOWN, 0, 0, 0) + (UNKNOWN,) * MAX_RHYMES


@dataclass(frozen=True, eq=False)
class RegulatedVerse:
    """Tones and rhymes of a regulated poem of `columns` x `lines`, over a vocabulary."""

    chars: tuple[str, ...]
    columns: int
    lines: int
    name: str = "regulated"
    settings: dict = field(default_factory=dict)
    distance = None  # the poem automaton decides where the poem ends

    def __post_init__(self):
        if (self.columns, self.lines) not in FORMS:
            raise ValueError(f"form: expected one of {', '.join(f'{c}x{n}' for c, n in FORMS)}, "
                             f"received {self.columns}x{self.lines}")

    @property
    def start(self) -> tuple[int, ...]:
        return START

    @property
    def fingerprint(self) -> str:
        key = f"{self.columns}x{self.lines}:" + "".join(self.chars)
        return f"{self.name}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def tables(self) -> dict[str, np.ndarray]:
        """Per character: Han or not, its readings, its level rhyme groups (a bitmask), and what each place allows."""
        table = pingshui()
        han = set(han_chars(self.chars))
        is_han = np.array([c in han for c in self.chars])
        level = np.array([table.is_level(c) for c in self.chars])
        oblique = np.array([table.is_oblique(c) for c in self.chars])
        allowed = np.ones((6, len(self.chars)), bool)
        allowed[CAN_LEVEL] = level | ~is_han
        allowed[CAN_OBLIQUE] = oblique | ~is_han
        allowed[ONLY_LEVEL] = (level & ~oblique) | ~is_han
        allowed[ONLY_OBLIQUE] = (oblique & ~level) | ~is_han
        allowed[ONLY_EITHER] = (level ^ oblique) | ~is_han
        groups = np.array([table.level.get(c, 0) for c in self.chars], np.int32)
        return {"is_han": is_han, "level": level, "oblique": oblique, "allowed": allowed, "groups": groups,
                "line_end": np.array([c in "，。" for c in self.chars]), "newline": np.array([c == "\n" for c in self.chars])}

    def tensors(self, vocab_size: int, ops) -> RegulatedTensors:
        return RegulatedTensors(self, ops)


class RegulatedTensors:
    """The tracker's moves and biases in `ops`."""

    def __init__(self, verse: RegulatedVerse, ops):
        self.ops, self.columns, self.lines = ops, verse.columns, verse.lines
        self.offset = 0 if verse.columns == 5 else 2  # a seven-character line is two characters and a five
        tables = verse.tables()
        self.t = {name: ops.convert_to_tensor(value) for name, value in tables.items()}
        self.ids = ops.convert_to_tensor(np.arange(len(verse.chars), dtype=np.int32))
        self.slots = ops.convert_to_tensor(np.arange(MAX_RHYMES, dtype=np.int32))
        self.start = ops.convert_to_tensor(np.array(START, np.int32))

    def _line_tone(self, line, opening):
        """The tone of a line's second character: the first line's (`opening`), then opposed, followed, opposed..."""
        ops = self.ops
        same = ((line % 4) == 0) | ((line % 4) == 3)
        return ops.where(same, opening, 1 - opening)

    def _end_tone(self, line, first_end):
        """The tone a line ends on: level for the even lines, oblique for the odd after the first; the first's own."""
        ops = self.ops
        return ops.where(line % 2 == 1, LEVEL, ops.where(line == 0, first_end, OBLIQUE))

    def _requirement(self, states):
        """(N,) what the next character's place allows, and (N,) whether it ends a rhyming line."""
        ops = self.ops
        line, column = states[:, LINE], states[:, COLUMN]
        opening, first_end, forced_end = states[:, OPENING], states[:, FIRST_END], states[:, FORCED_END]
        position = column + 1  # 1-based, the place about to be written
        tone = self._line_tone(line, opening)  # of the second character
        known = opening != UNKNOWN
        # Second, fourth, sixth: alternating from the line's tone.
        even = (position % 2 == 0) & (position < self.columns)
        even_tone = ops.where((position % 4) == 2, tone, 1 - tone)
        need = ops.where(even & known, ops.where(even_tone == LEVEL, CAN_LEVEL, CAN_OBLIQUE), ANY)
        need = ops.where((line == 0) & (position == 2) & ~known, ONLY_EITHER, need)
        # The guards of the embedded five-character line (its second tone, against the line's end).
        end = self._end_tone(line, first_end)
        inner = 1 - tone if self.offset else tone
        end_known = (line > 0) | (first_end != UNKNOWN)
        guard_a = end_known & known & (inner == OBLIQUE) & (end == OBLIQUE) & (position == self.offset + 3)
        guard_d = end_known & known & (inner == OBLIQUE) & (end == LEVEL) & (position == self.offset + 3)
        guard_b = end_known & known & (inner == LEVEL) & (end == LEVEL) & (position == self.offset + 1)
        need = ops.where(guard_a | guard_b, CAN_LEVEL, ops.where(guard_d, CAN_OBLIQUE, need))
        # The last character.
        last = position == self.columns
        first_line_end = ops.where(forced_end == OBLIQUE, ONLY_OBLIQUE, ops.where(forced_end == LEVEL, ONLY_LEVEL, ONLY_EITHER))
        ending = ops.where(line == 0, first_line_end, ops.where(line % 2 == 1, ONLY_LEVEL, ONLY_OBLIQUE))
        need = ops.where(last, ending, need)
        active = (line < self.lines) & (column < self.columns)
        return ops.where(active, need, ANY), active & last & ((line % 2 == 1) | (line == 0))

    def char_bias(self, states):
        """(N, V) -inf on each character its place, the rhyme group or the rhymes used so far rule out."""
        ops = self.ops
        need, rhyme_place = self._requirement(states)
        allowed = ops.take(self.t["allowed"], need, axis=0)
        rhymes, line = states[:, RHYMES], states[:, LINE]
        groups = self.t["groups"][None, :]
        # Line 2 rhymes with line 1 if line 1 rhymed; every later even line with line 2.
        in_group = (rhymes[:, None] == 0) | (ops.bitwise_and(groups, rhymes[:, None]) != 0)
        unused = ops.all(self.ids[None, :, None] != states[:, None, USED:USED + MAX_RHYMES], axis=-1)
        rhyme_ok = in_group & unused & (groups != 0)
        # Line 1's end may rhyme (a level character, then in a group) or not (oblique): `allowed` decides which.
        first_oblique = (line == 0)[:, None] & ~self.t["level"][None, :]
        ok = allowed & (~rhyme_place[:, None] | rhyme_ok | first_oblique)
        return ops.cast(ops.where(ok, 0.0, FORBID), "float32")

    def step(self, states, tokens):
        """(N, STATE_SIZE) states after feeding each stream its token."""
        ops = self.ops
        t = self.t
        han, line_end = ops.take(t["is_han"], tokens, axis=0), ops.take(t["line_end"], tokens, axis=0)
        newline = ops.take(t["newline"], tokens, axis=0)
        level, oblique = ops.take(t["level"], tokens, axis=0), ops.take(t["oblique"], tokens, axis=0)
        groups = ops.take(t["groups"], tokens, axis=0)
        line, column = states[:, LINE], states[:, COLUMN]
        opening, first_end, forced_end = states[:, OPENING], states[:, FIRST_END], states[:, FORCED_END]
        rhymes, count = states[:, RHYMES], states[:, USED_COUNT]
        position = column + 1
        writing = han & (line < self.lines) & (column < self.columns)
        tone = ops.where(level, LEVEL, OBLIQUE)  # a polyphonic or unknown character counts as it can be read first
        # The first line's second character sets the pattern.
        sets_opening = writing & (line == 0) & (position == 2) & (opening == UNKNOWN)
        opening = ops.where(sets_opening, tone, opening)
        # The first line's free places decide whether it may still rhyme.
        inner = 1 - opening if self.offset else opening
        on_guard = writing & (line == 0) & (opening != UNKNOWN)
        no_d = on_guard & (inner == OBLIQUE) & (position == self.offset + 3) & ~oblique  # level here: A, not D
        no_a = on_guard & (inner == OBLIQUE) & (position == self.offset + 3) & ~level  # oblique here: D, not A
        no_b = on_guard & (inner == LEVEL) & (position == self.offset + 1) & ~level  # oblique first: C, not B
        forced_end = ops.where(no_d | no_b, OBLIQUE, ops.where(no_a, LEVEL, forced_end))
        if self.offset == 0:  # a five-character line's first place comes before its pattern is known
            first_place = writing & (line == 0) & (position == 1)
            forced_end = ops.where(first_place & ~level, -2, forced_end)  # -2: oblique first, told at the second
            forced_end = ops.where(sets_opening & (forced_end == -2), ops.where(opening == LEVEL, OBLIQUE, UNKNOWN),
                                   forced_end)
        # A line's last character: the first line's end says whether it rhymes; rhymes are kept.
        last = writing & (position == self.columns)
        first_end = ops.where(last & (line == 0), tone, first_end)
        rhyming = last & (((line == 0) & level & ~oblique) | (line % 2 == 1))
        rhymes = ops.where(rhyming & ((line == 0) | (line == 1)), groups, rhymes)
        used = ops.where(rhyming[:, None] & (self.slots[None, :] == count[:, None]), tokens[:, None],
                         states[:, USED:USED + MAX_RHYMES])
        count = count + ops.cast(rhyming, "int32")
        column = ops.where(writing, column + 1, column)
        ends_line = line_end & (column > 0)
        line, column = ops.where(ends_line, line + 1, line), ops.where(ends_line, 0, column)
        joined = ops.concatenate([line[:, None], column[:, None], opening[:, None], first_end[:, None],
                                  forced_end[:, None], rhymes[:, None], ops.cast(newline, "int32")[:, None],
                                  count[:, None], used], axis=1)
        # A blank line closes a poem (and ends a warm-up): the next one starts afresh.
        blank = newline & (states[:, NEWLINE] > 0)
        return ops.cast(ops.where(blank[:, None], self.start[None, :], joined), "int32")
