"""Can one request stall `generate serve` for everyone? Issue #38's cases, timed on a real server.

    python benchmarks/serve_stall.py [--model shakespeare] [--source DIR]

`--source` runs the server from another checkout (e.g. a `git worktree` of an
earlier commit) to time the same cases before a change. Each case starts a
fresh server on loopback:

1. A client asks for a beam of 256 x 3000 and leaves after 1.5 s; then a
   10-character request is timed (given up at 25 s).
   Then five 10-character requests are timed while a 256 x 3000 beam runs.
2. On a server with `--request-seconds 5`, beams of 256 x 300 and 256 x 3000: when do they answer?
3. `--grace 2`, a beam of 256 x 3000 in flight, SIGTERM: how long until the process exits, and does
   `/readyz` (where there is one) say 503 meanwhile?
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx


def start(model: str, source: str | None, *flags: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, **({"PYTHONPATH": source} if source else {})}
    child = subprocess.Popen([sys.executable, "-m", "generate", "serve", model, "--port", "0", *flags], stderr=subprocess.PIPE,
                             text=True, env=env, cwd=source or None)
    line = child.stderr.readline()
    found = re.search(r"at (http://\S+)", line)
    if not found:
        raise SystemExit(f"the server did not start: {line}{child.stderr.read()}")
    threading.Thread(target=child.stderr.read, daemon=True).start()
    return child, found.group(1)


def post(address: str, body: dict, timeout: float):
    started = time.perf_counter()
    try:
        response = httpx.post(address + "/v1/samples", json=body, timeout=timeout)
        return response.status_code, time.perf_counter() - started
    except httpx.TimeoutException:
        return "timed out", time.perf_counter() - started
    except httpx.HTTPError as exc:  # the server was stopped under it
        return type(exc).__name__, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shakespeare")
    parser.add_argument("--source", default=None)
    args = parser.parse_args()
    model = args.model

    child, address = start(model, args.source, "--max-streams", "256")
    try:
        post(address, {"model": model, "length": 10, "seed": 1}, 30)  # warm
        status, seconds = post(address, {"model": model, "length": 10, "seed": 1}, 30)
        print(f"alone: a 10-character request answered {status} in {seconds:.2f} s")
        leaver = threading.Thread(target=post, args=(address, {"model": model, "length": 3000, "beam": 256}, 1.5))
        leaver.start()
        leaver.join()
        status, seconds = post(address, {"model": model, "length": 10, "seed": 1}, 25)
        print(f"1. after a client left a 256 x 3000 beam: a 10-character request answered {status} in {seconds:.2f} s")
        staying = threading.Thread(target=post, args=(address, {"model": model, "length": 3000, "beam": 256}, 120), daemon=True)
        staying.start()
        time.sleep(1.0)
        timings = [post(address, {"model": model, "length": 10, "seed": seed}, 25) for seed in range(5)]
        print("   while a 256 x 3000 beam runs: five 10-character requests answered "
              + ", ".join(f"{status} in {seconds:.2f} s" for status, seconds in timings))
    finally:
        child.kill()
        child.wait()

    child, address = start(model, args.source, "--max-streams", "256", "--request-seconds", "5")
    try:
        for length in (300, 3000):
            status, seconds = post(address, {"model": model, "length": length, "beam": 256}, 60)
            print(f"2. --request-seconds 5, a 256 x {length} beam: answered {status} after {seconds:.2f} s")
    finally:
        child.kill()
        child.wait()

    child, address = start(model, args.source, "--max-streams", "256", "--grace", "2")
    try:
        beam = threading.Thread(target=post, args=(address, {"model": model, "length": 3000, "beam": 256}, 120), daemon=True)
        beam.start()
        time.sleep(1.0)
        child.send_signal(signal.SIGTERM)
        signalled = time.perf_counter()
        time.sleep(0.3)
        try:
            ready = httpx.get(address + "/readyz", timeout=5).status_code
        except httpx.HTTPError as exc:
            ready = type(exc).__name__
        try:
            child.wait(timeout=60)
            print(f"3. SIGTERM with a 256 x 3000 beam in flight, --grace 2: exited {child.returncode} after "
                  f"{time.perf_counter() - signalled:.2f} s; /readyz while draining: {ready}")
        except subprocess.TimeoutExpired:
            print(f"3. SIGTERM with a 256 x 3000 beam in flight, --grace 2: still running after 60 s; /readyz: {ready}")
    finally:
        child.kill()
        child.wait()


if __name__ == "__main__":
    main()
