"""Writes a shipped Chinese verse model's `lines.json`: the hashes of its corpora's lines, which a poem may not copy.

    python checkpoints/make_lines.py checkpoints/tang ../shared/data/tang_regulated.txt ../shared/data/wujue.txt

Every run of five or seven Han characters in the given files counts as a line
(`data.corpus_lines`); `title:poem` lines are read as they are, so a title of
five or seven characters counts too, which costs nothing but a rare redraw.
Run `make_bundles.py` after it: the bundle's `meta.json` lists the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from generate.data.corpus_lines import write_lines
from generate.model.rundir import RunDir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a shipped model's folder, e.g. checkpoints/tang")
    parser.add_argument("corpora", type=Path, nargs="+", help="the text files whose lines a poem may not copy")
    args = parser.parse_args()
    run = RunDir(args.run)
    texts = [path.read_text(encoding="utf-8") for path in args.corpora]
    count = write_lines(run.lines, texts, ", ".join(path.name for path in args.corpora))
    print(run.lines, f"{count:,} lines, {run.lines.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
