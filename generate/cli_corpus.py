"""`generate corpus list|show|build` and `generate score`: built-in corpora and honest loss numbers.

A thin layer over `corpora.py` and `scoring.py`; `cli.py` adds these
commands to the main group.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from .config import OOV_POLICIES

log = logging.getLogger("generate")


@click.group("corpus")
def corpus_group() -> None:
    """Built-in corpora: what they are, where they come from, and building them."""


@corpus_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per corpus.")
def corpus_list(as_json: bool) -> None:
    """List the built-in corpora: kind, source, size, license and whether each is built."""
    from .corpora import describe, load_registry

    for entry in load_registry().values():
        info = describe(entry)
        if as_json:
            click.echo(json.dumps(info, ensure_ascii=False))
            continue
        built = info["built"]
        size = f"{built['chars']:,} chars" if built else (f"{entry.bytes:,} bytes" if entry.bytes else "-")
        state = "built" if built else ("parsed on first use" if entry.kind == "music" else "not built")
        click.echo(f"{entry.name}\t{entry.kind}\t{entry.source}\t{size}\t{state}\t{entry.license}")


@corpus_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def corpus_show(name: str, as_json: bool) -> None:
    """Show everything about corpus NAME: source, sha256, license, clean-up steps, build."""
    from .corpora import describe, get_entry

    info = describe(get_entry(name))
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    for key, value in info.items():
        if key == "clean":
            click.echo("clean:")
            for step in value:
                click.echo(f"  - {step['step']}: {step['does']}")
        elif key == "built":
            click.echo("built: " + (f"{value['chars']:,} characters, sha256 {value['sha256']}, {value['built']}" if value else "no"))
        elif value is not None:
            click.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


@corpus_group.command("build")
@click.argument("name")
@click.option("--from", "local", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A local copy of a downloadable source; it must match the registry's sha256.")
@click.option("--force", is_flag=True, help="Rebuild even if already built.")
@click.pass_context
def corpus_build(ctx: click.Context, name: str, local: Path | None, force: bool) -> None:
    """Build corpus NAME into the cache and print the path of its text."""
    from .corpora import build

    click.echo(str(build(name, local, force=force, show_progress=not ctx.obj["quiet"])))


@click.command("score")
@click.argument("run")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["val"]), default=None, help="Score the run's validation split, as training did.")
@click.option("--corpus", "corpus_sources", multiple=True, help="With --split val: where the run's corpus is now (repeatable).")
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("--oov", type=click.Choice(OOV_POLICIES), default="error", show_default=True,
              help="Characters outside the vocabulary: fail, drop them, or score them as unknown.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def score(ctx: click.Context, run: str, files: tuple[Path, ...], split: str | None, corpus_sources: tuple[str, ...],
          checkpoint: str, oov: str, as_json: bool) -> None:
    """Bits per character of FILES (or the validation split) under RUN.

    Each file is read as one stream from a fresh state. Prints
    NAME, characters, nats and bpc, tab-separated; lower is better.
    """
    from .checkpoint import resolve_run
    from .scoring import Score, TextScorer, read_text_file, score_validation

    if not files and split is None:
        raise click.UsageError("expected FILES to score, or --split val", ctx)
    if corpus_sources and split is None:
        raise click.UsageError("--corpus: expected --split val", ctx)
    run_dir = resolve_run(run)
    results: list[Score] = []
    if split == "val":
        results.append(score_validation(run_dir, checkpoint, list(corpus_sources) or None))
    if files:
        scorer = TextScorer(run_dir, checkpoint)
        results += [scorer.score(read_text_file(path), str(path), oov=oov) for path in files]
    for result in results:
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            click.echo(f"{result.name}\t{result.chars}\t{result.nats:.4f} nats\t{result.bpc:.4f} bpc")
    if len(files) > 1:
        chars = sum(r.chars for r in results if r.name != "validation")
        nats = sum(r.nats * r.chars for r in results if r.name != "validation") / chars
        total = Score("total", chars, nats)
        click.echo(json.dumps(total.as_dict()) if as_json else f"total\t{chars}\t{nats:.4f} nats\t{total.bpc:.4f} bpc")
