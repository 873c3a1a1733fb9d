"""Builds the Python syntax tables a shipped code model carries, so its first sample builds nothing.

    python checkpoints/make_tables.py checkpoints/python

The tables' file name holds a hash of the vocabulary and of the code that
builds them (`sampling/python/`): after a change there, run this again (the
suite names the stale file). Older tables in the folder are removed. They
ship xz-compressed (`automata._load_shipped`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generate.model.rundir import RunDir
from generate.sampling.python.automata import SHIPPED_SUFFIX, python_automata, shipped_tables, tables_file_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a shipped model's folder, e.g. checkpoints/python")
    args = parser.parse_args()
    chars = RunDir(args.run).load_vocab().chars
    name = tables_file_name(chars)
    folder = args.run / "automata"
    folder.mkdir(exist_ok=True)
    shipped = folder / (name + SHIPPED_SUFFIX)
    for stale in folder.glob("python-*"):
        if stale != shipped:
            stale.unlink()
    shipped.write_bytes(shipped_tables(python_automata(chars)))  # from the shipped file, the cache, or built (a minute)
    print(shipped)


if __name__ == "__main__":
    main()
