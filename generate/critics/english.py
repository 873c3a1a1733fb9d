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

import re
from statistics import fmean

from ..data.prosody import METERS, SYLLABLE_TOLERANCE, last_word, rhyme, syllables, verse_lines
from .base import Critic, Judged, Measure


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
