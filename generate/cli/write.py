"""`generate write`: co-write with a model in the terminal, choosing among its candidates."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .base import State, pass_state
from .sample import DEFAULT_MODEL


@click.command("write")
@click.argument("model", default=DEFAULT_MODEL)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Where s saves: the text (MIDI for a .mid name, music runs) and a .json sidecar of the session.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--replay", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Rebuild the text of a saved session from its sidecar, print it (or write -o), and exit.")
@click.option("--candidates", "-N", type=int, default=4, show_default=True, help="Candidates per draw (1-9).")
@click.option("--temperature", "-t", type=float, default=None, help="Starting temperature  [default: the model's own (its card says), else 0.8]")
@click.option("--length", "-n", type=int, default=80, show_default=True, help="Characters sampled per candidate, before it is cut at the end of its line, statement or bar.")
@click.option("--seed", type=int, default=None, help="The session's seed; every draw's seed derives from it.")
@click.option("--prime", "text", default="", help="Text to start from.")
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("--lines", type=int, default=0, help="A poem of N non-empty lines.")
@click.option("--acrostic", default="", help="Line i of the poem begins with character i of TEXT.")
@click.option("--form", default="", help="A Chinese form COLUMNSxLINES, e.g. 5x4.")
@click.option("--key", default=None, help="Music: every header names this key (sharps or a name such as D or F#m).")
@click.option("--in-key", is_flag=True, help="Music: never a pitch outside the header's key.")
@click.option("--bpm", type=float, default=120.0, show_default=True, help="Music: tempo of a saved MIDI file.")
@click.option("--instrument", default="piano", show_default=True, help="Music: General MIDI program of a saved MIDI file.")
@click.option("--velocity", type=int, default=80, show_default=True, help="Music: note velocity of a saved MIDI file.")
@click.option("--label", default=None, help="A labelled model: every candidate is written in this style (generate info lists them).")
@pass_state
def write(state: State, model: str, output: Path | None, overwrite: bool, replay: Path | None, checkpoint: str,
          **options) -> None:
    """Co-write with MODEL (a run or a shipped model) in the terminal.

    The screen shows the text so far and numbered candidate continuations,
    sampled as one batch: to the end of the line for verse, of the statement
    for code, of the bar for music. Keys: 1-9 take a candidate, r rerolls,
    u undoes, ctrl+r redoes, e edits the text, t/T lower or raise the
    temperature, n/N change the number of candidates, s saves (to -o, or
    asks for a file name), p plays a
    music candidate (fluidsynth), q quits and prints the text; Ctrl-C
    does the same and exits 130.
    """
    from ..cowriting import write as cowriting  # Keras loads here, not for --help

    if replay is not None:
        text = cowriting.replay_session(replay, output, overwrite)
        click.echo(str(output) if output is not None else text, nl=output is not None or not text.endswith("\n"))
        return
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    outcome = cowriting.write(model, cowriting.WriteOptions(**options), output, overwrite, checkpoint, terminal)
    text = outcome.session.page.text
    click.echo(text, nl=not text.endswith("\n"))
    if outcome.output is not None:
        click.echo(f"saved: {outcome.output}", err=True)
    if outcome.interrupted:
        raise click.exceptions.Exit(130)
