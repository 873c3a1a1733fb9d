"""Every shipped model against its recorded outputs, the slow cases included.

    python benchmarks/shipped_regression.py [--shared ../shared] [--skip-slow]

Runs each fixed-seed sample command of tests/shipped_outputs.json and
compares its sha256, then scores each model's validation split with
`generate score NAME --split val` and compares the printed line. The test
suite runs the fast cases; this script also builds the `python` corpus from
the running Python's standard library and parses the `bach` and `folk`
corpora with music21 (about 20 minutes in all on two cores). Prints one
line per case and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from generate.cli import cli

REPO = Path(__file__).resolve().parent.parent
RECORDED = json.loads((REPO / "tests" / "shipped_outputs.json").read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the folder holding data/")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the corpora that take minutes to build")
    args = parser.parse_args()
    runner, failed = CliRunner(), 0
    with tempfile.TemporaryDirectory() as folder:
        for number, case in enumerate(RECORDED["samples"]):
            out = Path(folder) / f"out-{number}.mid"  # outputs are never overwritten
            started = time.monotonic()
            result = runner.invoke(cli, [str(out) if a == "OUT.mid" else a for a in case["args"]])
            data = out.read_bytes() if "OUT.mid" in case["args"] else result.stdout.encode("utf-8")
            same = result.exit_code == 0 and hashlib.sha256(data).hexdigest() == case["sha256"]
            failed += not same
            print(f"{'same' if same else 'DIFFERS'}\t{time.monotonic() - started:5.1f} s\tgenerate {' '.join(case['args'])}")
    for case in RECORDED["scores"]:
        if args.skip_slow and "slow" in case:
            print(f"skipped\t\tgenerate score {case['model']} --split val ({case['slow']})")
            continue
        started = time.monotonic()
        if case["build"]:
            built = runner.invoke(cli, [a.replace("SHARED", str(args.shared)) for a in case["build"]])
            if built.exit_code != 0:
                print(f"DIFFERS\t\tgenerate {' '.join(case['build'])}: {built.stderr.strip()}")
                failed += 1
                continue
        scored = runner.invoke(cli, ["score", case["model"], "--split", "val"])
        first = scored.stdout.splitlines()[0] if scored.stdout.strip() else ""  # a labelled model's per-label lines follow
        line = first.replace("\t", "  ")
        same = scored.exit_code == 0 and first == case["line"]
        failed += not same
        print(f"{'same' if same else 'DIFFERS'}\t{time.monotonic() - started:5.1f} s\tgenerate score {case['model']} --split val: "
              f"{line or scored.stderr.strip()}")
    print(f"{failed} case(s) differ" if failed else "every case matches")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
