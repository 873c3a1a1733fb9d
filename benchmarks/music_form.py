"""Music as sampled, without repair: dropped characters, valid headers and lengths, with and without the form automaton.

    python benchmarks/music_form.py bach folk [--samples 100] [--seed 1]

For each music model, draws N samples at its default settings (no prime,
default temperature and length) twice: with the music form automaton (the
default, `--syntax`) and without it (`--no-syntax`, the sampler before issue
#28). For each sample it reports:
- whether it decodes with no character dropped or repaired;
- whether its header is valid (a meter and a key signature the decoder reads);
- its length in bars, against the corpus's 5th to 95th percentile
  (`pieces.json`, recorded when the model was trained);
- the pass rate `--valid-only` would see.
The samples of one setting are drawn as one batch from one seed, so the two
settings see the same random numbers until their texts part.
"""

from __future__ import annotations

import argparse
import time

from generate.model.rundir import resolve_run
from generate.music import chorale, melody
from generate.music.melody import DecodeReport, split_header
from generate.pipeline.loaded import LoadedModel
from generate.sampling.generator import is_valid


def measure(model: LoadedModel, samples: int, seed: int, syntax: bool) -> dict:
    started = time.monotonic()
    outputs = model.samples(num_samples=samples, seed=seed, syntax=syntax)
    seconds = time.monotonic() - started
    decode = chorale.decode_chorale if model.facts.encoding == "chorale" else melody.decode_tune
    low, _, high = model.facts.piece_bars
    clean = headers = in_range = valid = 0
    bars_seen = []
    for out in outputs:
        text = out.text.strip("\n")
        _, report = decode(text)
        header_report = DecodeReport()
        split_header(text, header_report)
        bars = text.count(melody.BAR) - 1
        bars_seen.append(bars)
        clean += report.dropped == 0
        headers += text.startswith("M:") and melody.BAR in text and header_report.dropped == 0
        in_range += low <= bars <= high
        valid += is_valid(model.facts, text)
    bars_seen.sort()
    return {"samples": len(outputs), "clean": clean, "headers": headers, "in_range": in_range, "valid": valid,
            "median_bars": bars_seen[len(bars_seen) // 2], "max_bars": bars_seen[-1], "seconds": seconds,
            "range": (low, high)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("| model | sampler | decode with nothing dropped | valid header | bars in the corpus's 5th-95th percentile "
          "| --valid-only pass rate | median / longest bars | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = LoadedModel(resolve_run(name))
        if model.facts.piece_bars is None:
            raise SystemExit(f"{name}: no pieces.json, so no corpus lengths to compare with")
        for syntax, label in ((False, "--no-syntax (before)"), (True, "form automaton (default)")):
            r = measure(model, args.samples, args.seed, syntax)
            n = r["samples"]
            print(f"| {name} | {label} | {r['clean']}/{n} | {r['headers']}/{n} | {r['in_range']}/{n} "
                  f"({r['range'][0]}-{r['range'][1]} bars) | {r['valid'] / n:.0%} | {r['median_bars']} / "
                  f"{r['max_bars']} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
