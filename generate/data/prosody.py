"""English prosody by the CMU Pronouncing Dictionary: rhymes, syllables, and which lines are verse.

Two words rhyme when some pronunciation of each has the same rhyming part
(the last stressed vowel and what follows), as `pronouncing` reads the
dictionary. A block's lines of verse leave out speaker names (`ROMEO:`) and
stage lines (`Enter ...`, `[Exit]`). The critic (`critics.english`) and the
sampler's rhyme and meter (`sampling.english_verse`) read verse the same way.
"""

from __future__ import annotations

import functools
import re

METERS = {"trimeter": 6, "tetrameter": 8, "pentameter": 10, "hexameter": 12}  # syllables a line
SYLLABLE_TOLERANCE = 1  # a pentameter line of 9 to 11 syllables scans (a feminine ending, an elision)
SONNET = "ABABCDCDEFEFGG"
# A speaker's name is a few capitalised words and a colon (`ROMEO:`, `First Citizen:`, `DUKE OF YORK:`, `Duke of
# York:`); a line of verse may end on a colon too ("Your brother and his lover have embraced:").
_SPEAKER = re.compile(r"^[A-Z][A-Za-z']*(?: (?:[A-Z][A-Za-z']*|of|the|and|de|la|le|du)){0,4}:$")
_STAGE = re.compile(r"^\s*(\[.*\]|(Enter|Exit|Exeunt|Re-enter)\b.*)$")
_WORD = re.compile(r"[A-Za-z']+")


@functools.cache
def _dictionary():
    import pronouncing  # the dictionary loads once, and only when verse is judged or written

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


@functools.lru_cache(maxsize=65536)
def word_syllables(word: str) -> int | None:
    """A word's syllables by its first pronunciation; None for a word the dictionary lacks."""
    found = pronunciations(word)
    return _dictionary().syllable_count(found[0]) if found else None


@functools.lru_cache(maxsize=65536)
def rhyming_parts(word: str) -> frozenset[str]:
    """The rhyming parts of a word's pronunciations (empty for a word the dictionary lacks)."""
    return frozenset(_dictionary().rhyming_part(p) for p in pronunciations(word))


@functools.lru_cache(maxsize=65536)
def rhymes_known(word: str) -> int:
    """How many dictionary words rhyme with `word`: a line that opens a rhyme should end on one with partners."""
    return len(set(_dictionary().rhymes(word.lower()))) if word and pronunciations(word) else 0


@functools.lru_cache(maxsize=4096)
def rhyming_words(word: str) -> tuple[str, ...]:
    """The dictionary words that rhyme with `word` (itself left out)."""
    return tuple(_dictionary().rhymes(word.lower())) if pronunciations(word) else ()


def estimated_syllables(line: str) -> int:
    """A line's syllables: the dictionary's for the words it has, the vowel groups of the rest."""
    count = 0
    for word in _WORD.findall(line):
        known = word_syllables(word)
        count += known if known is not None else max(1, len(re.findall(r"[aeiouy]+", word.lower())))
    return count


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


