"""The critic for English verse: rhymed pairs and syllables per line, by the CMU Pronouncing Dictionary.

A poem is a block of lines between blank lines; speaker names (`ROMEO:`) and
stage lines (`Enter ...`, `[Exit]`) are not lines of it. Lines that share a
letter of the rhyme scheme (`ABAB`, `AABB`, the sonnet's
`ABABCDCDEFEFGG`) are judged in pairs: each against the first line of its
letter, when both end on dictionary words. Two words rhyme when some
pronunciation of each has the same rhyming part (the last stressed vowel
and what follows), as `pronouncing` reads the dictionary.
"""

from __future__ import annotations

import functools
import re
from statistics import fmean

from .base import Critic, Judged, Measure

METERS = {"trimeter": 6, "tetrameter": 8, "pentameter": 10, "hexameter": 12}  # syllables a line
SYLLABLE_TOLERANCE = 1  # a pentameter line of 9 to 11 syllables scans (a feminine ending, an elision)
SONNET = "ABABCDCDEFEFGG"
_SPEAKER = re.compile(r"^[A-Z][A-Za-z' ]*:$")
_STAGE = re.compile(r"^\s*(\[.*\]|(Enter|Exit|Exeunt|Re-enter)\b.*)$")
_WORD = re.compile(r"[A-Za-z']+")


@functools.cache
def _dictionary():
    import pronouncing  # the dictionary loads once, and only when verse is judged

    pronouncing.init_cmu()
    return pronouncing


def pronunciations(word: str) -> list[str]:
    return _dictionary().phones_for_word(word.lower().strip("'"))


def rhyme(a: str, b: str) -> bool | None:
    """Whether two words rhyme; None when either is not in the dictionary. A word does not rhyme with itself."""
    first, second = pronunciations(a), pronunciations(b)
    if not first or not second:
        return None
    if a.lower() == b.lower():
        return False
    parts = _dictionary().rhyming_part
    return bool({parts(p) for p in first} & {parts(p) for p in second})


def syllables(line: str) -> int | None:
    """A line's syllables by the dictionary (each word's first pronunciation); None if a word is unknown."""
    count = 0
    for word in _WORD.findall(line):
        found = pronunciations(word)
        if not found:
            return None
        count += _dictionary().syllable_count(found[0])
    return count


def verse_lines(block: str) -> list[str]:
    """A block's lines of verse: without speaker names, stage lines or empty lines."""
    return [line.strip() for line in block.splitlines()
            if line.strip() and not _SPEAKER.match(line.strip()) and not _STAGE.match(line)]


def last_word(line: str) -> str:
    words = _WORD.findall(line)
    return words[-1] if words else ""


class EnglishVerseCritic(Critic):
    """A reader of English verse: do the lines the scheme pairs rhyme, and do the lines scan?"""

    key = "english verse"
    settings = ("rhyme", "meter")
    measures = (
        Measure("rhymed_pairs", "judged pairs that rhyme (CMU dictionary)"),
        Measure("judged_pairs", "pairs judged (both ends in the dictionary)", unit="value", better="closer"),
        Measure("scanning_lines", "lines within a syllable of the meter"),
        Measure("mean_syllables", "syllables per line", unit="value", better="closer"),
    )

    def __init__(self, meters: dict | None = None, label: str = "", rhyme: str = "AABB", meter: str = "pentameter"):
        super().__init__(meters, label)
        self.scheme, self.meter = rhyme.upper(), meter

    def pieces(self, text: str) -> list[str]:
        return [block for block in re.split(r"\n\s*\n", text) if len(verse_lines(block)) >= 2]

    def judge(self, pieces: list[str]) -> Judged:
        pairs = rhymed = 0
        counts: list[int] = []
        for piece in pieces:
            lines = verse_lines(piece)
            for start in range(0, len(lines) - len(self.scheme) + 1, len(self.scheme)):
                stanza = lines[start:start + len(self.scheme)]
                first: dict[str, str] = {}
                for letter, line in zip(self.scheme, stanza):
                    if letter not in first:
                        first[letter] = last_word(line)
                        continue
                    verdict = rhyme(first[letter], last_word(line))
                    if verdict is not None:
                        pairs, rhymed = pairs + 1, rhymed + verdict
            counts += [n for n in map(syllables, lines) if n is not None]
        target = METERS.get(self.meter, 10)
        return Judged(len(pieces), {
            "rhymed_pairs": rhymed / pairs if pairs else None,
            "judged_pairs": float(pairs),
            "scanning_lines": sum(abs(n - target) <= SYLLABLE_TOLERANCE for n in counts) / len(counts) if counts else None,
            "mean_syllables": fmean(counts) if counts else None,
        })
