"""Training throughput of our stateful model, in characters per second.

Times `train_on_batch` steps (Adam, global-norm clipping 5, B=64, T=100,
embedding 64, vocab 65) for LSTM and GRU at 2x256, as `generate train` runs
them. Absolute figures only: the PyTorch baseline comparison is issue 4's.

    python benchmarks/train_speed.py [--steps 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from generate.model.backend import dtype_policy, import_keras, use_fast_training_kernels
from generate.model.builder import build_model
from generate.model.config import ModelConfig, TrainConfig
from generate.training.trainer import compile_for_training


def train_step(cell: str, units: int, batch: int = 64, seq_len: int = 100, precision: str = "float32", fused: bool = True):
    """One `generate train` step as a callable; `precision` as `--precision` takes it.

    With `fused=False` the layers keep Keras's own recurrent loop, for comparison.
    """
    cfg = ModelConfig(cell=cell, layers=2, units=units, embedding_dim=64, vocab_size=65)
    train_cfg = TrainConfig(batch_size=batch, seq_len=seq_len, precision=precision)
    model = build_model(cfg, batch, policy=dtype_policy(precision, cell))
    if fused:
        use_fast_training_kernels(model)
    compile_for_training(model, train_cfg, steps_per_epoch=1000)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 65, (batch, seq_len)).astype("int32")
    y = rng.integers(0, 65, (batch, seq_len)).astype("int32")
    return lambda: model.train_on_batch(x, y)


def steps_per_second(cell: str, units: int, steps: int, repeats: int, batch: int = 64, seq_len: int = 100,
                     precision: str = "float32", fused: bool = True) -> list[float]:
    """Characters per second of `generate train`'s step."""
    return timed_rates(train_step(cell, units, batch, seq_len, precision, fused), steps, repeats, chars_per_step=batch * seq_len)


def timed_rates(step, steps: int, repeats: int, chars_per_step: int, warmup: int = 3) -> list[float]:
    """Characters per second of `steps` calls to `step`, once per repeat, after `warmup` untimed calls."""
    return interleaved_rates([step], steps, repeats, chars_per_step, warmup)[0]


def interleaved_rates(step_fns: list, steps: int, repeats: int, chars_per_step: int, warmup: int = 3) -> list[list[float]]:
    """Like `timed_rates` for several steps at once, taking turns within each repeat.

    The machine's speed drifts over minutes; taking turns exposes every
    contender to the same drift, so their ratio is fairer than back to back.
    """
    for step in step_fns:
        for _ in range(warmup):  # trace and warm up
            step()
    rates: list[list[float]] = [[] for _ in step_fns]
    for _ in range(repeats):
        for step, out in zip(step_fns, rates):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            out.append(chars_per_step * steps / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import_keras()
    print(f"{'case':30} {'median chars/s':>15} {'min-max':>20}")
    for cell in ("lstm", "gru"):
        rates = steps_per_second(cell, 256, args.steps, args.repeats)
        print(f"{'train ' + cell + ' 2x256 B64 T100':30} {statistics.median(rates):15.0f} {min(rates):9.0f}-{max(rates):<10.0f}")


if __name__ == "__main__":
    main()
