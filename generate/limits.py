"""`Limit`: where a sample ends by counting characters (bars, notes, a poem's lines).

A utility beside the rooms: music builds one for `--bars`/`--notes`, the
sampling options for a poem's lines, and the sampler and beam search cut at it.
"""

from __future__ import annotations

from typing import NamedTuple


class Limit(NamedTuple):
    """End the text at the `count`th of `chars`, just after it or just before it.

    When `start` is not empty, only characters after its first occurrence count
    (a music header's letters are not notes). A tuple, so records store it as a list.
    """

    chars: str  # the characters counted, e.g. "|" for bars or "\n" for lines
    count: int
    after: bool  # cut just after the count-th character (a bar line); else just before it (the next note)
    start: str = ""
