"""What sampling needs to know about music: limits and key penalties.

`--bars` and `--notes` become sampler limits over the encodings'
characters; a tune too short to be one is replaced by the next; and pitches
outside the header's key are penalised by a default that depends on the
encoding. (A MIDI, ABC or MusicXML primer is encoded by `dataset.encode_primer`.)
"""

from __future__ import annotations

import math

import numpy as np

from ..limits import Limit
from . import chorale, melody
from .melody import BAR

MIN_MUSIC_CHARS = 100  # a sampled tune or piece shorter than this (a failed header, say) is replaced by the next
# Nats off out-of-key pitch logits by default, per encoding: enough to keep a model's melodies in key
# at least as often as the corpus (benchmarks/RESULTS.md, "Staying in key") while leaving accidentals
# possible; chorales get less, since Bach's harmony needs its leading tones.
DEFAULT_KEY_PENALTY = {"melody": 1.5, "chorale": 1.0}
PIECE_PERCENTILES = (5, 95)  # a sampled piece runs from the corpus's 5th to its 95th percentile of bars
# A sampled header names only a meter the corpus uses: one at least this many of its pieces have (O'Neill's
# single tune in 1/4 is a transcription's quirk, not a meter to write in) ...
METER_MIN_PIECES = 3
# ... and, with a label, one at least this share of the label's pieces have (a jig in 2/4 is a mislabelled tune).
LABEL_METER_SHARE = 0.02


def piece_lengths(ids: np.ndarray, bar_id: int | None, newline_id: int | None) -> dict | None:
    """How many bars a music corpus's pieces run to, from its ids: what a sampled piece should run to.

    Each piece is one line; its bars are its bar lines after the header's. Returns
    `{"bars": [low, high], "percentiles": [5, 95], "median": m, "pieces": n}` (low rounded down, high up),
    or None for ids with no whole piece.
    """
    if bar_id is None or newline_id is None:
        return None
    ends = np.flatnonzero(ids == newline_id)
    if not len(ends):
        return None
    bar_lines_before = np.cumsum(ids == bar_id)[ends]
    bars = np.diff(np.concatenate([[0], bar_lines_before])) - 1  # the header's own bar line starts no bar
    bars = bars[bars > 0]
    if not len(bars):
        return None
    low, high = np.percentile(bars, PIECE_PERCENTILES)
    return {"bars": [max(int(math.floor(low)), 1), int(math.ceil(high))], "percentiles": list(PIECE_PERCENTILES),
            "median": int(round(float(np.median(bars)))), "pieces": int(len(bars))}


def piece_meters(ids: np.ndarray, chars: tuple[str, ...], piece_labels: list[str] | None = None) -> dict | None:
    """The meters a music corpus's pieces are written in, counted, from its ids: what a sampled header may name.

    Args:
        ids: the corpus, one piece per line, each opening with its `M:<meter> K:<sharps>|` header.
        chars: the vocabulary, in id order.
        piece_labels: a labelled corpus's label for each line, in order (`<none>` for none).

    Returns `{"meters": {meter: pieces}, "min_pieces": n}` (with `"by_label": {label: {meter: pieces}}` and
    `"label_share"` for labels), or None for ids with no header.
    """
    newline = chars.index("\n") if "\n" in chars else None
    if newline is None or BAR not in chars:
        return None
    starts = np.concatenate([[0], np.flatnonzero(ids == newline) + 1])
    counts: dict[str, int] = {}
    by_label: dict[str, dict[str, int]] = {}
    for piece, start in enumerate(starts[:-1]):
        header = "".join(chars[i] for i in ids[start:start + 16])
        meter = header.split(" ", 1)[0].removeprefix("M:") if header.startswith("M:") and BAR in header else ""
        if not meter:
            continue
        counts[meter] = counts.get(meter, 0) + 1
        if piece_labels is not None:
            label = by_label.setdefault(piece_labels[piece], {})
            label[meter] = label.get(meter, 0) + 1
    if not counts:
        return None
    record: dict = {"meters": dict(sorted(counts.items(), key=lambda kv: -kv[1])), "min_pieces": METER_MIN_PIECES}
    if piece_labels is not None:
        record["by_label"] = {label: dict(sorted(m.items(), key=lambda kv: -kv[1])) for label, m in sorted(by_label.items())}
        record["label_share"] = LABEL_METER_SHARE
    return record


MIN_PART_BARS = 4  # a repeated part is at least this long: a repeated bar or two is a motif, not a part
SHORT_PART_MAX_BARS = 6  # a repeated part of at most this many bars counts as a short (4-bar) one, else a long (8-bar)


def repeated_part_bars(body: str, shortest: int = MIN_PART_BARS) -> int | None:
    """The bars of the first passage of at least `shortest` bars played twice in a row, note for note; None
    for a tune that repeats none. `body` is a tune after its header; a collection's repeats are written out
    (`repeats-expanded`), so a tune in AABB form holds its A twice."""
    bars = [bar for bar in body.rstrip("\n").split(BAR) if bar]
    for start in range(len(bars)):
        for length in range(shortest, (len(bars) - start) // 2 + 1):
            if bars[start:start + length] == bars[start + length:start + 2 * length]:
                return length
    return None


def piece_repeats(ids: np.ndarray, chars: tuple[str, ...], piece_labels: list[str] | None = None) -> dict | None:
    """How often a melody corpus's tunes play a part twice in a row, and how long their parts run.

    Returns `{"share": s, "short_share": t, "pieces": n}` (with `"by_label": {label: {...}}` for labels),
    where `short_share` is the share of repeating tunes whose first repeated part has at most
    SHORT_PART_MAX_BARS bars (a pickup counts as a bar); None for ids with no tune.
    """
    if "\n" not in chars or BAR not in chars:
        return None
    text = "".join(np.asarray(chars, dtype=object)[ids])
    found: dict[str, list] = {}
    for number, line in enumerate(text.split("\n")[:-1]):
        if BAR not in line:
            continue
        bars = repeated_part_bars(line.split(BAR, 1)[1])
        label = piece_labels[number] if piece_labels is not None else ""
        for key in {"", label}:
            found.setdefault(key, []).append(bars)
    if not found:
        return None

    def summary(parts: list) -> dict:
        repeating = [bars for bars in parts if bars is not None]
        short = sum(bars <= SHORT_PART_MAX_BARS for bars in repeating)
        return {"share": round(len(repeating) / len(parts), 4),
                "short_share": round(short / len(repeating), 4) if repeating else 0.0, "pieces": len(parts)}

    record = summary(found.pop(""))
    if piece_labels is not None:
        record["by_label"] = {label: summary(parts) for label, parts in sorted(found.items())}
    return record


def repeat_shares(record: dict, label: str = "") -> tuple[float, float]:
    """(share of tunes that repeat their parts, share of those whose parts are short) for `label`'s tunes,
    or the corpus's (a label with too few tunes to say: the corpus's)."""
    own = record.get("by_label", {}).get(label) if label else None
    chosen = own if own and own["pieces"] >= METER_MIN_PIECES * 10 else record
    return chosen["share"], chosen["short_share"]


def usual_meters(record: dict, label: str = "") -> tuple[str, ...]:
    """The meters a sampled header may name: the corpus's (`piece_meters`), or those of `label`'s pieces.

    A label none of whose meters is common enough (or one with no pieces) falls back to the corpus's.
    """
    common = tuple(m for m, n in record["meters"].items() if n >= record["min_pieces"]) or tuple(record["meters"])
    pieces = record.get("by_label", {}).get(label) if label else None
    if pieces:
        total = sum(pieces.values())
        own = tuple(m for m, n in pieces.items() if n >= max(2, record["label_share"] * total) and m in common)
        return own or common
    return common


def limit_for(encoding: str, bars: int | None, notes: int | None, primed_header: bool) -> Limit | None:
    """The sampler limit for `--bars N` or `--notes N`.

    Bars end just after the Nth bar line of the continuation (a fresh tune's
    header has one more); notes end just before the (N+1)th note starts,
    counting only past the header, whose `M` and `K` are also pitch letters.
    """
    if bars:
        return Limit(melody.BAR, bars + (0 if primed_header else 1), True, "")
    if notes:
        pitches = chorale.PITCH_CHARS if encoding == "chorale" else melody.PITCH_CHARS
        return Limit(pitches, notes + 1, False, "" if primed_header else melody.BAR)
    return None
