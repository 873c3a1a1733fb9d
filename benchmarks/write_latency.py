"""How long `generate write` takes to show candidates, with the model loaded, against the 300 ms target.

    python benchmarks/write_latency.py [--repeats 15] [--models shakespeare tang folk]

For each shipped model: a session with 4 candidates of up to 80 characters,
the draw after taking a candidate (only the taken candidate is fed: the text
so far comes from the cached state), and a reroll (nothing fed). The same
draws are also timed from a cold cache, so the whole text so far is fed again,
as a same-run baseline. Text so far: 0, 500 and 2,000 characters of the
model's own samples. Prints the median milliseconds of each. The first draw of
each shape (tracing the compiled loop) is left out: it happens once, while
the screen opens.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--models", nargs="+", default=["shakespeare", "tang", "folk"])
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--length", type=int, default=80)
    args = parser.parse_args()

    from generate.cowriting.candidates import CandidateMaker
    from generate.sampling.generator import load_generator
    from generate.sampling.options import SampleOptions

    print(f"{'model':<12} {'text so far':>11} {'after a take':>13} {'reroll':>8} {'cold cache':>11}  (median ms, "
          f"{args.candidates} candidates of <= {args.length} characters)")
    for name in args.models:
        gen = load_generator(name, num_samples=args.candidates)
        maker = CandidateMaker(gen, SampleOptions(), args.length)
        # Text so far: the model's own writing, so every character is in its vocabulary.
        source = gen.sample(SampleOptions(length=2100, seed=1, num_samples=1))[0].text
        for size in (0, 500, 2000):
            base = source[:size]
            maker(base, args.candidates, 0.8, 0)  # traces the compiled loop once
            take, reroll, cold = [], [], []
            for repeat in range(args.repeats):
                candidates = maker(base, args.candidates, 0.8, 100 + repeat)
                text = base + max(candidates, key=len)
                started = time.perf_counter()
                maker(text, args.candidates, 0.8, 200 + repeat)  # after taking the longest candidate
                take.append(time.perf_counter() - started)
                started = time.perf_counter()
                maker(text, args.candidates, 0.8, 300 + repeat)  # a reroll: the same text, cached
                reroll.append(time.perf_counter() - started)
                maker.contexts.clear()
                started = time.perf_counter()
                maker(text, args.candidates, 0.8, 400 + repeat)  # nothing cached: the whole text is fed
                cold.append(time.perf_counter() - started)
            print(f"{name:<12} {size:>11} {1000 * statistics.median(take):>13.0f} {1000 * statistics.median(reroll):>8.0f} "
                  f"{1000 * statistics.median(cold):>11.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
