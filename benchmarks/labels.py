"""Style labels, measured: does a sample follow the label asked for, a label changed midway, and what do labels cost?

    python benchmarks/labels.py adherence RUN [--heldout DIR] [--labels a,b,c] [--samples 40] [--length 400] [--strength W]
    python benchmarks/labels.py switch RUN --from A --to B [--at 300] [--after 500] [--samples 20] [--heldout DIR] [--strength W]
    python benchmarks/labels.py ceiling --heldout DIR --real DIR [--window 100]
    python benchmarks/labels.py cost LABELLED PLAIN

The judge is not the model: a character n-gram classifier (naive Bayes over
1- to 4-grams, add-one smoothing) trained on held-out labelled text, either
files in one folder per label (`--heldout`, never trained on) or, by default,
the run's own validation split (the held-out tail) with each piece's label.

- `adherence`: `--samples` samples per label; the share the classifier puts in
  the label asked for. For music it also parses each tune: its meter (a jig
  in 6/8, a slip jig in 9/8, a reel or hornpipe in 2/4, 4/4 or 2/2), and for a
  strathspey its rhythm (over a quarter of its note pairs dotted: 3:1).
- `switch`: samples written with A that switch to B after `--at` characters;
  the share of the `--after` characters after the switch (in windows of 100)
  the classifier puts in B, and the same share before the switch in A.
- `ceiling`: how often the judge names real text of each label right, in
  the same windows: what `switch` can at best show.
- `cost`: validation bits per character of a labelled run (each character with
  its own label) against a run without labels of the same size and steps.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ORDERS = (1, 2, 3, 4)
# The meters each rhythm is written in, in the folk corpus's own tunes (Ryan's writes most reels in 2/4).
METERS = {"jig": {"6/8"}, "slip jig": {"9/8"}, "reel": {"2/4", "4/4", "2/2"}, "hornpipe": {"2/4", "4/4", "2/2"},
          "strathspey": {"2/4", "4/4"}, "clog": {"2/4", "4/4"}, "polka": {"2/4"}, "waltz": {"3/4"}}
DOTTED = {"strathspey"}  # rhythms whose tunes move in dotted pairs (snaps): checked by parsing the notes


class NgramClassifier:
    """Multinomial naive Bayes over character n-grams."""

    def __init__(self, texts: dict[str, list[str]]):
        self.counts = {label: Counter(g for text in found for g in grams(text)) for label, found in texts.items()}
        self.totals = {label: sum(c.values()) for label, c in self.counts.items()}
        self.vocab = len(set().union(*self.counts.values()))

    def scores(self, text: str) -> dict[str, float]:
        found = Counter(grams(text))
        return {label: sum(n * math.log((counts[g] + 1) / (self.totals[label] + self.vocab)) for g, n in found.items())
                for label, counts in self.counts.items()}

    def classify(self, text: str) -> str:
        scores = self.scores(text)
        return max(scores, key=scores.get)


def grams(text: str):
    for n in ORDERS:
        for i in range(len(text) - n + 1):
            yield text[i : i + n]


def dotted_share(text: str) -> float:
    """The share of a tune's note pairs that are dotted (3:1, a dotted eighth and a sixteenth, or their halves)."""
    from fractions import Fraction

    from generate.music.render import decode_music

    durations = [event.duration for event in decode_music(text).voices[0]]
    dotted = {(Fraction(3, 4), Fraction(1, 4)), (Fraction(3, 8), Fraction(1, 8))}
    return sum((a, b) in dotted for a, b in zip(durations, durations[1:])) / max(1, len(durations) // 2)


def heldout_texts(folder: Path) -> dict[str, list[str]]:
    """Held-out text in one folder per label, cut into pieces of 400 characters."""
    texts = defaultdict(list)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            label = path.relative_to(folder).parts[0]
            text = path.read_text(encoding="utf-8", errors="replace")
            texts[label] += [text[i : i + 400] for i in range(0, len(text), 400)]
    return dict(texts)


def validation_texts(run_name: str) -> dict[str, list[str]]:
    """The run's validation split, cut where labels change (and into lines, for music), by label."""
    import numpy as np

    from generate.data.batching import split_train_val
    from generate.data.corpus import load_run_corpus
    from generate.model.rundir import resolve_run

    run = resolve_run(run_name)
    config = run.load_config()
    vocab = run.load_vocab()
    corpus = load_run_corpus(config.corpus, config.corpus_sha256, show_progress=False)
    train, val = split_train_val(corpus.ids(vocab, show_progress=False), config.train.val_fraction)
    spans = corpus.labelling(config.corpus.labels).spans.shifted(len(train))
    names = run.label_names()
    labels = spans.at(np.arange(len(val)))
    cuts = np.flatnonzero(np.diff(labels)) + 1
    texts = defaultdict(list)
    for start, end in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(val)]])):
        if labels[start] == 0:
            continue
        text = vocab.decode(np.asarray(val[start:end]))
        pieces = text.split("\n") if config.corpus.kind == "music" else [text[i : i + 400] for i in range(0, len(text), 400)]
        texts[names[labels[start]]] += [p for p in pieces if p.strip()]
    return dict(texts)


def judge(args) -> NgramClassifier:
    texts = heldout_texts(Path(args.heldout)) if args.heldout else validation_texts(args.run)
    if args.labels:
        texts = {label: texts[label] for label in args.labels.split(",")}
    print(f"classifier: {', '.join(f'{k} ({sum(map(len, v))} chars)' for k, v in texts.items())}", file=sys.stderr)
    return NgramClassifier(texts)


def adherence(args) -> dict:
    import generate

    classifier = judge(args)
    model = generate.load(args.run)
    music = model.facts.music
    results = {}
    for label in classifier.counts:
        options = {"label": label, "num_samples": args.samples, "seed": args.seed}
        if args.strength is not None:
            options["label_strength"] = args.strength
        if not music:
            options["length"] = args.length
        texts = [o.text for o in model.samples(**options)]
        verdicts = Counter(classifier.classify(text) for text in texts)
        row = {"samples": len(texts), "classified_as_asked": verdicts[label] / len(texts), "verdicts": dict(verdicts)}
        if music:
            meters = [re.match(r"M:(\S+)", text) for text in texts]
            expected = METERS.get(label)
            row["meters"] = dict(Counter(m.group(1) if m else None for m in meters))
            if expected:
                row["meter_as_expected"] = sum(bool(m) and m.group(1) in expected for m in meters) / len(texts)
            if label in DOTTED:
                row["dotted_rhythm"] = sum(dotted_share(text) > 0.25 for text in texts) / len(texts)
        results[label] = row
        print(json.dumps({"label": label, **row}), flush=True)
    return results


def switch(args) -> dict:
    import generate

    classifier = judge(args)
    model = generate.load(args.run)
    strength = {} if args.strength is None else {"label_strength": args.strength}
    outputs = model.samples(label=getattr(args, "from"), then_label=f"{args.to}@{args.at}", length=args.at + args.after,
                            num_samples=args.samples, seed=args.seed, warmup=False, **strength)
    before, after = Counter(), Counter()
    for output in outputs:
        sample = output.text[len(output.text) - len(output.text.lstrip("\n")):]
        for start in range(0, args.at - args.window + 1, args.window):
            before[classifier.classify(sample[start : start + args.window])] += 1
        for start in range(args.at, args.at + args.after - args.window + 1, args.window):
            after[classifier.classify(sample[start : start + args.window])] += 1
    row = {"from": getattr(args, "from"), "to": args.to, "at": args.at, "window": args.window, "samples": len(outputs),
           "before_as_from": before[getattr(args, "from")] / sum(before.values()),
           "after_as_to": after[args.to] / sum(after.values()), "after_verdicts": dict(after)}
    print(json.dumps(row), flush=True)
    return row


def ceiling(args) -> dict:
    """How often the judge itself names real text right, in windows as `switch` cuts them: its ceiling."""
    classifier = judge(args)
    row = {}
    for label in classifier.counts:
        texts = []
        for path in sorted((Path(args.real) / label).rglob("*")):
            text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
            texts += [text[i : i + args.window] for i in range(0, len(text) - args.window, 997)]
        row[label] = sum(classifier.classify(text) == label for text in texts) / max(len(texts), 1)
    print(json.dumps({"window": args.window, "judged_right": row}), flush=True)
    return row


def cost(args) -> dict:
    def validation_bpc(run: str) -> float:
        out = subprocess.run([sys.executable, "-m", "generate", "score", run, "--split", "val", "--json"], check=True,
                             capture_output=True, text=True).stdout
        return {row["name"]: row["bpc"] for row in map(json.loads, out.splitlines())}

    labelled, plain = validation_bpc(args.labelled), validation_bpc(args.plain)
    row = {"labelled": labelled, "plain_bpc": plain["validation"],
           "ratio": labelled["validation"] / plain["validation"]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("adherence", "switch", "ceiling"):
        sub = commands.add_parser(name)
        sub.add_argument("run" if name != "ceiling" else "--run", default=None)
        sub.add_argument("--heldout", default=None, help="held-out text, one folder per label (default: the validation split)")
        sub.add_argument("--labels", default=None, help="the labels to judge, comma-separated (default: all)")
        sub.add_argument("--samples", type=int, default=40 if name == "adherence" else 20)
        sub.add_argument("--seed", type=int, default=1)
        sub.add_argument("--strength", type=float, default=None, help="--label-strength (default: the model's own)")
    adherent = commands.choices["adherence"]
    adherent.add_argument("--length", type=int, default=400)
    switching = commands.choices["switch"]
    switching.add_argument("--from", required=True)
    switching.add_argument("--to", required=True)
    switching.add_argument("--at", type=int, default=300)
    switching.add_argument("--after", type=int, default=500)
    switching.add_argument("--window", type=int, default=100, help="characters the judge reads at a time")
    ceiling_parser = commands.choices["ceiling"]
    ceiling_parser.add_argument("--real", required=True, help="real text of each label, one folder per label (not the judge's)")
    ceiling_parser.add_argument("--window", type=int, default=100)
    costing = commands.add_parser("cost")
    costing.add_argument("labelled")
    costing.add_argument("plain")
    args = parser.parse_args()
    {"adherence": adherence, "switch": switch, "ceiling": ceiling, "cost": cost}[args.command](args)


if __name__ == "__main__":
    main()
