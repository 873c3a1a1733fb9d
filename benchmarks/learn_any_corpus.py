"""Which default start learns on any corpus? Candidates side by side against the corpus's unigram entropy.

The unigram entropy is the loss of predicting character frequencies alone: a
model whose validation loss stays there has learned nothing but them. Each
candidate trains the default model (2x256 LSTM, embedding 64, B=64, T=100,
Adam with global-norm clip 5) from the same seed, for the same number of
epochs, and reports the validation loss after each.

Candidates:
- `default`: Adam at 4e-3 from the first step, logits' bias at zero;
- `prior-bias`: the logits' bias starts at the log of each character's frequency
  in the training split, so the first step already predicts the unigram
  distribution instead of a uniform one;
- `warmup`: the learning rate rises linearly from 0 over the first epoch;
- `vocab-lr`: the learning rate scaled by sqrt(256 / vocabulary) when larger than 256;
- `prior-bias+warmup`: both.

    python benchmarks/learn_any_corpus.py ../shared/data/wujue.txt [--epochs 3] [--only default,prior-bias]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CANDIDATES = ("default", "prior-bias", "warmup", "vocab-lr", "prior-bias+warmup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="a text file")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--learning-rate", type=float, default=4e-3)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--units", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("GENERATE_CACHE_DIR", tempfile.mkdtemp(prefix="learn-any-"))

    from generate.data.batching import StreamBatches, split_train_val, validation_batches
    from generate.data.corpus import corpus_config, load_corpus
    from generate.data.vocab import Vocab, character_frequencies, unigram_entropy
    from generate.model.backend import import_keras, test_batch, train_batch, use_fast_training_kernels
    from generate.model.builder import build_model, reset_states, start_at_frequencies
    from generate.model.config import ModelConfig

    keras = import_keras()
    corpus = load_corpus(corpus_config([args.corpus]), show_progress=False)
    vocab = Vocab.from_counts(corpus.counts, 1)
    train_ids, val_ids = split_train_val(corpus.ids(vocab, False), 0.1)
    freq = character_frequencies(train_ids, len(vocab))
    unigram = unigram_entropy(train_ids, len(vocab))
    batches = StreamBatches(train_ids, 64, 100)
    val_batches = validation_batches(val_ids, 64, 100)
    cfg = ModelConfig(layers=args.layers, units=args.units, vocab_size=len(vocab))
    print(f"# {Path(args.corpus).name}: {len(train_ids):,} train chars, vocabulary {len(vocab)}, "
          f"unigram entropy {unigram:.4f} nats, ln V = {math.log(len(vocab)):.4f}; {len(batches)} steps per epoch")
    print("| candidate | " + " | ".join(f"val after epoch {e + 1}" for e in range(args.epochs)) + " | train s |")
    print("|---|" + "---|" * (args.epochs + 1))
    eval_model = build_model(cfg, val_batches.batch_size)
    eval_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for name in args.only.split(","):
        keras.utils.set_random_seed(0)
        model = build_model(cfg, 64)
        use_fast_training_kernels(model)
        base_lr = args.learning_rate
        if "vocab-lr" in name and len(vocab) > 256:
            base_lr *= math.sqrt(256 / len(vocab))
        optimizer = keras.optimizers.Adam(base_lr, global_clipnorm=5.0)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if "prior-bias" in name:
            start_at_frequencies(model, freq)
        losses, started, step = [], time.monotonic(), 0
        for epoch in range(args.epochs):
            reset_states(model)
            for k in range(len(batches)):
                lr = base_lr * 0.95**epoch
                if "warmup" in name and step < len(batches):
                    lr = base_lr * (step + 1) / len(batches)
                optimizer.learning_rate = lr
                train_batch(model, *batches.batch(k))
                step += 1
            eval_model.set_weights(model.get_weights())
            reset_states(eval_model)
            losses.append(float(np.mean([test_batch(eval_model, *val_batches.batch(k)) for k in range(len(val_batches))])))
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in losses) + f" | {time.monotonic() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
