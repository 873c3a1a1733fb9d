"""The shipped music models judged as a musician would, by `generate eval`'s critics, before and after a change.

    python benchmarks/music_critique.py [--source OLD_CHECKOUT] [--seeds 101 102]

Samples 100 `folk` tunes, 60 `bach` chorales and 40 `folk --label jig` (and
reel, and hornpipe) tunes per seed at default settings, with this checkout or (with `--source`) with
another checkout's code and shipped models, and judges them all with this
checkout's critics beside the corpus's own figures. Prints one line per
model, seed and measure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from generate.critics.evaluate import evaluate

CASES = (("folk", 100, ()), ("bach", 60, ()), ("folk", 40, ("--label", "jig")), ("folk", 40, ("--label", "reel")),
         ("folk", 40, ("--label", "hornpipe")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="a checkout whose code and models sample")
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    args = parser.parse_args()
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = str(args.source.resolve())
    with tempfile.TemporaryDirectory() as scratch:
        for model, count, extra in CASES:
            for seed in args.seeds:
                path = Path(scratch) / f"{model}-{seed}.txt"
                # `-m generate` finds the package in the working directory first: run it in the checkout that samples.
                done = subprocess.run([sys.executable, "-m", "generate", "sample", model, "-N", str(count), "--seed",
                                       str(seed), *extra], capture_output=True, text=True, env=env, check=True,
                                      cwd=args.source or Path.cwd())
                path.write_text(done.stdout, encoding="utf-8")
                label = extra[1] if extra else ""
                judged = evaluate(model, [path], label=label)
                name = f"{model}{' --label ' + label if label else ''} seed {seed}"
                for what, mine, theirs in judged.rows():
                    print(f"{name}\t{what}\t{mine}\t(corpus {theirs})")
                for feature, values in judged.similarity.items():
                    if values:
                        print(f"{name}\t{feature}: overlap, KL\t{values['overlap']:.3f}, {values['kl']:.3f}")


if __name__ == "__main__":
    main()
