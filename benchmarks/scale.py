"""Scale: ingest a corpus of 1 GB, train a few steps on it and validate, in bounded memory.

    python benchmarks/scale.py [--size-mb 1024] [--dir /tmp/generate-scale]

Builds the corpus by repeating ../shared/data/tinyshakespeare.txt (ASCII)
up to the size, then runs three fresh processes against an empty corpus cache:

1. ingestion alone (hash, character count, encoding into the memory-mapped
   id array), timed phase by phase;
2. `generate train` on the same corpus with a cold cache, so it ingests too,
   stopping after `--train-minutes` of training;
3. `generate score RUN --split val`, the validation pass.

Prints MB/s of ingestion and each process's own peak RSS (the kernel's
maxrss of that child, from wait4). Run this script from a small process:
Linux starts a child's maxrss at its parent's resident size, so run.py calls
it as a subprocess rather than from its own (TensorFlow-sized) process. Issue #4's targets: >= 50 MB/s, peak RSS < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from equal_time import SHAKESPEARE

INGEST = """
import json, sys, time
from generate.data.config import CorpusConfig
from generate.data.corpus import load_corpus
from generate.data.vocab import Vocab
start = time.perf_counter()
corpus = load_corpus(CorpusConfig(sources=[sys.argv[1]]), show_progress=False)
scanned = time.perf_counter()
ids = corpus.ids(Vocab.from_counts(corpus.counts), show_progress=False)
encoded = time.perf_counter()
print(json.dumps({"chars": corpus.n_chars, "scan_s": scanned - start, "encode_s": encoded - scanned,
                  "ids_dtype": str(ids.dtype), "ids_bytes": int(ids.nbytes)}))
"""


def make_corpus(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size >= size:
        return
    block = SHAKESPEARE.read_bytes() if SHAKESPEARE.exists() else (b"the quick brown fox jumps over the lazy dog\n" * 25000)
    with open(path, "wb") as out:
        written = 0
        while written < size:
            piece = block[: size - written]
            out.write(piece)
            written += len(piece)


def child(command: list[str], env: dict) -> tuple[str, float, float]:
    """Runs a command; returns its stdout, wall seconds and its own peak RSS in MB (from wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            sys.exit(f"{' '.join(command[:4])} failed ({process.returncode}):\n{err.read()[-2000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024


def measure(size_mb: int, directory: Path, train_minutes: float) -> tuple[list[tuple[str, float, float, str]], float]:
    """Runs the three processes; returns (process, wall s, peak RSS MB, notes) rows and the ingest MB/s."""
    directory.mkdir(parents=True, exist_ok=True)
    corpus = directory / "corpus.txt"
    make_corpus(corpus, size_mb << 20)
    size = corpus.stat().st_size / 1e6
    generate = str(Path(sys.executable).with_name("generate"))
    for name in ("cache-ingest", "cache-train", "run"):
        shutil.rmtree(directory / name, ignore_errors=True)
    rows = []
    env = {**os.environ, "GENERATE_CACHE_DIR": str(directory / "cache-ingest")}
    out, wall, rss = child([sys.executable, "-c", INGEST, str(corpus)], env)
    info = json.loads(out)
    mb_s = size / (info["scan_s"] + info["encode_s"])
    rows.append(("ingest (hash + count + encode)", wall, rss,
                 f"{mb_s:.0f} MB/s; count {info['scan_s']:.1f} s, encode {info['encode_s']:.1f} s; "
                 f"{info['chars']:,} chars -> {info['ids_bytes'] / 1e6:.0f} MB of {info['ids_dtype']} ids"))
    env = {**os.environ, "GENERATE_CACHE_DIR": str(directory / "cache-train")}
    run = directory / "run"
    out, wall, rss = child([generate, "-q", "train", str(run), str(corpus), "--layers", "1", "--units", "128",
                            "--val-fraction", "0.001", "--max-minutes", str(train_minutes)], env)
    rows.append(("generate train (ingest, then train)", wall, rss, out.strip().replace("\t", "  ")))
    out, wall, rss = child([generate, "-q", "score", str(run), "--split", "val"], env)
    rows.append(("generate score RUN --split val", wall, rss, out.strip().replace("\t", "  ")))
    return rows, mb_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/generate-scale"))
    parser.add_argument("--train-minutes", type=float, default=0.3)
    parser.add_argument("--json", action="store_true", help="print the rows and MB/s as JSON (for run.py)")
    args = parser.parse_args()
    rows, mb_s = measure(args.size_mb, args.dir, args.train_minutes)
    if args.json:
        print(json.dumps({"rows": rows, "mb_s": mb_s}))
        return
    print(f"corpus: {args.dir / 'corpus.txt'} ({args.size_mb} MiB, ASCII)")
    print(f"{'process':38} {'wall s':>8} {'peak RSS MB':>12}  notes")
    for name, wall, rss, notes in rows:
        print(f"{name:38} {wall:8.1f} {rss:12.0f}  {notes}")


if __name__ == "__main__":
    main()
