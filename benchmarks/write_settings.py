"""What a co-writer's temperature and count changes cost: milliseconds per redraw, and loops compiled.

    python benchmarks/write_settings.py [--model shakespeare] [--changes 12]

A session on a shipped model changes the temperature (t, T) and the number of
candidates (n, N) in turn, as a writer trying settings does; each change
redraws. Prints the median and slowest milliseconds per redraw and how many
sampling loops were compiled. Run it on two trees (PYTHONPATH=old/tree) to
compare: before issue #28 every new temperature was built into a new loop.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shakespeare")
    parser.add_argument("--changes", type=int, default=12)
    args = parser.parse_args()

    from generate.cowriting.candidates import CandidateMaker
    from generate.cowriting.session import WriteSession
    from generate.pipeline.loaded import LoadedModel
    from generate.sampling.options import SampleOptions

    gen = LoadedModel(args.model).generator
    maker = CandidateMaker(gen, SampleOptions(), 80)
    session = WriteSession(maker, 1, 0.8, 4, "ROMEO:\n" if args.model == "shakespeare" else "")
    session.set_temperature(0.9)  # the first of each batch shape compiles while the screen opens: not counted
    times = []
    for change in range(args.changes):
        started = time.perf_counter()
        if change % 2:
            session.set_count(session.count % 6 + 2)
        else:
            session.set_temperature(round(session.temperature + (0.1 if change % 4 else -0.2), 2))
        times.append((time.perf_counter() - started) * 1000)
    print(f"{args.model}: {args.changes} changes, median {statistics.median(times):.0f} ms, slowest {max(times):.0f} ms, "
          f"{len(gen.sampler.compiled)} loop(s) compiled")


if __name__ == "__main__":
    main()
