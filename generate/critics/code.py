"""The critic for code: does each sampled definition parse, and how much of it is copied from the corpus?

A piece is a top-level definition (a `def` or `class` and its body, its
decorators and comments before it), as a reader takes a function from a
file; code before the first definition is a piece of its own. Python's own
`ast` says whether it parses (dedented, so a method reads as a function).
The longest copied span is the most characters in a row a piece shares with
the training corpus (`sampling.novelty`), when the corpus is at hand.
"""

from __future__ import annotations

import re
import statistics
import textwrap

from ..data.config import FILE_SEPARATOR
from ..sampling.python.lines import parses
from .base import Critic, Judged, Measure

_TOP_LEVEL = re.compile(r"(?:@|def |class |async def )")  # a line that opens a top-level definition


class CodeCritic(Critic):
    """A reader of Python: does each definition parse, and how long a stretch does it copy?"""

    key = "code"
    measures = (
        Measure("parses", "definitions that parse as Python"),
        Measure("longest_copy", "longest stretch copied from the corpus (median, characters)", unit="value",
                better="lower"),
        Measure("chars", "characters a definition (median)", unit="value", better="closer"),
    )

    def __init__(self, meters: dict | None = None, label: str = ""):
        super().__init__(meters, label)
        self.copied = None  # text -> characters in a row shared with the corpus, when the corpus is at hand

    def pieces(self, text: str) -> list[str]:
        found = []
        for file in text.split(FILE_SEPARATOR):
            piece: list[str] = []
            last = ""  # the piece's last line with something on it
            for line in file.split("\n"):
                # A definition starts a piece, unless a decorator just before it already did.
                if _TOP_LEVEL.match(line) and not last.startswith("@") and "".join(piece).strip():
                    found.append("\n".join(piece).strip("\n"))
                    piece = []
                piece.append(line)
                last = line if line.strip() else last
            if "".join(piece).strip():
                found.append("\n".join(piece).strip("\n"))
        return found

    def judge(self, pieces: list[str]) -> Judged:
        parsed = sum(parses(textwrap.dedent(piece) + "\n") for piece in pieces)
        copies = [self.copied(piece) for piece in pieces] if self.copied else []
        return Judged(len(pieces), {
            "parses": parsed / len(pieces) if pieces else None,
            "longest_copy": float(statistics.median(copies)) if copies else None,
            "chars": float(statistics.median(len(piece) for piece in pieces)) if pieces else None,
        })

    def reference(self, pieces: list[str], seed: int = 0) -> Judged:
        copied, self.copied = self.copied, None  # the corpus copies itself whole: not a measure
        try:
            return super().reference(pieces, seed)
        finally:
            self.copied = copied
