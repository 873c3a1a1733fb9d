"""Adds to a shipped music model's `pieces.json` what its corpus's pieces are like: meters, repeats, measures.

    python checkpoints/make_pieces.py checkpoints/folk checkpoints/bach

A run records its corpus's bar counts, meters and repeated parts when it is
created; this records them for a model trained before they were, and, under
`critique`, the corpus's side of `generate eval` (its measures, and the
features of 200 of its pieces), so that judging a shipped model needs no
corpus on a fresh machine. The corpus is read exactly as the run's
`config.json` says, labels included; the recorded bar counts are kept as
they are (the sampler's lengths do not move). Run `make_bundles.py` after
it: the bundle's `meta.json` holds the file's hash.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from generate.critics import critic_for
from generate.critics.evaluate import REFERENCE_KEY, reference_record
from generate.data.corpus import load_corpus
from generate.model.rundir import RunDir
from generate.training.plan import music_pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="shipped music models' folders, e.g. checkpoints/folk")
    args = parser.parse_args()
    logging.getLogger("generate.music").setLevel(logging.ERROR)  # the corpus's skipped files, listed at its build
    for folder in args.runs:
        run = RunDir(folder)
        config, vocab = run.load_config(), run.load_vocab()
        corpus = load_corpus(config.corpus, show_progress=False)
        if corpus.sha256 != config.corpus_sha256:  # a later encoder's text: the same pieces, the same meters
            print(f"{folder}: note: the corpus built here is not byte for byte the one the model was trained on")
        labelling = corpus.labelling(config.corpus.labels) if config.corpus.labels else None
        ids = corpus.ids(vocab, False)
        recorded = json.loads(run.pieces.read_text(encoding="utf-8"))
        found = music_pieces(ids, vocab, labelling)
        meters = found["meters"]
        critic = critic_for("music", config.corpus.encoding)(meters)
        lines = corpus.files[0].read_text(encoding="utf-8").split("\n")[:-1]
        by_label = None
        if labelling is not None:
            starts = np.concatenate([[0], np.cumsum([len(line) + 1 for line in lines])[:-1]])
            names = [labelling.names[i] for i in labelling.spans.at(starts)]
            by_label = {name: [line for line, own in zip(lines, names) if own == name] for name in labelling.names[1:]}
        reference = reference_record(critic, critic.pieces("\n".join(lines)), ", ".join(config.corpus.sources), by_label)
        pieces = {**recorded, "meters": meters, **({"repeats": found["repeats"]} if "repeats" in found else {}),
                  REFERENCE_KEY: reference}
        run.pieces.write_text(json.dumps(pieces) + "\n", encoding="utf-8")
        print(run.pieces, ", ".join(f"{m} ({n})" for m, n in meters["meters"].items()))


if __name__ == "__main__":
    main()
