"""`generate --help` start-up of two source trees, interleaved in one run.

    git worktree add /tmp/before cf17a7e
    python benchmarks/startup_compare.py /tmp/before . [--repeats 30]

Each repetition times `python -m generate --help` in each tree in turn, with
this interpreter (so both import the same Click, and neither imports Keras).
Prints the median and minimum per tree and the ratio of medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the tree measured as the baseline")
    parser.add_argument("after", type=Path, help="the tree compared with it")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    times: dict[Path, list[float]] = {args.before: [], args.after: []}
    for _ in range(args.repeats):
        for tree in times:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "generate", "--help"], cwd=tree, check=True, capture_output=True)
            times[tree].append(time.perf_counter() - start)
    for tree, measured in times.items():
        print(f"{tree}: median {statistics.median(measured):.3f} s, min {min(measured):.3f} s")
    print(f"after/before, medians: {statistics.median(times[args.after]) / statistics.median(times[args.before]):.2f}")


if __name__ == "__main__":
    main()
