"""Adds to a shipped music model's `pieces.json` the meters its training corpus's pieces use.

    python checkpoints/make_pieces.py checkpoints/folk checkpoints/bach

A run records its corpus's pieces when it is created; this records them for
a model trained before a fact was recorded (the meters a header may name
came after `folk` and `bach` were trained). The corpus is read exactly as
the run's `config.json` says, labels included; the recorded bar counts are
kept as they are (the sampler's lengths do not move). Run `make_bundles.py` after
it: the bundle's `meta.json` holds the file's hash.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from generate.data.corpus import load_corpus
from generate.model.rundir import RunDir
from generate.training.plan import music_pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="shipped music models' folders, e.g. checkpoints/folk")
    args = parser.parse_args()
    for folder in args.runs:
        run = RunDir(folder)
        config, vocab = run.load_config(), run.load_vocab()
        corpus = load_corpus(config.corpus, show_progress=False)
        if corpus.sha256 != config.corpus_sha256:  # a later encoder's text: the same pieces, the same meters
            print(f"{folder}: note: the corpus built here is not byte for byte the one the model was trained on")
        labelling = corpus.labelling(config.corpus.labels) if config.corpus.labels else None
        recorded = json.loads(run.pieces.read_text(encoding="utf-8"))
        pieces = {**recorded, "meters": music_pieces(corpus.ids(vocab, False), vocab, labelling)["meters"]}
        run.pieces.write_text(json.dumps(pieces) + "\n", encoding="utf-8")
        print(run.pieces, ", ".join(f"{m} ({n})" for m, n in pieces["meters"]["meters"].items()))


if __name__ == "__main__":
    main()
