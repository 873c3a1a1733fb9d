"""One stream's text as it is sampled: the warm-up skipped, stop strings and limits applied.

Text is released only once no stop string can still begin inside it, so a
streamed sample never shows characters that are later cut.
"""

from __future__ import annotations

from ..limits import Limit

# A warm-up that finds no boundary in this many characters starts output anyway (a chorale line runs to ~6000).
WARMUP_MAX_CHARS = 8000


class StreamText:
    """One stream's text: skips a warm-up, cuts at stop strings and limits, releases final text.

    Text is released only once no stop string can still begin inside it, so a
    streamed sample never shows characters that are later cut.
    """

    def __init__(self, stops: tuple[str, ...], limit: Limit | None = None,
                 warmup: str = "", length: int | None = None, min_chars: int = 0, strict_warmup: bool = False):
        self.stops = stops
        self.strict_warmup = strict_warmup  # a constraint starts at the boundary: never start without one
        self.min_chars = min_chars
        self.limit = limit
        self.warmup = warmup
        self.warm_text = ""
        self.length = length
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.text = ""
        self.emitted = 0
        self.stopped = False  # a stop string or limit ended it
        self.full = False  # it reached `length`
        self.short = ""  # the last whole piece dropped as too short: kept if only a fragment follows it

    @property
    def finished(self) -> bool:
        return self.stopped or self.full

    def append(self, piece: str, last: bool) -> str:
        """Adds `piece`; returns the newly final text (everything, if `last`)."""
        if self.finished:
            return ""
        if self.warmup:
            # The start depends only on the stream, never on chunking: just after the boundary
            # if it ends within WARMUP_MAX_CHARS, else exactly at WARMUP_MAX_CHARS.
            self.warm_text += piece
            boundary = self.warm_text.find(self.warmup)
            if 0 <= boundary <= WARMUP_MAX_CHARS - len(self.warmup):
                start = boundary + len(self.warmup)
            elif len(self.warm_text) >= WARMUP_MAX_CHARS and not self.strict_warmup:
                start = WARMUP_MAX_CHARS
            else:
                return ""
            piece, self.warmup = self.warm_text[start:], ""
        search_from = max(len(self.text) - self.hold, 0)
        self.text += piece
        hits = [i for i in (self.text.find(s, search_from) for s in self.stops) if i >= 0]
        while hits and min(hits) < self.min_chars:
            # Too short to keep (a failed tune, say): drop it and carry on from after its stop.
            cut = min(hits)
            stop = next(s for s in self.stops if self.text.startswith(s, cut))
            self.short, self.text = self.text[:cut], self.text[cut + len(stop):]
            hits = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.text, self.stopped = self.text[: min(hits)], True
        if self.limit:
            chars, n, after, start = self.limit
            begin = self.text.find(start) + 1 if start else 0  # 0 while a `start` is still missing
            counting = begin > 0 or not start
            positions = [i for i, c in enumerate(self.text) if counting and i >= begin and c in chars]
            if len(positions) >= n:
                cut = positions[n - 1] + (1 if after else 0)
                self.text, self.stopped = self.text[:cut], True
        if self.length is not None and len(self.text) >= self.length and not self.stopped:
            self.text, self.full = self.text[: self.length], True
        if (self.full or last) and not self.stopped and self.short and len(self.text) < self.min_chars and not self.emitted:
            # The budget ran out inside the piece after a short one: a short whole piece beats a fragment.
            self.text, self.stopped, self.full = self.short, True, False
        final = len(self.text) if self.finished or last else max(len(self.text) - self.hold, 0)
        if len(self.text) < self.min_chars and not (self.finished or last):
            final = 0  # it may still be dropped
        released, self.emitted = self.text[self.emitted : final], max(self.emitted, final)
        return released
