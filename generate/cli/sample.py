"""`generate sample` and `generate render`: text, code, poems and music from a run or a shipped model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..data.config import OOV_POLICIES
from ..errors import RenderError
from ..music import ENCODINGS, RENDER_SUFFIXES
from ..sampling.options import DEFAULT_LENGTH, SampleOptions
from .base import State, log, pass_state

DEFAULT_MODEL = "shakespeare"
_DEFAULTS = SampleOptions()


@click.command()
@click.argument("run", default=DEFAULT_MODEL)
@click.option("--prime", default=None, help="Text the samples continue from.")
@click.option("--prime-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the prime from a UTF-8 file, or a MIDI, ABC or MusicXML file for music runs.")
@click.option("--oov", type=click.Choice(OOV_POLICIES), default=_DEFAULTS.oov, show_default=True, help="Prime characters outside the vocabulary: fail, drop them, or map to the unknown token.")
@click.option("--length", "-n", type=int, default=None, help=f"Characters to generate per sample [default: {DEFAULT_LENGTH['text']}; music runs {DEFAULT_LENGTH['music']}, ended by the end of the tune or piece].")
@click.option("--temperature", "-t", type=float, default=_DEFAULTS.temperature, show_default=True, help="Softmax temperature; 0 is greedy.")
@click.option("--top-k", type=int, default=_DEFAULTS.top_k, show_default=True, help="Sample from the k likeliest characters; 0 = all.")
@click.option("--top-p", type=float, default=_DEFAULTS.top_p, show_default=True, help="Sample from the smallest set holding this probability.")
@click.option("--greedy", is_flag=True, help="Always take the likeliest character.")
@click.option("--num-samples", "-N", type=int, default=_DEFAULTS.num_samples, show_default=True, help="Samples generated together as one batch.")
@click.option("--stop", multiple=True, help="End a sample before this string (repeatable; \\n escapes allowed).")
@click.option("--min-length", type=int, default=_DEFAULTS.min_length, show_default=True, help="Redraw samples shorter than this (a stop string can end them early), with derived, recorded seeds.")
@click.option("--beam", type=int, default=_DEFAULTS.beam, show_default=True, help="Beam search with K beams instead of sampling: the likeliest continuations by mean log-probability per character, best first (-N of them).")
@click.option("--max-copy", type=int, default=None, help="Redraw samples that copy more than this many characters in a row from the training corpus, with derived, recorded seeds.")
@click.option("--seed", type=int, default=None, help="Same seed, same output; drawn and printed to stderr if omitted.")
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write to FILE, or DIR/sample-NN.txt for several, each with a .json sidecar.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per sample on stdout.")
@click.option("--bpm", type=float, default=_DEFAULTS.bpm, show_default=True, help="Music: tempo of MIDI output.")
@click.option("--instrument", default=_DEFAULTS.instrument, show_default=True, help="Music: a General MIDI program number or name (fiddle, flute, ...).")
@click.option("--velocity", type=int, default=_DEFAULTS.velocity, show_default=True, help="Music: MIDI note velocity (loudness).")
@click.option("--bars", type=int, default=None, help="Music: stop after this many bars.")
@click.option("--notes", type=int, default=None, help="Music: stop after this many notes (note onsets, for chorales).")
@click.option("--drop-prime", is_flag=True, help="Leave the prime out of the output (music keeps its header).")
@click.option("--warmup/--no-warmup", default=_DEFAULTS.warmup, show_default=True, help="Without a prime, start each sample after a first tune, file or paragraph.")
@click.option("--in-key", is_flag=True, help="Music: never sample a pitch outside the key its piece's header names (the prime's or a sampled one).")
@click.option("--key", default=None, help="Music: every sampled header names this key: sharps (-6..5) or a name such as D, Bb or F#m.")
@click.option("--key-penalty", type=float, default=None, help="Music: nats off the logits of out-of-key pitches (default 1.5 for melodies, 1 for chorales; 0 turns it off).")
@click.option("--lines", type=int, default=_DEFAULTS.lines, help="A poem of N non-empty lines, then stop.")
@click.option("--acrostic", default=_DEFAULTS.acrostic, help="Line i of the poem begins with character i of TEXT.")
@click.option("--form", default=_DEFAULTS.form, help="A Chinese form COLUMNSxLINES, e.g. 5x4: a five-character quatrain with ，and 。.")
@click.option("--syntax/--no-syntax", default=None, help="Code: keep brackets, strings, indentation and expressions valid as Python while sampling [default: on for Python runs].")
@click.option("--valid-only", is_flag=True, help="Keep only samples that parse (code, with ast) or decode cleanly (music); resample the rest.")
@click.option("--wav", is_flag=True, help="Music with -o: also a WAV beside each MIDI file (needs fluidsynth).")
@click.option("--png", is_flag=True, help="Music with -o: also a piano-roll PNG beside each MIDI file.")
@click.option("--musicxml", is_flag=True, help="Music with -o: also a MusicXML score beside each MIDI file.")
@click.option("--score", is_flag=True, help="Music with -o: also an engraved score, NAME.score.png (needs LilyPond).")
@pass_state
def sample(state: State, run: str, checkpoint: str, output: Path | None, overwrite: bool, as_json: bool, stop: tuple[str, ...],
           **options) -> None:
    """Generate text from RUN: a run directory, or a shipped model's name.

    Without RUN, the shipped default model (shakespeare) writes a poem.
    """
    # Values are checked by the library's one set of rules (sampling.resolve), not by click types.
    from ..jobs.sample import sample as run_sample  # NumPy and Keras load here, not for --help

    renders = tuple(name for name in RENDER_SUFFIXES if options.pop(name))
    request = SampleOptions(stop=tuple(_unescape(s) for s in stop), renders=renders, **options)

    def show_text(text: str) -> None:  # a terminal sees a single sample as it is generated
        sys.stdout.write(text)
        sys.stdout.flush()

    def show_seed(seed: int, drawn: bool) -> None:
        if drawn and not state.quiet:
            click.echo(f"seed: {seed}", err=True)

    to_terminal = output is None and not as_json and sys.stdout.isatty()
    result = run_sample(run, request, checkpoint, output, overwrite, show_text if to_terminal else None, show_seed,
                        with_records=as_json)
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
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def render(source: Path, output: Path, bpm: float, instrument: str, encoding: str | None, overwrite: bool, **flags) -> None:
    """Render encoded music text (a .txt, or a sample's .json sidecar) to MIDI.

    Malformed text is repaired rather than refused; the sidecar counts what was dropped.
    """
    from ..outputs.writers import render_file  # not loaded for --help, which stays instant

    renders = tuple(name for name in RENDER_SUFFIXES if flags[name])
    record = render_file(source, output, bpm, instrument, encoding, renders, overwrite)
    log.info("%s: %d piece(s), %d notes, %d malformed character(s) dropped", output, record["pieces"], record["notes"], record["dropped_chars"])
    click.echo(str(output))
