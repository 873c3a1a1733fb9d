"""Beam search: the K likeliest continuations, found together in the compiled loop.

The K beams are the rows of one batch. At every step each beam's next
characters are scored with the model's own log-probabilities (temperature 1,
no truncation), plus any constraint's bias (`constraints.py`: -inf forbids a
character, a finite penalty discourages it). Of the K x V extensions, the K
with the best length-normalised score survive: the mean log-probability per
generated character. A beam is finished when its stop strings or limit (lines
of a poem, bars of a tune) say so, tracked by one more automaton
(`finish_automaton`); a finished beam keeps its score and stops growing, and
still competes with the live ones. Everything is deterministic: ties go to the
lower beam and character index.

Each beam also keeps the log-probability of every character it was fed,
prime included, so it reports exactly what `generate score` measures on the
text it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..limits import Limit
from ..model.network import StepNetwork
from .config import SamplingConfig
from .constraints import Automaton, stream_states
from .loop import Sampler, fingerprint, one_label
from .streams import StreamText

CHUNK_STEPS = 256  # steps per compiled call, fixed so the loop traces once
NEG_INF = float("-inf")


@dataclass(frozen=True)
class FinishAutomaton:
    """Knows when a stream's sampled text has ended: a stop string written, or its limit reached."""

    transitions: np.ndarray  # (S, V) int32
    accepting: np.ndarray  # (S,) bool: the text has ended

    @property
    def fingerprint(self) -> tuple:
        return self.transitions.shape, hash(self.transitions.tobytes()), hash(self.accepting.tobytes())


def finish_automaton(chars: tuple[str, ...], stops: tuple[str, ...], limit: Limit | None) -> FinishAutomaton:
    """The product of a stop-string matcher (Aho-Corasick, as a DFA) and the limit's counter.

    The limit `(characters, n, after, start)` ends the text at the nth of
    `characters`, counted once `start` (if any) has appeared, exactly as
    `streams.StreamText` cuts it.
    """
    prefixes = sorted({""} | {s[:k] for s in stops for k in range(len(s))}, key=lambda p: (len(p), p))
    stop_index = {p: i for i, p in enumerate(prefixes)}
    stop_done = len(prefixes)  # one more state: a stop string was written
    stop_moves = np.full((stop_done + 1, len(chars)), stop_done, np.int32)
    for prefix, state in stop_index.items():
        for v, c in enumerate(chars):
            text = prefix + c
            if any(text.endswith(s) for s in stops):
                continue  # stays stop_done
            # The longest suffix of the text that is still the start of a stop string.
            stop_moves[state, v] = next(stop_index[text[k:]] for k in range(len(text) + 1) if text[k:] in stop_index)
    chars_counted, needed, _, start = limit if limit else ("", 0, False, "")
    counts = needed + 1 if limit else 1
    phases = 2 if start else 1  # before and after the limit's start character
    limit_states = phases * counts

    def limit_state(started: int, count: int) -> int:
        return (started if start else 0) * counts + count

    limit_moves = np.zeros((limit_states, len(chars)), np.int32)
    for started in range(phases):
        for count in range(counts):
            for v, c in enumerate(chars):
                now_started, now_count = started, count
                if start and not started:
                    now_started = int(c in start)  # the start character itself is not counted
                elif c in chars_counted and count < needed:
                    now_count = count + 1
                limit_moves[limit_state(started, count), v] = limit_state(now_started, now_count)
    limit_done = np.zeros(limit_states, bool)
    if limit:
        limit_done[[limit_state(s, needed) for s in range(phases)]] = True
    stop_states = stop_done + 1
    transitions = (stop_moves[:, None, :] * limit_states + limit_moves[None, :, :]).reshape(stop_states * limit_states, -1)
    accepting = ((np.arange(stop_states) == stop_done)[:, None] | limit_done[None, :]).reshape(-1)
    return FinishAutomaton(transitions.astype(np.int32), accepting)


# Long on purpose: the whole function is traced and compiled as one loop (XLA); its closures are the loop's body.
def make_beam_fn(net: StepNetwork, automata: tuple[Automaton, ...], finish: FinishAutomaton, guided: bool = False):
    """Builds `run(carry, forced, steps)` that advances K beams by up to `steps` characters.

    The carry holds, per beam: the character to feed, the network's states,
    every automaton's state, the finish state, whether it is finished, its
    summed log-probability over sampled characters (the ranking's numerator),
    their count, the log-probability of everything it was fed, and which beam
    of the chunk's start it descends from. The output buffers hold, per step,
    the character each beam took and its log-probability, reordered along with
    the beams so that column k is always beam k's own history.
    """
    ops = net.ops
    vocab_size = net.vocab_size
    tables = [a.tensors(vocab_size, ops) for a in automata]
    finish_moves = ops.convert_to_tensor(finish.transitions.reshape(-1))
    finish_accepting = ops.convert_to_tensor(finish.accepting)

    def run(carry, forced, steps):
        beams = ops.shape(carry["token"])[0]
        out_tokens = ops.zeros((ops.shape(forced)[0], beams), "int32")
        out_logprobs = ops.zeros((ops.shape(forced)[0], beams), "float32")
        rows = ops.arange(ops.shape(forced)[0], dtype="int32")[:, None]
        columns = ops.arange(vocab_size, dtype="int32")[None, :]

        def body(t, loop):
            c, out_tokens, out_logprobs = loop
            token = c["token"]
            logits, states = net.step(token, c["states"], guided)
            logprobs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
            automaton_states = [table.step(state, token) for table, state in zip(tables, c["automata"])]
            bias = ops.zeros_like(logprobs)
            for table, state in zip(tables, automaton_states):
                bias = bias + table.char_bias(state)
            # Only sampled characters move the finish automaton: a prime never ends a text.
            moved = ops.take(finish_moves, c["finish"] * vocab_size + token, axis=0)
            finish = ops.where(c["fed_sampled"] & ~c["finished"], moved, c["finish"])
            finished = c["finished"] | (c["fed_sampled"] & ops.take(finish_accepting, finish, axis=0))
            forced_t = ops.take(forced, t, axis=0)
            is_forced = ops.all(forced_t >= 0)

            # Forced (the prime): every beam takes the prime's character and stays where it is.
            parent_forced = ops.arange(beams, dtype="int32")
            chosen_forced = forced_t
            # Searching: extend every live beam by every character; a finished beam's one
            # extension (column 0) keeps its score. Keep the best K by mean log-probability.
            length = ops.cast(c["length"], "float32")
            extended = (c["score"][:, None] + logprobs + bias) / (length[:, None] + 1.0)
            frozen = ops.where(columns == 0, (c["score"] / ops.maximum(length, 1.0))[:, None], NEG_INF)
            candidates = ops.where(c["finished"][:, None], frozen, extended)
            _, best = ops.top_k(ops.reshape(candidates, (-1,)), beams, sorted=True)
            best = ops.cast(best, "int32")
            parent_search, chosen_search = best // vocab_size, best % vocab_size

            parent = ops.where(is_forced, parent_forced, parent_search)
            chosen = ops.where(is_forced, chosen_forced, chosen_search)
            take = lambda x: ops.take(x, parent, axis=0)  # noqa: E731 - a gather by parent, for every carried array
            was_finished = take(finished)
            step_logprob = ops.take_along_axis(take(logprobs), chosen[:, None], axis=1)[:, 0]
            step_bias = ops.take_along_axis(take(bias), chosen[:, None], axis=1)[:, 0]
            grows = ~was_finished & ~is_forced
            new = {
                "token": ops.where(was_finished, take(token), chosen),
                "states": [take(s) for s in states],
                "automata": [take(s) for s in automaton_states],
                "finish": take(finish),
                "finished": was_finished,
                "fed_sampled": grows,
                "score": take(c["score"]) + ops.where(grows, step_logprob + step_bias, 0.0),
                "length": take(c["length"]) + ops.cast(grows, "int32"),
                "fed_logprob": take(c["fed_logprob"]) + ops.where(was_finished, 0.0, step_logprob),
                "origin": take(c["origin"]),
            }
            out_tokens = ops.where(rows == t, ops.where(was_finished, -1, chosen)[None, :], ops.take(out_tokens, parent, axis=1))
            out_logprobs = ops.where(rows == t, ops.where(was_finished, 0.0, step_logprob)[None, :],
                                     ops.take(out_logprobs, parent, axis=1))
            return new, out_tokens, out_logprobs

        return ops.fori_loop(0, steps, body, (carry, out_tokens, out_logprobs))

    return net.compile(run)


@dataclass
class Beam:
    text: str  # generated characters, without the prime, cut before any stop string
    stopped: bool  # a stop string or limit ended it, not the length
    score: float  # mean log-probability per generated character, terminator included: the ranking
    logprob: float  # log-probability of `text` given what was fed before it
    fed_logprobs: list[float]  # log-probability of every character fed after the first, prime included


def beam_search(sampler: Sampler, prime_ids: list[int], cfg: SamplingConfig, automata: tuple[Automaton, ...]) -> list[Beam]:
    """Runs `cfg.beam` beams after `prime_ids` on `sampler`'s network; returns them best first (beams that found nothing are left out)."""
    return sampler.run_job(BeamSearch(sampler, prime_ids, cfg, automata))


class BeamSearch:
    """A beam search as a job: `advance(steps)` runs up to `steps` more characters, so a server's engine
    can run a few steps of it per tick beside its other streams, and end it between any two.

    Its result does not depend on how the steps are cut: each call is the same compiled loop, carried on.
    """

    def __init__(self, sampler: Sampler, prime_ids: list[int], cfg: SamplingConfig, automata: tuple[Automaton, ...]):
        net, chars, compiled = sampler.net, tuple(sampler.chars), sampler.compiled
        self.ops, self.chars, self.cfg = net.ops, chars, cfg
        finish = finish_automaton(chars, cfg.stop, cfg.limit)
        guided = sampler.guided(cfg)
        key = ("beam", tuple(fingerprint(a) for a in automata), fingerprint(finish), guided)
        if key not in compiled:
            compiled[key] = make_beam_fn(net, automata, finish, guided)
        self.run = compiled[key]
        k = self.rows = cfg.beam
        as_tensor = self.ops.convert_to_tensor
        self.carry = {
            "token": as_tensor(np.full((k,), prime_ids[0], np.int32)),
            # Beams compete for one text, so under --label any they share the label the first stream draws.
            "states": [as_tensor(s) for s in sampler.with_labels(net.initial_states(k), one_label(cfg), len(prime_ids) - 1)],
            "automata": [as_tensor(stream_states(a.start, k)) for a in automata],
            "finish": as_tensor(np.zeros((k,), np.int32)),
            "finished": as_tensor(np.zeros((k,), bool)),
            "fed_sampled": as_tensor(np.zeros((k,), bool)),
            # Beam 0 alone is live at first, so the first choice yields K different beams.
            "score": as_tensor(np.where(np.arange(k) == 0, 0.0, NEG_INF).astype(np.float32)),
            "length": as_tensor(np.zeros((k,), np.int32)),
            "fed_logprob": as_tensor(np.zeros((k,), np.float32)),
            "origin": as_tensor(np.arange(k, dtype=np.int32)),
        }
        self.n_fed = len(prime_ids) - 1
        self.pending, self.sampled, self.all_finished = list(prime_ids[1:]), 0, False
        # Per call: which beam of the call's start each beam descends from, and the characters and log-probabilities
        # it took, joined along the descent at the end (rebuilding the history at every call made a long search
        # quadratic, and a server's engine calls it a step or two at a time).
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    @property
    def done(self) -> bool:
        return self.all_finished or (not self.pending and self.sampled >= self.cfg.length)

    def advance(self, steps: int) -> None:
        """Feeds or searches up to `steps` (at most CHUNK_STEPS) more characters: prime first, then the search."""
        ops, k = self.ops, self.rows
        steps = max(1, min(steps, CHUNK_STEPS))
        n_forced = min(len(self.pending), steps)
        steps = n_forced if n_forced else min(steps, self.cfg.length - self.sampled)
        forced = np.full((CHUNK_STEPS, k), -1, np.int32)
        forced[:n_forced] = np.asarray(self.pending[:n_forced], np.int32)[:, None]
        self.carry["origin"] = ops.convert_to_tensor(np.arange(k, dtype=np.int32))
        self.carry, out_tokens, out_logprobs = self.run(self.carry, forced, np.int32(steps))
        origin = np.asarray(ops.convert_to_numpy(self.carry["origin"]))
        self.chunks.append((origin, np.asarray(ops.convert_to_numpy(out_tokens))[:steps],
                            np.asarray(ops.convert_to_numpy(out_logprobs))[:steps]))
        self.pending, self.sampled = self.pending[n_forced:], self.sampled + (steps - n_forced)
        self.all_finished = bool(np.asarray(ops.convert_to_numpy(self.carry["finished"])).all())

    def result(self) -> list[Beam]:
        """The beams, best first (beams that found nothing are left out)."""
        ops, cfg = self.ops, self.cfg
        score = np.asarray(ops.convert_to_numpy(self.carry["score"]), np.float64)
        length = np.asarray(ops.convert_to_numpy(self.carry["length"]))
        ranking = np.where(np.isfinite(score), score / np.maximum(length, 1), -np.inf)
        tokens, logprobs = self._histories()
        beams = []
        for b in sorted(range(self.rows), key=lambda i: (-ranking[i], i)):
            if not np.isfinite(ranking[b]):
                continue
            ids = [int(i) for i in tokens[self.n_fed:, b] if i >= 0]
            stream = StreamText(cfg.stop, cfg.limit, length=cfg.length)
            stream.append("".join(self.chars[i] for i in ids), last=True)
            kept = len(stream.text)
            fed = logprobs[: self.n_fed + kept, b].astype(np.float64)
            beams.append(Beam(stream.text, stream.stopped, float(ranking[b]), float(fed[self.n_fed:].sum()), fed.tolist()))
        return beams

    def _histories(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, K) characters and log-probabilities, column k being final beam k's whole history."""
        lineage = np.arange(self.rows)
        tokens, logprobs = [], []
        for origin, out_tokens, out_logprobs in reversed(self.chunks):
            tokens.append(out_tokens[:, lineage])
            logprobs.append(out_logprobs[:, lineage])
            lineage = origin[lineage]
        if not tokens:
            return np.zeros((0, self.rows), np.int32), np.zeros((0, self.rows), np.float32)
        return np.concatenate(tokens[::-1]), np.concatenate(logprobs[::-1])
