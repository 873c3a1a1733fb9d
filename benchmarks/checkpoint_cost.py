"""What verifying and recording a checkpoint costs, against a plain save, in the same run.

    python benchmarks/checkpoint_cost.py [--repeats 10] [--units 256]

Builds the default model (2x256 LSTM, a 65-character vocabulary, Adam
state after one step), then times `save_checkpoint` as training calls it
(read-back verification of every zip member, sha256 into checksums.json,
the old file kept as previous.keras) against the save as it was before
checkpoints were verified (atomic and fsync'd, with no checks), interleaved. Prints the
median of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--units", type=int, default=256)
    args = parser.parse_args()

    from generate.fileio import atomic_path
    from generate.model.backend import train_batch
    from generate.model.builder import build_model
    from generate.model.checkpoint import save_checkpoint
    from generate.model.config import ModelConfig, TrainConfig
    from generate.training.trainer import compile_for_training

    model = build_model(ModelConfig(units=args.units, vocab_size=65), 64)
    compile_for_training(model, TrainConfig(), steps_per_epoch=100)
    x = np.random.default_rng(0).integers(0, 65, (64, 128))
    train_batch(model, x, x)  # Adam's moments exist, as in every real checkpoint
    state = {"epoch": 0, "step": 1, "global_step": 1}

    def plain(path: Path) -> None:  # the save before checkpoints were verified: atomic, fsync'd, unchecked
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr("training_state.json", json.dumps(state))

    with tempfile.TemporaryDirectory() as folder:
        plain_dir, checked_dir = Path(folder) / "plain", Path(folder) / "checked"
        plain_dir.mkdir()
        checked_dir.mkdir()
        plain_s, checked_s = [], []
        for _ in range(args.repeats):
            for timings, save in ((plain_s, lambda: plain(plain_dir / "latest.keras")),
                                  (checked_s, lambda: save_checkpoint(model, checked_dir / "latest.keras", state, keep_previous=True))):
                began = time.perf_counter()
                save()
                timings.append(time.perf_counter() - began)
        size = (checked_dir / "latest.keras").stat().st_size
        assert (checked_dir / "previous.keras").exists()
    plain_median, checked_median = statistics.median(plain_s), statistics.median(checked_s)
    print(f"checkpoint of {size / 1e6:.1f} MB, median of {args.repeats}: plain save {plain_median * 1000:.0f} ms, "
          f"verified and recorded {checked_median * 1000:.0f} ms, ratio {checked_median / plain_median:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
