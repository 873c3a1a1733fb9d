"""English verse that rhymes and scans: the model writes each line, and its meter and rhyme are chosen, not cut.

A line of verse is drawn as the model writes lines: `LINE_CANDIDATES`
continuations of the poem so far, each to its newline, sampled at once. Of
those that are lines of verse (not a speaker's name or a stage line), the
first whose syllables fit the meter (within one, by the CMU dictionary) is
the one kept: rejection sampling, so the kept line is the model's own line
given the meter. A line that opens a rhyme must end on a dictionary word with
rhymes to spare. A line that closes one keeps the kept line's words up to
its last, and the model draws the last word again from the dictionary's
words that rhyme with its partner and keep the line in the meter, each in
proportion to the model's probability of that word there and of the line
ending after it; then the punctuation after it. So the rhyme word is one the
model itself finds likely there, and the line is never cut off.

Every draw takes its random numbers from the poem's seed, the line and the
round, so a seed writes the same poem on any machine.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..data import prosody
from .config import SamplingConfig
from .constraints import Automaton, AutomatonBuilder

log = logging.getLogger(__name__)
LINE_CANDIDATES = 24  # lines drawn at once for each line of the poem
ROUNDS = 8  # draws of LINE_CANDIDATES before the likeliest fit is taken as it is
MAX_LINE_CHARS = 100  # a line longer than this is not a line of verse
MIN_PARTNERS = 12  # a word that opens a rhyme has at least this many dictionary words that rhyme with it
MAX_WORD_CHARS = 16
MAX_RHYME_WORDS = 256  # the rhyme words scored at once for a line's end (the longest lists are cut)
LINE_END_PUNCTUATION = ",.;!?"  # no colon: a line ending on one can read as a speaker's name
_WORD_END = re.compile(r"([A-Za-z']+)([^A-Za-z']*)$")


@dataclass
class _Poem:
    """One poem being written: its text so far, the context after it, and the words its rhymes end on."""

    text: str
    context: object
    rhymes: dict[tuple[int, str], str]  # (stanza, letter) -> the word the letter's first line ends on
    used: set[str]
    automata: tuple


@functools.lru_cache(maxsize=8)
def line_automaton(chars: tuple[str, ...]) -> Automaton:
    """No line of the poem is empty: after a newline the model may not write another. (A blank line is
    where the model's corpus starts a new speech, and where a reader takes a poem to end.)"""
    b = AutomatonBuilder(chars)
    b.move("line start", "\n", "line start")
    b.penalize("line start", "\n", float("inf"))
    b.default("line start", "in line")
    b.move("in line", "\n", "line start")
    b.default("in line", "in line")
    return b.build("verse-line", "line start", {"verse_lines": "never empty"})


def write_verse(sampler, vocab, cfg: SamplingConfig, prime_ids: list[int], index: int,
                on_line: Callable[[str], None] | None = None, runner=None) -> str:
    """Poem `index` of `cfg`'s draw: `cfg.verse_lines` lines in `cfg.rhyme`'s scheme and `cfg.meter`.

    Args:
        sampler: the loop's `Sampler` (its network scores the rhyme words).
        vocab: the run's vocabulary.
        prime_ids: the prime (or the model's default start), fed before the first line.
        runner: where lines are drawn (the sampler, or a server's engine runner).
    """
    runner = runner if runner is not None else sampler
    feed = replace(cfg, num_samples=1)
    automata = (line_automaton(tuple(vocab.chars)),)
    poem = _Poem("", runner.prefill(prime_ids, feed, automata), {}, set(), automata)
    scheme = cfg.rhyme
    target = prosody.METERS.get(cfg.meter)
    chars = set(vocab.chars)
    for number in range(cfg.verse_lines):
        stanza, letter = (number // len(scheme), scheme[number % len(scheme)]) if scheme else (number, "")
        partner = poem.rhymes.get((stanza, letter)) if letter else None
        line = _draw_line(sampler, runner, vocab, cfg, poem, target, partner, bool(letter), chars, [cfg.seed, index, number])
        word = prosody.last_word(line)
        if letter and partner is None:
            poem.rhymes[(stanza, letter)] = word
        poem.used.add(word.lower())
        text = line + ("\n" if number + 1 < cfg.verse_lines else "")
        if on_line:
            on_line(text)
        poem.text += text
        if number + 1 < cfg.verse_lines:
            poem.context = runner.prefill(vocab.encode(line + "\n"), feed, automata, context=poem.context)
    return poem.text


def _draw_line(sampler, runner, vocab, cfg, poem: _Poem, target: int | None, partner: str | None, rhymed: bool,
               chars: set[str], seed: list[int]) -> str:
    """One line after `poem`: the first drawn that scans and ends on a word that serves its rhyme (opening one
    with partners to spare, or closing one), a drawn line that scans with its rhyme word drawn again, or, when
    none of ROUNDS draws does, the line that comes closest."""
    line_cfg = replace(cfg, num_samples=LINE_CANDIDATES, length=MAX_LINE_CHARS, stop=("\n",), warmup="",
                       min_chars=0, limit=None)
    closest: dict[bool, tuple[int, str]] = {}  # whether its end serves the rhyme -> (syllables off, line)
    for round_index in range(ROUNDS):
        rng = np.random.default_rng([*seed, round_index])
        for sample in runner.generate([], line_cfg, rng, automata=poem.automata, context=poem.context):
            line = sample.text.rstrip()
            if not sample.stopped or not _is_verse(line):
                continue
            word = prosody.last_word(line)
            if partner is None:
                serves = not rhymed or (bool(prosody.pronunciations(word)) and word.lower() not in poem.used
                                        and prosody.rhymes_known(word) >= MIN_PARTNERS)
            else:
                serves = bool(prosody.rhyme(partner, word)) and word.lower() not in poem.used
            miss = abs(prosody.estimated_syllables(line) - target) if target else 0
            if serves not in closest or miss < closest[serves][0]:
                closest[serves] = (miss, line)
            if miss > prosody.SYLLABLE_TOLERANCE:
                continue
            if serves:
                return line
            if partner is not None:
                ended = _rhyme_ending(sampler, runner, vocab, cfg, poem, line, partner, target, chars, rng)
                if ended is not None:
                    return ended
    if not closest:
        return ""
    log.info("no line of %d drawn fit the %s; keeping the closest", ROUNDS * LINE_CANDIDATES, cfg.meter or "rhyme")
    if True in closest:
        return closest[True][1]
    line = closest[False][1]
    if partner is not None:
        ended = _rhyme_ending(sampler, runner, vocab, cfg, poem, line, partner, None, chars, np.random.default_rng(seed))
        line = ended if ended is not None else line
    return line


def _is_verse(line: str) -> bool:
    """A line of verse, and not one a reader could take for a speaker's name or a stage line."""
    return (bool(prosody.verse_lines(line)) and bool(re.search(r"[A-Za-z]", line)) and not line.endswith(":")
            and not line.isupper())


def _rhyme_ending(sampler, runner, vocab, cfg, poem: _Poem, line: str, partner: str, target: int | None,
                  chars: set[str], rng: np.random.Generator) -> str | None:
    """`line` with its last word written again by the model among the words that rhyme with `partner`."""
    match = _WORD_END.search(line)
    if match is None:
        return None
    head = line[:match.start()]
    spare = None if target is None else (target - prosody.estimated_syllables(head))
    words = sorted({w for w in prosody.rhyming_words(partner)
                    if len(w) <= MAX_WORD_CHARS and w not in poem.used and set(w) <= chars
                    and prosody.word_syllables(w) is not None
                    and (spare is None or abs(prosody.word_syllables(w) - spare) <= prosody.SYLLABLE_TOLERANCE)})
    if not words or not head.strip():
        return None
    context = runner.prefill(vocab.encode(head), replace(cfg, num_samples=1), poem.automata, context=poem.context)
    word = _sample_word(sampler, vocab, cfg, context, words, rng)
    return head + word


def _sample_word(sampler, vocab, cfg, context, words: list[str], rng: np.random.Generator) -> str:
    """One of `words` and the punctuation after it (or none), drawn by the model from `context` (which stands
    before the word's first character): each word in proportion to the model's probability of it and of its
    ending there, at the draw's temperature."""
    net, ops = sampler.net, sampler.net.ops
    endings = [c for c in LINE_END_PUNCTUATION + "\n" if vocab.id_of(c) is not None]
    ending_ids = np.array([vocab.id_of(c) for c in endings])
    words = words[:MAX_RHYME_WORDS]
    k, longest = len(words), max(map(len, words))
    ids = np.full((k, longest), -1, np.int64)
    for row, word in enumerate(words):
        ids[row, :len(word)] = [vocab.id_of(c) for c in word]
    rows = np.arange(k)
    states = sampler.with_labels([np.repeat(np.asarray(s), k, axis=0) for s in context.states], cfg, 0)
    states = [ops.convert_to_tensor(np.asarray(s)) for s in states]
    token = np.full((k,), context.token, np.int32)
    guided = sampler.guided(cfg)
    temperature = max(float(cfg.temperature), 1e-3)
    score, ending_logprobs = np.zeros(k), np.zeros((k, len(endings)))
    for position in range(longest + 1):
        logits, states = net.step(ops.convert_to_tensor(token), states, guided)
        logits = np.asarray(ops.convert_to_numpy(logits), np.float64) / temperature
        logprobs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        ended = np.array([len(word) == position for word in words])
        ending_logprobs[ended] = logprobs[ended][:, ending_ids]
        going = position < np.array([len(word) for word in words])
        if going.any():
            score[going] += logprobs[rows[going], ids[going, position]]
        if position < longest:
            token = np.where(going, ids[:, min(position, longest - 1)], token).astype(np.int32)
    score += np.logaddexp.reduce(ending_logprobs, axis=1)
    chosen = _draw(score, rng)
    return words[chosen] + endings[_draw(ending_logprobs[chosen], rng)].strip()


def _draw(logprobs: np.ndarray, rng: np.random.Generator) -> int:
    weights = np.exp(logprobs - logprobs.max())
    return int(min(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(), side="right"), len(weights) - 1))
