"""Sampling speed: our fused compiled sampler vs. a `model.predict`-per-character loop.

Both run side by side in one process on the same 2x256 LSTM (random weights:
speed does not depend on training), so the ratio is robust to machine noise.

    python benchmarks/sample_speed.py [--repeats 3] [--length 4000]

Prints a table of median and min-max chars/s and the ratio ours/baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from generate.model.backend import import_keras
from generate.model.builder import build_model
from generate.model.config import ModelConfig
from generate.model.network import StepNetwork
from generate.sampling.config import SamplingConfig
from generate.sampling.loop import Sampler


def ours(cfg: ModelConfig, streams: int, length: int, repeats: int) -> list[float]:
    model = build_model(cfg, streams, seq_len=1)
    sampler = Sampler(StepNetwork.from_model(model, cfg), tuple(chr(32 + i) for i in range(cfg.vocab_size)))
    settings = SamplingConfig(length=length, temperature=0.8, num_samples=streams)
    sampler.generate([0], SamplingConfig(length=64, temperature=0.8, num_samples=streams), np.random.default_rng(0))  # compile
    rates = []
    for repeat in range(repeats):
        start = time.perf_counter()
        sampler.generate([0], settings, np.random.default_rng(repeat))
        rates.append(length * streams / (time.perf_counter() - start))
    return rates


def predict_per_char(cfg: ModelConfig, streams: int, length: int, repeats: int) -> list[float]:
    """The naive loop: one `model.predict` call per generated character."""
    model = build_model(cfg, streams, seq_len=1)
    rng = np.random.default_rng(0)
    token = np.zeros((streams, 1), dtype="int32")
    model.predict(token, batch_size=streams, verbose=0)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(length):
            logits = model.predict(token, batch_size=streams, verbose=0)[:, -1] / 0.8
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            token = np.array([[rng.choice(cfg.vocab_size, p=p)] for p in probs], dtype="int32")
        rates.append(length * streams / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--length", type=int, default=4000, help="characters per stream for our sampler")
    parser.add_argument("--baseline-length", type=int, default=60, help="characters per stream for the predict loop")
    args = parser.parse_args()
    import_keras()
    cfg = ModelConfig(cell="lstm", layers=2, units=256, embedding_dim=64, vocab_size=65)
    print(f"{'case':34} {'median chars/s':>15} {'min-max':>20} {'ratio':>8}")
    for streams in (1, 64):
        length = args.length if streams == 1 else max(args.length // 8, 100)
        # Ours first, all repeats, then the baseline: TensorFlow's thread pools keep
        # spinning briefly after a predict call and would steal a core from us.
        a = ours(cfg, streams, length, args.repeats)
        b = predict_per_char(cfg, streams, args.baseline_length, args.repeats)
        for name, values in ((f"ours, 2x256 LSTM, {streams} stream(s)", a), (f"predict/char, {streams} stream(s)", b)):
            print(f"{name:34} {statistics.median(values):15.0f} {min(values):9.0f}-{max(values):<10.0f}", end="")
            print(f" {statistics.median(a) / statistics.median(b):8.1f}x" if values is a else "")


if __name__ == "__main__":
    main()
