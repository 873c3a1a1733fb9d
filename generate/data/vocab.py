"""The character vocabulary: code points to ids and back, stored as `vocab.json`.

Ids are assigned in code-point order so a vocabulary is a pure function of the
set of characters kept. With `min_count > 1`, rarer characters share one
unknown token, rendered as U+FFFD.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, OptionError, UsageError, expect
from ..fileio import atomic_write_text
from .config import OOV_POLICIES

UNK_CHAR = "\ufffd"
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han characters (CJK ideographs), as a regex character-class body


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # id -> character; the unknown token, if any, is UNK_CHAR
    unk_id: int | None = None  # id that unseen or rare characters map to, or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_count: int = 1) -> Vocab:
        """Builds a vocabulary keeping characters seen at least `min_count` times."""
        kept = sorted(c for c, n in counts.items() if n >= min_count)
        has_rare = any(n < min_count for n in counts.values())
        unk_id = None
        if has_rare:
            if UNK_CHAR not in kept:
                kept = sorted(kept + [UNK_CHAR])
            unk_id = kept.index(UNK_CHAR)
        return cls(tuple(kept), unk_id)

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def id_of(self, char: str) -> int | None:
        return self._index.get(char)

    def lookup_table(self):
        """An int32 array indexed by code point: the id, or -1 for no id."""
        import numpy as np  # the rest of this module serves --help and `info`, which never need NumPy

        table = np.full(0x110000, -1 if self.unk_id is None else self.unk_id, dtype=np.int32)
        table[[ord(c) for c in self.chars]] = np.arange(len(self.chars), dtype=np.int32)
        return table

    def encode(self, text: str, oov: str = "error", what: str = "text", option: str | None = None) -> list[int]:
        """Maps text to ids.

        Args:
            text: the characters to encode.
            oov: what to do with characters outside the vocabulary: `error`,
                `drop` them, or map them to the `unk` token.
            what: how to name the text in an error, e.g. a file name.
            option: the setting the text came from, e.g. `prime`; errors then name it instead.

        Raises:
            UsageError: for out-of-vocabulary characters under `error`, or
                under `unk` when the vocabulary has no unknown token
                (an `OptionError` when `option` is given).
        """
        expect(oov in OOV_POLICIES, "oov", f"one of {', '.join(OOV_POLICIES)}", oov)
        missing = sorted({c for c in text if c not in self._index})
        if missing and (oov == "error" or (oov == "unk" and self.unk_id is None)):
            shown = ", ".join(repr(c) for c in missing[:20]) + (" ..." if len(missing) > 20 else "")
            hint = "--oov drop" if oov == "unk" else "--oov drop or --oov unk"
            problem = f"{len(missing)} character(s) not in the model's vocabulary: {shown} (use {hint})"
            if option:
                raise OptionError(option, problem)
            raise UsageError(f"{what}: {problem}")
        if oov == "drop":
            return [self._index[c] for c in text if c in self._index]
        return [self._index.get(c, self.unk_id) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"chars": "".join(self.chars), "unk_id": self.unk_id}, ensure_ascii=False)

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            chars = tuple(data["chars"])
            unk_id = data.get("unk_id")
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; a run directory needs its vocab.json") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: expected {{'chars': str, 'unk_id': int|null}}, unreadable ({exc})") from None
        if len(set(chars)) != len(chars) or not chars:
            raise CheckpointError(f"{path}: expected distinct characters, received {len(chars)} with duplicates or none")
        return cls(chars, unk_id)


HAN_RUN = re.compile(f"[{HAN}]+")  # a run of Han characters: a line of Chinese verse, between its punctuation


def han_chars(chars: tuple[str, ...]) -> str:
    """The Han characters among `chars`, which a Chinese form's lines are made of."""
    return "".join(c for c in chars if re.fullmatch(f"[{HAN}]", c))


ENGLISH_MIN_LETTERS = 40  # Latin letters a vocabulary holds to write English words: most of both cases


def latin_letters(chars: tuple[str, ...]) -> int:
    """How many of `chars` are Latin letters: a vocabulary with ENGLISH_MIN_LETTERS of them writes English."""
    return sum(c.isascii() and c.isalpha() for c in chars)


def character_frequencies(ids, vocab_size: int) -> np.ndarray:
    """Each id's share of `ids`, as float64 of length `vocab_size` (zeros for unseen ids)."""
    counts = np.bincount(np.asarray(ids), minlength=vocab_size).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def unigram_entropy(ids, vocab_size: int) -> float:
    """The entropy in nats of the character frequencies in `ids`: the loss of predicting frequencies alone."""
    p = character_frequencies(ids, vocab_size)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
