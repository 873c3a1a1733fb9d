"""The critic for any other text: what every text is judged by, its length and (from `evaluate`) its bits per character."""

from __future__ import annotations

import re
import statistics

from .base import Critic, Judged, Measure


class TextCritic(Critic):
    """A reader of prose, or of writing no other critic knows: paragraphs and how long they run."""

    key = "text"
    measures = (Measure("chars", "characters a paragraph (median)", unit="value", better="closer"),)

    def pieces(self, text: str) -> list[str]:
        return [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]

    def judge(self, pieces: list[str]) -> Judged:
        return Judged(len(pieces), {"chars": float(statistics.median(map(len, pieces))) if pieces else None})
