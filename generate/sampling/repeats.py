"""Tunes in AABB form: each part written once and played back as the model's own input.

A reel or a jig is two parts, each played twice. Left to itself the model
never repeats eight bars note for note (it has no way to copy that much), so
`RepeatedParts` does it: after the tune's first bar (a pickup, as a rule) it
records the next 4 or 8 bars as part A, then, in the tunes drawn to repeat, feeds them back, character for
character, as the forced input of the following steps, so the model's states
hear the part again exactly as a player would; then part B the same way, and
the model ends the tune as it likes. The parts are whole bars, so the bars the
bar automaton filled once fill again.

Whether a tune repeats, and whether its parts run 4 bars or 8, is drawn as
often as the corpus's own tunes do (`music.sampling.piece_repeats`), from a
hash of what the stream wrote up to the end of its first part: a seed's samples differ,
and the same seed repeats the same way. The tracker's state is a vector per
stream (the phase, the part's bars, the hash, and the part itself), moved by
gathers and comparisons inside the compiled loop, like `VoiceLeading`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..music import melody
from .constraints import FORBID

MAX_PART_CHARS = 480  # a part longer than this is not repeated (8 bars of sixteenths run to about 260)
PART_BARS = (4, 8)  # short parts and long ones: the corpus's repeated parts are nearly all one or the other
# A stream's state, column by column, then the part being recorded or played back.
PHASE, BARS, HASH, LENGTH, WRITTEN, READ = range(6)
PART = slice(6, 6 + MAX_PART_CHARS)
STATE_SIZE = 6 + MAX_PART_CHARS
# Phases.
HEADER, LEAD, RECORD_A, REPLAY_A, RECORD_B, REPLAY_B, FREE = range(7)
OTHER, BAR, NEWLINE = range(3)
_HASH_SIZE = 1024
_MIX = np.random.default_rng(0x5ea1).permutation(_HASH_SIZE).astype(np.int32)  # a fixed shuffle: the hash's mixing


@dataclass(frozen=True, eq=False)
class RepeatedParts:
    """Plays each of a tune's two parts twice (AABB) in `share` of the tunes, as a tracker beside the automata."""

    chars: tuple[str, ...]
    share: float  # the tunes that repeat their parts
    short_share: float  # of those, the ones whose parts run 4 bars, not 8
    max_bars: int | None = None  # the longest tune the corpus's lengths allow: parts that would outrun it are not played
    name: str = "repeated-parts"
    settings: dict = field(default_factory=dict)
    distance = None  # it never decides where a piece may end

    def __post_init__(self):
        # A tune in this form is a lead-in bar and each part twice: 1 + 4 x its bars.
        fits = [self.max_bars is None or 1 + 4 * bars <= self.max_bars for bars in PART_BARS]
        share = self.share if fits[0] else 0.0
        short_share = self.short_share if fits[1] else 1.0
        object.__setattr__(self, "share", share)
        object.__setattr__(self, "short_share", short_share)
        object.__setattr__(self, "settings", {"repeated_parts": round(share, 4), "short_parts": round(short_share, 4)})

    @property
    def start(self) -> tuple[int, ...]:
        return (0,) * STATE_SIZE

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256("".join(self.chars).encode()).hexdigest()[:16]
        return f"{self.name}:{self.share:.4f}:{self.short_share:.4f}:{digest}"

    def kinds(self) -> np.ndarray:
        kinds = np.full(len(self.chars), OTHER, np.int32)
        for i, c in enumerate(self.chars):
            kinds[i] = {melody.BAR: BAR, "\n": NEWLINE}.get(c, OTHER)
        return kinds

    def tensors(self, vocab_size: int, ops) -> RepeatedPartsTensors:
        return RepeatedPartsTensors(self, vocab_size, ops)


class RepeatedPartsTensors:
    """The tracker's moves and biases in `ops`, as the compiled loops call an automaton's."""

    def __init__(self, tracker: RepeatedParts, vocab_size: int, ops):
        self.ops = ops
        kinds = tracker.kinds()
        self.kinds = ops.convert_to_tensor(kinds)
        self.is_newline = ops.convert_to_tensor(kinds == NEWLINE)
        self.mix = ops.convert_to_tensor(_MIX)
        self.positions = ops.convert_to_tensor(np.arange(MAX_PART_CHARS, dtype=np.int32))
        self.ids = ops.convert_to_tensor(np.arange(vocab_size, dtype=np.int32))
        self.repeat_below = int(round(tracker.share * _HASH_SIZE))
        self.short_below = int(round(tracker.short_share * _HASH_SIZE))

    def _hash(self, value):
        return self.ops.take(self.mix, self.ops.bitwise_and(value, _HASH_SIZE - 1), axis=0)

    def step(self, states, tokens):
        """(N, STATE_SIZE) states after feeding each stream its token."""
        ops = self.ops
        kind = ops.take(self.kinds, tokens, axis=0)
        phase, bars, hashed = states[:, PHASE], states[:, BARS], states[:, HASH]
        length, written, read, part = states[:, LENGTH], states[:, WRITTEN], states[:, READ], states[:, PART]
        bar, newline = kind == BAR, kind == NEWLINE
        hashed = ops.where(phase <= RECORD_A, self._hash(hashed * 31 + tokens + 7), hashed)
        recording = (phase == RECORD_A) | (phase == RECORD_B)
        at_write = self.positions[None, :] == written[:, None]
        part = ops.where(recording[:, None] & at_write, tokens[:, None], part)
        written = ops.where(recording, written + 1, written)
        bars = ops.where(recording & bar, bars + 1, bars)
        replaying = (phase == REPLAY_A) | (phase == REPLAY_B)
        read = ops.where(replaying, read + 1, read)
        # The first bar line ends the header; the next, the lead-in bar, where the parts' length is drawn.
        # Whether they repeat is drawn when part A is written, from a hash of everything before: a hash of
        # a header and a pickup alone would send every tune that starts alike the same way.
        begin = (phase == LEAD) & bar
        short = self._hash(hashed + 517) < self.short_below
        length = ops.where(begin, ops.where(short, PART_BARS[0], PART_BARS[1]), length)
        recorded = recording & bar & (bars >= length)
        overflow = recording & ~recorded & (written >= MAX_PART_CHARS)
        played = replaying & (read >= written)
        repeats = (phase == RECORD_B) | (hashed < self.repeat_below)
        new_phase = ops.where((phase == HEADER) & bar, LEAD, phase)
        new_phase = ops.where(begin, RECORD_A, new_phase)
        new_phase = ops.where(recorded, ops.where(repeats, phase + 1, FREE), new_phase)
        new_phase = ops.where(played, ops.where(phase == REPLAY_A, RECORD_B, FREE), new_phase)
        new_phase = ops.where(overflow, FREE, new_phase)
        read = ops.where(recorded, 0, read)
        restart = played | newline
        written, bars = ops.where(restart, 0, written), ops.where(restart, 0, bars)
        new_phase = ops.where(newline, HEADER, new_phase)  # a new tune
        hashed, length, read = (ops.where(newline, 0, x) for x in (hashed, length, read))
        columns = [new_phase, bars, hashed, length, written, read]
        return ops.cast(ops.concatenate([*(c[:, None] for c in columns), part], axis=1), "int32")

    def char_bias(self, states):
        """(N, V): while a part plays back, everything but its next character is forbidden; while one is
        recorded, the tune may not end."""
        ops = self.ops
        phase, read, part = states[:, PHASE], states[:, READ], states[:, PART]
        replaying = (phase == REPLAY_A) | (phase == REPLAY_B)
        recording = (phase == RECORD_A) | (phase == RECORD_B)
        following = ops.sum(ops.where(self.positions[None, :] == read[:, None], part, 0), axis=1)
        forbidden = replaying[:, None] & (self.ids[None, :] != following[:, None])
        forbidden = forbidden | (recording[:, None] & self.is_newline[None, :])
        return ops.cast(ops.where(forbidden, FORBID, 0.0), "float32")
