"""One worker against two local workers over loopback: time per step, and the communication share.

Three runs, side by side in one invocation, at the same global batch B:

- `one`: one process on every core, B streams (the plain single-device path);
- `two`: `generate train --local-workers 2`, B/2 streams per worker, one core each;
- `half`: one process on one core with B/2 streams, which is what each worker
  computes, with nobody to talk to.

The share of a two-worker step spent communicating and waiting is
(two - half) / two, and the speed-up is one / two, both ratios of the same
run. Each figure is the last epoch's characters per second from the run's
history.csv (the first epoch includes tracing and the engine's start).

    python benchmarks/distributed.py [--chars 400000] [--units 256] [--layers 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def run(name: str, workdir: Path, corpus: Path, args: argparse.Namespace, batch: int, extra: list[str], env: dict) -> dict:
    run_dir = workdir / name
    command = [sys.executable, "-m", "generate", "-q", "train", str(run_dir), str(corpus), "--layers", str(args.layers),
               "--units", str(args.units), "--batch-size", str(batch), "--seq-len", str(args.seq_len),
               "--epochs", str(args.epochs), "--seed", "1", "--patience", "0", *extra]
    subprocess.run(command, check=True, env={**os.environ, **env})
    with open(run_dir / "history.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    chars_per_s = float(rows[-1]["chars_per_s"])
    return {"name": name, "batch": batch, "chars_per_s": chars_per_s, "step_s": batch * args.seq_len / chars_per_s,
            "val_loss": float(rows[-1]["val_loss"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=400_000, help="characters of Tiny Shakespeare to train on")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch B")
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="distributed-bench-") as tmp:
        workdir = Path(tmp)
        corpus = workdir / "corpus.txt"
        corpus.write_text(SHARED.read_text(encoding="utf-8")[: args.chars], encoding="utf-8")
        env = {"GENERATE_CACHE_DIR": str(workdir / "cache")}
        half_batch = args.batch_size // 2
        results = [
            run("one", workdir, corpus, args, args.batch_size, [], env),
            run("two", workdir, corpus, args, args.batch_size, ["--local-workers", "2"], env),
            run("half", workdir, corpus, args, half_batch, [], {**env, "GENERATE_CPU_THREADS": "1"}),
        ]
    one, two, half = results
    cores = os.cpu_count()
    print(f"# {args.layers}x{args.units} LSTM, B={args.batch_size}, T={args.seq_len}, {args.chars} chars of Tiny Shakespeare, "
          f"{cores} cores, epoch {args.epochs} of {args.epochs}")
    print("| run | streams per process | chars/s | s per step | val loss (nats) |")
    print("|---|---|---|---|---|")
    labels = {"one": "1 worker, all cores", "two": "2 local workers, 1 core each", "half": "1 worker, 1 core, half the batch"}
    for r in results:
        print(f"| {labels[r['name']]} | {r['batch'] if r['name'] != 'two' else half_batch} | {r['chars_per_s']:,.0f} | "
              f"{r['step_s']:.3f} | {r['val_loss']:.4f} |")
    print(f"\nspeed-up of 2 workers over 1: {one['step_s'] / two['step_s']:.2f}x")
    print(f"communication and waiting share of a 2-worker step: {(two['step_s'] - half['step_s']) / two['step_s']:.1%}")
    print(f"val loss, 2 workers minus 1: {two['val_loss'] - one['val_loss']:+.5f} nats")


if __name__ == "__main__":
    main()
