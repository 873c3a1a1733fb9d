"""How fast sampling could be on this machine: the bounds beside our sampler.

Two references, measured in the same process as the sampler they bound:

- the matrix-product peak: one large product (2048 x 2048 x 2048) in float32
  and in bfloat16, in GFLOP/s. Divided by the floating-point work of one
  sampled character, it bounds chars/s for any implementation that does
  that work at that precision;
- the products alone: a compiled loop doing only the sampler's per-step
  matrix products (same matrices, same column blocks, same stream count),
  with no gates, sampling or bookkeeping. Ours against it is the share of a
  step spent on everything but the unavoidable products.

    python benchmarks/ceiling.py [--repeats 3]

Issue #4 set 150k chars/s for 64 streams of a 2x256 LSTM, reasoning from
"TF's own fp32 matmul reaches about 400 GFLOP/s". On this 2-core CPU that
figure is the bfloat16 peak; float32 peaks near half of it (RESULTS.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from generate.model.backend import compile_loop, import_keras
from generate.model.builder import build_model
from generate.model.config import ModelConfig
from generate.model.network import StepNetwork

PEAK_SIZE = 2048
GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # gate blocks per recurrent cell: a layer's matrices are units x GATES * units


def flops_per_char(cfg: ModelConfig) -> int:
    """Floating-point work of one sampled character of a stacked LSTM or RNN, as our sampler does it.

    Layer 0's input product is a table lookup (embedding x kernel, made once);
    every later layer multiplies [input, state] by one stacked matrix.
    """
    gates = GATES[cfg.cell] * cfg.units
    work = cfg.units * gates  # layer 0: state x recurrent kernel
    work += (cfg.layers - 1) * 2 * cfg.units * gates  # deeper layers: [input, state] x stacked kernel
    work += cfg.units * cfg.vocab_size  # logits
    return 2 * work  # a multiply and an add per term


def training_flops_per_char(cfg: ModelConfig) -> int:
    """Floating-point work of one training character: forward, then the input and weight gradients.

    Each matrix product of the forward pass (inputs and states x kernels,
    outputs x logits kernel) has two of the same size in the backward pass,
    so a character costs three times its forward products.
    """
    gates = GATES[cfg.cell] * cfg.units
    forward = cfg.embedding_dim * gates + cfg.units * gates  # layer 0
    forward += (cfg.layers - 1) * 2 * cfg.units * gates  # deeper layers
    forward += cfg.units * cfg.vocab_size  # logits
    return 3 * 2 * forward


def product_peak(dtype: str, repeats: int = 5) -> float:
    """GFLOP/s of the best of `repeats` square products of PEAK_SIZE in `dtype`."""
    ops = import_keras().ops
    rng = np.random.default_rng(0)
    a, b = (ops.cast(ops.convert_to_tensor(rng.random((PEAK_SIZE, PEAK_SIZE), np.float32)), dtype) for _ in range(2))
    ops.convert_to_numpy(ops.matmul(a, b))  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        ops.convert_to_numpy(ops.matmul(a, b)[:1, :1])
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIZE**3 / best / 1e9


def products_alone(cfg: ModelConfig, streams: int, steps: int, repeats: int) -> list[float]:
    """Chars/s of a compiled loop doing only the sampler's matrix products for `cfg`."""
    keras = import_keras()
    ops = keras.ops
    net = StepNetwork.from_model(build_model(cfg, streams, seq_len=1), cfg).prepare()
    units = cfg.units

    def fold(z):
        # Every column feeds the next step, so the compiler cannot drop any of a product.
        return ops.tanh(sum(z[:, k * units : (k + 1) * units] for k in range(4)))

    def run(states, count):
        def body(t, carry):
            new = [fold(net._product(carry[0], "rec0"))]
            for i in range(1, cfg.layers):
                new.append(fold(net._product(ops.concatenate([new[-1], carry[i]], axis=-1), f"in{i}", affine=True)))
            logits = net._product(new[-1], "out", affine=True)
            return [h + 1e-3 * ops.mean(logits, axis=-1, keepdims=True) for h in new]

        return ops.fori_loop(0, count, body, states)

    compiled = compile_loop(run)
    states = [ops.convert_to_tensor(np.full((streams, units), 0.01, np.float32)) for _ in range(cfg.layers)]
    ops.convert_to_numpy(compiled(states, np.int32(steps))[0])  # compile
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        ops.convert_to_numpy(compiled(states, np.int32(steps))[0])
        rates.append(steps * streams / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import_keras()
    for dtype in ("float32", "bfloat16"):
        print(f"{dtype} product peak: {product_peak(dtype):.0f} GFLOP/s")
    for units, streams in ((256, 1), (256, 64), (512, 1)):
        cfg = ModelConfig(cell="lstm", layers=2, units=units, embedding_dim=64, vocab_size=65)
        rates = products_alone(cfg, streams, 4000 if streams == 1 else 500, args.repeats)
        print(f"2x{units} LSTM, {streams} stream(s): products alone {statistics.median(rates):.0f} chars/s,"
              f" {flops_per_char(cfg) / 1e6:.2f} MFLOP per char")


if __name__ == "__main__":
    main()
