"""`generate score`: bits per character of files, or of a run's validation split."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..data.config import OOV_POLICIES


@click.command("score")
@click.argument("run")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["val"]), default=None, help="Score the run's validation split, as training did.")
@click.option("--corpus", "corpus_sources", multiple=True, help="With --split val: where the run's corpus is now (repeatable).")
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("--oov", type=click.Choice(OOV_POLICIES), default="error", show_default=True,
              help="Characters outside the vocabulary: fail, drop them, or score them as unknown.")
@click.option("--label", default=None, help="A labelled model: score FILES as written in this style (or none).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def score(run: str, files: tuple[Path, ...], split: str | None, corpus_sources: tuple[str, ...],
          checkpoint: str, oov: str, label: str | None, as_json: bool) -> None:
    """Bits per character of FILES (or the validation split) under RUN.

    Each file is read as one stream from a fresh state. Prints
    NAME, characters, nats and bpc, tab-separated; lower is better.
    A labelled model's validation split is also scored per label, and
    with every label dropped.
    """
    from ..training.scoring import score_run  # Keras loads here, not for --help

    if not files and split is None:
        raise click.UsageError("expected FILES to score, or --split val")
    if corpus_sources and split is None:
        raise click.UsageError("--corpus: expected --split val")
    for result in score_run(run, list(files), split == "val", list(corpus_sources) or None, checkpoint, oov, label):
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            click.echo(f"{result.name}\t{result.chars}\t{result.nats:.4f} nats\t{result.bpc:.4f} bpc")
