"""Continuous batching: one thread per model steps every active stream together, admitting and dropping
streams at every tick.

A request's pipeline (`pipeline.loaded.LoadedModel.run`) runs in a worker
thread and asks for each batch of samples through `Engine.generate`, which
has `loop.Sampler.generate`'s signature: it queues a `loop.Draw` and waits.
The engine thread owns the model. At every tick it admits queued draws (up
to `max_streams` streams), runs one chunk of `tick_steps` steps for every
active stream (one batched loop per chain of filter shapes and automata;
each stream keeps its own settings, deadline and random generator), hands
each stream's final text to its request, and retires draws that finished,
were cancelled or ran out of time. A draw takes the same steps and random
numbers whatever runs beside it, so a seeded request gives the same text
alone or among many. The event loop never runs the model. Other work on the
model is sliced the same way: a job (`beam.BeamSearch`) advances a few steps
per tick beside the streams (`Engine.run_job`), and a co-writing session's
feeding and candidates are draws like any other (`Engine.prefill`). So no
request holds the model for the others, and every kind of work ends within a
tick of its deadline, its client leaving, or a stop.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import GenerateError
from ..sampling.config import SamplingConfig
from ..sampling.constraints import Automaton
from ..sampling.loop import Context, Draw, Sample, Sampler

log = logging.getLogger(__name__)

TICK_STEPS = 8  # steps per tick: each stream's text arrives every tick, and new streams join at its end
JOB_TICK_SECONDS = 0.02  # a job's slice of a tick when no stream runs beside it is about 4x this
JOB_SHARE = 0.15  # beside streams, the jobs' part of a tick against the streams' own


class Busy(GenerateError):
    """The engine's queue is full: the request may be tried again shortly."""


class Cancelled(GenerateError):
    """The request's client went away, its time ran out, or the server is stopping."""


@dataclass
class Ticket:
    """One request's hold on the engine: cancelling it ends every draw it has queued or running."""

    deadline: float = float("inf")  # time.monotonic() after which its draws end
    cancelled: str = ""  # why, once cancelled

    def cancel(self, reason: str) -> None:
        self.cancelled = self.cancelled or reason


class Job(Protocol):
    """Work on the model that is not a draw, run a few steps per tick (`beam.BeamSearch`)."""

    rows: int  # streams it steps at once: its cost per step

    @property
    def done(self) -> bool: ...

    def advance(self, steps: int) -> None: ...

    def result(self) -> object: ...


@dataclass
class _Entry:
    draw: Draw | None  # None for a job
    ticket: Ticket
    job: Job | None = None
    prefill: bool = False  # a draw that only feeds text: its result is its context
    seconds_per_step: float = 0.0  # a job's recent cost per step, which sizes its slice of a tick
    finished: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None


@dataclass
class EngineStats:
    """What `/metrics` reports of one engine."""

    active_streams: int = 0
    queued: int = 0
    chars: int = 0  # characters delivered since start
    ticks: int = 0
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20_000))  # (time, chars) per tick

    def chars_per_second(self, window: float = 10.0) -> float:
        """Characters sampled per second over the last `window` seconds (idle time included)."""
        since = time.monotonic() - window
        return sum(chars for at, chars in list(self.recent) if at >= since) / window


class Engine:
    """The thread that runs one model's streams, many requests at once.

    Args:
        sampler: the loaded model's sampler (its network runs on this thread only).
        name: the model's name, for the thread and the logs.
        max_streams: streams stepped at once; more wait in the queue.
        max_queued: draws waiting beyond those; one more is refused with `Busy`.
        tick_steps: steps per tick.
    """

    def __init__(self, sampler: Sampler, name: str, max_streams: int = 64, max_queued: int = 256,
                 tick_steps: int = TICK_STEPS):
        self.sampler, self.name = sampler, name
        self.max_streams, self.max_queued, self.tick_steps = max_streams, max_queued, tick_steps
        self.stats = EngineStats()
        self.on_tick: Callable[[], None] | None = None  # called after every tick (a server relays the text then)
        self._queue: collections.deque[_Entry] = collections.deque()
        self._active: list[_Entry] = []
        self._wake = threading.Condition()
        self._stopping = self._draining = False
        self._thread = threading.Thread(target=self._serve, name=f"engine-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ called from request threads

    def generate(self, prime_ids: list[int], cfg: SamplingConfig, rng: np.random.Generator,
                 on_text: Callable[[int, str], None] | None = None, automata: tuple[Automaton, ...] = (),
                 context: Context | None = None, *, ticket: Ticket) -> list[Sample]:
        """`Sampler.generate`, run among the engine's other streams; blocks until the draw is done.

        Raises:
            Busy: the queue is full.
            Cancelled: `ticket` was cancelled (or timed out) before the draw finished.
        """
        draw = Draw(self.sampler, prime_ids, cfg, rng, automata, context, on_text)
        return self._submit(_Entry(draw, ticket))

    def prefill(self, ids: list[int], cfg: SamplingConfig, automata: tuple[Automaton, ...] = (),
                context: Context | None = None, *, ticket: Ticket) -> Context:
        """`Sampler.prefill`, fed among the engine's other streams; blocks until it is done."""
        return self._submit(_Entry(self.sampler.prefill_draw(ids, cfg, automata, context), ticket, prefill=True))

    def run_job(self, job: Job, ticket: Ticket):
        """Runs `job` a few steps per tick beside the streams; blocks until it is done and returns its result."""
        return self._submit(_Entry(None, ticket, job))

    def drain(self) -> None:
        """Refuses new work from now on; what is queued or running goes on to its end (or to `stop`)."""
        with self._wake:
            self._draining = True

    @property
    def idle(self) -> bool:
        return not (self._queue or self._active)

    def bind(self, ticket: Ticket) -> EngineRunner:
        """What one request's pipeline runs its draws and calls through (`generator.generate_samples`)."""
        return EngineRunner(self, ticket)

    def stop(self) -> None:
        """Ends the thread after the current tick; queued and running draws are cancelled."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def _submit(self, entry: _Entry):
        with self._wake:
            if self._stopping or self._draining:
                raise Cancelled("the server is stopping")
            if len(self._queue) >= self.max_queued:
                raise Busy(f"model {self.name!r}: {len(self._queue)} requests are waiting already; try again shortly")
            self._queue.append(entry)
            self.stats.queued = len(self._queue)
            self._wake.notify()
        entry.finished.wait()
        if entry.error is not None:
            raise entry.error
        return entry.result

    # ------------------------------------------------------------ the engine thread

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not (self._queue or self._active or self._stopping):
                    self._wake.wait()
                if self._stopping:
                    self._end_all(Cancelled("the server is stopping"))
                    return
                self._admit()
            self._retire()
            try:
                self._tick()
                if self.on_tick is not None:
                    self.on_tick()
            except Exception as exc:  # a bug in a loop must not take every other request's stream with it
                log.exception("model %s: a tick failed", self.name)
                for entry in self._active:
                    self._finish(entry, error=GenerateError(f"the sampler failed: {exc}"))
                self._active = []

    def _admit(self) -> None:
        """Moves queued entries in while there is room: draws up to `max_streams` streams in the batch, and jobs
        (which run beside it, not in it) up to `max_streams` rows of their own, each kind in its queue order;
        so a wide beam never keeps a short request waiting."""
        used = {True: sum(_width(e) for e in self._active if e.job is not None),
                False: sum(_width(e) for e in self._active if e.job is None)}
        blocked = {True: False, False: False}
        waiting: collections.deque[_Entry] = collections.deque()
        for entry in self._queue:
            kind, width = entry.job is not None, _width(entry)
            if blocked[kind] or (used[kind] and used[kind] + width > self.max_streams):
                blocked[kind] = True  # later entries of its kind wait behind it
                waiting.append(entry)
                continue
            self._active.append(entry)
            used[kind] += width
        self._queue = waiting
        self.stats.queued, self.stats.active_streams = len(self._queue), used[True] + used[False]

    def _retire(self) -> None:
        """Ends draws and jobs that are done, cancelled, or past their request's time."""
        now, keep = time.monotonic(), []
        for entry in self._active:
            if entry.finished.is_set():  # its job failed during the tick
                continue
            if now > entry.ticket.deadline:
                entry.ticket.cancel("the request ran out of time")
            if entry.ticket.cancelled:
                self._finish(entry, error=Cancelled(entry.ticket.cancelled))
            elif entry.job is not None and entry.job.done:
                self._finish(entry, result=entry.job.result())
            elif entry.draw is not None and entry.draw.done:
                self._finish(entry, result=entry.draw.context() if entry.prefill else entry.draw.samples())
            else:
                keep.append(entry)
        self._active = keep
        self.stats.active_streams = sum(_width(e) for e in keep)

    def _tick(self) -> None:
        """One chunk for every active draw (one batched loop per key: chain of filter shapes and automata), then a
        slice of every active job."""
        groups: dict[tuple, list[Draw]] = {}
        for entry in self._active:
            if entry.draw is not None:
                groups.setdefault(entry.draw.key, []).append(entry.draw)
        delivered, started = 0, time.perf_counter()
        for draws in groups.values():
            delivered += self._step_together(draws)
        draws_seconds = time.perf_counter() - started
        jobs = sum(entry.job is not None for entry in self._active)
        for entry in self._active:
            if entry.job is not None:
                # Beside streams, the jobs share JOB_SHARE of the streams' own part of the tick (each at least one
                # step), so beams and co-writing slow no stream much; alone, a job runs longer slices, still ending
                # within a fraction of a second.
                if groups:
                    budget = max(JOB_SHARE * draws_seconds / jobs, 0.001)
                    steps = max(1, min(self.tick_steps, int(budget / max(entry.seconds_per_step, 1e-6))))
                else:
                    steps = max(1, min(4 * self.tick_steps, int(4 * JOB_TICK_SECONDS / max(entry.seconds_per_step, 1e-6))))
                started = time.perf_counter()
                try:
                    entry.job.advance(steps)
                except Exception as exc:  # handed to the request that asked for it; the other streams go on
                    entry.ticket.cancel("its job failed")
                    self._finish(entry, error=exc)
                entry.seconds_per_step = 0.5 * entry.seconds_per_step + 0.5 * (time.perf_counter() - started) / steps
                delivered += steps * entry.job.rows
        self.stats.ticks += 1
        self.stats.chars += delivered
        self.stats.recent.append((time.monotonic(), delivered))

    def _step_together(self, draws: list[Draw]) -> int:
        """Runs one chunk for `draws`, their streams side by side; returns the characters sampled."""
        ops = self.sampler.net.ops
        plans = [draw.plan(self.tick_steps, self.tick_steps) for draw in draws]
        joined = lambda arrays: np.concatenate([np.asarray(a) for a in arrays], axis=-1)  # noqa: E731 - streams run along the last axis
        rows = lambda arrays: np.concatenate([np.asarray(a) for a in arrays], axis=0)  # noqa: E731 - ...and states along the first
        token, states, automaton_states, out = draws[0].run(
            rows([d.token for d in draws]),
            [rows([d.states[k] for d in draws]) for k in range(len(draws[0].states))],
            [rows([d.automaton_states[k] for d in draws]) for k in range(len(draws[0].automaton_states))],
            joined([p.forced for p in plans]), joined([p.uniforms for p in plans]),
            np.int32(max(p.steps for p in plans)), rows([p.deadline for p in plans]), joined([d.settings for d in draws]))
        token, out = np.asarray(ops.convert_to_numpy(token)), np.asarray(ops.convert_to_numpy(out))
        states = [np.asarray(ops.convert_to_numpy(s)) for s in states]
        automaton_states = [np.asarray(ops.convert_to_numpy(s)) for s in automaton_states]
        start, sampled = 0, 0
        for draw, plan in zip(draws, plans):
            cols = slice(start, start + draw.n)
            draw.absorb(plan, out[:, cols], token[cols], [s[cols] for s in states], [s[cols] for s in automaton_states])
            sampled += (plan.steps - plan.n_forced) * draw.n
            start += draw.n
        return sampled

    def _finish(self, entry: _Entry, result=None, error: BaseException | None = None) -> None:
        entry.result, entry.error = result, error
        entry.finished.set()

    def _end_all(self, error: BaseException) -> None:
        for entry in [*self._active, *self._queue]:
            self._finish(entry, error=error)
        self._active, self._queue = [], collections.deque()


@dataclass(frozen=True)
class EngineRunner:
    """An engine as one request sees it: `generate`, `prefill` and `run_job` (as a `Sampler`'s), under its ticket."""

    engine: Engine
    ticket: Ticket

    def generate(self, prime_ids, cfg, rng, on_text=None, automata=(), context=None) -> list[Sample]:
        return self.engine.generate(prime_ids, cfg, rng, on_text, automata, context, ticket=self.ticket)

    def prefill(self, ids, cfg, automata=(), context=None) -> Context:
        return self.engine.prefill(ids, cfg, automata, context, ticket=self.ticket)

    def run_job(self, job: Job):
        return self.engine.run_job(job, self.ticket)


def _width(entry: _Entry) -> int:
    return entry.draw.n if entry.draw is not None else entry.job.rows
