"""Beam search against sampling on a shipped model, every text scored by `generate score`'s own scorer.

    python benchmarks/beam_vs_sampling.py [--model shakespeare] [--length 200]

For each prime: beam search with K = 1 (greedy), 4 and 8 beams, and 8 samples
at temperatures 1.0 and 0.7. Each output (prime + text) is scored by
`training.scoring.TextScorer`, which `generate score` uses: the mean nats per
character, lower is likelier. Prints the best beam's score and the mean
sample's, the wall time of each, and the largest gap between a beam's own
`fed_nats` and the scorer's figure for the same text.
"""

from __future__ import annotations

import argparse
import statistics
import time

PRIMES = ("ROMEO:\n", "First Citizen:\nWe are", "KING HENRY VI:\nNow", "To be")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="shakespeare")
    parser.add_argument("--length", type=int, default=200)
    args = parser.parse_args()

    from generate.model.rundir import resolve_run
    from generate.sampling.generator import load_generator
    from generate.sampling.options import SampleOptions
    from generate.training.scoring import TextScorer

    gen = load_generator(args.model, num_samples=8)
    scorer = TextScorer(resolve_run(args.model))
    settings = [("beam 1", {"beam": 1}), ("beam 4", {"beam": 4}), ("beam 8", {"beam": 8}),
                ("sample t=1.0 x8", {"num_samples": 8, "temperature": 1.0, "seed": 1}),
                ("sample t=0.7 x8", {"num_samples": 8, "temperature": 0.7, "seed": 1})]
    results = {name: ([], []) for name, _ in settings}
    gap = 0.0
    for prime in PRIMES:
        for name, extra in settings:
            options = SampleOptions(prime=prime, length=args.length, **extra)
            gen.sample(options)  # traces the loop for this shape
            started = time.perf_counter()
            samples = gen.sample(options)
            elapsed = time.perf_counter() - started
            scores = [scorer.score(prime + s.text).nats for s in samples]
            if "beam" in extra:
                gap = max(gap, abs(scores[0] - samples[0].fed_nats))
                scores = scores[:1]  # the best beam
            results[name][0].append(statistics.mean(scores))
            results[name][1].append(elapsed)
    print(f"{args.model}, {len(PRIMES)} primes, {args.length} characters each")
    print(f"{'decoding':<18} {'nats/char (score)':>18} {'seconds':>8}")
    for name, (scores, times) in results.items():
        print(f"{name:<18} {statistics.mean(scores):>18.4f} {statistics.mean(times):>8.2f}")
    print(f"largest |fed_nats - score| over the best beams: {gap:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
