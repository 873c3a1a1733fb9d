"""Chorales without parallel fifths and octaves: a rule of voice leading applied as each voice is written.

Whether a note makes parallel fifths depends on four voices' pitches at the
last chord and on the voices already written in this frame: far too much
state for an automaton's table. `VoiceLeading` is a tracker instead: each
stream carries a short vector (the last chord onset's pitches, this frame's
so far, what sounds now), moved by the same kind of gathers and comparisons
as the automata, inside the same compiled loop, on any backend.

The rule is the one `critics.music.count_parallels` counts: between
consecutive chord onsets (frames where some voice starts a note and all four
sound), two voices that both move in the same direction from a perfect fifth
to a perfect fifth, or from an octave or unison to an octave or unison
(compound intervals count), make a parallel. When voice j is written, every
pitch that would make one with a voice above it, already written in this
frame, is forbidden. A hold never moves, so a voice always has a way out.
The alto and the tenor also stay within an octave of the voice above them, and no
voice strikes a note above the voice over it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..music import chorale
from .constraints import FORBID

# A stream's state, column by column: in the body (after the header's bar line), which voice comes next in
# the frame, how many voices struck a note in it, then the last onset's pitches, this frame's, and what sounds.
IN_BODY, VOICE, STRUCK = 0, 1, 2
LAST, FRAME, SOUNDING = slice(3, 7), slice(7, 11), slice(11, 15)
STATE_SIZE = 15
SILENT = -1
# Kinds of character.
OTHER, PITCH, REST, HOLD, FRAME_END, BAR, NEWLINE = range(7)
_OFFSET = 64  # interval classes are looked up at interval + _OFFSET
_INTERVAL_CLASS = np.array([abs(d - _OFFSET) % 12 for d in range(2 * _OFFSET + 1)], np.int32)
MAX_SPACING = 12  # semitones between soprano and alto, or alto and tenor (bass and tenor may be further apart)
_NO_CLASS = 99  # the class of a pair with a silent voice: never a fifth or an octave


@dataclass(frozen=True, eq=False)
class VoiceLeading:
    """Forbids parallel fifths and octaves in the chorale encoding, as a tracker beside the automata."""

    chars: tuple[str, ...]
    name: str = "voice-leading"
    settings: dict = field(default_factory=lambda: {"voice_leading": "no parallel fifths or octaves"})
    distance = None  # it never decides where a piece may end

    @property
    def start(self) -> tuple[int, ...]:
        return (0, 0, 0) + (SILENT,) * 12

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:{hashlib.sha256(''.join(self.chars).encode()).hexdigest()[:16]}"

    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(V,) the kind of each character, and (V,) its pitch (SILENT for every other character)."""
        kinds, pitches = np.full(len(self.chars), OTHER, np.int32), np.full(len(self.chars), SILENT, np.int32)
        special = {chorale.REST: REST, chorale.HOLD: HOLD, chorale.FRAME_END: FRAME_END,
                   chorale.FERMATA_END: FRAME_END, chorale.BAR: BAR, "\n": NEWLINE}
        for i, c in enumerate(self.chars):
            if c in chorale.PITCH_CHARS:
                kinds[i], pitches[i] = PITCH, chorale.LOWEST_PITCH + chorale.PITCH_CHARS.index(c)
            elif c in special:
                kinds[i] = special[c]
        return kinds, pitches

    def tensors(self, vocab_size: int, ops) -> VoiceLeadingTensors:
        return VoiceLeadingTensors(self, ops)


class VoiceLeadingTensors:
    """The tracker's moves and biases in `ops`, as the compiled loops call an automaton's."""

    def __init__(self, tracker: VoiceLeading, ops):
        self.ops = ops
        kinds, pitches = tracker.tables()
        self.kinds, self.pitches = ops.convert_to_tensor(kinds), ops.convert_to_tensor(pitches)
        self.is_pitch = ops.convert_to_tensor(kinds == PITCH)
        self.is_hold = ops.convert_to_tensor(kinds == HOLD)
        self.interval_class = ops.convert_to_tensor(_INTERVAL_CLASS)
        self.voices = ops.convert_to_tensor(np.arange(chorale.VOICES, dtype=np.int32))

    def _class(self, upper, lower):
        """The interval class (0-11) of two pitches, or _NO_CLASS when either is silent."""
        ops = self.ops
        difference = ops.where((upper >= 0) & (lower >= 0), upper - lower + _OFFSET, _OFFSET)
        difference = ops.where(difference < 0, 0, ops.where(difference > 2 * _OFFSET, 2 * _OFFSET, difference))
        found = ops.take(self.interval_class, difference, axis=0)
        return ops.where((upper >= 0) & (lower >= 0), found, _NO_CLASS)

    def step(self, states, tokens):
        """(N, 15) states after feeding each stream its token."""
        ops = self.ops
        kind, pitch = ops.take(self.kinds, tokens, axis=0), ops.take(self.pitches, tokens, axis=0)
        in_body, voice, struck = states[:, IN_BODY], states[:, VOICE], states[:, STRUCK]
        last, frame, sounding = states[:, LAST], states[:, FRAME], states[:, SOUNDING]
        body = in_body > 0
        voiced = body & ((kind == PITCH) | (kind == REST) | (kind == HOLD)) & (voice < chorale.VOICES)
        frame_end, newline = body & (kind == FRAME_END), kind == NEWLINE
        this_voice = self.voices[None, :] == voice[:, None]
        held = ops.sum(ops.where(this_voice, sounding, 0), axis=1)
        value = ops.where(kind == PITCH, pitch, ops.where(kind == REST, SILENT, held))
        frame = ops.where(voiced[:, None] & this_voice, value[:, None], frame)
        onset = frame_end & (struck > 0) & (ops.min(frame, axis=1) >= 0)
        last = ops.where(onset[:, None], frame, last)
        sounding = ops.where(frame_end[:, None], frame, sounding)
        struck = ops.where(frame_end | newline, 0, struck + ops.cast(voiced & (kind == PITCH), "int32"))
        voice = ops.where(voiced, voice + 1, ops.where(frame_end | newline | (kind == BAR), 0, voice))
        in_body = ops.where(newline, 0, ops.where(kind == BAR, 1, in_body))
        silent = newline[:, None]
        last, frame, sounding = (ops.where(silent, SILENT, x) for x in (last, frame, sounding))
        joined = ops.concatenate([in_body[:, None], voice[:, None], struck[:, None], last, frame, sounding], axis=1)
        return ops.cast(joined, "int32")

    def char_bias(self, states):
        """(N, V) -inf on each pitch (or hold) that would make a parallel with a voice above, already written."""
        ops = self.ops
        voice = states[:, VOICE]
        last, frame, sounding = states[:, LAST], states[:, FRAME], states[:, SOUNDING]
        this_voice = self.voices[None, :] == voice[:, None]
        own_last = ops.sum(ops.where(this_voice, last, 0), axis=1)[:, None] + ops.where(
            ops.any(this_voice, axis=1), 0, SILENT)[:, None]
        own_sounding = ops.sum(ops.where(this_voice, sounding, 0), axis=1)[:, None]
        # Each character's pitch if voice j writes it: a pitch's own, a hold's the sounding one, else silent.
        candidate = ops.where(self.is_pitch[None, :], self.pitches[None, :],
                              ops.where(self.is_hold[None, :], own_sounding, SILENT))
        moves = (candidate >= 0) & (candidate != own_last)
        forbidden = ops.zeros_like(candidate) > 0
        for above in range(chorale.VOICES - 1):
            before, now = last[:, above:above + 1], frame[:, above:above + 1]
            old_class = self._class(before, own_last)
            perfect = (old_class == 0) | (old_class == 7)
            written = (voice[:, None] > above) & (states[:, IN_BODY:IN_BODY + 1] > 0)
            moved = (now >= 0) & (now != before)
            same_way = (now > before) == (candidate > own_last)
            forbidden = forbidden | (written & perfect & moved & moves & same_way & (self._class(now, candidate) == old_class))
        # Spacing: alto within an octave of the soprano, tenor of the alto, as this frame has them. A hold is
        # left alone, the way out when nothing else fits.
        above_now = ops.sum(ops.where(self.voices[None, :] == (voice - 1)[:, None], frame, 0), axis=1)[:, None]
        inner = ((voice == 1) | (voice == 2))[:, None] & (above_now >= 0) & (states[:, IN_BODY:IN_BODY + 1] > 0)
        forbidden = forbidden | (inner & self.is_pitch[None, :] & (candidate < above_now - MAX_SPACING))
        # No voice struck above the one over it (a crossing); a hold may still cross, as Bach's voices now and then do.
        lower = (voice >= 1)[:, None] & (voice < chorale.VOICES)[:, None] & (above_now >= 0) \
            & (states[:, IN_BODY:IN_BODY + 1] > 0)
        forbidden = forbidden | (lower & self.is_pitch[None, :] & (candidate > above_now))
        return ops.cast(ops.where(forbidden, FORBID, 0.0), "float32")
