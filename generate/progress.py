"""A progress bar on stderr that degrades to plain log lines off a terminal.

On a TTY it redraws one line at most ten times a second. Elsewhere (cron,
pipes, CI) it writes a plain line at every tenth of the work, so logs stay
readable and honest about progress.

A terminal bar leaves its line open; `clear_open_line` clears it first, so a
log line written meanwhile starts on a line of its own (the bar redraws
under it at its next update).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_open_line: ProgressBar | None = None  # the terminal bar whose line the cursor is on


def clear_open_line() -> None:
    """Clears the line a terminal progress bar left open, so the next write starts at column 0."""
    global _open_line
    if _open_line is not None:
        _open_line.stream.write("\r\x1b[K")
        _open_line.stream.flush()
        _open_line._last_draw = 0.0  # redrawn at its next update, below what is written now
        _open_line = None


class ProgressBar:
    """Reports `done` out of `total` units with rate and ETA.

    Args:
        total: units of work expected (steps, bytes, files).
        desc: a short label printed before the bar.
        unit: the unit name shown with the rate.
        stream: where to write; stderr by default.
        enabled: False silences it entirely (`-q`).
        initial: units already done before this bar started (a resumed
            epoch); rate and ETA count only the work done since.
    """

    def __init__(self, total: int, desc: str = "", unit: str = "it", stream: TextIO | None = None,
                 enabled: bool = True, initial: int = 0):
        self.total = max(int(total), 1)
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.initial = self.done = int(initial)
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1
        self.postfix = ""

    def update(self, done: int, postfix: str = "", rate_units: float | None = None) -> None:
        """Sets progress to `done` units; `rate_units` overrides what the rate counts."""
        global _open_line
        self.done = min(int(done), self.total)
        self.postfix = postfix
        if not self.enabled:
            return
        now = time.monotonic()
        if self.is_tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self._line(now, rate_units) + "\x1b[K")
                self.stream.flush()
                _open_line = self
        else:
            tenth = self.done * 10 // self.total
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self.stream.write(self._line(now, rate_units) + "\n")
                self.stream.flush()

    def advance(self, n: int) -> None:
        """Moves the bar on by `n` units."""
        self.update(self.done + n)

    def close(self) -> None:
        global _open_line
        if self.enabled and self.is_tty and _open_line is self:
            self.stream.write("\n")
            self.stream.flush()
        if _open_line is self:
            _open_line = None

    def _line(self, now: float, rate_units: float | None) -> str:
        elapsed = max(now - self.start, 1e-9)
        fraction = self.done / self.total
        progressed = self.done - self.initial
        rate = (rate_units if rate_units is not None else progressed) / elapsed
        eta = (self.total - self.done) * elapsed / progressed if progressed > 0 else float("nan")
        bar = ""
        if self.is_tty:
            width = 24
            filled = int(width * fraction)
            bar = "[" + "#" * filled + "." * (width - filled) + "] "
        return (
            f"{self.desc} {bar}{self.done}/{self.total} {fraction:4.0%} "
            f"{_human(rate)} {self.unit}/s elapsed {_clock(elapsed)} eta {_clock(eta)}"
            + (f" {self.postfix}" if self.postfix else "")
        ).strip()


def _human(value: float) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:.1f}"


def _clock(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
