"""Writes README.md (a model card) for a shipped checkpoint directory.

    python checkpoints/make_card.py checkpoints/tang --command "generate train tang corpus:wujue ..." \
        --sampling '{"form": "5x4", "temperature": 0.8}' --samples 4

The card records the corpus and its sha256, the configuration, the exact
training command, training time, losses in nats and bits per character
(as training measured them, and as `generate score NAME --split val`
measures the shipped weights), and a few unedited samples drawn with
recorded seeds. Music models also get one sample as MIDI and a piano roll.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from generate.data.registry import get_entry
from generate.model.checkpoint import read_training_state
from generate.model.rundir import RunDir
from generate.sampling.generator import load_generator
from generate.sampling.options import SampleOptions
from generate.training.scoring import score_validation


def corpus_line(cfg) -> str:
    sources = cfg.corpus.sources
    if len(sources) == 1 and sources[0].startswith("corpus:"):
        entry = get_entry(sources[0])
        info = entry.build_info() or {}
        origin = entry.url or entry.path or entry.source
        if entry.kind == "music":
            return f"`{sources[0]}` ({entry.description}; music21's corpus, encoded as `{cfg.corpus.encoding}` text)"
        hashes = f"source sha256 `{entry.sha256}`, " if entry.sha256 else ""
        built = f"built text sha256 `{info['sha256']}`" if info else ""
        return f"`{sources[0]}` ({entry.description}; from {origin}), {hashes}{built}".rstrip(", ")
    return f"{', '.join(f'`{s}`' for s in sources)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--command", action="append", required=True, help="the exact command(s) that trained it")
    parser.add_argument("--note", default="", help="a paragraph about how it was trained")
    parser.add_argument("--prime", default="")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--sampling", default="{}", help="JSON of SampleOptions fields for the samples")
    parser.add_argument("--cli", default="", help="the sample command the samples correspond to")
    args = parser.parse_args()

    run = RunDir(args.run)
    cfg = run.load_config()
    state = read_training_state(run.best)
    history = run.read_history()
    best = min(history, key=lambda r: float(r["val_loss"]))
    scored = score_validation(run)
    extra = {"temperature": 0.8, **json.loads(args.sampling)}
    gen = load_generator(run.path, num_samples=args.samples)
    poem = any(extra.get(name) for name in ("form", "lines", "acrostic", "rhyme"))  # a poem's lines set its length
    options = SampleOptions(length=extra.pop("length", None if poem else 8000 if cfg.corpus.kind == "music" else 400),
                            num_samples=args.samples, seed=1, prime=args.prime or None, **extra)
    samples = gen.sample(options)
    m, t = cfg.model, cfg.train
    size_mb = run.best.stat().st_size / 1e6
    lines = [
        f"# `{run.path.name}`: a character-level {m.cell.upper()} model ({cfg.corpus.kind})",
        "",
        f"- **Corpus:** {corpus_line(cfg)}; {cfg.corpus_chars:,} characters ({cfg.train_chars:,} train, "
        f"{cfg.val_chars:,} validation: the last {t.val_fraction:.0%}); training-cache key `{cfg.corpus_sha256[:16]}…`",
        f"- **Model:** {m.layers} x {m.units} {m.cell.upper()}, embedding {m.embedding_dim}"
        f"{' (tied to the output layer)' if m.tie_embeddings else ''}, dropout {m.dropout}, "
        f"vocabulary {m.vocab_size}; `best.keras` is {size_mb:.1f} MB "
        f"({state.get('weights_dtype', 'float32')} weights)",
        f"- **Training:** batch {t.batch_size} x {t.seq_len} steps, Adam lr {t.learning_rate} (x{t.lr_decay} per epoch), "
        f"clip {t.clip_norm}, seed {t.seed}, on a 2-core CPU",
        *[f"- **Command:** `{command}`" for command in args.command],
        f"- **Best checkpoint:** epoch {best['epoch']}, after {float(best['elapsed_s']) / 60:.1f} minutes of training "
        f"({state['global_step']} steps)",
        f"- **Loss at the best checkpoint, as training measured it:** train {float(best['train_loss']):.4f} nats "
        f"({float(best['train_bpc']):.4f} bpc), validation {float(best['val_loss']):.4f} nats "
        f"({float(best['val_loss']) / math.log(2):.4f} bpc)",
        f"- **Validation loss of the shipped weights** (`generate score {run.path.name} --split val`): "
        f"{scored.nats:.4f} nats ({scored.bpc:.4f} bpc) over {scored.chars:,} characters",
        f"- **Versions:** {', '.join(f'{k} {v}' for k, v in cfg.versions.items())}",
        f"- **Sampling defaults** (`sampling.json`: what `sample`, `write`, job files and the API use unless told "
        f"otherwise): {json.dumps(run.sampling_defaults()) if run.sampling_defaults() else 'none recorded'}",
        "",
    ]
    record = run.label_record()
    if record:
        from generate.training.scoring import score_validation_by_label

        unit = record["unit"]
        lines.insert(-1, f"- **Labels** (`--labels {record['from']}`, `labels.json`): "
                         + ", ".join(f"{name} ({record['counts'][name][unit]:,} {unit})" for name in record["names"])
                         + f"; label embedding {m.label_dim}, label dropout {t.label_dropout}")
        by_label = score_validation_by_label(run)
        lines.insert(-1, "- **Validation loss per label** (`generate score " + run.path.name + " --split val`): "
                         + "; ".join(f"{s.name.removeprefix('validation ') if s.name != 'validation' else 'every character with its own label'}"
                                     f" {s.bpc:.4f} bpc ({s.chars:,} characters)" for s in by_label))
    if args.note:
        lines += [args.note, ""]
    lines += ["## History", "", "| epoch | minutes | train nats | train bpc | val nats | val bpc |", "|---|---|---|---|---|---|"]
    for row in history:
        lines.append(f"| {row['epoch']} | {float(row['elapsed_s']) / 60:.1f} | {row['train_loss']} | {row['train_bpc']} | "
                     f"{row['val_loss']} | {row['val_bpc']} |")
    command = args.cli or f"generate sample {run.path.name} --seed 1 -N {args.samples}"
    lines += ["", f"## Unedited samples (`{command}`)", ""]
    for i, s in enumerate(samples):
        lines += [f"### Sample {i + 1}", "", "```", args.prime + s.text, "```", ""]
    if record:
        one = " ".join(word for i, word in enumerate(command.split()) if word != "-N" and command.split()[i - 1] != "-N")
        lines += [f"## One sample per label (`{one} --label LABEL`)", ""]
        for name in record["names"][1:]:
            labelled = gen.sample(SampleOptions(**{**options.__dict__, "num_samples": 1, "label": name}))[0]
            lines += [f"### {name}", "", "```", args.prime + labelled.text, "```", ""]
    if cfg.corpus.kind == "music":
        from generate.music.render import render_music

        folder = run.path / "samples"
        folder.mkdir(exist_ok=True)
        facts = render_music(samples[0].text, folder / "sample-1.mid", encoding=cfg.corpus.encoding, renders=("png",))
        lines += ["Sample 1 as MIDI and as a piano roll:", "", f"- [samples/sample-1.mid](samples/sample-1.mid) "
                  f"({facts['notes']} notes)", "", "![Sample 1, piano roll](samples/sample-1.png)", ""]
    (run.path / "README.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
