"""`generate corpus list|show|build`: the built-in corpora, where they come from, and building them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..music import ENCODINGS
from .base import SentenceGroup, State, pass_state


@click.group("corpus", cls=SentenceGroup)
def corpus_group() -> None:
    """Built-in corpora: what they are, where they come from, and building them."""


@corpus_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per corpus.")
def corpus_list(as_json: bool) -> None:
    """List the built-in corpora: kind, source, size, license and whether each is built."""
    from ..data.registry import describe, load_registry  # not loaded for --help, which stays instant

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
    from ..data.registry import describe, get_entry  # not loaded for --help, which stays instant

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
@pass_state
def corpus_build(state: State, name: str, local: Path | None, force: bool) -> None:
    """Build corpus NAME into the cache and print the path of its text."""
    from ..data.registry import build  # not loaded for --help, which stays instant

    click.echo(str(build(name, local, force=force, show_progress=state.show_progress)))


@corpus_group.command("inspect")
@click.argument("sources", nargs=-1, required=True)
@click.option("--encoding", type=click.Choice(ENCODINGS), default="melody", show_default=True, help="What a corpus would make: melodies or four-voice chorales.")
@click.option("--track", default="auto", show_default=True, help="Melodies: auto, all, a track index or a name, as for `generate train --track`.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def corpus_inspect(sources: tuple[str, ...], encoding: str, track: str, as_json: bool) -> None:
    """Show, for each MIDI file in SOURCES (files, directories, globs), its tracks and what a corpus would take.

    Drums are never taken. Files a corpus would skip say why.
    """
    from ..music.inspect import inspect_sources  # symusic loads here, not for --help

    for found in inspect_sources(list(sources), encoding, track):
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False))
            continue
        if found.get("skip") and not found["tracks"]:
            click.echo(f"{found['file']}: skipped: {found['skip']}")
            continue
        if found.get("reader"):
            click.echo(f"{found['file']}: {found['reader']}")
            continue
        heading = f"skipped: {found['skip']}" if found.get("skip") else f"M:{found['meter']} K:{found['sharps']}; {found['taken']}"
        click.echo(f"{found['file']}: {heading}")
        for t in found["tracks"]:
            mark = "  <- taken" if t["taken"] else ("  (drums: never taken)" if t["drum"] else "")
            pitches = f"pitches {t['low']}-{t['high']}" if t["notes"] else "no notes"
            click.echo(f"  {t['index']:>3}  {t['name'] or '(unnamed)':<24} program {t['program']:>3}  "
                       f"{t['notes']:>6} notes  {pitches:<16} monophony {t['monophony']:.2f}{mark}")
