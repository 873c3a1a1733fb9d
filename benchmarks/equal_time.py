"""Validation loss reached in equal training time: ours vs. the keras-io char-RNN example and nanoGPT.

    python benchmarks/equal_time.py [--minutes 5] [--corpus ../shared/data/tinyshakespeare.txt] [--only ours,tied,...]
    python benchmarks/equal_time.py --nanogpt DIR --nanogpt-python PY [--iters 2000,10000]

Both train on the corpus's first 90% for the same wall-clock training time
(validation passes not counted) and are scored on the last 10% in nats per
character:

- ours: `generate train` with its defaults (2x256 stateful LSTM with a
  skip connection, B=64, T=100), float32, and the recipe arms in RECIPES
  (`--precision mixed`, tied embeddings, dropout, T=200, 384 units, no skip
  connection, layer normalisation with and without one, B=32, a faster
  learning-rate decay) chosen with `--only`. Each counts the lower of its
  best whole-epoch validation and `generate score` of the weights its
  budget ends with;
- keras-io: the example's model and recipe (one-hot windows of 40 characters
  taken every 3, LSTM 128, softmax, RMSprop 0.01, batch 128), batches built on
  the fly from the same ids. Its validation loss is the mean over every 3rd
  position of the validation split, each predicted from the 40 characters
  before it: all the context that model ever sees.

With `--nanogpt DIR` (a checkout of github.com/karpathy/nanoGPT) it instead
runs nanoGPT's own `train.py` with its README's CPU configuration (4 layers,
4 heads, 128 wide, block 64, batch 12, no dropout, `--compile=False`) for each
of `--iters`, with the learning rate decaying to that count. The data are
written as its `data/shakespeare_char/prepare.py` writes them (the same
90/10 split), without the download. PY is a Python with PyTorch and NumPy.
nanoGPT's wall time, start to end, then becomes ours: `generate train` with
its defaults and `--max-minutes` set to it (ours also spends time starting up
and validating, outside that budget). nanoGPT reports its own validation
estimate: 20 random batches of 12 x 64, so each position sees 32 characters
of context on average. Ours is the whole validation split, read in order.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"  # the reference corpus, read in place
WINDOW, STEP, BATCH = 40, 3, 128
# Recipe arms for --only: `generate train` options on top of the defaults, each run for the same minutes.
RECIPES = {
    "ours": [],
    "mixed": ["--precision", "mixed"],
    "tied": ["--tie-embeddings"],
    "dropout": ["--dropout", "0.1"],
    "seq200": ["--seq-len", "200"],
    "wide": ["--units", "384"],
    "plain": ["--no-residual"],  # the defaults before skip connections became one
    "layernorm": ["--layer-norm"],
    "plain-ln": ["--no-residual", "--layer-norm"],
    "batch32": ["--batch-size", "32"],
    "decay85": ["--lr-decay", "0.85"],
}


def ours(corpus: Path, minutes: float, extra: list[str]) -> tuple[float, str]:
    """Validation loss of a `generate train` run limited to `minutes` of training.

    Training validates at the end of each epoch only, so a budget that ends
    just short of an epoch's end would be judged by the epoch before. The
    weights the budget ends with (`latest.keras`, saved when the time runs
    out) are scored too, over the same validation split, and the lower of
    the two counts.
    """
    generate = str(Path(sys.executable).with_name("generate"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GENERATE_CACHE_DIR": os.path.join(tmp, "cache")}
        run = os.path.join(tmp, "run")
        result = subprocess.run([generate, "-q", "train", run, str(corpus), "--epochs", "1000",
                                 "--patience", "0", "--max-minutes", str(minutes), *extra],
                                env=env, capture_output=True, text=True, check=True)
        scored = subprocess.run([generate, "-q", "score", run, "--split", "val", "--checkpoint", "latest", "--json"],
                                env=env, capture_output=True, text=True, check=True)
    line = result.stdout.strip().replace("\t", "  ")
    best = float(re.search(r"best val ([0-9.]+) nats", line).group(1))
    at_end = json.loads(scored.stdout.splitlines()[-1])["nats"]
    return min(best, at_end), f"{line}  at the end {at_end:.4f} nats"


def keras_io_model(vocab: int):
    """The keras-io example's model, compiled with its recipe: a one-hot window of WINDOW characters in, the next one out."""
    from generate.model.backend import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input((WINDOW, vocab)), keras.layers.LSTM(128), keras.layers.Dense(vocab, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(0.01))
    return model


def keras_io(corpus: Path, minutes: float) -> tuple[float, str]:
    text = corpus.read_text(encoding="utf-8")
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int32, count=len(text))
    split = len(ids) - len(ids) // 10
    train, val = ids[:split], ids[split:]
    vocab = len(chars)
    eye = np.eye(vocab, dtype="float32")
    model = keras_io_model(vocab)
    starts = np.arange(0, len(train) - WINDOW, STEP)
    rng = np.random.default_rng(0)
    offsets = np.arange(WINDOW)
    trained, steps, epochs = 0.0, 0, 0
    while trained < minutes * 60:
        order = rng.permutation(starts)  # the example shuffles (model.fit's default)
        for k in range(0, len(order) - BATCH + 1, BATCH):
            batch = order[k : k + BATCH]
            began = time.perf_counter()
            model.train_on_batch(eye[train[batch[:, None] + offsets]], eye[train[batch + WINDOW]])
            trained += time.perf_counter() - began
            steps += 1
            if trained >= minutes * 60:
                break
        epochs += 1
    val_starts = np.arange(0, len(val) - WINDOW, STEP)
    losses = []
    for k in range(0, len(val_starts), 1024):
        batch = val_starts[k : k + 1024]
        probs = model.predict_on_batch(eye[val[batch[:, None] + offsets]])
        losses.append(-np.log(np.maximum(probs[np.arange(len(batch)), val[batch + WINDOW]], 1e-12)))
    loss = float(np.concatenate(losses).mean())
    return loss, f"{steps} steps ({steps * BATCH * STEP / len(train):.1f} passes over the corpus), {len(val_starts)} validation windows"


NANOGPT_CPU = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0"]


def nanogpt(corpus: Path, repo: Path, python: str, iters: int) -> tuple[float, float]:
    """(nanoGPT's last validation estimate, its wall seconds) for its README's CPU run of `iters` iterations."""
    import pickle  # nanoGPT's own metadata format, read only by nanoGPT

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py"):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_bytes((repo / name).read_bytes())
        data = work / "data" / "shakespeare_char"
        data.mkdir(parents=True)
        text = corpus.read_text(encoding="utf-8")
        chars = sorted(set(text))
        stoi = {c: i for i, c in enumerate(chars)}
        split = int(len(text) * 0.9)
        np.array([stoi[c] for c in text[:split]], dtype=np.uint16).tofile(data / "train.bin")
        np.array([stoi[c] for c in text[split:]], dtype=np.uint16).tofile(data / "val.bin")
        with open(data / "meta.pkl", "wb") as f:
            pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)
        command = [python, "train.py", "config/train_shakespeare_char.py", *NANOGPT_CPU,
                   f"--max_iters={iters}", f"--lr_decay_iters={iters}"]
        started = time.monotonic()
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, check=True)
        wall = time.monotonic() - started
    losses = re.findall(r"step \d+: train loss [0-9.]+, val loss ([0-9.]+)", result.stdout)
    return float(losses[-1]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    parser.add_argument("--only", default="ours,mixed,keras-io")
    parser.add_argument("--nanogpt", type=Path, help="a nanoGPT checkout: run it and ours at its wall times instead")
    parser.add_argument("--nanogpt-python", default=sys.executable, help="a Python with PyTorch for nanoGPT")
    parser.add_argument("--iters", default="2000,10000")
    args = parser.parse_args()
    if args.nanogpt:
        print("| run | wall or training s | validation loss (nats) |")
        print("|---|---|---|")
        for iters in (int(n) for n in args.iters.split(",")):
            loss, wall = nanogpt(args.corpus, args.nanogpt, args.nanogpt_python, iters)
            print(f"| nanoGPT, {iters:,} iterations | {wall:.0f} s wall | {loss:.4f} |", flush=True)
            started = time.monotonic()
            ours_loss, line = ours(args.corpus, wall / 60, [])
            print(f"| ours, --max-minutes {wall / 60:.2f} | {time.monotonic() - started:.0f} s wall | {ours_loss:.4f} |",
                  flush=True)
        return
    rows = []
    for name in args.only.split(","):
        if name in RECIPES:
            rows.append((f"ours, 2x256 LSTM, {' '.join(RECIPES[name]) or 'defaults'}", *ours(args.corpus, args.minutes, RECIPES[name])))
        elif name == "keras-io":
            rows.append(("keras-io example (LSTM 128, windows of 40)", *keras_io(args.corpus, args.minutes)))
    print(f"{args.minutes:g} minutes of training each on {args.corpus.name}; validation: the last 10%")
    print(f"{'model':45} {'val nats':>9} {'val bpc':>8}  notes")
    for name, loss, notes in rows:
        print(f"{name:45} {loss:9.4f} {loss / np.log(2):8.4f}  {notes}")


if __name__ == "__main__":
    main()
