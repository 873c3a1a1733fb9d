"""The critic for classical Chinese verse: what a reader of Tang poems checks first.

Rhyme and tones by the Pingshui tables (`data.pingshui`), and lines copied
from the corpus. A poem is a block of lines between blank lines; a line is
its Han characters, punctuation dropped.
"""

from __future__ import annotations

import re

from ..data.pingshui import pingshui
from ..data.vocab import HAN_RUN
from .base import Critic, Judged, Measure


def poem_lines(poem: str) -> list[str]:
    """A poem's lines: each run of Han characters (a line ends at its punctuation or newline)."""
    return HAN_RUN.findall(poem)


def is_regulated_shape(lines: list[str]) -> bool:
    return len(lines) in (4, 8) and len({len(line) for line in lines}) == 1 and len(lines[0]) in (5, 7)


def even_lines_rhyme(lines: list[str]) -> bool:
    """Lines 2, 4 (6, 8) end on level tones sharing a Pingshui group with line 2's."""
    table = pingshui()
    return all(table.rhyme(lines[1][-1], line[-1]) for line in lines[1::2])


def follows_tones(lines: list[str]) -> bool:
    """The second, fourth (and sixth) places alternate within a line, oppose within a couplet and follow between
    couplets (二四六分明); a character with both readings fits either. Ends: even lines level, odd lines after the
    first oblique."""
    table = pingshui()

    def can(char: str, tone: int) -> bool:
        return table.is_level(char) if tone else table.is_oblique(char)

    for first in (0, 1):
        if not can(lines[0][1], first):
            continue
        fits = True
        for index, line in enumerate(lines):
            second = first if index % 4 in (0, 3) else 1 - first
            places = range(1, len(line) - 1, 2)
            fits &= all(can(line[p], second if p % 4 == 1 else 1 - second) for p in places)
            fits &= can(line[-1], 1) if index % 2 == 1 else (index == 0 or can(line[-1], 0))
        if fits:
            return True
    return False


class ChineseVerseCritic(Critic):
    """A reader of regulated Tang verse: its form, rhyme, tones, and whether its lines are its own."""

    key = "chinese verse"
    measures = (
        Measure("regulated_shape", "4 or 8 lines of 5 or 7 characters"),
        Measure("rhyme", "even lines rhyme (Pingshui groups)"),
        Measure("tones", "tones follow a regulated pattern (2nd, 4th, 6th places; ends)"),
        Measure("copied_line", "poems with a line found in the corpus", better="lower"),
    )

    def __init__(self, meters: dict | None = None, label: str = "", corpus_lines: frozenset[str] = frozenset()):
        super().__init__(meters, label)
        self.corpus_lines = corpus_lines

    def pieces(self, text: str) -> list[str]:
        return [block for block in re.split(r"\n\s*\n", text) if poem_lines(block)]

    def judge(self, pieces: list[str]) -> Judged:
        shaped = [lines for lines in map(poem_lines, pieces) if is_regulated_shape(lines)]
        copied = sum(any(line in self.corpus_lines for line in poem_lines(p)) for p in pieces)
        return Judged(len(pieces), {
            "regulated_shape": len(shaped) / len(pieces) if pieces else None,
            "rhyme": sum(map(even_lines_rhyme, shaped)) / len(shaped) if shaped else None,
            "tones": sum(map(follows_tones, shaped)) / len(shaped) if shaped else None,
            "copied_line": copied / len(pieces) if pieces and self.corpus_lines else None,
        })

    def reference(self, pieces: list[str], seed: int = 0) -> Judged:
        judged = super().reference(pieces, seed)
        judged.values["copied_line"] = 1.0 if self.corpus_lines else None  # every corpus poem is in its corpus
        return judged

    def with_corpus(self, pieces: list[str]) -> None:
        """Learns the corpus's lines, against which a sample's lines are checked for copies."""
        self.corpus_lines = frozenset(line for piece in pieces for line in poem_lines(piece) if len(line) >= 5)
