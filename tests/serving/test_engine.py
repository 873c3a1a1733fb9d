"""Continuous batching: a request's seeded samples are the same alone or among 31 others, whatever they ask."""

from __future__ import annotations

import threading
import time

import pytest

from generate.pipeline.loaded import LoadedModel
from generate.sampling.options import SampleOptions
from generate.serving.engine import Busy, Cancelled, Engine, Ticket

pytest.importorskip("onnxruntime")


# What the 31 others ask: other seeds, temperatures, filters, lengths, primes, poem constraints and stops.
OTHERS = [dict(seed=100 + i, length=40 + 7 * i, temperature=0.6 + 0.05 * (i % 9), num_samples=1 + i % 3,
               top_k=(0, 5, 12)[i % 3], prime=("Shall ", "Thou art", "")[i % 3])
          for i in range(28)] + [dict(seed=7, lines=2), dict(seed=8, stop=["\n"], length=90), dict(greedy=True, length=70)]


def test_a_seeded_request_gives_the_same_samples_alone_or_among_31_others(bundle):
    model = LoadedModel(bundle)
    engine = Engine(model.generator.sampler, "verse", max_streams=64, max_queued=64)
    target = SampleOptions(prime="Shall I", length=150, seed=5, num_samples=3, temperature=0.9, top_p=0.95)
    alone = [o.text for o in model.run(model.prepare(target)).outputs]  # the command line's own loop, on its own
    results: dict[int, list[str]] = {}

    def ask(key: int, options: SampleOptions) -> None:
        time.sleep(0.002 * (key % 5))  # arrive at different ticks
        results[key] = [o.text for o in model.run(model.prepare(options), runner=engine.bind(Ticket())).outputs]

    threads = [threading.Thread(target=ask, args=(i, SampleOptions(**settings))) for i, settings in enumerate(OTHERS)]
    threads.append(threading.Thread(target=ask, args=(-1, target)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    engine.stop()
    assert results[-1] == alone
    for i, settings in enumerate(OTHERS):  # and each of the others is its own alone too
        if i % 7 == 0:
            assert results[i] == [o.text for o in model.run(model.prepare(SampleOptions(**settings))).outputs], settings
    assert engine.stats.chars > 0 and engine.stats.active_streams == 0


def test_a_cancelled_ticket_ends_its_streams_within_a_tick_and_a_full_queue_refuses(bundle):
    model = LoadedModel(bundle)
    engine = Engine(model.generator.sampler, "verse", max_streams=2, max_queued=1)
    long = model.prepare(SampleOptions(prime="Shall ", length=8000, seed=1, num_samples=2))
    tickets, errors = [Ticket(), Ticket()], []

    def run(ticket):
        try:
            model.run(long, runner=engine.bind(ticket))
        except (Cancelled, Busy) as exc:
            errors.append(exc)

    first = threading.Thread(target=run, args=(tickets[0],))
    first.start()
    while engine.stats.active_streams < 2:
        time.sleep(0.01)
    second = threading.Thread(target=run, args=(tickets[1],))  # waits: the batch is full
    second.start()
    while engine.stats.queued < 1:
        time.sleep(0.01)
    with pytest.raises(Busy):
        model.run(long, runner=engine.bind(Ticket()))  # the queue is full too
    tickets[0].cancel("the client went away")
    first.join(timeout=5)
    assert not first.is_alive() and isinstance(errors[0], Cancelled)
    while engine.stats.active_streams < 2:  # the waiting request took the freed room
        time.sleep(0.01)
    tickets[1].cancel("the client went away")
    second.join(timeout=5)
    assert not second.is_alive() and engine.stats.active_streams == 0
    engine.stop()


def test_a_request_past_its_time_is_ended(bundle):
    model = LoadedModel(bundle)
    engine = Engine(model.generator.sampler, "verse")
    with pytest.raises(Cancelled, match="ran out of time"):
        model.run(model.prepare(SampleOptions(length=8000, seed=1)), runner=engine.bind(Ticket(deadline=time.monotonic() + 0.2)))
    engine.stop()
