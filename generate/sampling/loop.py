"""The sampling engine: N streams decoded together in one compiled loop.

A chunk of steps runs inside one compiled loop (`backend.compile_loop`), so
Python is entered once per chunk, never per character, and `model.predict`
is never called. Each step feeds a character through the fused step network
(`network.StepNetwork`), moves the constraint automata, filters the logits
and samples.

The loop is written once, against the network's `ops`: `keras.ops` for a
run's Keras weights, compiled; NumPy's (`backend.numpy_ops`) for a bundle on
onnxruntime (`backend.onnxruntime_step`), run as written. Both runtimes
therefore take the same steps, filters and constraints.

Randomness comes from NumPy: one uniform number per stream and step, drawn in
order, is turned into a character by inverse-CDF sampling. Output therefore
depends only on the seed and settings, never on how steps are chunked.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..data.labels import ANY, NONE
from ..errors import CheckpointError
from ..model.label_schedule import drawn_labels, needs_guidance, schedule_rows
from ..model.network import StepNetwork
from .config import SamplingConfig
from .constraints import Automaton, stream_state, stream_states
from .filters import LogitFilter, build_filters, filter_settings
from .streams import WARMUP_MAX_CHARS, StreamText

log = logging.getLogger(__name__)

CHUNK_STEPS = 256  # steps per compiled call; the buffer size, fixed so the loop traces once
NO_DEADLINE = np.int32(np.iinfo(np.int32).max // 2)  # for forced characters only: nothing is sampled


# Long on purpose: the whole function is traced and compiled as one loop (XLA); its closures are the loop's body.
def make_chunk_fn(net: StepNetwork, filters: list[LogitFilter], greedy: bool, automata: tuple[Automaton, ...] = (),
                  guided: bool = False):
    """Builds `run(token, states, automaton_states, forced, uniforms, steps, deadline, settings)` for one chunk.

    `forced[t]` holds ids to feed instead of sampling (the prime), or -1;
    `uniforms[t]` holds the random draws for step t. Only the first `steps`
    rows are used, so one trace serves every chunk length. Each automaton
    moves on every character fed, forced or sampled, and biases the next choice.
    Automata apply in order, and one that would leave no character gives way
    for that step. An automaton that knows its distance to an end (`Automaton.distance`) also
    forbids, at step t, characters after which it could not end within the
    `deadline - t - 1` characters left (`deadline` holds one step per stream):
    a sample cut at its length then ends cleanly (for code: strings, brackets
    and blocks closed). Where nothing would be left, the deadline gives way.
    `settings[i]` holds filter i's setting (its temperature, its p) for each
    stream, so one trace serves them all. `guided`: a labelled network steps
    each stream with and without its label (`label_schedule.guided_step`).
    """
    ops = net.ops
    tables = [a.tensors(net.vocab_size, ops) for a in automata]
    endings = [(i, ops.convert_to_tensor(a.distance)) for i, a in enumerate(automata) if a.distance is not None]

    def keep_some(logits, constrained):
        # A constraint that would leave a stream no character at all gives way for that step. Each
        # automaton allows something in every state, but two together can leave nothing (a layout that
        # wants "|" where the expression's automaton wants an operand): the earlier one in `automata` wins.
        possible = ops.any(constrained > float("-inf"), axis=-1, keepdims=True)
        return ops.where(possible, constrained, logits)

    def in_time(logits, automaton_states, remaining):
        # Each automaton's distance is a shortest path under its own rules alone; together they can need
        # more. Their sum is the safe side, which ends a little early; their maximum is the fallback.
        distances = [ops.take(distance, tables[i].next_states(automaton_states[i]), axis=0) for i, distance in endings]
        total, longest = distances[0], distances[0]
        for distance in distances[1:]:
            total, longest = total + distance, ops.maximum(longest, distance)
        for needed in (total, longest):
            logits = keep_some(logits, ops.where(needed > remaining, float("-inf"), logits))
        return logits

    def choose(logits, uniform, settings):
        # Step 1: constrain the distribution (temperature, top-k, top-p, ...).
        for i, logit_filter in enumerate(filters):
            logits = logit_filter.apply(logits, ops, settings[i])
        if greedy:
            return ops.cast(ops.argmax(logits, axis=-1), "int32")
        # Step 2: unnormalised probabilities, and their running total (the CDF).
        weights = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
        cdf = ops.cumsum(weights, axis=-1)
        # Step 3: invert the CDF at u * total; u > 0 so masked (zero-weight) ids are never chosen.
        target = ops.maximum(uniform, 1e-7)[:, None] * cdf[:, -1:]
        return ops.cast(ops.sum(ops.cast(cdf < target, "int32"), axis=-1), "int32")

    def run(token, states, automaton_states, forced, uniforms, steps, deadline, settings):
        out = ops.zeros(ops.shape(forced), "int32")

        def body(t, carry):
            token, states, automaton_states, out = carry
            # Feed the current character through every layer.
            logits, states = net.step(token, states, guided)
            # Move each automaton on the same character; add its bias for the next choice.
            automaton_states = [table.step(state, token) for table, state in zip(tables, automaton_states)]
            for table, state in zip(tables, automaton_states):
                logits = keep_some(logits, logits + table.char_bias(state))
            if endings:
                logits = in_time(logits, automaton_states, (deadline - t - 1)[:, None])
            # Take the prime's next character if one is forced, else sample.
            forced_t = ops.take(forced, t, axis=0)
            chosen = choose(logits, ops.take(uniforms, t, axis=0), settings)
            token = ops.where(forced_t >= 0, forced_t, chosen)
            # Record it in row t of the output buffer.
            out = ops.slice_update(out, [t, 0], token[None, :])
            return token, states, automaton_states, out

        return ops.fori_loop(0, steps, body, (token, list(states), list(automaton_states), out))

    in_graph = getattr(net, "chunk_runner", None)
    runner = in_graph(tuple(f.shape for f in filters), greedy) if in_graph and not automata and not guided else None
    return net.compile(run) if runner is None else _in_graph(runner, choose, run)


def _in_graph(runner, choose, run):
    """`run`'s steps in a few graph calls (`OnnxStepNetwork.chunk_runner`), with `run` itself until the graph is built.

    A call ends early after a draw too close to call; `choose` draws each call's last step again from its
    logits, as `run` would have, so the text is `run`'s byte for byte.
    """
    def run_in_graph(token, states, automaton_states, forced, uniforms, steps, deadline, settings):
        out, done, steps = np.zeros(np.shape(forced), np.int32), 0, int(steps)
        while done < steps:
            result = runner(token, states, forced[done:steps], uniforms[done:steps], settings)
            if result is None:  # the graph is not built (yet): this chunk steps from NumPy
                return run(token, states, automaton_states, forced, uniforms, steps, deadline, settings)
            tokens, token, states, logits = result
            out[done : done + len(tokens)] = tokens
            done += len(tokens)
            drawn = choose(logits, uniforms[done - 1], settings)
            token = out[done - 1] = np.where(forced[done - 1] >= 0, forced[done - 1], drawn)
        return token, states, automaton_states, out

    return run_in_graph


@dataclass(frozen=True)
class Context:
    """One stream after a prime: the character to feed next and every state, ready to continue from.

    Feeding is the same computation one character at a time whatever the
    chunking, so a context extended piece by piece equals one made at once.
    """

    token: int  # the prime's last character, fed on the next step
    states: tuple[np.ndarray, ...]  # the network's states, one row each
    automaton_states: tuple[int | tuple[int, ...], ...]  # one per automaton, in order (a tracker's is a vector)


@dataclass
class Sample:
    text: str  # generated characters, without the prime, cut before any stop string
    stopped: bool  # True if a stop string ended it before `length`
    beam_score: float | None = None  # beam search: mean log-probability per generated character, its ranking
    logprob: float | None = None  # beam search: log-probability of `text` given what came before it
    fed_nats: float | None = None  # beam search: mean nats over every character fed after the first, prime included


@dataclass(frozen=True)
class ChunkPlan:
    """What one chunk does for a draw's streams: prime characters to force, then steps to sample."""

    n_forced: int
    steps: int  # forced and sampled steps; the chunk's rows after these are not the draw's
    forced: np.ndarray  # (chunk, n): ids to feed, or -1 to sample
    uniforms: np.ndarray  # (chunk, n): the random draw of each sampled step
    deadline: np.ndarray  # (n,): the step after which the draw's budget is spent


class Draw:
    """`cfg.num_samples` streams sampled in lock-step after one prime, from one random generator.

    A draw plans each chunk (`plan`), and takes in what the loop made of it
    (`absorb`): the text goes through each stream's `StreamText` to `on_text`.
    `Sampler.generate` runs one draw alone; a server runs many at once, their
    streams side by side in one batch (`serving.engine`). Either way a draw
    takes the same steps and the same random numbers (one uniform per sampled
    step and stream, in order), so its text depends only on its seed and settings.
    """

    def __init__(self, sampler: Sampler, prime_ids: list[int], cfg: SamplingConfig, rng: np.random.Generator,
                 automata: tuple[Automaton, ...] = (), context: Context | None = None,
                 on_text: Callable[[int, str], None] | None = None):
        self.run, self.filters, self.key = sampler.chunk_fn(cfg, automata)
        self.chars, self.rng, self.on_text, self.n = sampler.chars, rng, on_text, cfg.num_samples
        self.settings = filter_settings(self.filters, self.n)
        if context is None:
            context, prime_ids = sampler._zero_context(prime_ids[0], automata), prime_ids[1:]
        self.token = np.full((self.n,), context.token, np.int32)
        self.pending, self.generated = list(prime_ids), 0
        self.states = sampler.with_labels([np.repeat(np.asarray(s), self.n, axis=0) for s in context.states], cfg,
                                          len(self.pending))
        self.automaton_states = [stream_states(s, self.n) for s in context.automaton_states]
        strict = bool(cfg.poem_lines)  # the poem automaton starts at the boundary itself
        self.streams = [StreamText(cfg.stop, cfg.limit, cfg.warmup, cfg.length, cfg.min_chars, strict) for _ in range(self.n)]
        self.budget = cfg.length + (WARMUP_MAX_CHARS if cfg.warmup else 0)  # steps, the warm-up included

    @property
    def done(self) -> bool:
        return not self.pending and (self.generated >= self.budget or all(s.finished for s in self.streams))

    def context(self) -> Context:
        """Where the first stream stands now: after a prefill draw (length 0), the fed text's context."""
        return Context(int(np.asarray(self.token)[0]), tuple(np.asarray(s)[:1] for s in self.states),
                       tuple(stream_state(s, 0) for s in self.automaton_states))

    def plan(self, chunk_steps: int, want: int) -> ChunkPlan:
        """The next chunk: up to `chunk_steps` steps, at most `want` of them sampled."""
        n_forced = min(len(self.pending), chunk_steps)
        steps = min(chunk_steps, n_forced + min(self.budget - self.generated, want))
        forced = np.full((chunk_steps, self.n), -1, np.int32)
        forced[:n_forced] = np.asarray(self.pending[:n_forced], np.int32)[:, None]
        uniforms = np.zeros((chunk_steps, self.n), np.float32)
        uniforms[n_forced:steps] = self.rng.random((steps - n_forced, self.n), dtype=np.float32)
        # Automata with ends finish by the deadline: the step after which `budget` characters are sampled.
        deadline = np.full((self.n,), n_forced + self.budget - self.generated, np.int32)
        return ChunkPlan(n_forced, steps, forced, uniforms, deadline)

    def absorb(self, plan: ChunkPlan, out: np.ndarray, token, states, automaton_states) -> None:
        """Takes the chunk's ids (`out`, (chunk, n)) and the states it ended in; hands final text to `on_text`."""
        self.token, self.states, self.automaton_states = token, list(states), list(automaton_states)
        new_ids = out[plan.n_forced : plan.steps]
        self.pending, self.generated = self.pending[plan.n_forced :], self.generated + plan.steps - plan.n_forced
        for i, stream in enumerate(self.streams):
            released = stream.append("".join(self.chars[new_ids[:, i]]), last=self.generated >= self.budget)
            if self.on_text and released:
                self.on_text(i, released)

    def samples(self) -> list[Sample]:
        return [Sample(s.text, s.stopped) for s in self.streams]


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fingerprint(automaton) -> str:
    """`automaton.fingerprint`, hashed once per automaton: the Python tables run to megabytes, and every draw
    (a line of code or verse is one) looks its compiled loop up by them."""
    try:
        found = _FINGERPRINTS.get(automaton)
    except TypeError:  # a value-hashed one (a beam's finish automaton): small, hashed each time
        return automaton.fingerprint
    if found is None:
        found = _FINGERPRINTS[automaton] = automaton.fingerprint
    return found


def one_label(cfg: SamplingConfig) -> SamplingConfig:
    """`cfg` with `--label any` resolved to the label its first stream draws: for streams that write one text."""
    if cfg.label != ANY:
        return cfg
    return replace(cfg, label=drawn_labels(cfg.seed, 1, cfg.label_shares)[0], label_shares=())


class Sampler:
    """Generates `num_samples` streams at once from a StepNetwork."""

    def __init__(self, net: StepNetwork, chars: tuple[str, ...], labels: tuple[str, ...] = ()):
        if len(chars) != net.vocab_size:  # a bundle whose vocab.json does not fit its graph
            raise CheckpointError(f"the model's vocabulary has {len(chars)} characters, and its network predicts "
                                  f"{net.vocab_size}; expected the vocabulary it was trained with")
        self.net = net.prepare()
        self.chars = np.array(chars, dtype=object)
        self.labels = {name: i for i, name in enumerate(labels)}
        self.compiled: dict = {}

    def with_labels(self, states: list, cfg: SamplingConfig, prime_steps: int) -> list:
        """`states` whose label schedule (a labelled network's last state) writes with `cfg.label`, and after
        `prime_steps` forced steps and `cfg.label_after` sampled ones, `cfg.then_label`, at `cfg.label_strength`.
        A network without labels gets `states` back as they are."""
        if not self.net.labels:
            return states
        rows = len(states[0])
        later = self.labels[cfg.then_label or NONE] if cfg.then_label or cfg.label_after else None
        if cfg.label != ANY:
            label = self.labels.get(cfg.label or NONE, 0)
            return [*states[:-1], schedule_rows(rows, label, later, prime_steps + cfg.label_after, cfg.label_strength)]
        schedule = schedule_rows(rows, 0, later, prime_steps + cfg.label_after, cfg.label_strength)
        schedule[:, 0] = [self.labels[name] for name in drawn_labels(cfg.seed, rows, cfg.label_shares)]
        if later is None:
            schedule[:, 1] = schedule[:, 0]
        return [*states[:-1], schedule]

    def generate(
        self,
        prime_ids: list[int],
        cfg: SamplingConfig,
        rng: np.random.Generator,
        on_text: Callable[[int, str], None] | None = None,
        chunk_steps: int = CHUNK_STEPS,
        automata: tuple[Automaton, ...] = (),
        context: Context | None = None,
    ) -> list[Sample]:
        """Runs the prime through the network, then samples `cfg.length` characters.

        Args:
            prime_ids: at least one id (none after a `context`); the last one is the first input to sample from.
            cfg: decoding settings.
            rng: the source of every random draw.
            on_text: called as (stream, text) with text that is final (never
                later cut by a stop string), for streaming output.
            chunk_steps: at most this many steps per compiled call.
            automata: constraints that follow each stream's text (`constraints.py`).
            context: where every stream starts (from `prefill`), instead of a zero state; `prime_ids`
                then continue it.

        Returns:
            One `Sample` per stream.
        """
        draw = Draw(self, prime_ids, cfg, rng, automata, context, on_text)
        self._run_draw(draw, chunk_steps)
        return draw.samples()

    def _run_draw(self, draw: Draw, chunk_steps: int) -> None:
        ops = self.net.ops
        want = 16  # a short first chunk puts the first characters on screen sooner
        while not draw.done:
            plan = draw.plan(chunk_steps, want)
            # Run the whole chunk in one compiled call.
            token, states, automaton_states, out = draw.run(draw.token, draw.states, draw.automaton_states, plan.forced,
                                                            plan.uniforms, np.int32(plan.steps), plan.deadline, draw.settings)
            draw.absorb(plan, np.asarray(ops.convert_to_numpy(out)), token, states, automaton_states)
            want = chunk_steps

    def prefill(self, ids: list[int], cfg: SamplingConfig, automata: tuple[Automaton, ...] = (),
                context: Context | None = None, chunk_steps: int = CHUNK_STEPS) -> Context:
        """Feeds `ids` to one stream (after `context`, or from a zero state) and returns where it stands.

        `generate(new_ids, ..., context=...)` then continues as if the whole prime had been given.
        """
        draw = self.prefill_draw(ids, cfg, automata, context)
        self._run_draw(draw, chunk_steps)
        return draw.context()

    def prefill_draw(self, ids: list[int], cfg: SamplingConfig, automata: tuple[Automaton, ...] = (),
                     context: Context | None = None) -> Draw:
        """A draw that only feeds `ids` to one stream: run it (alone or among others), then take its `context()`."""
        if context is None and not ids:
            raise ValueError("prefill: expected at least one id without a context")
        feed = replace(cfg, num_samples=1, length=0, warmup=False, min_chars=0)
        return Draw(self, ids, feed, np.random.default_rng(0), automata, context)  # feeding draws no random number

    def run_job(self, job):
        """Runs a job (a `beam.BeamSearch`) here to its end; a server's engine runs it a few steps a tick instead."""
        while not job.done:
            job.advance(CHUNK_STEPS)
        return job.result()

    def _zero_context(self, first_id: int, automata: tuple[Automaton, ...]) -> Context:
        """A stream before anything was fed: zero states, every automaton at its start, `first_id` to feed."""
        return Context(first_id, tuple(self.net.initial_states(1)), tuple(a.start for a in automata))

    def chunk_fn(self, cfg: SamplingConfig, automata: tuple[Automaton, ...]):
        """The compiled loop for `cfg`'s filter chain and `automata`, its filters, and the key it is cached by.

        One loop per chain of filter shapes and set of automata: a new temperature or top-p reuses it, and
        streams drawn under one key can share a batch (`filters.filter_settings` gives each its settings).
        """
        filters = build_filters(cfg)
        guided = self.guided(cfg)
        key = (tuple(f.shape for f in filters), cfg.is_greedy, tuple(fingerprint(a) for a in automata), guided)
        if key not in self.compiled:
            self.compiled[key] = make_chunk_fn(self.net, filters, cfg.is_greedy, automata, guided)
        return self.compiled[key], filters, key

    def guided(self, cfg: SamplingConfig) -> bool:
        """Whether `cfg`'s streams step with and without their label (a labelled network, a label, a strength not 1)."""
        return bool(self.net.labels) and needs_guidance(cfg.label, cfg.then_label, cfg.label_strength)
