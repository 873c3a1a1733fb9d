"""Time to the first character, and characters per second: a bundle on onnxruntime beside the compiled TensorFlow loop.

    python benchmarks/first_char.py [--light PATH/TO/light-venv/bin/generate] [--repeats 7]

Start-up: each repetition starts `generate sample` as a user would, in turn on
each path, and times process start to the first byte on stdout:
- light: the shipped model's bundle, on onnxruntime; with `--light`, the
  `generate` of a virtualenv that has no TensorFlow (the light install),
  else this one's `generate` (TensorFlow is installed but never imported);
- tensorflow: the same model's `best.keras` through the compiled loop
  (`--checkpoint best.keras`).
It also times `generate sample tang --form 5x4` to its exit, a whole poem.

Speed: characters per second of `shakespeare` at 1 and 64 streams, 1,000
characters each, in this process: the bundle's NumPy loop around
onnxruntime, and the compiled loop on the same weights (first call, which
compiles, not counted).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time


def first_byte_seconds(command: list[str]) -> float:
    """Seconds from starting `command` to the first byte it writes on stdout (it is then left to finish)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    child.stdout.read(1)
    elapsed = time.perf_counter() - started
    child.communicate()
    return elapsed


def whole_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def startup(light: str, full: str, repeats: int) -> None:
    cases = {
        "light: shakespeare bundle, first character": (first_byte_seconds, [light, "sample", "--seed", "7"]),
        "tensorflow: shakespeare best.keras, first character": (
            first_byte_seconds, [full, "sample", "--seed", "7", "--checkpoint", "best.keras"]),
        "light: tang --form 5x4, whole poem": (whole_seconds, [light, "sample", "tang", "--form", "5x4", "--seed", "7"]),
        "tensorflow: tang --form 5x4, whole poem": (
            whole_seconds, [full, "sample", "tang", "--form", "5x4", "--seed", "7", "--checkpoint", "best.keras"]),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (measure, command) in cases.items():
            times[name].append(measure(command))
    for name, measured in times.items():
        print(f"{name}: median {statistics.median(measured):.3f} s, min {min(measured):.3f} s, max {max(measured):.3f} s")
    light_first, full_first = (statistics.median(times[n]) for n in list(cases)[:2])
    print(f"first character, tensorflow/light (medians): {full_first / light_first:.1f}x")


def speed(length: int) -> None:
    from generate.sampling.generator import load_generator
    from generate.sampling.options import SampleOptions

    runtimes = {"onnxruntime + NumPy loop (bundle)": load_generator("shakespeare"),
                "compiled TensorFlow loop (best.keras)": load_generator("shakespeare", checkpoint="best.keras")}
    for streams in (1, 64):
        options = SampleOptions(prime="ROMEO:", length=length, seed=1, num_samples=streams)
        for name, gen in runtimes.items():
            gen.sample(SampleOptions(prime="ROMEO:", length=20, seed=1, num_samples=streams))  # compiles
            started = time.perf_counter()
            gen.sample(options)
            elapsed = time.perf_counter() - started
            print(f"{streams:>2} stream(s), {name}: {streams * length / elapsed:,.0f} chars/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--light", default=None, help="the `generate` of a virtualenv without TensorFlow")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--length", type=int, default=1000)
    args = parser.parse_args()
    full = shutil.which("generate")
    light = args.light or full
    print(f"light: {light}\ntensorflow: {full}\ncores: {os.cpu_count()}")
    startup(light, full, args.repeats)
    speed(args.length)


if __name__ == "__main__":
    main()
