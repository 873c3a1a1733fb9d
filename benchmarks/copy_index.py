"""What `--max-copy` and the sidecars' `longest_copy` cost: building the corpus's index once, and each query.

    python benchmarks/copy_index.py [--corpus ../shared/data/tinyshakespeare.txt] [--queries 20]

Builds the suffix array over the corpus (what happens once per corpus, then
cached), then measures `longest_copy` for 500-character queries: half of them
random characters of the corpus, half with a 120-character stretch copied
from it. As a same-run check of correctness, it compares every answer with a
brute-force search (Python's substring search, longest first).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path


def brute_longest_copy(corpus: str, text: str) -> int:
    best = 0
    for start in range(len(text)):
        while start + best < len(text) and text[start : start + best + 1] in corpus:
            best += 1
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()

    import numpy as np

    from generate.data.novelty import CopyIndex, build_suffix_array

    text = args.corpus.read_text(encoding="utf-8")
    chars = sorted(set(text))
    index_of = {c: i for i, c in enumerate(chars)}
    ids = np.array([index_of[c] for c in text], np.uint16)
    started = time.perf_counter()
    suffixes = build_suffix_array(ids)
    build = time.perf_counter() - started
    index = CopyIndex(ids, suffixes)
    rng = random.Random(0)
    times, agree = [], 0
    for q in range(args.queries):
        query = "".join(rng.choice(text) for _ in range(500))
        if q % 2:
            start = rng.randrange(len(text) - 120)
            query = query[:200] + text[start : start + 120] + query[320:]
        started = time.perf_counter()
        found = index.longest_copy([index_of[c] for c in query])
        times.append(time.perf_counter() - started)
        agree += found == brute_longest_copy(text, query)
    print(f"corpus: {args.corpus.name}, {len(text):,} characters")
    print(f"suffix array built in {build:.2f} s (once per corpus; cached)")
    print(f"longest_copy of a 500-character sample: median {1000 * statistics.median(times):.1f} ms")
    print(f"agrees with brute force: {agree}/{args.queries}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
