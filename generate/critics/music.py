"""Critics for music: what a folk player checks of a tune, and what a harmony teacher checks of a chorale.

Both read the project's own encodings (`music.melody`, `music.chorale`), one
piece per line, exactly as sampled: nothing is repaired before it is judged.
"""

from __future__ import annotations

import statistics
from fractions import Fraction

import numpy as np

from ..music import chorale, melody
from ..music.melody import BAR, meter_quarters
from ..music.sampling import MIN_PART_BARS, repeated_part_bars, usual_meters
from .base import Critic, Judged, Measure

# Yang & Lerch's twelve note-length classes, in quarter notes: whole, half, quarter, 8th, 16th; dotted half,
# quarter, 8th, 16th; half, quarter and 8th triplets. A length goes to the nearest class.
NOTE_LENGTH_CLASSES = (4, 2, 1, Fraction(1, 2), Fraction(1, 4), 3, Fraction(3, 2), Fraction(3, 4), Fraction(3, 8),
                       Fraction(4, 3), Fraction(2, 3), Fraction(1, 3))
_LENGTHS = np.array([float(x) for x in NOTE_LENGTH_CLASSES])


def header_of(piece: str) -> tuple[str, int | None, str]:
    """(meter, sharps, body) of an encoded piece; ("", None, piece) without a header."""
    if not piece.startswith("M:") or BAR not in piece:
        return "", None, piece
    header, body = piece.split(BAR, 1)
    meter, sharps = "", None
    for token in header.split():
        name, _, value = token.partition(":")
        if name == "M":
            meter = value
        elif name == "K" and value.lstrip("-").isdigit():
            sharps = int(value)
    return meter, sharps, body


def repeats_a_part(body: str, shortest: int = MIN_PART_BARS) -> bool:
    """Whether some passage of at least `shortest` bars is played twice in a row, note for note."""
    return repeated_part_bars(body, shortest) is not None


def tonics(sharps: int) -> tuple[int, int]:
    """The pitch classes of the major key with this signature and of its relative minor."""
    major = (7 * sharps) % 12
    return major, (major + 9) % 12


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _rate(hits: int, total: int) -> float | None:
    return 100 * hits / total if total else None


def _histogram(values: list[float], weights: list[float], bins: int) -> list[float]:
    counts = np.bincount(np.asarray(values, int), weights=np.asarray(weights, float), minlength=bins)[:bins]
    total = counts.sum()
    return (counts / total).round(5).tolist() if total else [0.0] * bins


def _length_class(length: float) -> int:
    return int(np.argmin(np.abs(_LENGTHS - length)))


def _pitch_features(pitches: list[int], lengths: list[float], tonic: int) -> dict[str, list[float]]:
    """Yang & Lerch's pitch and rhythm features of one line of notes (rests left out)."""
    intervals = [abs(b - a) for a, b in zip(pitches, pitches[1:])]
    return {
        "pitch classes": _histogram([(p - tonic) % 12 for p in pitches], lengths, 12),
        "note lengths": _histogram([_length_class(x) for x in lengths], [1.0] * len(lengths), 12),
        "pitch range": [float(max(pitches) - min(pitches)) if pitches else 0.0],
        "mean interval": [statistics.fmean(intervals) if intervals else 0.0],
        "note count": [float(len(pitches))],
    }


class _MusicCritic(Critic):
    """Meters and bars, which tunes and chorales share; subclasses measure the rest."""

    features = ("pitch classes", "note lengths", "pitch range", "mean interval", "note count")

    def pieces(self, text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("M:")]

    def known_meters(self) -> tuple[str, ...]:
        return tuple(self.meters["meters"]) if self.meters else ()

    def label_meters(self) -> tuple[str, ...]:
        return usual_meters(self.meters, self.label) if self.meters and self.label else ()

    def bar_lengths(self, body: str) -> list[Fraction]:
        raise NotImplementedError

    def meter_values(self, pieces: list[str]) -> dict[str, float | None]:
        known, labelled = set(self.known_meters()), set(self.label_meters())
        in_known = in_label = inner = full = whole = 0
        for piece in pieces:
            meter, _, body = header_of(piece)
            in_known += meter in known
            in_label += meter in labelled
            bars = self.bar_lengths(body)
            expected = meter_quarters(meter) if meter else None
            inner_bars = bars[1:-1]
            fulls = sum(length == expected for length in inner_bars)
            inner, full, whole = inner + len(inner_bars), full + fulls, whole + (fulls == len(inner_bars))
        return {
            "known_meter": _share(in_known, len(pieces)) if known else None,
            "label_meter": _share(in_label, len(pieces)) if labelled else None,
            "inner_bars_full": _share(full, inner),
            "pieces_all_bars_full": _share(whole, len(pieces)),
        }


_METER_MEASURES = (
    Measure("known_meter", "header names a meter the corpus uses"),
    Measure("label_meter", "header names one of the label's meters"),
    Measure("inner_bars_full", "inner bars whose notes fill the meter"),
    Measure("pieces_all_bars_full", "pieces with every inner bar full"),
)


class MelodyCritic(_MusicCritic):
    """A folk player's first look at a tune: its meter, its bars, its ending, its notes."""

    key = "melody"
    measures = _METER_MEASURES + (
        Measure("tonic_ending", "ends on the key's tonic (major or relative minor)"),
        Measure("repeated_part", f"plays a part of {MIN_PART_BARS}+ bars twice in a row (AABB)", better="closer"),
        Measure("pitch_class_overlap", "pitch-class histogram overlapping the corpus's"),
        Measure("median_bars", "median length in bars", unit="value", better="closer"),
    )

    def bar_lengths(self, body: str) -> list[Fraction]:
        bars = body.rstrip("\n").split(BAR)
        if bars and not bars[-1]:
            bars.pop()  # after the closing bar line
        return [sum((melody.DURATIONS[c] for c in bar if c in melody.DURATIONS), Fraction(0)) for bar in bars]

    def judge(self, pieces: list[str]) -> Judged:
        values = self.meter_values(pieces)
        endings = keyed = 0
        weights = np.zeros(12)
        bar_counts = []
        features: dict[str, list[list[float]]] = {name: [] for name in self.features}
        for piece in pieces:
            _, sharps, body = header_of(piece)
            tune, _ = melody.decode_tune(piece)
            notes = [e for e in tune.events if e.pitch is not None]
            bar_counts.append(len(self.bar_lengths(body)))
            if sharps is None or not notes:
                continue
            keyed += 1
            tonic = tonics(sharps)[0]
            endings += notes[-1].pitch % 12 in tonics(sharps)
            pitches, lengths = [e.pitch for e in notes], [float(e.duration) for e in notes]
            for p, length in zip(pitches, lengths):
                weights[(p - tonic) % 12] += length
            for name, vector in _pitch_features(pitches, lengths, tonic).items():
                features[name].append(vector)
        values["tonic_ending"] = _share(endings, keyed)
        values["repeated_part"] = _share(sum(repeats_a_part(header_of(p)[2]) for p in pieces), len(pieces))
        values["pitch_classes"] = (weights / weights.sum()).round(5).tolist() if weights.sum() else None
        values["median_bars"] = float(statistics.median(bar_counts)) if bar_counts else None
        return Judged(len(pieces), values, features)

    @staticmethod
    def relative(samples: Judged, corpus: Judged) -> None:
        """Measures that compare the samples with the corpus: the pitch-class histograms' shared area."""
        mine, theirs = samples.values.get("pitch_classes"), corpus.values.get("pitch_classes")
        samples.values["pitch_class_overlap"] = (round(float(np.minimum(mine, theirs).sum()), 4)
                                                 if mine and theirs else None)
        corpus.values["pitch_class_overlap"] = 1.0 if theirs else None


class ChoraleCritic(_MusicCritic):
    """A harmony teacher's first look at a chorale: parallel fifths and octaves, spacing, crossings, ranges."""

    key = "chorale"
    measures = _METER_MEASURES + (
        Measure("parallels", "parallel fifths and octaves per 100 chord onsets", unit="rate", better="lower"),
        Measure("spacing", "S-A or A-T more than an octave apart, per 100 chords", unit="rate", better="lower"),
        Measure("crossings", "a voice above the one over it, per 100 chords", unit="rate", better="lower"),
        Measure("out_of_range", "notes outside the voice's range in the corpus", better="lower"),
        Measure("median_bars", "median length in bars", unit="value", better="closer"),
    )

    def bar_lengths(self, body: str) -> list[Fraction]:
        bars = [bar for bar in body.rstrip("\n").split(BAR)]
        if bars and not bars[-1]:
            bars.pop()
        return [chorale.FRAME * sum(bar.count(end) for end in chorale.FRAME_END + chorale.FERMATA_END) for bar in bars]

    def judge(self, pieces: list[str]) -> Judged:
        values = self.meter_values(pieces)
        parallels = onsets = spaced = crossed = chords = 0
        lows, highs = [200] * chorale.VOICES, [-1] * chorale.VOICES
        features: dict[str, list[list[float]]] = {name: [] for name in self.features}
        bar_counts = []
        for piece in pieces:
            _, sharps, body = header_of(piece)
            frames = sounding_frames(body)
            bar_counts.append(len(self.bar_lengths(body)))
            previous = None
            for pitches, struck in frames:
                if None in pitches:
                    continue
                chords += 1
                s, a, t, b = pitches
                spaced += (s - a > 12) or (a - t > 12)
                crossed += a > s or t > a or b > t
                for voice, p in enumerate(pitches):
                    lows[voice], highs[voice] = min(lows[voice], p), max(highs[voice], p)
                if any(struck):
                    onsets += 1
                    if previous is not None:
                        parallels += count_parallels(previous, pitches)
                    previous = pitches
            soprano = chorale.decode_chorale(piece)[0].voices[0]
            notes = [e for e in soprano if e.pitch is not None]
            if notes and sharps is not None:
                for name, vector in _pitch_features([e.pitch for e in notes], [float(e.duration) for e in notes],
                                                    tonics(sharps)[0]).items():
                    features[name].append(vector)
        values.update({"parallels": _rate(parallels, onsets), "spacing": _rate(spaced, chords),
                       "crossings": _rate(crossed, chords),
                       "ranges": [[lo, hi] for lo, hi in zip(lows, highs)] if chords else None,
                       "median_bars": float(statistics.median(bar_counts)) if bar_counts else None})
        return Judged(len(pieces), values, features, {"notes_by_voice": _notes_by_voice(pieces)})

    @staticmethod
    def relative(samples: Judged, corpus: Judged) -> None:
        """Notes outside each voice's range in the corpus."""
        ranges, notes = corpus.values.get("ranges"), samples.details.get("notes_by_voice")
        corpus.values["out_of_range"] = 0.0 if ranges else None  # the ranges are the corpus's own
        if not ranges or notes is None:
            samples.values["out_of_range"] = None
            return
        outside = sum(not lo <= p <= hi for (lo, hi), voice in zip(ranges, notes) for p in voice)
        samples.values["out_of_range"] = _share(outside, sum(len(v) for v in notes))


def _notes_by_voice(pieces: list[str]) -> list[list[int]]:
    voices: list[list[int]] = [[] for _ in range(chorale.VOICES)]
    for piece in pieces:
        for pitches, struck in sounding_frames(header_of(piece)[2]):
            for voice, (p, new) in enumerate(zip(pitches, struck)):
                if new and p is not None:
                    voices[voice].append(p)
    return voices


def sounding_frames(body: str) -> list[tuple[tuple[int | None, ...], tuple[bool, ...]]]:
    """Each frame of a chorale body: the pitch each voice sounds (None: silent) and whether it starts there."""
    frames = []
    sounding: list[int | None] = [None] * chorale.VOICES
    current = ""
    for char in body:
        if char in chorale.PITCH_CHARS or char in (chorale.HOLD, chorale.REST):
            current += char
        elif char in (chorale.FRAME_END, chorale.FERMATA_END):
            struck = []
            for voice, c in enumerate(current[:chorale.VOICES].ljust(chorale.VOICES, chorale.HOLD)):
                if c == chorale.REST:
                    sounding[voice] = None
                elif c != chorale.HOLD:
                    sounding[voice] = chorale.LOWEST_PITCH + chorale.PITCH_CHARS.index(c)
                struck.append(c not in (chorale.HOLD, chorale.REST))
            frames.append((tuple(sounding), tuple(struck)))
            current = ""
    return frames


def count_parallels(before: tuple[int, ...], after: tuple[int, ...]) -> int:
    """Parallel fifths and octaves (unisons and compound intervals too) between two chords, voice pair by pair.

    Two voices that both move, in the same direction, from a perfect fifth to a perfect fifth, or from an
    octave or unison to an octave or unison, make one parallel.
    """
    found = 0
    for i in range(len(before)):
        for j in range(i + 1, len(before)):
            move_i, move_j = after[i] - before[i], after[j] - before[j]
            if move_i == 0 or move_j == 0 or (move_i > 0) != (move_j > 0):
                continue
            old, new = abs(before[i] - before[j]) % 12, abs(after[i] - after[j]) % 12
            found += old == new and old in (0, 7)
    return found
