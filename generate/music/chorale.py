"""The `chorale` encoding: four voices as text, one frame per sixteenth note (BachBot-like).

A piece is one line:

    M:4/4 K:1|cXQI.::::.::::.::::|...\n

- the header `M:<meter> K:<sharps>|` as in the melody encoding;
- a frame holds one character per voice, soprano, alto, tenor, bass: a pitch
  character when a note starts, `:` while it holds, `_` for silence;
- pitch characters: `A`..`Z`, `a`..`z`, `0`..`3` are MIDI 36..91;
- each frame ends with `.`, or `,` when it carries a fermata;
- `|` comes before the first frame of every bar, and the newline ends the piece.

Everything on the sixteenth-note grid round-trips exactly. Shorter notes are
approximated, and a chord within one voice keeps its highest note. Spelling,
dynamics and lyrics are lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from .melody import BAR, DecodeReport, Event, pitch_char, split_header

PITCH_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123"
LOWEST_PITCH = 36
HIGHEST_PITCH = LOWEST_PITCH + len(PITCH_CHARS) - 1
HOLD, REST, FRAME_END, FERMATA_END = ":", "_", ".", ","
FRAME = Fraction(1, 4)  # a sixteenth note, in quarter notes
VOICES = 4
# The lowest and highest MIDI pitch each voice (S, A, T, B) sings in Bach's 364 four-part chorales (corpus:bach):
# a transposed copy for training keeps every voice inside its own, as DeepBach and BachBot transpose.
VOICE_RANGES = ((57, 81), (53, 74), (48, 69), (36, 64))


@dataclass
class Chorale:
    meter: str = "4/4"
    sharps: int = 0
    voices: list[list[Event]] = field(default_factory=lambda: [[] for _ in range(VOICES)])  # S, A, T, B
    bar_lines: list[Fraction] = field(default_factory=list)  # onsets where a new bar begins
    fermatas: list[Fraction] = field(default_factory=list)  # onsets of frames that carry a fermata


def encode_chorale(chorale: Chorale) -> tuple[str, bool]:
    """Encodes a four-voice piece as one line; returns (text, exact)."""
    exact = True
    end = max((v[-1].onset + v[-1].duration for v in chorale.voices if v), default=Fraction(0))
    frames = int(end / FRAME + Fraction(1, 2))
    grid = [[REST] * VOICES for _ in range(frames)]
    for index, voice in enumerate(chorale.voices):
        for event in voice:
            start, stop = event.onset / FRAME, (event.onset + event.duration) / FRAME
            exact &= start.denominator == 1 and stop.denominator == 1
            first, last = int(start + Fraction(1, 2)), int(stop + Fraction(1, 2))
            if event.pitch is None or last <= first:
                continue
            exact &= LOWEST_PITCH <= event.pitch <= HIGHEST_PITCH
            grid[first][index] = pitch_char(event.pitch, PITCH_CHARS, LOWEST_PITCH)
            for frame in range(first + 1, min(last, frames)):
                grid[frame][index] = HOLD
    bars = {int(b / FRAME) for b in chorale.bar_lines if (b / FRAME).denominator == 1}
    exact &= len(bars) == len(set(chorale.bar_lines))
    fermatas = {int(f / FRAME) for f in chorale.fermatas}
    parts = [f"M:{chorale.meter} K:{chorale.sharps}{BAR}"]
    for frame, chars in enumerate(grid):
        if frame in bars and frame > 0:
            parts.append(BAR)
        parts.append("".join(chars) + (FERMATA_END if frame in fermatas else FRAME_END))
    parts.append(BAR)
    return "".join(parts), exact


def decode_chorale(line: str) -> tuple[Chorale, DecodeReport]:
    """Decodes one line, repairing what it must; never raises.

    Frames with too few voice characters are padded with holds, extra ones
    are dropped, a hold with nothing sounding becomes silence, and stray
    characters are skipped. Each repair counts in the report.
    """
    report = DecodeReport()
    chorale = Chorale()
    chorale.meter, chorale.sharps, body = split_header(line, report)
    frames: list[str] = []
    current = ""
    bar_frames: list[int] = []
    for char in body:
        if char in PITCH_CHARS or char in (HOLD, REST):
            if len(current) == VOICES:
                report.dropped += 1
                continue
            current += char
        elif char in (FRAME_END, FERMATA_END):
            if len(current) < VOICES:
                report.dropped += VOICES - len(current)
                current += HOLD * (VOICES - len(current))
            frames.append(current + char)
            current = ""
        elif char == BAR:
            if frames and (not bar_frames or bar_frames[-1] != len(frames)):
                bar_frames.append(len(frames))
        elif not char.isspace():
            report.dropped += 1
    if current:
        report.dropped += 1  # an unterminated last frame
    for index in range(VOICES):
        voice = chorale.voices[index]
        for number, frame in enumerate(frames):
            onset, char = number * FRAME, frame[index]
            if char == HOLD and voice and voice[-1].onset + voice[-1].duration == onset:
                last = voice.pop()
                voice.append(Event(last.onset, last.pitch, last.duration + FRAME))
                continue
            if char == HOLD:
                report.dropped += 1
            pitch = None if char in (REST, HOLD) else LOWEST_PITCH + PITCH_CHARS.index(char)
            if pitch is None and voice and voice[-1].pitch is None:
                last = voice.pop()
                voice.append(Event(last.onset, None, last.duration + FRAME))
            else:
                voice.append(Event(onset, pitch, FRAME))
    chorale.bar_lines = [n * FRAME for n in bar_frames if n < len(frames)]
    chorale.fermatas = [n * FRAME for n, frame in enumerate(frames) if frame[-1] == FERMATA_END]
    return chorale, report
