"""`generate sample` and `generate render`: text, code, poems and music from a run or a shipped model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import GenerateError, RenderError
from ..music import ENCODINGS, RENDER_SUFFIXES
from ..sampling.options import SampleOptions
from .base import State, log, pass_state
from .options import GroupedCommand, sampling_options

DEFAULT_MODEL = "shakespeare"
_DEFAULTS = SampleOptions()


@click.command(cls=GroupedCommand)
@click.argument("run", default=DEFAULT_MODEL)
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("-o", "--output", type=click.Path(), default=None, help="Write to FILE, or DIR/sample-NN.txt for several (or for one, given as DIR/), each with a .json sidecar.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per sample on stdout.")
@sampling_options
@pass_state
def sample(state: State, run: str, checkpoint: str, output: str | None, overwrite: bool, as_json: bool, stop: tuple[str, ...],
           **options) -> None:
    """Generate text from RUN: a run directory, or a shipped model's name.

    Without RUN, the shipped default model (shakespeare) writes a poem.
    """
    # Values are checked by the library's one set of rules (sampling.options and .resolve), not by click types.
    from ..pipeline.loaded import sample_run  # NumPy and Keras load here, not for --help

    renders = tuple(name for name in RENDER_SUFFIXES if options.pop(name))
    request = SampleOptions(stop=tuple(_unescape(s) for s in stop), renders=renders, **options)

    def show_text(text: str) -> None:  # a single sample appears as it is generated, on a terminal or in a file
        sys.stdout.write(text)
        sys.stdout.flush()

    def show_seed(seed: int, drawn: bool) -> None:
        if drawn and not state.quiet:
            click.echo(f"seed: {seed}", err=True)

    # Streamed whatever stdout is, so a Ctrl-C leaves what was written in a redirected file too.
    streaming = output is None and not as_json
    result = sample_run(run, request, checkpoint, output, overwrite, show_text if streaming else None, show_seed,
                        with_records=as_json, show_progress=state.show_progress and sys.stderr.isatty())
    if result.streamed:
        click.echo("")
    for i, out in enumerate(result.outputs if not result.streamed else []):
        if out.path is not None:
            click.echo(str(out.path))
        elif as_json:
            click.echo(json.dumps({**out.record, "text": out.text}, ensure_ascii=False))
        else:
            if request.num_samples > 1:
                click.echo(f"--- sample {i + 1}/{request.num_samples} ---")
            click.echo(out.text)
    if result.shortfall:  # what was kept is printed or written; the command still failed at what it was asked
        raise GenerateError(result.shortfall)
    if result.render_errors:
        more = f" (and {len(result.render_errors) - 1} more output(s))" if len(result.render_errors) > 1 else ""
        raise RenderError(f"{result.render_errors[0]}{more}; the MIDI files and their sidecars were written")


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The MIDI file to write.")
@click.option("--bpm", type=click.FloatRange(min=1, max=1000), default=_DEFAULTS.bpm, show_default=True, help="Tempo.")
@click.option("--instrument", default=_DEFAULTS.instrument, show_default=True, help="A General MIDI program number or name.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default=None, help="How the text is encoded [default: the sidecar's, else melody].")
@click.option("--wav", is_flag=True, help="Also a WAV beside the MIDI file (needs Debian's fluidsynth).")
@click.option("--png", is_flag=True, help="Also a piano-roll PNG beside the MIDI file.")
@click.option("--musicxml", is_flag=True, help="Also a MusicXML score beside the MIDI file.")
@click.option("--score", is_flag=True, help="Also an engraved score, NAME.score.png (needs Debian's lilypond).")
@click.option("--abc", is_flag=True, help="Also the music in ABC notation, NAME.abc.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def render(source: Path, output: Path, bpm: float, instrument: str, encoding: str | None, overwrite: bool, **flags) -> None:
    """Render encoded music text (a .txt, or a sample's .json sidecar) to MIDI.

    A few malformed characters are repaired (the sidecar counts them); text
    that is mostly not the encoding is refused.
    """
    from ..outputs.writers import render_file  # not loaded for --help, which stays instant

    renders = tuple(name for name in RENDER_SUFFIXES if flags[name])
    record = render_file(source, output, bpm, instrument, encoding, renders, overwrite)
    log.info("%s: %d piece(s), %d notes, %d malformed character(s) dropped", output, record["pieces"], record["notes"], record["dropped_chars"])
    click.echo(str(output))
