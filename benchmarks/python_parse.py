"""How many sampled Python functions parse, with and without the syntax automata.

Runs issue #15's check on a model (default: the shipped `python`): 100 samples
of `generate sample MODEL --prime "def " --stop "\\n\\n\\n" -n 1500 -t 0.7
--seed 1 -N 100`, once with `--no-syntax` and once with `--syntax`, no
`--valid-only`. Each sample (prime included) goes to `ast.parse`. Prints the
parse rate, how many samples stopped at the stop string rather than at the
length limit, and the commonest `SyntaxError` messages.

With `--modules N`, it instead feeds the first N standard-library modules
(by name) through both automata, and counts the characters each would have
forbidden: how far real code is from what they allow.

    python benchmarks/python_parse.py [--model python] [--seed 1] [--temperature 0.7]
    python benchmarks/python_parse.py --modules 100
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
    parser.add_argument("--modules", type=int, default=0)
    args = parser.parse_args()
    if args.modules:
        check_modules(args.model, args.modules)
        return

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


def check_modules(model: str, count: int) -> None:
    """Feeds standard-library modules through the automata over `model`'s vocabulary; prints what they forbid."""
    import sysconfig
    from pathlib import Path

    import numpy as np

    from generate.model.rundir import resolve_run
    from generate.sampling.python.automata import python_automata

    chars = resolve_run(model).load_vocab().chars
    index = {c: i for i, c in enumerate(chars)}
    automata = python_automata(chars)
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:count]
    forbidden = collections.Counter()
    examples: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    clean = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        states, before = [a.start for a in automata], sum(forbidden.values())
        for i, c in enumerate(text):
            v = index.get(c)
            if v is None:
                continue
            for k, automaton in enumerate(automata):
                if automaton.char_bias(states[k])[v] == -np.inf:
                    forbidden[automaton.name] += 1
                    line_start = text.rfind("\n", 0, i) + 1
                    examples[automaton.name][_kind_of_break(text, i, line_start)] += 1
                states[k] = automaton.next_state(states[k], v)
        clean += sum(forbidden.values()) == before
    print(f"# {len(files)} modules from {files[0].parent}: {clean} pass whole")
    for name, n in forbidden.items():
        print(f"{name}: {n} characters forbidden; " + "; ".join(f"{k} {why}" for why, k in examples[name].most_common(4)))


def _kind_of_break(text: str, i: int, line_start: int) -> str:
    """A rough name for why real code broke an automaton at `i`."""
    c = text[i]
    if c in "([{":
        return "a bracket past the depth limit"
    if i == line_start and text[i - 2 : i] == "\n\n" and text[i - 3 : i] != "\n\n\n":
        return "column 0 after one blank line"
    if i == line_start and text[i - 1 : i] == "\n":
        return "column 0 after no blank line"
    if c == "\n":
        return "a blank line where none may come"
    return f"{c!r} elsewhere"


if __name__ == "__main__":
    main()
