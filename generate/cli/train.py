"""`generate train`, `info`, `list` and `export`: training runs and what is in them."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.core import ParameterSource

from ..data.config import ENCODING_ERRORS, KINDS, CorpusConfig
from ..model.config import CELLS, PRECISIONS, ModelConfig, TrainConfig
from ..music import ENCODINGS, TRANSPOSE_MODES
from ..units import bits
from .base import State, bits_text, log, pass_state

_DEFAULT_MODEL, _DEFAULT_TRAIN, _DEFAULT_CORPUS = ModelConfig(), TrainConfig(), CorpusConfig()


@click.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.argument("sources", nargs=-1)
@click.option("--resume", is_flag=True, help="Continue RUN from latest.keras exactly where it stopped.")
@click.option("--kind", type=click.Choice(KINDS), default=None, help="text; code: walk trees and mark file boundaries; music: parse scores [default: a built-in corpus's kind, else text].")
@click.option("--include", multiple=True, help="Glob a file name must match (repeatable), e.g. '*.py'.")
@click.option("--exclude", multiple=True, help="Glob of names to skip (repeatable), on top of VCS and vendored dirs.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default=None, help="With --kind music: monophonic melody, or four-voice chorale [default: a built-in corpus's, else melody].")
@click.option("--transpose", type=click.Choice(TRANSPOSE_MODES), default=_DEFAULT_CORPUS.transpose, show_default=True, help="With --kind music: augment by transposing to C (common) or into every key in range (all).")
@click.option("--track", default=_DEFAULT_CORPUS.track, show_default=True, help="With --kind music, MIDI melodies: auto (the track that most looks like a tune), all (the top line of every pitched track), a track index or a track name. Drums never enter a melody.")
@click.option("--skipped-report", type=click.Path(dir_okay=False, path_type=Path), default=None, help="With --kind music: write every skipped piece and its reason to FILE (tab-separated).")
@click.option("--encoding-errors", type=click.Choice(ENCODING_ERRORS), default=_DEFAULT_CORPUS.encoding_errors, show_default=True, help="Invalid UTF-8: fail, replace with U+FFFD, ignore the bytes, or skip the file.")
@click.option("--labels", default=_DEFAULT_CORPUS.labels, metavar="FROM", help="Train a labelled model, to ask for a style when sampling (--label): folder (each file's folder under a SOURCE), tsv:FILE (file<TAB>label lines), or music headers: rhythm (ABC R:, e.g. jig, reel) or mode (from K:).")
@click.option("--label-dropout", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_TRAIN.label_dropout, show_default=True, help="With --labels: the share of batch rows trained without their label, so the model also writes with none.")
@click.option("--label-dim", type=click.IntRange(min=1), default=_DEFAULT_MODEL.label_dim, show_default=True, help="With --labels: the label embedding's size.")
@click.option("--min-count", type=click.IntRange(min=1), default=_DEFAULT_CORPUS.min_count, show_default=True, help="Characters seen fewer times map to an unknown token.")
@click.option("--cell", type=click.Choice(CELLS), default=_DEFAULT_MODEL.cell, show_default=True, help="Recurrent cell.")
@click.option("--layers", type=click.IntRange(min=1), default=_DEFAULT_MODEL.layers, show_default=True, help="Stacked recurrent layers.")
@click.option("--units", type=click.IntRange(min=1), default=_DEFAULT_MODEL.units, show_default=True, help="Hidden units per layer.")
@click.option("--embedding-dim", type=click.IntRange(min=1), default=_DEFAULT_MODEL.embedding_dim, show_default=True, help="Character embedding size.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_MODEL.dropout, show_default=True, help="Dropout on layer inputs and the last output.")
@click.option("--recurrent-dropout", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_MODEL.recurrent_dropout, show_default=True, help="Dropout on the recurrent state (disables cuDNN).")
@click.option("--residual/--no-residual", default=_DEFAULT_MODEL.residual, show_default=True, help="Skip connections between stacked layers.")
@click.option("--layer-norm/--no-layer-norm", default=_DEFAULT_MODEL.layer_norm, show_default=True, help="Normalise each layer's output before the next layer and the logits.")
@click.option("--tie-embeddings/--no-tie-embeddings", default=_DEFAULT_MODEL.tie_embeddings, show_default=True, help="The output layer reuses the embedding matrix: fewer weights where the vocabulary is large.")
@click.option("--batch-size", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.batch_size, help="B: parallel streams [default: 64; fewer below about 1 MB, so an epoch takes 150 steps].")
@click.option("--seq-len", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.seq_len, show_default=True, help="T: steps of backpropagation through time.")
@click.option("--epochs", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.epochs, show_default=True, help="Maximum epochs (raise it on --resume to train further).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=_DEFAULT_TRAIN.learning_rate, show_default=True, help="Adam learning rate.")
@click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=_DEFAULT_TRAIN.lr_decay, show_default=True, help="Learning-rate multiplier per epoch.")
@click.option("--clip-norm", type=click.FloatRange(min=0), default=_DEFAULT_TRAIN.clip_norm, show_default=True, help="Global gradient-norm clip; 0 disables.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_TRAIN.val_fraction, show_default=True, help="Held-out tail for validation.")
@click.option("--patience", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.patience, show_default=True, help="Stop after this many validations without improvement; 0 never.")
@click.option("--val-every", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.val_every, show_default=True, help="Also validate every N steps, mid-epoch (saving best.keras and judging --patience); 0: at epoch ends only.")
@click.option("--seed", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.seed, show_default=True, help="Seeds initialisation and dropout.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.checkpoint_every, show_default=True, help="Steps between latest.keras saves (also every 2 minutes).")
@click.option("--preview-every", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.preview_every, show_default=True, help="Steps between sample previews on stderr; 0 disables.")
@click.option("--preview-chars", type=click.IntRange(0, 10_000), default=_DEFAULT_TRAIN.preview_chars, show_default=True,
              help="A sample of this many characters at each validation, on stderr (-q hides it) and in RUN/logs/previews.txt; 0 for none.")
@click.option("--max-minutes", type=click.FloatRange(min=0), default=_DEFAULT_TRAIN.max_minutes, show_default=True, help="Stop resumably after this much training time; 0 = no limit.")
@click.option("--init-from", metavar="MODEL", default=_DEFAULT_TRAIN.init_from, help="Start from the best weights of MODEL (a run or shipped model) instead of the seed: same characters; its architecture is taken.")
@click.option("--devices", default="", help="Train on this host's GPUs as one process: all, or the first N [default: one device].")
@click.option("--local-workers", type=click.IntRange(min=1), default=None, help="Start N worker processes on this host over loopback: one per GPU, or CPU processes for tests. Across hosts, set TF_CONFIG instead (see the README).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=_DEFAULT_TRAIN.precision, show_default=True, help="Training math: mixed is float16 on a GPU, bfloat16 on a CPU; weights stay float32.")
@pass_state
@click.pass_context
def train(ctx: click.Context, state: State, run: Path, sources: tuple[str, ...], resume: bool, skipped_report: Path | None,
          **options) -> None:
    """Train a model on SOURCES (files, directories or globs) into the directory RUN.

    With --resume, SOURCES may be left out: the recorded ones are used. A run
    killed before its first checkpoint starts again from its recorded
    configuration, and one killed before it recorded that starts from these
    options, so the same command with --resume always continues.
    """
    from ..training import launch  # NumPy, Keras and TensorFlow load here, not for --help

    if not resume and not sources:
        raise click.UsageError("missing SOURCES: expected one or more corpus files, directories or glob patterns", ctx)
    # Only options the user set count on --resume: the allowed ones apply, changes to the rest are refused.
    explicit = {name: value for name, value in options.items()
                if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    request, replicas = launch.build_request(run, sources, resume, options, explicit, skipped_report, state.show_progress)
    result = launch.train(request, replicas)
    status = "finished" if result.finished else "paused (resume with --resume)"
    click.echo(f"{result.run}\tepochs {result.epochs_done}\tsteps {result.global_step}\t"
               f"best val {bits_text(result.best_val_loss)}\t{status}")


@click.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the loss curve (training and validation bits per character by step) into a PNG file.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --plot file.")
def info(run: str, as_json: bool, plot: Path | None, overwrite: bool) -> None:
    """Describe RUN (a path, shipped model name or bundle): model, corpus, checkpoints, losses.

    Reads JSON, CSV and zip metadata only; TensorFlow is never imported. A
    bundle's every file is checked against its meta.json.
    """
    from ..model.rundir import resolve_run, run_summary  # NumPy (never TensorFlow) loads here, not for --help

    run_dir = resolve_run(run)
    summary = run_summary(run_dir)
    if plot is not None:
        from ..outputs.curves import plot_history  # matplotlib loads only for a plot

        rows = plot_history(run_dir, plot, overwrite)
        log.info("%s: the loss curve over %d validation(s)", plot, rows)
    click.echo(json.dumps(summary, indent=2, ensure_ascii=False) if as_json else "\n".join(_info_lines(summary)))


def _info_lines(summary: dict) -> list[str]:
    m, t, c = summary["model"], summary["train"], summary["corpus"]
    lines = [
        f"run:        {summary['run']}",
        f"model:      {m['cell']} {m['layers']}x{m['units']}, embedding {m['embedding_dim']}, dropout {m['dropout']}, residual {m['residual']}, layer norm {m.get('layer_norm', False)}, tied embeddings {m.get('tie_embeddings', False)}",
        f"vocab:      {summary['vocab_size']} characters",
        f"corpus:     {c['kind']} {', '.join(c['sources'])} ({c['chars']} chars: {c['train_chars']} train, {c['val_chars']} val), sha256 {c['sha256'][:16]}",
        f"training:   batch {t['batch_size']} x seq {t['seq_len']}, {t['epochs']} epochs, lr {t['learning_rate']} (decay {t['lr_decay']}), clip {t['clip_norm']}, seed {t['seed']}, precision {t.get('precision', 'float32')}",
        f"versions:   {', '.join(f'{k} {v}' for k, v in summary['versions'].items())}",
        f"sampling:   {', '.join(f'{k} {v}' for k, v in summary['sampling_defaults'].items()) or 'no defaults of its own'}"
        " (sampling.json: what sample and write use unless told otherwise)",
    ]
    labels = summary.get("labels")
    if labels:
        unit = labels.get("unit", "files")
        counts = labels.get("counts", {})
        lines.append(f"labels:     from {labels.get('from')}, label embedding {m.get('label_dim')}, dropout {t.get('label_dropout')}: "
                     + ", ".join(f"{name} ({counts.get(name, {}).get(unit, '?')} {unit}, {counts.get(name, {}).get('chars', '?')} chars)"
                                 for name in labels["names"]))
    bundle = summary.get("bundle")
    if bundle:
        source = bundle.get("source") or {}
        lines.append(f"bundle:     {bundle['model_file']}, {bundle['model_bytes']} bytes, {bundle['weights_dtype']} weights, "
                     f"{bundle['format']} version {bundle['format_version']}, from {source.get('run')}/{source.get('checkpoint')} (sha256 "
                     f"{str(source.get('sha256'))[:16]}); {len(bundle['files_verified'])} files match meta.json")
    if not summary["checkpoints"] and not bundle:
        lines.append(f"latest:     none yet (stopped before its first checkpoint); continue with: generate train {summary['run']} --resume")
    for name, ck in summary["checkpoints"].items():
        if "error" in ck:
            lines.append(f"{name + ':':11} {ck['error']}")
            continue
        val = f", val {bits_text(ck['val_loss'])}" if ck.get("val_loss") is not None else ""
        where = _position(ck["epoch"], ck["step"], t["epochs"])
        lines.append(f"{name + ':':11} {where} (global step {ck['global_step']}){val}, {ck['bytes']} bytes{', finished' if ck.get('finished') else ''}")
    for row in summary["history"]:
        lines.append(f"history:    epoch {row['epoch']}/{t['epochs']}, global step {row['global_step']}: train {row['train_bpc']} bpc, val {row['val_bpc'] or '-'} bpc, {row['chars_per_s']} chars/s")
    return lines


def _position(epochs_done: int, step: int, epochs: int) -> str:
    """Where a checkpoint stands, numbered as the progress bar numbers it (epoch 2/5 is the second, under way)."""
    return f"end of epoch {epochs_done}/{epochs}" if step == 0 else f"epoch {epochs_done + 1}/{epochs}, step {step}"


@click.command("list")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
def list_runs(directory: Path) -> None:
    """List the shipped models, then the runs under DIRECTORY (three levels deep)."""
    from ..model.rundir import list_runs as find_runs  # NumPy loads here, not for --help

    listings = find_runs(directory)
    if not any(not entry.shipped for entry in listings):
        log.warning("no runs under %s", directory)
    for entry in listings:
        best = f"{bits(entry.best_val_loss):.3f} bpc" if entry.best_val_loss is not None else "-"
        if entry.shipped:
            click.echo(f"{entry.path.name}\tshipped\t{entry.kind}\t{entry.model}\tbest val {best}")
        elif entry.error:
            click.echo(f"{entry.path}\t(unreadable: {entry.error})")
        elif entry.bundle:
            click.echo(f"{entry.path}\t{entry.model}\t{entry.bundle} bundle")
        else:
            click.echo(f"{entry.path}\t{entry.model}\t{entry.epoch}/{entry.epochs} epochs done\tbest val {best}")


@click.command()
@click.argument("run")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier export in DEST (never other files).")
@click.option("--float16", is_flag=True, help="Store the weights as float16: half the size, for shipping.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="int8: an ONNX bundle with int8 weights, about a quarter of float32's, written only if its validation "
                   "bits per character are within 1% of float32's and its samples read (under float32) within 2% as "
                   "likely as float32's own; meta.json records both. Needs the run's corpus.")
@click.option("--format", "kind", type=click.Choice(["onnx", "savedmodel", "litert", "keras"]), default="onnx",
              show_default=True,
              help="onnx: a bundle (a one-step ONNX graph with the states in and out, meta.json with a sha256 per "
                   "file, the config and vocabulary), checked against Keras before it is written; it samples "
                   "anywhere onnxruntime runs, without TensorFlow. savedmodel, litert: the same step for TF Serving "
                   "or LiteRT (built-in operators only). keras: a sampling-only run.")
def export(run: str, dest: Path, checkpoint: str, overwrite: bool, float16: bool, quantize: str | None, kind: str) -> None:
    """Export RUN (a run directory or a shipped model's name) to DEST for sampling only: an ONNX bundle, or
    weights without optimizer state.

    A bundle is a model wherever a run is: `generate sample DEST`, `score`,
    `write`, job files and `info` take it, on onnxruntime.
    """
    from ..model.export import export_bundle, export_run  # NumPy loads here, not for --help
    from ..model.rundir import resolve_run  # NumPy loads here, not for --help

    source = resolve_run(run)
    if quantize:
        from ..training.quantize import export_quantized  # onnxruntime's quantization tools load here

        click.echo(str(export_quantized(source, dest, checkpoint, quantize, overwrite, kind=kind, float16=float16)))
        return
    if kind != "keras":
        click.echo(str(export_bundle(source, dest, checkpoint, kind, float16=float16, overwrite=overwrite)))
        return
    click.echo(str(export_run(source, dest, checkpoint, float16=float16, overwrite=overwrite)))
