"""Candidate continuations for co-writing: one batch per draw, each cut at the next natural boundary.

The text so far is fed once: its end state is cached (`loop.Context`), so a
draw after taking a candidate feeds only that candidate, and a reroll feeds
nothing. All candidates are sampled together from that state as one batch,
under the run's constraints (a poem's form, an acrostic, a tune's key), then
each is cut at its first boundary: the end of a line for text and verse, the
end of a statement for code, the end of a bar for music.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from ..data.config import FILE_SEPARATOR
from ..music import chorale, melody
from ..music.keys import key_words
from ..sampling.generator import Generator, build_automata, derived_seed
from ..sampling.loop import Context
from ..sampling.options import SampleOptions

CANDIDATE_LENGTH = 80  # characters sampled per candidate before it is cut at its boundary
MAX_CONTEXTS = 64  # cached text states; a session rarely goes back further
REDRAW_ROUNDS = 4  # draws made to find `count` different, non-empty candidates


class CandidateMaker:
    """Draws candidates for a `session.WriteSession` from a loaded run."""

    def __init__(self, gen: Generator, options: SampleOptions, length: int = CANDIDATE_LENGTH, runner=None):
        """
        Args:
            gen: the loaded run.
            options: constraints and settings every draw keeps (form, acrostic, lines, key, ...);
                the prime, count, temperature and seed come with each draw.
            length: characters sampled per candidate, at most.
            runner: where the model runs: `gen.sampler` by default; a server's engine runner, which
                feeds and draws among its other streams.
        """
        self.gen = gen
        self.runner = runner if runner is not None else gen.sampler
        self.length = length
        self.options = replace(options, warmup=False, length=None, num_samples=1)
        self.contexts: dict[tuple, Context] = {}
        first = self.check("")
        if (first.form, first.acrostic) != (self.options.form, self.options.acrostic):
            # What resolving worked out (a Chinese acrostic's form, its traditional characters): said once, kept.
            self.options = replace(self.options, form=first.form, acrostic=first.acrostic)
        self.poem_lines = first.poem_lines  # 0 for free text

    def check(self, text: str, count: int = 1, temperature: float = 1.0, seed: int = 0):
        """The resolved settings for a draw after `text`; raises `OptionError` for text the run cannot continue."""
        cfg = self.gen.resolve(replace(self.options, prime=text or None, num_samples=count, temperature=temperature,
                                       seed=seed))
        # A candidate is a line or a bar, whatever the whole piece's length; and no candidate is too short to
        # keep (a sample's minimum, which drops a failed tune, would drop every header and bar).
        return replace(cfg, length=self.length, min_chars=0)

    def poem_done(self, text: str) -> bool:
        """Whether `text` already holds every line of the poem the options ask for."""
        return bool(self.poem_lines) and text.count("\n") >= self.poem_lines

    def __call__(self, text: str, count: int, temperature: float, seed: int) -> tuple[str, ...]:
        if self.poem_done(text):
            return ()
        cfg = self.check(text, count, temperature, seed)
        automata = build_automata(self.gen.facts, cfg)
        ids = self.gen.vocab.encode(text, oov=cfg.oov, option="text") if text else []
        ids = ids or self.gen.vocab.encode(self.gen.facts.default_prime())
        context = self._context(ids, cfg, automata)
        run_cfg = replace(cfg, stop=tuple(cfg.stop) + self.gen.facts.default_stops())
        offered: list[str] = []
        # Duplicates and empty candidates are no choice: draw again (from seeds derived from this draw's,
        # so a replay draws the same) until `count` differ, or offer the different ones there are.
        for round_index in range(REDRAW_ROUNDS):
            rng = np.random.default_rng(derived_seed(seed, round_index))
            for sample in self.runner.generate([], run_cfg, rng, automata=automata, context=context):
                candidate = self._cut(sample.text, sample.stopped, cfg, text)
                if candidate not in offered and (candidate.strip() or sample.stopped):
                    offered.append(candidate)
            if len(offered) >= count:
                break
        return tuple(offered[:count])

    def _context(self, ids: list[int], cfg, automata) -> Context:
        """The state after feeding `ids`, extended from the longest cached prefix of them."""
        key = tuple(a.fingerprint for a in automata)
        best: tuple = ()
        for cached_key, cached_ids in ((k[0], k[1]) for k in self.contexts):
            if cached_key == key and len(cached_ids) > len(best) and tuple(ids[: len(cached_ids)]) == cached_ids:
                best = cached_ids
        if best:
            context = self.runner.prefill(ids[len(best):], cfg, automata, context=self.contexts[(key, best)])
        else:
            context = self.runner.prefill(ids, cfg, automata)
        if len(self.contexts) >= MAX_CONTEXTS:
            self.contexts.pop(next(iter(self.contexts)))
        self.contexts[(key, tuple(ids))] = context
        return context

    def _cut(self, text: str, stopped: bool, cfg, before: str) -> str:
        """`text` through its first boundary; a tune's or file's end (a default stop) is kept as the end."""
        kind = self.gen.facts.kind
        end = boundary(text, kind, before)
        if end is not None:
            return text[:end]
        if stopped:  # the end of the tune, the file, or the poem's last line
            return text + (FILE_SEPARATOR if kind == "code" else "\n")
        return text


def boundary(text: str, kind: str, before: str = "") -> int | None:
    """Where the first natural unit of `text` ends (an index just past it), or None if it does not end in it.

    The unit (a line for text and verse, a statement for code) has something written in it.

    `before` is the text it continues: a statement it leaves open (a bracket, a string) goes on in `text`.
    """
    if kind == "music":
        ends = [i + 1 for i in (text.find(melody.BAR), text.find("\n")) if i >= 0]
        return min(ends) if ends else None
    if kind == "code":
        # Only the file `text` continues counts: its statements so far, after the last file separator.
        current = before.rsplit(FILE_SEPARATOR, 1)[-1]
        blank_lines = len(text) - len(text.lstrip("\n"))
        end = statement_end(current + text, after=len(current) + blank_lines)
        return None if end is None else end - len(current)
    # A line ends at the first newline after something written: newlines before it (a speaker's name
    # ends with one, a stanza with two) belong to the candidate, which would otherwise be empty.
    end = text.find("\n", len(text) - len(text.lstrip("\n")))
    return end + 1 if end >= 0 else None


def statement_end(code: str, after: int = 0) -> int | None:
    """Just past the first newline at or after index `after` that ends a Python statement: outside brackets,
    strings and continuations."""
    depth, quote, i = 0, "", 0
    while i < len(code):
        c = code[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if code.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
            if c == "\n" and len(quote) == 1:
                quote = ""  # an unterminated one-line string ends with its line
            else:
                i += 1
                continue
        if c == "#":
            newline = code.find("\n", i)
            if newline < 0:
                return None
            i = newline
            continue
        if c in "\"'":
            quote = c * 3 if code.startswith(c * 3, i) else c
            i += len(quote)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif c == "\\" and code.startswith("\n", i + 1):
            i += 2
            continue
        elif c == "\n" and depth == 0 and i > 0 and i >= after:
            return i + 1
        i += 1
    return None


def describe(text_so_far: str, candidate: str, encoding: str) -> str:
    """A music candidate as note names (the top voice for chorales), e.g. `D5 F#5 A5 | rest`."""
    line = text_so_far.rsplit("\n", 1)[-1]
    decode = chorale.decode_chorale if encoding == "chorale" else melody.decode_tune

    def events(text: str):
        piece, _ = decode(text)
        voices = getattr(piece, "voices", None)
        return (voices[0] if voices else []) if voices is not None else piece.events

    before, after = events(line), events(line + candidate.rstrip("\n"))
    names = [note_name(e.pitch) for e in after[len(before):]]
    if not names:  # a header (meter and key), or the end of the piece
        return f"{header_words(candidate)}  (header)" if candidate.strip("\n") else "(end of the piece)"
    return " ".join(names) + (" |" if candidate.endswith(melody.BAR) else "")


NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def header_words(header: str) -> str:
    """A music header in words: `M:6/8 K:1|` is `6/8, G major or E minor (1 sharp)`."""
    parts = dict(token.partition(":")[::2] for token in header.strip().rstrip(melody.BAR).split())
    meter, sharps = parts.get("M", "?"), parts.get("K", "")
    if not sharps.lstrip("-").isdigit() or abs(int(sharps)) > 7:
        return f"{meter}, key {sharps or '?'}"
    return f"{meter}, {key_words(int(sharps))}"


def note_name(pitch: int | None) -> str:
    return "rest" if pitch is None else f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def describe_piece(text: str, encoding: str) -> str:
    """Music text as the candidates are shown: each piece on its line, bar by bar as note names."""
    pieces = []
    for line in text.split("\n"):
        shown, before = [], ""
        for bar in re.findall(rf"[^{re.escape(melody.BAR)}]+{re.escape(melody.BAR)}?", line):
            shown.append(describe(before, bar, encoding).replace("  (header)", ""))
            before += bar
        pieces.append(" ".join(shown))
    return "\n".join(pieces)
