"""Python checked by Python's own parser, line by line: a line that breaks the code is drawn again.

The automata keep brackets, strings, layout and tokens valid character by
character, and end a sample cleanly at its length, but some rules are beyond
a table: what a conditional expression owes (`x if y` needs its `else`),
which names may follow which, a `try` whose handlers the length cut off. So
each sample of a Python draw is read by Python's own `codeop` at every line
end, as the interactive interpreter reads what is typed: a valid beginning
(complete so far, or incomplete) or code no continuation can save
(SyntaxError). From the first line that breaks it, the sample is drawn again
(the lines before it kept, the rest of its length to go, the automata as
before); a sample whose every line is a valid beginning but whose end leaves
something open is drawn again from its last line where the code was whole.
Each redraw has a seed derived from the draw's, the sample's and the
attempt's, and at most `ATTEMPTS` are made. So the kept text is the model's
own, given that it parses: rejection sampling where the error is, not of
the whole sample.
"""

from __future__ import annotations

import ast
import codeop
import logging
import warnings
from dataclasses import replace

import numpy as np

from ...data.config import FILE_SEPARATOR
from ..config import SamplingConfig
from ..loop import Sample

log = logging.getLogger(__name__)
ATTEMPTS = 4  # redraws of a sample's rest before it is kept as it is


def parses(source: str) -> bool:
    """Whether `source` is a whole Python module (a file separator marks a file's start, not code)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in sampled strings
            ast.parse(source.replace(FILE_SEPARATOR, ""))
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def _compiles(source: str) -> bool | None:
    """True: whole so far; None: a valid beginning, incomplete; False: code no continuation can save."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return codeop.compile_command(source.replace(FILE_SEPARATOR, ""), symbol="exec") is not None
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return False


def restart_point(prime: str, text: str) -> int | None:
    """Where in `text` a redraw starts: the start of its first line that breaks the code, or, when the end
    leaves something open, just after its last line where the code was whole; None when `prime + text` parses."""
    if parses(prime + text):
        return None
    whole = 0
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            return whole
        verdict = _compiles(prime + text[:end + 1])
        if verdict is False:
            return start
        if verdict:
            whole = end + 1
        start = end + 1


def mend(runner, vocab, cfg: SamplingConfig, prime: str, prime_ids: list[int], index: int, sample: Sample,
         automata: tuple, budget: list[int]) -> Sample:
    """`sample` (stream `index` of `cfg`'s draw) as it is if it parses, else drawn again from where it broke.

    `budget` holds the characters the draw's redraws may still sample (one list for the draw's samples, taken
    in order): redrawing costs a draw at most as much again as drawing, whatever the model."""
    text, stopped = sample.text, sample.stopped
    for attempt in range(ATTEMPTS):
        at = restart_point(prime, text)
        if at is None or budget[0] < cfg.length - at:
            return Sample(text, stopped)
        kept = text[:at]
        budget[0] -= cfg.length - at
        context = runner.prefill(prime_ids + vocab.encode(kept), replace(cfg, num_samples=1), automata)
        rest_cfg = replace(cfg, num_samples=1, length=max(cfg.length - len(kept), 1), warmup="", min_chars=0)
        rng = np.random.default_rng([cfg.seed, index, attempt, 0xc0de])
        again = runner.generate([], rest_cfg, rng, automata=automata, context=context)[0]
        text, stopped = kept + again.text, again.stopped
    if restart_point(prime, text) is not None:
        log.debug("sample %d: no redraw in %d parsed; kept as drawn", index, ATTEMPTS)
    return Sample(text, stopped)
