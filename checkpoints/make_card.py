"""Writes README.md (a model card) for a shipped checkpoint directory.

    python checkpoints/make_card.py checkpoints/shakespeare --command "generate train ..." \
        --corpus ../shared/data/tinyshakespeare.txt --prime "ROMEO:" --samples 3

The card records the corpus and its sha256, the configuration, the exact
training command, training time, losses in nats and bits per character, and
a few unedited samples drawn with recorded seeds.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from generate.checkpoint import RunDir, read_training_state
from generate.fileio import sha256_file
from generate.generation import generate_samples, load_generator
from generate.sampling import SamplingConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--command", required=True, help="the exact command that trained it")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--prime", default="")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--length", type=int, default=400)
    args = parser.parse_args()

    run = RunDir(args.run)
    cfg = run.load_config()
    state = read_training_state(run.best)
    history = run.read_history()
    best = min(history, key=lambda r: float(r["val_loss"]))
    gen = load_generator(run.path, num_samples=args.samples)
    settings = SamplingConfig(length=args.length, temperature=args.temperature, num_samples=args.samples, seed=1)
    samples = generate_samples(gen, settings, args.prime or None)
    m, t = cfg.model, cfg.train
    lines = [
        f"# `{run.path.name}`: a character-level {m.cell.upper()} model",
        "",
        f"- **Corpus:** `{args.corpus.name}`, {cfg.corpus_chars:,} characters ({cfg.train_chars:,} train, "
        f"{cfg.val_chars:,} validation: the last {t.val_fraction:.0%}), sha256 `{sha256_file(args.corpus)}`",
        f"- **Model:** {m.layers} x {m.units} {m.cell.upper()}, embedding {m.embedding_dim}, dropout {m.dropout}, "
        f"vocabulary {m.vocab_size}",
        f"- **Training:** batch {t.batch_size} x {t.seq_len} steps, Adam lr {t.learning_rate} (x{t.lr_decay} per epoch), "
        f"clip {t.clip_norm}, seed {t.seed}, on a 2-core CPU",
        f"- **Command:** `{args.command}`",
        f"- **Best checkpoint:** epoch {best['epoch']}, after {float(best['elapsed_s']) / 60:.1f} minutes of training "
        f"({state['global_step']} steps)",
        f"- **Loss at the best checkpoint:** train {float(best['train_loss']):.4f} nats ({float(best['train_bpc']):.4f} bpc), "
        f"validation {float(best['val_loss']):.4f} nats ({float(best['val_loss']) / math.log(2):.4f} bpc)",
        f"- **Versions:** {', '.join(f'{k} {v}' for k, v in cfg.versions.items())}",
        "",
        "## History",
        "",
        "| epoch | minutes | train nats | train bpc | val nats | val bpc |",
        "|---|---|---|---|---|---|",
    ]
    for row in history:
        lines.append(f"| {row['epoch']} | {float(row['elapsed_s']) / 60:.1f} | {row['train_loss']} | {row['train_bpc']} | {row['val_loss']} | {row['val_bpc']} |")
    lines += ["", f"## Unedited samples (`--prime {args.prime!r} --temperature {args.temperature} --seed 1 -N {args.samples}`)", ""]
    for i, s in enumerate(samples):
        lines += [f"### Sample {i + 1}", "", "```", args.prime + s.text, "```", ""]
    (run.path / "README.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
