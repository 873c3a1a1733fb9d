"""What `--max-copy` and the sidecars' `longest_copy` cost: building the corpus's index once, and each query.

    python benchmarks/copy_index.py [--corpus ../shared/data/tinyshakespeare.txt] [--queries 20] [--length 500]
        [--from-model shakespeare]

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
    parser.add_argument("--length", type=int, default=500, help="characters a query")
    parser.add_argument("--from-model", metavar="MODEL", help="query with this model's samples (after 'ROMEO:'), "
                                                              "not random characters with a copied stretch")
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
    times, exact_times, agree = [], [], 0
    queries = []
    if args.from_model:  # what the records measure: a model's own samples
        import generate

        outputs = generate.load(args.from_model).samples(prime="ROMEO:", length=args.length, seed=3,
                                                         num_samples=args.queries)
        queries = [o.text[len("ROMEO:"):] for o in outputs]
    for q in range(args.queries):
        query = queries[q] if queries else "".join(rng.choice(text) for _ in range(args.length))
        if q % 2 and not queries:
            start = rng.randrange(len(text) - 120)
            query = query[:200] + text[start : start + 120] + query[320:]
        query_ids = [index_of[c] for c in query]
        started = time.perf_counter()
        found = index.longest_copy(query_ids)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()  # one start at a time, as before issue #42 (the follow-up it keeps)
        one_at_a_time = index._longest_copy_exact(np.asarray(query_ids), range(len(query_ids)), 0)
        exact_times.append(time.perf_counter() - started)
        agree += found == one_at_a_time == brute_longest_copy(text, query)
    print(f"corpus: {args.corpus.name}, {len(text):,} characters")
    print(f"suffix array built in {build:.2f} s (once per corpus; cached)")
    print(f"longest_copy of a {args.length}-character sample: median {1000 * statistics.median(times):.1f} ms "
          f"(one start at a time: {1000 * statistics.median(exact_times):.1f} ms)")
    print(f"agrees with brute force: {agree}/{args.queries}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
