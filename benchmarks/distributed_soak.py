"""Two local workers for minutes on end: each worker's threads and memory, and the run's throughput, over time.

Issue #43: with the engine's own per-collective timeout, each worker started
~260 threads a second (tensorflow#62466) and aborted within minutes. This
trains with checkpoints, validation at every epoch's end and `--val-every`,
and samples every worker each `--every` seconds: the lines should be flat.

    python benchmarks/distributed_soak.py ~/runs/soak ../shared/data/tinyshakespeare.txt --minutes 10

Prints a Markdown table (one row per sample) and a summary line for RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

MODEL = ["--cell", "gru", "--layers", "1", "--units", "64", "--batch-size", "16", "--seq-len", "50"]


def proc_status(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {"threads": int(fields["Threads"]), "rss_mb": int(fields["VmRSS"].split()[0]) // 1024}


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--val-every", type=int, default=500)
    args = parser.parse_args()
    shutil.rmtree(args.run, ignore_errors=True)
    command = [sys.executable, "-m", "generate", "train", str(args.run), str(args.corpus), *MODEL, "--epochs", "1000",
               "--seed", "3", "--patience", "0", "--checkpoint-every", "200", "--val-every", str(args.val_every), "--max-minutes", str(args.minutes),
               "--local-workers", "2"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    latest = {"line": ""}

    def read_progress():  # the chief's progress lines: the last one says the current rate
        for line in launcher.stderr:
            latest["line"] = line.strip()

    threading.Thread(target=read_progress, daemon=True).start()
    start, rows = time.monotonic(), []
    print("| minute | worker 0 threads | worker 1 threads | worker 0 RSS MB | worker 1 RSS MB | chars/s | progress |")
    print("|---|---|---|---|---|---|---|")
    while launcher.poll() is None:
        time.sleep(args.every)
        workers = children(launcher.pid)
        stats = [proc_status(pid) for pid in workers]
        if len(stats) != 2 or not all(stats):
            continue
        rate = re.search(r"([\d.]+k?) char/s", latest["line"])
        where = re.match(r"epoch \d+(/\d+)? \d+/\d+", latest["line"])
        row = (round((time.monotonic() - start) / 60, 1), stats[0]["threads"], stats[1]["threads"], stats[0]["rss_mb"],
               stats[1]["rss_mb"], rate.group(1) if rate else "-", where.group(0) if where else "-")
        rows.append(row)
        print("| " + " | ".join(map(str, row)) + " |", flush=True)
    out, _ = launcher.communicate()
    print(f"\nexit {launcher.returncode}: {out.strip()}")
    if rows:
        threads = [r[1] for r in rows] + [r[2] for r in rows]
        rss = [r[3] for r in rows] + [r[4] for r in rows]
        print(f"threads per worker: {min(threads)} to {max(threads)}; RSS per worker: {min(rss)} to {max(rss)} MB; "
              f"{len(rows)} samples over {rows[-1][0]} minutes")
    return launcher.returncode


if __name__ == "__main__":
    sys.exit(main())
