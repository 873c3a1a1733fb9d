"""How many sampled Python functions parse, with and without the syntax automata.

Runs issue #15's check on a model (default: the shipped `python`): 100 samples
of `generate sample MODEL --prime "def " --stop "\\n\\n\\n" -n 1500 -t 0.7
--seed 1 -N 100`, once with `--no-syntax` and once with `--syntax`, no
`--valid-only`. Each sample (prime included) goes to `ast.parse`. Prints the
parse rate, how many samples stopped at the stop string rather than at the
length limit, and the commonest `SyntaxError` messages.

    python benchmarks/python_parse.py [--model python] [--seed 1] [--temperature 0.7]
"""

from __future__ import annotations

import argparse
import ast
import collections
import re
import time
import warnings

PRIME = "def "


def parses(text: str) -> str | None:
    """None when `text` parses, else the error message without its line numbers."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in sampled strings
            ast.parse(text)
    except SyntaxError as exc:
        return re.sub(r"\s*\(.*line \d+\)", "", exc.msg)
    except (ValueError, RecursionError, MemoryError) as exc:
        return type(exc).__name__
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="python")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--length", type=int, default=1500)
    args = parser.parse_args()

    from generate.sampling.generator import load_generator
    from generate.sampling.options import SampleOptions

    gen = load_generator(args.model, num_samples=args.samples)
    print(f"# {args.model}: {args.samples} samples, prime {PRIME!r}, stop '\\n\\n\\n', -n {args.length}, "
          f"-t {args.temperature}, seed {args.seed}")
    print("| automata | parse | stopped at \\n\\n\\n | at the length limit | sampling s | commonest errors |")
    print("|---|---|---|---|---|---|")
    for syntax in (False, True):
        options = SampleOptions(prime=PRIME, stop=("\n\n\n",), length=args.length, temperature=args.temperature,
                                seed=args.seed, num_samples=args.samples, syntax=syntax)
        started = time.monotonic()
        samples = gen.sample(options)
        seconds = time.monotonic() - started
        errors = collections.Counter(parses(PRIME + s.text) for s in samples)
        ok = errors.pop(None, 0)
        stopped = sum(1 for s in samples if s.stopped)
        limit = sum(1 for s in samples if len(s.text) >= args.length)
        common = "; ".join(f"{n} {msg}" for msg, n in errors.most_common(3))
        print(f"| {'on' if syntax else 'off'} | {ok}/{args.samples} | {stopped} | {limit} | {seconds:.1f} | {common} |",
              flush=True)


if __name__ == "__main__":
    main()
