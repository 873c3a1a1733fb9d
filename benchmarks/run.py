"""The benchmark suite: ours and the baselines side by side, in one process, a few repetitions each.

    python benchmarks/run.py [--quick] [--only sampling,training,scale,latency,quality]

Baselines live here, never in the package:
- sampling: a `model.predict`-per-character loop; the keras-io char-RNN
  example's way (`model.predict` on a one-hot sliding window of 40
  characters); PyTorch `nn.LSTM` stepping one character at a time, when
  torch is installed;
- training: the keras-io example's non-stateful sliding-window model
  (one-hot windows of 40, step 3, LSTM 128, batch 128); PyTorch
  `nn.LSTM`/`nn.GRU` with Adam at our shape, when torch is installed;
- scale: a generated 1 GiB corpus ingested, trained on and validated, each
  in a fresh process (see scale.py);
- latency: `generate --help` and the first sampled character (see latency.py);
- quality, on request: validation loss against the keras-io example after
  equal training time on ../shared/data/tinyshakespeare.txt (see equal_time.py).

Training contenders take turns within each repetition, so drift in the
machine's speed reaches all of them. Prints a table (median and min-max of
each measure, and ours/baseline), then issue #4's goals against what this run
measured. The machine is noisy, so only ratios measured in the same run are
quoted in RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from ceiling import flops_per_char, product_peak, products_alone, training_flops_per_char  # noqa: E402
from equal_time import SHAKESPEARE, WINDOW, keras_io_model  # noqa: E402
from equal_time import keras_io as equal_time_keras_io  # noqa: E402
from equal_time import ours as equal_time_ours  # noqa: E402
from latency import first_char_seconds, help_seconds  # noqa: E402
from sample_speed import ours as ours_sampling  # noqa: E402
from sample_speed import predict_per_char  # noqa: E402
from train_speed import interleaved_rates, steps_per_second, timed_rates, train_step  # noqa: E402

from generate.errors import UsageError  # noqa: E402
from generate.model.backend import has_gpu, import_keras  # noqa: E402
from generate.model.config import PRECISIONS, ModelConfig  # noqa: E402

VOCAB = 65


def keras_io_sampling(length: int, repeats: int) -> list[float]:
    """One `model.predict` per character on a one-hot window, as the keras-io example samples."""
    model = keras_io_model(VOCAB)
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
    model = keras_io_model(VOCAB)
    rng = np.random.default_rng(0)
    x = np.eye(VOCAB, dtype="float32")[rng.integers(0, VOCAB, (128, WINDOW))]
    y = np.eye(VOCAB, dtype="float32")[rng.integers(0, VOCAB, 128)]
    # With step 3, each window covers 3 new characters of the corpus.
    return timed_rates(lambda: model.train_on_batch(x, y), steps, repeats, chars_per_step=128 * 3, warmup=1)


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_train_step(cell: str, units: int, batch: int = 64, seq_len: int = 100, precision: str = "float32"):
    """A PyTorch training step at our shape, as a callable; a mixed precision runs under
    `torch.autocast` (with a grad scaler for float16)."""
    import torch

    device = torch_device()
    autocast_dtype = {"mixed-float16": torch.float16, "mixed-bfloat16": torch.bfloat16,
                      "mixed": torch.float16 if device == "cuda" else torch.bfloat16}.get(precision)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, 64)
            self.rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(64, units, num_layers=2, batch_first=True)
            self.out = torch.nn.Linear(units, VOCAB)

        def forward(self, x, state):
            h, state = self.rnn(self.embed(x), state)
            return self.out(h), state

    net = Net().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=4e-3)
    scaler = torch.amp.GradScaler(device, enabled=autocast_dtype == torch.float16)
    x = torch.randint(0, VOCAB, (batch, seq_len), device=device)
    y = torch.randint(0, VOCAB, (batch, seq_len), device=device)
    state = None

    def step():
        nonlocal state
        with torch.autocast(device, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits, state = net(x, state)
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB), y.reshape(-1))
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        scaler.step(optimizer)
        scaler.update()
        if device == "cuda":
            loss.item()  # wait for the step, as Keras's train_on_batch does when it returns the loss

    return step


def torch_sampling(length: int, repeats: int, units: int = 256) -> list[float]:
    import torch

    device = torch_device()
    embed = torch.nn.Embedding(VOCAB, 64).to(device)
    rnn = torch.nn.LSTM(64, units, num_layers=2).to(device)
    out = torch.nn.Linear(units, VOCAB).to(device)
    generator = torch.Generator(device).manual_seed(0)
    rates = []
    with torch.no_grad():
        for _ in range(repeats):
            token, state = torch.zeros(1, 1, dtype=torch.long, device=device), None
            start = time.perf_counter()
            for _ in range(length):
                h, state = rnn(embed(token), state)
                probs = torch.softmax(out(h[-1]) / 0.8, -1)
                token = torch.multinomial(probs, 1, generator=generator).view(1, 1)
            token.cpu()  # the last character has been drawn
            rates.append(length / (time.perf_counter() - start))
    return rates


def row(name: str, values: list[float], unit: str, ours: list[float] | None = None) -> float:
    """One line of the table; a baseline row also gets ours/baseline (of the medians)."""
    ratio = f"{statistics.median(ours) / statistics.median(values):8.2f}x" if ours else ""
    print(f"{name:48} {statistics.median(values):12.2f} {min(values):10.2f}-{max(values):<10.2f} {unit:8} {ratio}")
    return statistics.median(ours) / statistics.median(values) if ours else statistics.median(values)


# Issue #4's goals: (key, what, target, True if higher is better).
GOALS = [
    ("sample256x1", "sampling 2x256 LSTM, 1 stream (chars/s)", 20_000, True),
    ("sample256x64", "sampling 2x256 LSTM, 64 streams (chars/s)", 150_000, True),
    ("sample512x1", "sampling 2x512 LSTM, 1 stream (chars/s)", 5_000, True),
    ("train_lstm_256", "LSTM 2x256 training, ours/PyTorch", 1.0, True),
    ("train_lstm_512", "LSTM 2x512 training, ours/PyTorch", 1.0, True),
    ("train_gru_256", "GRU 2x256 training, ours/PyTorch", 1.0, True),
    ("train_gru_512", "GRU 2x512 training, ours/PyTorch", 1.0, True),
    ("ingest", "1 GB corpus ingestion (MB/s)", 50, True),
    ("peak_rss", "1 GB corpus, largest peak RSS (MB)", 2048, False),
    ("help", "generate --help (s)", 0.3, False),
    ("first_char", "first sampled character (s)", 4.0, False),
]


def print_goals(results: dict, notes: dict) -> None:
    print("\ngoal                                             target      measured   met   bound on this machine (same run)")
    for key, what, target, higher in GOALS:
        if key in results:
            value = results[key]
            met = value >= target if higher else value < target
            print(f"{what:48} {('>= ' if higher else '< ') + format(target, 'g'):>9} {value:12.2f}   {'yes' if met else 'NO ':5} {notes.get(key, '')}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and shorter runs")
    parser.add_argument("--only", default="sampling,training,scale,latency",
                        help="comma-separated sections: sampling, training, scale, latency, and quality (not run by default: "
                             "validation loss against keras-io after --minutes of training each)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time per model in the quality section")
    parser.add_argument("--scale-dir", type=Path, default=Path("/tmp/generate-scale"), help="where the 1 GB corpus is made")
    parser.add_argument("--run", default="shakespeare", help="the run whose first character is timed")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS, help="training arithmetic, ours and PyTorch's alike")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size B")
    parser.add_argument("--keras-loop", action="store_true", help="also time training with Keras's own recurrent loop")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    sections = set(args.only.split(","))
    have_torch = importlib.util.find_spec("torch") is not None
    keras = import_keras()
    results: dict[str, float] = {}
    notes: dict[str, str] = {}  # a goal's context from the same run: what bounds it on this machine
    print(f"# Keras {keras.__version__} on {keras.backend.backend()}, {'GPU' if has_gpu() else 'CPU'};"
          f" PyTorch {'on ' + torch_device() if have_torch else 'not installed'}; training precision {args.precision}")
    print(f"{'measure':48} {'median':>12} {'min-max':>21} {'unit':8} {'ours/baseline'}")
    if {"sampling", "training"} & sections:
        # The machine's bounds first: what any implementation doing our work in float32 could reach.
        peak32 = [product_peak("float32") for _ in range(repeats)]
        row("float32 matrix-product peak (2048^3)", peak32, "GFLOP/s")
        row("bfloat16 matrix-product peak (2048^3)", [product_peak("bfloat16") for _ in range(repeats)], "GFLOP/s")
    if "sampling" in sections:
        cfg = ModelConfig(cell="lstm", layers=2, units=256, embedding_dim=64, vocab_size=VOCAB)
        wide = ModelConfig(cell="lstm", layers=2, units=512, embedding_dim=64, vocab_size=VOCAB)
        for model_cfg, streams, key in ((cfg, 1, "sample256x1"), (cfg, 64, "sample256x64"), (wide, 1, "sample512x1")):
            # Long enough (a quarter of a second or more) for the machine's jitter to average out, even in --quick.
            length = {"sample256x1": 6000, "sample256x64": 500, "sample512x1": 2000}[key]
            shape = f"2x{model_cfg.units} LSTM, {streams} stream(s)"
            # Heavy two-core work just before (the previous shape's baselines) left the next
            # measure 10-20% slower for about a second here; a pause gives each shape a fresh start.
            time.sleep(2)
            ours = ours_sampling(model_cfg, streams, length, repeats)
            results[key] = row(f"sample {shape}: ours", ours, "chars/s")
            alone = products_alone(model_cfg, streams, length, repeats)
            row("  its matrix products alone (compiled loop)", alone, "chars/s", ours)
            if streams > 1:
                per_char = flops_per_char(model_cfg)
                peak_bound = [gflops * 1e9 / per_char for gflops in peak32]
                row(f"  float32 peak / {per_char / 1e6:.2f} MFLOP per char", peak_bound, "chars/s", ours)
            notes[key] = "; ".join([f"{statistics.median(alone):,.0f} with the products alone"]
                                   + ([f"{statistics.median(peak_bound):,.0f} at the float32 peak"] if streams > 1 else []))
            if model_cfg is cfg:
                row(f"  predict per char, {streams} stream(s)", predict_per_char(cfg, streams, 40, repeats), "chars/s", ours)
            if streams == 1 and have_torch:
                row("  PyTorch nn.LSTM step loop, 1 stream", torch_sampling(1000 if model_cfg is cfg else 500, repeats,
                                                                         units=model_cfg.units), "chars/s", ours)
            if model_cfg is cfg and streams == 1:
                row("  keras-io sliding window (LSTM 128), 1 stream", keras_io_sampling(40, repeats), "chars/s", ours)
    if "training" in sections:
        steps = 6 if args.quick else 12
        batch = args.batch_size
        for cell in ("lstm", "gru"):
            for units in (256, 512):
                try:
                    contenders = {"ours": train_step(cell, units, batch, precision=args.precision)}
                except UsageError as exc:
                    print(f"train 2x{units} {cell.upper()}: skipped, {exc}")
                    continue
                if args.keras_loop:
                    contenders["keras"] = train_step(cell, units, batch, precision=args.precision, fused=False)
                if have_torch:
                    contenders["torch"] = torch_train_step(cell, units, batch, precision=args.precision)
                rates = dict(zip(contenders, interleaved_rates(list(contenders.values()), steps, repeats, batch * 100)))
                ours = rates["ours"]
                row(f"train 2x{units} {cell.upper()} B{batch} T100: ours", ours, "chars/s")
                if "keras" in rates:
                    row("  ours with Keras's own recurrent loop", rates["keras"], "chars/s", ours)
                if "torch" in rates:
                    key = f"train_{cell}_{units}"
                    results[key] = row(f"  PyTorch nn.{cell.upper()} at the same shape", rates["torch"], "chars/s", ours)
                    per_char = training_flops_per_char(ModelConfig(cell=cell, layers=2, units=units, embedding_dim=64, vocab_size=VOCAB))
                    bound = statistics.median(peak32) * 1e9 / per_char
                    row(f"  float32 peak / {per_char / 1e6:.2f} MFLOP per char", [g * 1e9 / per_char for g in peak32], "chars/s", ours)
                    notes[key] = (f"ours {statistics.median(ours) / bound:.0%} and PyTorch {statistics.median(rates['torch']) / bound:.0%}"
                                  f" of the float32 peak ({bound:,.0f} chars/s)")
        # Against our 2x256 LSTM at B=64; the keras-io model itself always runs in float32.
        try:
            reference = steps_per_second("lstm", 256, steps, repeats, precision=args.precision)
        except UsageError:
            reference = None
        row("  keras-io sliding window (LSTM 128, one-hot)", keras_io_training(steps, repeats), "chars/s", reference)
    if "scale" in sections:
        # A fresh interpreter forks the measured processes: a child's maxrss starts at its parent's size.
        scale = subprocess.run([sys.executable, str(REPO / "benchmarks" / "scale.py"), "--json", "--dir", str(args.scale_dir)],
                               capture_output=True, text=True, check=True)
        measured = json.loads(scale.stdout)
        rows, results["ingest"] = measured["rows"], measured["mb_s"]
        for name, wall, rss, detail in rows:
            print(f"scale, 1 GiB: {name:35} {wall:7.1f} s {rss:8.0f} MB peak RSS   {detail}")
        results["peak_rss"] = max(rss for _, _, rss, _ in rows)
    if "latency" in sections:
        helps = [help_seconds() for _ in range(repeats + 1)]
        firsts = [first_char_seconds(args.run) for _ in range(repeats)]
        results["help"] = row("generate --help", helps, "s")
        results["first_char"] = row(f"first sampled character ({args.run})", firsts, "s")
    if "quality" in sections:
        corpus = SHAKESPEARE
        print(f"validation loss after {args.minutes:g} minutes of training each on {corpus.name} (nats/char, lower is better):")
        ours_loss, _ = equal_time_ours(corpus, args.minutes, [])
        theirs_loss, setup = equal_time_keras_io(corpus, args.minutes)
        print(f"{'  ours, 2x256 stateful LSTM':48} {ours_loss:12.4f}")
        print(f"{'  keras-io example (LSTM 128, windows of 40)':48} {theirs_loss:12.4f}   ours lower by {theirs_loss - ours_loss:.4f}; {setup}")
    if not have_torch:
        print("(PyTorch baselines skipped: pip install torch==2.13.0 for them)")
    print_goals(results, notes)


if __name__ == "__main__":
    main()
