"""The `generate` command: a thin click layer over the library.

Results go to stdout; logs, progress and the drawn seed go to stderr. Errors
are one line: exit status 2 for usage errors, 1 for other failures, and a
traceback only under -v. Every option can also come from an environment
variable named GENERATE_<COMMAND>_<OPTION>, e.g. GENERATE_SAMPLE_TEMPERATURE.
Heavy modules (NumPy, Keras, TensorFlow) are imported inside commands so
`generate --help` stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from dataclasses import fields
from pathlib import Path

import click
from click.core import ParameterSource

from . import __version__
from .config import CELLS, ENCODING_ERRORS, KINDS, PRECISIONS, CorpusConfig, ModelConfig, TrainConfig
from .errors import GenerateError

log = logging.getLogger("generate")
_DEFAULT_MODEL, _DEFAULT_TRAIN = ModelConfig(), TrainConfig()


class GenerateGroup(click.Group):
    """A command group whose errors are one line on stderr, with exit codes 2 and 1."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(args if args is not None else sys.argv[1:])
        # Only the group's own options, before the command name, can ask for tracebacks.
        group_options = argv[: next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))]
        verbose = "-v" in group_options or "--verbose" in group_options
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.exceptions.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            code = 2
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            code = 130
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except GenerateError as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            code = 130
        except BrokenPipeError:  # stdout closed early, e.g. `generate sample | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 141
        except Exception as exc:  # a bug: one line unless -v asks for the traceback
            if verbose:
                traceback.print_exc()
            click.echo(f"Error: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code)


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _setup_logging(quiet: bool, verbose: bool) -> None:
    for handler in [h for h in log.handlers if isinstance(h, _StderrHandler)]:
        log.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s" if not verbose else "%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.propagate = False


@click.group(cls=GenerateGroup, context_settings={"auto_envvar_prefix": "GENERATE", "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="generate")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr; no progress bars.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs, TensorFlow's own logs, and tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Train character-level RNNs on text and code, and sample from them."""
    _setup_logging(quiet, verbose)
    ctx.obj = {"quiet": quiet, "verbose": verbose}


def _help(cls, name: str, text: str) -> str:
    default = getattr(cls, name)
    return f"{text} [default: {default}]"


@cli.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.argument("sources", nargs=-1)
@click.option("--resume", is_flag=True, help="Continue RUN from latest.keras exactly where it stopped.")
@click.option("--kind", type=click.Choice(KINDS), default="text", show_default=True, help="text, or code: walk trees and mark file boundaries.")
@click.option("--include", multiple=True, help="Glob a file name must match (repeatable), e.g. '*.py'.")
@click.option("--exclude", multiple=True, help="Glob of names to skip (repeatable), on top of VCS and vendored dirs.")
@click.option("--encoding", type=click.Choice(["melody", "chorale"]), default="melody", show_default=True, help="With --kind music: monophonic melody, or four-voice chorale.")
@click.option("--transpose", type=click.Choice(["none", "common", "all"]), default="none", show_default=True, help="With --kind music: augment by transposing to C (common) or into every key in range (all).")
@click.option("--encoding-errors", type=click.Choice(ENCODING_ERRORS), default="strict", show_default=True, help="Invalid UTF-8: fail, replace with U+FFFD, ignore the bytes, or skip the file.")
@click.option("--min-count", type=click.IntRange(min=1), default=1, show_default=True, help="Characters seen fewer times map to an unknown token.")
@click.option("--cell", type=click.Choice(CELLS), default=_DEFAULT_MODEL.cell, show_default=True, help="Recurrent cell.")
@click.option("--layers", type=click.IntRange(min=1), default=_DEFAULT_MODEL.layers, show_default=True, help="Stacked recurrent layers.")
@click.option("--units", type=click.IntRange(min=1), default=_DEFAULT_MODEL.units, show_default=True, help="Hidden units per layer.")
@click.option("--embedding-dim", type=click.IntRange(min=1), default=_DEFAULT_MODEL.embedding_dim, show_default=True, help="Character embedding size.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_MODEL.dropout, show_default=True, help="Dropout on layer inputs and the last output.")
@click.option("--recurrent-dropout", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_MODEL.recurrent_dropout, show_default=True, help="Dropout on the recurrent state (disables cuDNN).")
@click.option("--residual/--no-residual", default=_DEFAULT_MODEL.residual, show_default=True, help="Skip connections between stacked layers.")
@click.option("--batch-size", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.batch_size, show_default=True, help="B: parallel streams.")
@click.option("--seq-len", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.seq_len, show_default=True, help="T: steps of backpropagation through time.")
@click.option("--epochs", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.epochs, show_default=True, help="Maximum epochs (raise it on --resume to train further).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=_DEFAULT_TRAIN.learning_rate, show_default=True, help="Adam learning rate.")
@click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=_DEFAULT_TRAIN.lr_decay, show_default=True, help="Learning-rate multiplier per epoch.")
@click.option("--clip-norm", type=click.FloatRange(min=0), default=_DEFAULT_TRAIN.clip_norm, show_default=True, help="Global gradient-norm clip; 0 disables.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=_DEFAULT_TRAIN.val_fraction, show_default=True, help="Held-out tail for validation.")
@click.option("--patience", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.patience, show_default=True, help="Stop after this many epochs without val improvement; 0 never.")
@click.option("--seed", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.seed, show_default=True, help="Seeds initialisation and dropout.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=_DEFAULT_TRAIN.checkpoint_every, show_default=True, help="Steps between latest.keras saves (also every 2 minutes).")
@click.option("--preview-every", type=click.IntRange(min=0), default=_DEFAULT_TRAIN.preview_every, show_default=True, help="Steps between sample previews on stderr; 0 disables.")
@click.option("--max-minutes", type=click.FloatRange(min=0), default=_DEFAULT_TRAIN.max_minutes, show_default=True, help="Stop resumably after this much training time; 0 = no limit.")
@click.option("--precision", type=click.Choice(PRECISIONS), default=_DEFAULT_TRAIN.precision, show_default=True, help="Training math: mixed is float16 on a GPU, bfloat16 on a CPU; weights stay float32.")
@click.pass_context
def train(ctx: click.Context, run: Path, sources: tuple[str, ...], resume: bool, **options) -> None:
    """Train a model on SOURCES (files, directories or globs) into the directory RUN.

    With --resume, SOURCES may be left out: the recorded ones are used.
    """
    from .train import create_run, resume_run

    show_progress = not ctx.obj["quiet"]
    if resume:
        # Only options the user set count: resume_run applies the allowed ones and refuses changes to the rest.
        overrides = {
            name: value for name, value in options.items()
            if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        }
        result = resume_run(run, list(sources) or None, overrides, show_progress)
    else:
        if not sources:
            raise click.UsageError("missing SOURCES: expected one or more corpus files, directories or glob patterns", ctx)
        _kind_from_registry(ctx, sources, options)
        corpus = CorpusConfig(sources=list(sources), **_pick(options, CorpusConfig, exclude=("sources",)))
        corpus.include, corpus.exclude = list(corpus.include), list(corpus.exclude)
        result = create_run(run, corpus, ModelConfig(**_pick(options, ModelConfig)), TrainConfig(**_pick(options, TrainConfig)), show_progress)
    best = f"{result.best_val_loss:.4f} nats ({result.best_val_loss / 0.6931471805599453:.4f} bpc)" if result.best_val_loss is not None else "n/a"
    status = "finished" if result.finished else "paused (resume with --resume)"
    click.echo(f"{result.run}\tepochs {result.epochs_done}\tsteps {result.global_step}\tbest val {best}\t{status}")


def _kind_from_registry(ctx: click.Context, sources: tuple[str, ...], options: dict) -> None:
    """Built-in corpora (`corpus:NAME`) bring their kind and music encoding unless the user set them."""
    builtin = [s for s in sources if s.startswith("corpus:")]
    if not builtin:
        return
    from .corpora import get_entry

    entry = get_entry(builtin[0])
    for option, value in (("kind", entry.kind), ("encoding", entry.encoding)):
        if ctx.get_parameter_source(option) == ParameterSource.DEFAULT:
            options[option] = value


def _field_names(*classes) -> set[str]:
    return {f.name for cls in classes for f in fields(cls)}


def _pick(options: dict, cls, exclude: tuple[str, ...] = ()) -> dict:
    names = _field_names(cls) - set(exclude)
    return {k: v for k, v in options.items() if k in names}


@cli.command()
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(run: str, as_json: bool) -> None:
    """Describe RUN (a path or shipped model name): model, corpus, checkpoints, losses.

    Reads JSON and zip metadata only; TensorFlow is never imported.
    """
    from .checkpoint import resolve_run, run_summary

    summary = run_summary(resolve_run(run))
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    m, t, c = summary["model"], summary["train"], summary["corpus"]
    lines = [
        f"run:        {summary['run']}",
        f"model:      {m['cell']} {m['layers']}x{m['units']}, embedding {m['embedding_dim']}, dropout {m['dropout']}, residual {m['residual']}",
        f"vocab:      {summary['vocab_size']} characters",
        f"corpus:     {c['kind']} {', '.join(c['sources'])} ({c['chars']} chars: {c['train_chars']} train, {c['val_chars']} val), sha256 {c['sha256'][:16]}",
        f"training:   batch {t['batch_size']} x seq {t['seq_len']}, {t['epochs']} epochs, lr {t['learning_rate']} (decay {t['lr_decay']}), clip {t['clip_norm']}, seed {t['seed']}, precision {t.get('precision', 'float32')}",
        f"versions:   {', '.join(f'{k} {v}' for k, v in summary['versions'].items())}",
    ]
    for name, ck in summary["checkpoints"].items():
        if "error" in ck:
            lines.append(f"{name + ':':11} {ck['error']}")
            continue
        val = f", val {ck['val_loss']:.4f} nats ({ck['val_loss'] / 0.6931471805599453:.4f} bpc)" if ck.get("val_loss") is not None else ""
        lines.append(f"{name + ':':11} epoch {ck['epoch']} step {ck['step']} (global {ck['global_step']}){val}, {ck['bytes']} bytes{', finished' if ck.get('finished') else ''}")
    for row in summary["history"]:
        lines.append(f"history:    epoch {row['epoch']} step {row['global_step']}: train {row['train_bpc']} bpc, val {row['val_bpc'] or '-'} bpc, {row['chars_per_s']} chars/s")
    click.echo("\n".join(lines))


@cli.command("list")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
def list_runs(directory: Path) -> None:
    """List the shipped models, then the runs under DIRECTORY (three levels deep)."""
    from .checkpoint import RunDir, read_training_state, shipped_checkpoints_dir

    shipped = sorted(p.parent for p in shipped_checkpoints_dir().glob("*/config.json"))
    for path in shipped:
        cfg = RunDir(path).load_config()
        state = read_training_state(RunDir(path).best)
        best = state.get("best_val_loss")
        best_text = f"{best / 0.6931471805599453:.3f} bpc" if best is not None else "-"
        click.echo(f"{path.name}	shipped	{cfg.corpus.kind}	{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}	best val {best_text}")
    found = sorted({p.parent for depth in ("", "*/", "*/*/", "*/*/*/") for p in directory.glob(depth + "config.json")}
                   - set(shipped))
    if not found:
        log.warning("no runs under %s", directory)
    for path in found:
        run = RunDir(path)
        try:
            cfg = run.load_config()
            state = read_training_state(run.latest) if run.latest.exists() else {}
        except GenerateError as exc:
            click.echo(f"{path}\t(unreadable: {exc})")
            continue
        best = state.get("best_val_loss")
        best_text = f"{best / 0.6931471805599453:.3f} bpc" if best is not None else "-"
        click.echo(f"{path}\t{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}\tepoch {state.get('epoch', 0)}/{cfg.train.epochs}\tbest val {best_text}")


@cli.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The MIDI file to write.")
@click.option("--bpm", type=click.FloatRange(min=1, max=1000), default=120, show_default=True, help="Tempo.")
@click.option("--instrument", default="piano", show_default=True, help="A General MIDI program number or name.")
@click.option("--encoding", type=click.Choice(["melody", "chorale"]), default=None, help="How the text is encoded [default: the sidecar's, else melody].")
@click.option("--wav", is_flag=True, help="Also a WAV beside the MIDI file (needs Debian's fluidsynth).")
@click.option("--png", is_flag=True, help="Also a piano-roll PNG beside the MIDI file.")
@click.option("--musicxml", is_flag=True, help="Also a MusicXML score beside the MIDI file.")
@click.option("--score", is_flag=True, help="Also an engraved score, NAME.score.png (needs Debian's lilypond).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def render(source: Path, output: Path, bpm: float, instrument: str, encoding: str | None, wav: bool, png: bool,
           musicxml: bool, score: bool, overwrite: bool) -> None:
    """Render encoded music text (a .txt, or a sample's .json sidecar) to MIDI.

    Malformed text is repaired rather than refused; the sidecar counts what was dropped.
    """
    from .music.midi import instrument_program
    from .writers import check_free, write_output

    try:
        raw = source.read_text(encoding="utf-8")
        sidecar = json.loads(raw) if source.suffix == ".json" else {}
        text = sidecar["text"] if sidecar else raw
        encoding = encoding or sidecar.get("encoding") or "melody"
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise click.BadParameter(f"{source}: expected UTF-8 music text or a sample sidecar with a 'text' field", param_hint="SOURCE")
    if output.suffix.lower() not in (".mid", ".midi"):
        raise click.BadParameter(f"expected a .mid path, received {str(output)!r}", param_hint="-o")
    program = instrument_program(instrument)
    check_free([output], overwrite, also=(".wav",) * wav + (".png",) * png + (".musicxml",) * musicxml + (".score.png",) * score)
    options = {"bpm": bpm, "program": program, "encoding": encoding, "wav": wav, "png": png, "musicxml": musicxml, "score": score}
    record = write_output(output, text, {"source": str(source.resolve()), **options}, options)
    log.info("%s: %d piece(s), %d notes, %d malformed character(s) dropped", output, record["pieces"], record["notes"], record["dropped_chars"])
    click.echo(str(output))


@cli.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("--float16", is_flag=True, help="Store the weights as float16: half the size, for shipping.")
def export(run: Path, dest: Path, checkpoint: str, float16: bool) -> None:
    """Copy RUN to DEST for sampling only: weights without optimizer state."""
    from .checkpoint import RunDir, export_run

    click.echo(str(export_run(RunDir(run).require(), dest, checkpoint, float16=float16)))


from .cli_corpus import corpus_group, score  # noqa: E402  (registered after the group exists)
from .cli_jobs import run_command, runs_group  # noqa: E402
from .cli_sample import sample  # noqa: E402

cli.add_command(sample)
cli.add_command(corpus_group)
cli.add_command(score)
cli.add_command(run_command)
cli.add_command(runs_group)


def main() -> None:
    cli(prog_name="generate")


if __name__ == "__main__":
    main()
