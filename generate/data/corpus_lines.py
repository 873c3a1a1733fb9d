"""The lines of a corpus of Chinese verse, as hashes: what a sampled poem's lines must not copy.

A poem's line here is a run of five or seven Han characters between
punctuation or line ends. A model folder may carry its corpus's lines as
`lines.json` (`checkpoints/make_lines.py`): their 32-bit BLAKE2b hashes,
sorted, base64 in JSON, so that a fresh machine without the corpus can still
refuse a copied line. At about 277,000 lines a false match is about one line
in 15,000 (the chance a new line's hash is among them), which costs a redraw.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..fileio import atomic_path
from .vocab import HAN_RUN

LINE_LENGTHS = (5, 7)


def verse_lines(text: str) -> list[str]:
    """The runs of five or seven Han characters in `text`: a poem's lines, without their punctuation."""
    return [piece for piece in HAN_RUN.findall(text) if len(piece) in LINE_LENGTHS]


def line_hash(line: str) -> int:
    return int.from_bytes(hashlib.blake2b(line.encode("utf-8"), digest_size=4).digest(), "little")


def write_lines(path: Path, texts: Iterable[str], source: str) -> int:
    """Writes the hashes of every verse line of `texts` to `path` (atomically); returns how many lines."""
    hashes = np.unique(np.array([line_hash(line) for text in texts for line in verse_lines(text)], np.uint32))
    record = {"about": "32-bit BLAKE2b hashes of the corpus's lines of five or seven Han characters, sorted, "
                       "little-endian, base64", "source": source, "lines": int(len(hashes)),
              "hashes": base64.b64encode(hashes.astype("<u4").tobytes()).decode("ascii")}
    with atomic_path(Path(path)) as staged:
        Path(staged).write_text(json.dumps(record) + "\n", encoding="utf-8")
    return int(len(hashes))


def read_lines(path: Path) -> np.ndarray | None:
    """The sorted hashes in a model's `lines.json`, or None without one.

    Raises:
        CheckpointError: a damaged file.
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        hashes = np.frombuffer(base64.b64decode(record["hashes"], validate=True), "<u4")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: expected the corpus's line hashes ({exc})") from None
    if len(hashes) != record.get("lines") or np.any(np.diff(hashes.astype(np.int64)) <= 0):
        raise CheckpointError(f"{path}: expected {record.get('lines')} sorted hashes, found {len(hashes)} or unsorted")
    return hashes


def copied_lines(text: str, hashes: np.ndarray) -> list[str]:
    """The lines of `text` whose hash is among the corpus's."""
    lines = verse_lines(text)
    if not lines or not len(hashes):
        return []
    found = np.array([line_hash(line) for line in lines], np.uint32)
    at = np.minimum(np.searchsorted(hashes, found), len(hashes) - 1)
    return [line for line, hit in zip(lines, hashes[at] == found) if hit]
