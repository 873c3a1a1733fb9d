"""Style labels: where a corpus's labels come from, and which label each character of it carries.

A labelled run learns a label with every character (`model.builder`), so one
model writes in the style asked for. Labels come from the corpus itself:

- `folder`: a file's label is the name of the folder it sits in directly
  under a source directory (`poems/a.txt` under the source `data/` is "poems");
  a file named on its own, or by a pattern, takes its own folder's name;
- `tsv:FILE`: a two-column TSV of file (a path, or a name relative to the TSV)
  and label; files it does not list carry no label;
- `rhythm`, `mode`: music only, from an ABC tune's own header: its `R:` field
  (jig, reel, hornpipe, ...) or the mode of its `K:` field (major, minor,
  dorian, mixolydian, ...). A header label on fewer than MIN_HEADER_PIECES
  pieces is folded into `<none>`: too few to learn a style from.
- `rhyme`: Chinese verse, poem by poem (stanzas between blank lines): the
  Pingshui rhyme group its even lines share (東, 冬, 江, ...), or `<none>`
  for a poem whose even lines share none. A poet picks the rhyme before
  writing; a model told it at every step learns which characters it allows
  far sooner than one that must carry line 2's last character to line 4.
  Groups on fewer than MIN_HEADER_PIECES poems fold into `<none>` likewise.

Label 0 is always `<none>`: what unlabelled text carries, and what training
drops a label to now and then (`TrainConfig.label_dropout`), so the same
model also writes without one. The labels are not stored per character: a
corpus's labels are spans (where each file or piece starts, and its label),
looked up for the positions of each batch.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CorpusError, UsageError
from .config import check_label_source

log = logging.getLogger(__name__)

NONE = "<none>"
ANY = "any"  # `--label any`: each sample draws its own label, in proportion to the corpus's (`label_schedule.drawn_labels`)
HEADER_SOURCES = ("rhythm", "mode")
PIECE_SOURCES = (*HEADER_SOURCES, "rhyme")  # labels read from each piece itself, counted in pieces
MIN_HEADER_PIECES = 30
LABEL_FILE = "labels.json"

# ABC `R:` values as collections write them, to one name per rhythm (O'Neill's "double jig" is a jig).
RHYTHMS = {
    "jig": "jig", "double jig": "jig", "single jig": "jig", "slipjig": "slip jig", "slip jig": "slip jig",
    "reel": "reel", "hornpipe": "hornpipe", "strathspey": "strathspey", "polka": "polka", "waltz": "waltz",
    "march": "march", "slide": "slide", "mazurka": "mazurka", "barndance": "barndance", "barn dance": "barndance",
    "set dance": "set dance", "fling": "fling", "highland fling": "fling", "air": "air", "clog": "clog",
}
MODES = {"": "major", "maj": "major", "major": "major", "ion": "major", "m": "minor", "min": "minor", "minor": "minor",
         "aeo": "minor", "dor": "dorian", "mix": "mixolydian", "phr": "phrygian", "lyd": "lydian", "loc": "locrian"}
_ABC_FIELD = re.compile(r"^([A-Za-z]):(.*)$")
_ABC_KEY = re.compile(r"^\s*[A-Ga-g][#b]?\s*([A-Za-z]*)")


@dataclass(frozen=True)
class LabelSpans:
    """Which label each position of an id array carries: the positions where spans start, and their labels."""

    starts: np.ndarray  # (S,) int64, ascending, the first one <= 0
    ids: np.ndarray  # (S,) int32

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The label id at each position (any shape)."""
        return self.ids[np.searchsorted(self.starts, positions, side="right") - 1]

    def shifted(self, offset: int) -> LabelSpans:
        """The same spans for an array that starts `offset` positions in (a validation tail)."""
        return LabelSpans(self.starts - offset, self.ids)

    def chars_per_label(self, n_chars: int, n_labels: int) -> np.ndarray:
        """How many of the first `n_chars` positions carry each label."""
        ends = np.append(self.starts[1:], n_chars)
        sizes = np.clip(ends, 0, n_chars) - np.clip(self.starts, 0, n_chars)
        return np.bincount(self.ids, weights=sizes, minlength=n_labels).astype(np.int64)


@dataclass(frozen=True)
class Labelling:
    """A corpus's labels: their names (`<none>` first), the spans they cover, and how much of the corpus each holds."""

    source: str  # the --labels value
    names: tuple[str, ...]
    spans: LabelSpans
    units: dict[str, int]  # files or pieces per label
    unit: str  # "files" or "pieces"

    def summary(self, n_chars: int) -> dict:
        """What `labels.json` records: the source, each label's id order, and its files or pieces and characters."""
        chars = self.spans.chars_per_label(n_chars, len(self.names))
        return {"from": self.source, "names": list(self.names), "unit": self.unit,
                "counts": {name: {self.unit: self.units.get(name, 0), "chars": int(chars[i])} for i, name in enumerate(self.names)}}


def label_corpus(source: str, kind: str, sources: list[str], files: list[Path], file_chars: list[int],
                 music_index: list | None = None) -> Labelling:
    """The labels of a corpus's files (text, code) or pieces (music), in stream order.

    Args:
        source: the --labels value.
        kind: the corpus's kind.
        sources: the corpus's sources, as given (folders name labels).
        files: text and code: the files in stream order, with `file_chars` characters each.
        music_index: music: (file, tune number, lines) of each piece written, in order; `files` is then
            the encoded corpus (one piece per line) and `file_chars` its line lengths, newline included.

    Raises:
        UsageError: a header label for a corpus that is not music, or a TSV that cannot be read.
        CorpusError: no file or piece carries a label.
    """
    check_label_source(source)
    if source in HEADER_SOURCES and kind != "music":
        raise UsageError(f"--labels {source}: a music header field, expected a music corpus (this one is {kind}); "
                         "use folder or tsv:FILE")
    if source == "rhyme":
        if kind != "text":
            raise UsageError(f"--labels rhyme: Chinese verse, expected a text corpus (this one is {kind})")
        files, file_chars, labels = _poems_by_rhyme(files, file_chars)
        repeats = [1] * len(files)
    else:
        labels, repeats = _unit_labels(source, kind, sources, files, music_index)
    counts = Counter(labels)
    if source in PIECE_SOURCES:
        rare = {name for name, n in counts.items() if name != NONE and n < MIN_HEADER_PIECES}
        if rare:
            log.info("labels on fewer than %d pieces count as %s: %s", MIN_HEADER_PIECES, NONE,
                     ", ".join(f"{name} ({counts[name]})" for name in sorted(rare)))
            labels = [NONE if name in rare else name for name in labels]
            counts = Counter(labels)
    names = (NONE, *sorted(name for name in counts if name != NONE))
    reserved = [name for name in names[1:] if name.lower() in (ANY, "none")]
    if reserved:
        raise CorpusError(f"--labels {source}: a label may not be named {reserved[0]!r} (sampling's --label {ANY} "
                          "draws a label and --label none writes without one); rename it")
    unit = "pieces" if source in PIECE_SOURCES else _unit(kind)
    if len(names) == 1:
        raise CorpusError(f"--labels {source}: none of the corpus's {len(labels)} {unit} has a label"
                          + (" (expected files in folders under a source directory)" if source == "folder" else ""))
    index = {name: i for i, name in enumerate(names)}
    per_unit = np.repeat(np.array([index[name] for name in labels], np.int32), repeats)
    lengths = np.asarray(file_chars, np.int64)
    if len(per_unit) != len(lengths):
        raise CorpusError(f"--labels {source}: the corpus holds {len(lengths)} {_unit(kind)}, the label index "
                          f"{len(per_unit)}; rebuild it with `generate corpus build`")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    keep = np.concatenate([[True], per_unit[1:] != per_unit[:-1]]) if len(per_unit) else np.zeros(0, bool)
    spans = LabelSpans(starts[keep], per_unit[keep])
    unit_counts = {name: counts.get(name, 0) for name in names}
    return Labelling(source, names, spans, unit_counts, unit)


def _unit_labels(source: str, kind: str, sources: list[str], files: list[Path],
                 music_index: list | None) -> tuple[list[str], list[int]]:
    """The label of each file (text, code) or piece (music) by `source`, and the lines each unit spans."""
    if kind == "music":
        units = [(path, number) for path, number, _ in music_index or []]
        repeats = [lines for _, _, lines in music_index or []]
    else:
        units, repeats = [(str(path), None) for path in files], [1] * len(files)
    by_path = _tsv_labels(source[4:]) if source.startswith("tsv:") else None
    headers: dict[str, dict[int | None, dict[str, str]]] = {}
    labels = []
    for path, number in units:
        if source == "folder":
            labels.append(_folder_label(Path(path), sources))
        elif by_path is not None:
            labels.append(by_path.get(os.path.realpath(path)) or by_path.get(Path(path).name) or NONE)
        else:
            if path not in headers:
                headers[path] = _abc_headers(Path(path))
            labels.append(_header_label(source, headers[path].get(number, {})))
    return labels, repeats


def _unit(kind: str) -> str:
    return "pieces" if kind == "music" else "files"


_STANZA = re.compile(r".*?(?:\n[ \t]*\n\s*|\Z)", re.S)  # a poem and the blank lines after it


def _poems_by_rhyme(files: list[Path], file_chars: list[int]) -> tuple[list[Path], list[int], list[str]]:
    """Each poem of each file (one unit per poem, in stream order), its characters, and its rhyme group."""
    units, lengths, labels = [], [], []
    for path, chars in zip(files, file_chars):
        text = Path(path).read_text(encoding="utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        if text and not text.endswith("\n"):
            text += "\n"  # as the stream adds one
        poems = [match.group(0) for match in _STANZA.finditer(text) if match.group(0)]
        if sum(map(len, poems)) != chars:
            raise CorpusError(f"--labels rhyme: {path} holds {sum(map(len, poems))} characters, the corpus index "
                              f"{chars}; rebuild it with `generate corpus build`")
        for poem in poems:
            units.append(path)
            lengths.append(len(poem))
            labels.append(rhyme_group(poem) or NONE)
    return units, lengths, labels


_LINE_END = "，。、；：？！,.;:?!"


def rhyme_group(poem: str) -> str | None:
    """The level rhyme group (東, 冬, ...) every even line's last character belongs to, else `<none>`;
    None before a second line is written.

    A poem's lines are those ended by a newline or by punctuation, so a line still being written
    (a prime that stops mid-line) does not count. A character in several groups rhymes by the first
    group the others share.
    """
    from .pingshui import pingshui  # the tables load only where rhymes are asked about

    table = pingshui()
    lines = [line.strip() for line in poem.split("\n")]
    if lines and not lines[-1].endswith(tuple(_LINE_END)):
        lines.pop()
    ends = [line.rstrip(_LINE_END + " \t")[-1:] for line in lines if line][1::2]
    shared = -1
    for char in ends:
        shared &= table.level.get(char, 0)
    if not ends:
        return None
    if shared <= 0:
        return NONE
    return table.groups[(shared & -shared).bit_length() - 1][-1]  # 上平聲一東 -> 東


def _folder_label(path: Path, sources: list[str]) -> str:
    """The folder `path` sits in directly under a source directory; a file given on its own: its folder's name."""
    resolved = path.resolve()
    for source in sources:
        root = Path(os.path.expanduser(source))
        if root.is_dir():
            try:
                parts = resolved.relative_to(root.resolve()).parts
            except ValueError:
                continue
            return parts[0] if len(parts) > 1 else NONE
    return resolved.parent.name or NONE


def _tsv_labels(tsv: str) -> dict[str, str]:
    """File -> label from a two-column TSV, keyed by real path and by bare file name."""
    path = Path(os.path.expanduser(tsv))
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except OSError as exc:
        raise UsageError(f"--labels tsv:{tsv}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"--labels tsv:{tsv}: expected UTF-8 text") from None
    found: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].startswith("#"):
            continue
        if len(row) != 2 or not row[1].strip():
            raise UsageError(f"--labels tsv:{tsv}: line {number}: expected a file and a label separated by a tab")
        name, label = row[0].strip(), row[1].strip()
        if label == NONE:
            continue
        found[os.path.realpath(path.parent / name)] = label
        found.setdefault(Path(name).name, label)
    if not found:
        raise UsageError(f"--labels tsv:{tsv}: expected lines of a file and a label, found none")
    return found


def _abc_headers(path: Path) -> dict[int | None, dict[str, str]]:
    """Each tune's header fields (letter -> value) in an ABC file, by `X:` number; other files have none."""
    if path.suffix.lower() != ".abc":
        return {}
    tunes: dict[int | None, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _ABC_FIELD.match(line.strip())
        if match and match.group(1) == "X":
            digits = re.match(r"\s*(\d+)", match.group(2))
            current = tunes.setdefault(int(digits.group(1)) if digits else None, {})
        elif match and current is not None and match.group(1) not in current:
            current[match.group(1)] = match.group(2).strip()
            if match.group(1) == "K":  # the header ends at the key
                current = None
    return tunes


def _header_label(source: str, header: dict[str, str]) -> str:
    if source == "rhythm":
        return RHYTHMS.get(" ".join(header.get("R", "").lower().replace("-", " ").split()), NONE)
    key = header.get("K")
    if key is None:
        return NONE
    match = _ABC_KEY.match(key)
    mode = match.group(1).lower()[:3] if match else ""
    return MODES.get(mode, NONE) if match else NONE


def read_labels(path: Path) -> dict | None:
    """A run's `labels.json`, or None for a run without labels.

    Raises:
        CorpusError: a damaged file.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CorpusError(f"{path}: unreadable labels ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("names"), list) or data["names"][:1] != [NONE]:
        raise CorpusError(f"{path}: expected a JSON object whose names start with {NONE!r}")
    return data


def label_dropout(batch_rows: int, probability: float, seed: int, epoch: int, step: int) -> np.ndarray:
    """(B,) True for each stream whose labels a training batch drops to `<none>`, drawn from the run's seed alone.

    Whole rows are dropped, so the model also sees long stretches without a
    label; the draw depends only on (seed, epoch, step), so a resumed run drops the same rows.
    """
    if probability <= 0:
        return np.zeros(batch_rows, bool)
    return np.random.default_rng([seed, epoch, step, 0x1abe1]).random(batch_rows) < probability
