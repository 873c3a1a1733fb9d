"""The benchmark suite: ours and the baselines side by side, in one process, a few repetitions each.

    python benchmarks/run.py [--quick] [--only sampling,training,latency]

Baselines live here, never in the package:
- sampling: a `model.predict`-per-character loop; the keras-io char-RNN
  example's way (`model.predict` on a one-hot sliding window of 40
  characters); PyTorch `nn.LSTM` stepping one character at a time, when
  torch is installed;
- training: the keras-io example's non-stateful sliding-window model
  (one-hot windows of 40, step 3, LSTM 128, batch 128); PyTorch
  `nn.LSTM`/`nn.GRU` with Adam at our shape, when torch is installed;
- latency: `generate --help` and the first sampled character (see latency.py).

Prints a table: median and min-max of each measure, and ours/baseline. The
machine is noisy, so only ratios measured in the same run are quoted in
RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import first_char_seconds, help_seconds  # noqa: E402
from sample_speed import ours as ours_sampling  # noqa: E402
from sample_speed import predict_per_char  # noqa: E402
from train_speed import steps_per_second, timed_rates  # noqa: E402

from generate.config import ModelConfig  # noqa: E402
from generate.model import import_keras  # noqa: E402

VOCAB = 65
WINDOW = 40  # the keras-io example's maxlen


def keras_io_sampling(length: int, repeats: int) -> list[float]:
    """One `model.predict` per character on a one-hot window, as the keras-io example samples."""
    keras = import_keras()
    model = keras.Sequential([keras.Input((WINDOW, VOCAB)), keras.layers.LSTM(128), keras.layers.Dense(VOCAB, activation="softmax")])
    rng = np.random.default_rng(0)
    window = list(rng.integers(0, VOCAB, WINDOW))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(length):
            x = np.zeros((1, WINDOW, VOCAB), "float32")
            x[0, np.arange(WINDOW), window[-WINDOW:]] = 1.0
            probs = model.predict(x, verbose=0)[0].astype("float64")
            window.append(int(rng.choice(VOCAB, p=probs / probs.sum())))
        rates.append(length / (time.perf_counter() - start))
    return rates


def keras_io_training(steps: int, repeats: int) -> list[float]:
    """Characters per second of the keras-io model: each one-hot window of 40 predicts one character."""
    keras = import_keras()
    model = keras.Sequential([keras.Input((WINDOW, VOCAB)), keras.layers.LSTM(128), keras.layers.Dense(VOCAB, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(0.01))
    rng = np.random.default_rng(0)
    x = np.eye(VOCAB, dtype="float32")[rng.integers(0, VOCAB, (128, WINDOW))]
    y = np.eye(VOCAB, dtype="float32")[rng.integers(0, VOCAB, 128)]
    # With step 3, each window covers 3 new characters of the corpus.
    return timed_rates(lambda: model.train_on_batch(x, y), steps, repeats, chars_per_step=128 * 3, warmup=1)


def torch_training(cell: str, units: int, steps: int, repeats: int, batch: int = 64, seq_len: int = 100) -> list[float]:
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, 64)
            self.rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(64, units, num_layers=2, batch_first=True)
            self.out = torch.nn.Linear(units, VOCAB)

        def forward(self, x, state):
            h, state = self.rnn(self.embed(x), state)
            return self.out(h), state

    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=4e-3)
    x = torch.randint(0, VOCAB, (batch, seq_len))
    y = torch.randint(0, VOCAB, (batch, seq_len))
    state = None

    def step():
        nonlocal state
        logits, state = net(x, state)
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()

    return timed_rates(step, steps, repeats, chars_per_step=batch * seq_len)


def torch_sampling(length: int, repeats: int) -> list[float]:
    import torch

    embed, rnn, out = torch.nn.Embedding(VOCAB, 64), torch.nn.LSTM(64, 256, num_layers=2), torch.nn.Linear(256, VOCAB)
    generator = torch.Generator().manual_seed(0)
    rates = []
    with torch.no_grad():
        for _ in range(repeats):
            token, state = torch.zeros(1, 1, dtype=torch.long), None
            start = time.perf_counter()
            for _ in range(length):
                h, state = rnn(embed(token), state)
                probs = torch.softmax(out(h[-1]) / 0.8, -1)
                token = torch.multinomial(probs, 1, generator=generator).view(1, 1)
            rates.append(length / (time.perf_counter() - start))
    return rates


def row(name: str, values: list[float], unit: str, ours: list[float] | None = None) -> None:
    """One line of the table; a baseline row also gets ours/baseline (of the medians)."""
    ratio = f"{statistics.median(ours) / statistics.median(values):8.2f}x" if ours else ""
    print(f"{name:48} {statistics.median(values):12.2f} {min(values):10.2f}-{max(values):<10.2f} {unit:8} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter runs")
    parser.add_argument("--only", default="sampling,training,latency")
    parser.add_argument("--run", default="shakespeare", help="the run whose first character is timed")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    sections = set(args.only.split(","))
    have_torch = importlib.util.find_spec("torch") is not None
    import_keras()
    print(f"{'measure':48} {'median':>12} {'min-max':>21} {'unit':8} {'ours/baseline'}")
    if "sampling" in sections:
        cfg = ModelConfig(cell="lstm", layers=2, units=256, embedding_dim=64, vocab_size=VOCAB)
        for streams in (1, 64):
            length = (1500 if args.quick else 4000) // (1 if streams == 1 else 8)
            ours = ours_sampling(cfg, streams, length, repeats)
            row(f"sample 2x256 LSTM, {streams} stream(s): ours", ours, "chars/s")
            row(f"  predict per char, {streams} stream(s)", predict_per_char(cfg, streams, 40, repeats), "chars/s", ours)
        ours = ours_sampling(cfg, 1, 1500 if args.quick else 4000, repeats)
        row("  keras-io sliding window (LSTM 128), 1 stream", keras_io_sampling(40, repeats), "chars/s", ours)
        if have_torch:
            row("  PyTorch nn.LSTM step loop, 1 stream", torch_sampling(1000, repeats), "chars/s", ours)
    if "training" in sections:
        steps = 6 if args.quick else 12
        for cell in ("lstm", "gru"):
            for units in (256, 512):
                ours = steps_per_second(cell, units, steps, repeats)
                row(f"train 2x{units} {cell.upper()} B64 T100: ours", ours, "chars/s")
                if have_torch:
                    row(f"  PyTorch nn.{cell.upper()} at the same shape", torch_training(cell, units, steps, repeats), "chars/s", ours)
        row("  keras-io sliding window (LSTM 128, one-hot)", keras_io_training(steps, repeats), "chars/s",
            steps_per_second("lstm", 256, steps, repeats))
    if "latency" in sections:
        helps = [help_seconds() for _ in range(repeats + 1)]
        firsts = [first_char_seconds(args.run) for _ in range(repeats)]
        row("generate --help", helps, "s")
        row(f"first sampled character ({args.run})", firsts, "s")
    if not have_torch:
        print("(PyTorch baselines skipped: pip install torch==2.13.0 for them)")


if __name__ == "__main__":
    main()
