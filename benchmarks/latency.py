"""Start-up latency: `generate --help`, and the first sampled character on a terminal.

    python benchmarks/latency.py RUN [--repeats 5]

The sample command runs under a pseudo-terminal, as a user would see it, so
its stdout streams; the clock stops at the first byte after the prime.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def generate_program() -> str:
    """The `generate` script of this interpreter's environment, activated or not."""
    beside = Path(sys.executable).parent / "generate"
    return str(beside) if beside.exists() else (shutil.which("generate") or "generate")


def help_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([generate_program(), "--help"], check=True, capture_output=True)
    return time.perf_counter() - start


def first_char_seconds(run: str, prime: str = "ROMEO:") -> float:
    """Seconds from launch to the first generated character on a terminal."""
    leader, follower = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [generate_program(), "sample", run, "--prime", prime, "-n", "200", "--seed", "1"],
        stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    try:
        while len(seen) <= len(prime.encode()):
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                raise RuntimeError("no output within 60 s")
            seen += os.read(leader, 1024)
        return time.perf_counter() - start
    finally:
        proc.wait()
        os.close(leader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory or shipped model name")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    helps = [help_seconds() for _ in range(args.repeats)]
    firsts = [first_char_seconds(args.run) for _ in range(args.repeats)]
    for name, values in (("generate --help", helps), ("first sampled character", firsts)):
        print(f"{name:26} median {statistics.median(values):6.2f} s   min-max {min(values):.2f}-{max(values):.2f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
