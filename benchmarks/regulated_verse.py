"""Tang poems checked by an independent checker: `pingshui-rhyme`'s own rhyme and tonal-meter rules.

    pip install pingshui-rhyme==0.20
    python benchmarks/regulated_verse.py [MODEL] [--poems 50] [--seed 5] [--free]

Samples each regulated form (5x4, 7x4, 5x8, 7x8) and an acrostic (春夏秋冬)
with `--regulated` (or, with `--free`, without it) and counts the poems
that pass `PoemStructureChecker.check_poem_rhyming` and
`check_poem_pingze_meter`, and those whose rhyme characters repeat.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings

CASES = (("--form", "5x4"), ("--form", "7x4"), ("--form", "5x8"), ("--form", "7x8"), ("--acrostic", "春夏秋冬"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="tang")
    parser.add_argument("--poems", type=int, default=50)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--free", action="store_true", help="sample without --regulated")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # the package imports pkg_resources
    from pingshui_rhyme.poem_structure_checker import PoemStructureChecker

    checker = PoemStructureChecker()
    for option, value in CASES:
        command = ["generate", "sample", args.model, option, value, "-N", str(args.poems), "--seed", str(args.seed),
                   "--json", *([] if args.free else ["--regulated"])]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr)
        poems = [json.loads(line)["text"] for line in done.stdout.splitlines()]
        rhymed = sum(checker.check_poem_rhyming(p)[0] for p in poems)
        metred = sum(bool(checker.check_poem_pingze_meter(p)[0]) for p in poems)
        both = sum(checker.check_poem_rhyming(p)[0] and bool(checker.check_poem_pingze_meter(p)[0]) for p in poems)
        repeats = 0
        for poem in poems:
            lines = checker.clean_poem(poem)
            ends = [line[-1] for i, line in enumerate(lines) if i % 2 == 1]
            repeats += len(ends) != len(set(ends))
        print(f"{' '.join(command[2:5])}{'' if args.free else ' --regulated'}: {len(poems)} poems, rhyme {rhymed}, "
              f"meter {metred}, both {both}, a rhyme character repeated in {repeats}")


if __name__ == "__main__":
    main()
