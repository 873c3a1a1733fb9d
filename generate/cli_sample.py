"""`generate sample`: text, code, poems and music from a run or a shipped model.

A thin layer over `generation.py`; `cli.py` adds the command to the main group.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from .config import OOV_POLICIES


log = logging.getLogger("generate")
DEFAULT_MODEL = "shakespeare"


@click.command()
@click.argument("run", default=DEFAULT_MODEL)
@click.option("--prime", default=None, help="Text the samples continue from.")
@click.option("--prime-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read the prime from a UTF-8 file.")
@click.option("--oov", type=click.Choice(OOV_POLICIES), default="error", show_default=True, help="Prime characters outside the vocabulary: fail, drop them, or map to the unknown token.")
@click.option("--length", "-n", type=click.IntRange(min=1), default=500, show_default=True, help="Characters to generate per sample (music runs: 8000, ended by the end of the tune or piece).")
@click.option("--temperature", "-t", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Softmax temperature; 0 is greedy.")
@click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True, help="Sample from the k likeliest characters; 0 = all.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True, help="Sample from the smallest set holding this probability.")
@click.option("--greedy", is_flag=True, help="Always take the likeliest character.")
@click.option("--num-samples", "-N", type=click.IntRange(min=1), default=1, show_default=True, help="Samples generated together as one batch.")
@click.option("--stop", multiple=True, help="End a sample before this string (repeatable; \\n escapes allowed).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Same seed, same output; drawn and printed to stderr if omitted.")
@click.option("--checkpoint", default="best", show_default=True, help="best, latest, or a .keras file inside the run.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None, help="Write to FILE, or DIR/sample-NN.txt for several, each with a .json sidecar.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per sample on stdout.")
@click.option("--bpm", type=click.FloatRange(min=1, max=1000), default=120, show_default=True, help="Music: tempo of MIDI output.")
@click.option("--instrument", default="piano", show_default=True, help="Music: a General MIDI program number or name (fiddle, flute, ...).")
@click.option("--velocity", type=click.IntRange(1, 127), default=80, show_default=True, help="Music: MIDI note velocity (loudness).")
@click.option("--bars", type=click.IntRange(min=1), default=None, help="Music: stop after this many bars.")
@click.option("--notes", type=click.IntRange(min=1), default=None, help="Music: stop after this many notes (note onsets, for chorales).")
@click.option("--drop-prime", is_flag=True, help="Leave the prime out of the output (music keeps its header).")
@click.option("--warmup/--no-warmup", default=True, show_default=True, help="Without a prime, start each sample after a first tune, file or paragraph.")
@click.option("--in-key", is_flag=True, help="Music: never sample a pitch outside the key its piece's header names (the prime's or a sampled one).")
@click.option("--key", "key_name", default=None, help="Music: every sampled header names this key: sharps (-6..5) or a name such as D, Bb or F#m.")
@click.option("--key-penalty", type=click.FloatRange(min=0), default=None, help="Music: nats off the logits of out-of-key pitches (default 1.5 for melodies, 1 for chorales; 0 turns it off).")
@click.option("--lines", type=click.IntRange(min=1, max=1000), default=None, help="A poem of N non-empty lines, then stop.")
@click.option("--acrostic", default="", help="Line i of the poem begins with character i of TEXT.")
@click.option("--form", default="", help="A Chinese form COLUMNSxLINES, e.g. 5x4: a five-character quatrain with ，and 。.")
@click.option("--valid-only", is_flag=True, help="Keep only samples that parse (code, with ast) or decode cleanly (music); resample the rest.")
@click.option("--wav", is_flag=True, help="Music with -o: also a WAV beside each MIDI file (needs fluidsynth).")
@click.option("--png", is_flag=True, help="Music with -o: also a piano-roll PNG beside each MIDI file.")
@click.option("--musicxml", is_flag=True, help="Music with -o: also a MusicXML score beside each MIDI file.")
@click.option("--score", is_flag=True, help="Music with -o: also an engraved score, NAME.score.png (needs LilyPond).")
@click.pass_context
def sample(ctx, run, prime, prime_file, oov, length, temperature, top_k, top_p, greedy, num_samples, stop, seed, checkpoint,
           output, overwrite, as_json, bpm, instrument, velocity, bars, notes, drop_prime, warmup, in_key, key_name, key_penalty, lines, acrostic, form, valid_only, wav, png, musicxml, score):
    """Generate text from RUN: a run directory, or a shipped model's name.

    Without RUN, the shipped default model (shakespeare) writes a poem.
    """
    from .checkpoint import resolve_run
    from .generation import generate_samples, generate_valid, load_generator, output_paths, resolve_config, resolve_seed, sample_record
    from .music.midi import instrument_program
    from .sampling import SamplingConfig
    from .writers import check_free, write_output

    if prime is not None and prime_file is not None:
        raise click.UsageError("--prime and --prime-file: expected one, received both", ctx)
    from .music.dataset import MUSIC_SUFFIXES, encode_primer, limit_for

    run_dir = resolve_run(run)
    corpus_config = run_dir.load_config().corpus
    music = corpus_config.kind == "music"
    if (bars or notes) and not music:
        raise click.UsageError(f"--{'bars' if bars else 'notes'}: expected a music run, received a {corpus_config.kind} run", ctx)
    if bars and notes:
        raise click.UsageError("--bars and --notes: expected one, received both", ctx)
    extras = [name for name, on in (("wav", wav), ("png", png), ("musicxml", musicxml), ("score", score)) if on]
    if extras and not (music and output is not None):
        raise click.UsageError(f"--{extras[0]}: expected a music run and -o", ctx)
    if prime_file is not None and prime_file.suffix.lower() in MUSIC_SUFFIXES:
        if not music:
            raise click.UsageError(f"--prime-file {str(prime_file)!r}: a music file needs a music run", ctx)
        prime = encode_primer(prime_file, corpus_config.encoding)
    elif prime_file is not None:
        try:
            prime = prime_file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise click.BadParameter(f"{prime_file}: invalid UTF-8 at byte {exc.start}", param_hint="--prime-file")
    key = None
    if (in_key or key_name is not None or key_penalty is not None) and not music:
        option = "--in-key" if in_key else ("--key" if key_name is not None else "--key-penalty")
        raise click.UsageError(f"{option}: expected a music run, received a {corpus_config.kind} run", ctx)
    if in_key and key_penalty is not None:
        raise click.UsageError("--in-key and --key-penalty: expected one, received both", ctx)
    if key_name is not None:
        from .music.keys import header_sharps, parse_key

        try:
            key = parse_key(key_name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--key")
        primed = header_sharps(prime or "")
        if primed is not None and primed != key:
            raise click.UsageError(f"--key {key_name}: the prime's header already names K:{primed}", ctx)
    if ctx.get_parameter_source("length") == ParameterSource.DEFAULT and music:
        # A tune ends at its newline (or at --bars/--notes), long before this; a chorale needs ~5 chars a sixteenth.
        length = 20_000 if (bars or notes) else 8_000
    if acrostic and not (form or lines) and _is_han(acrostic):
        vocab = run_dir.load_vocab()
        if vocab.id_of("，") is not None and vocab.id_of("。") is not None:
            form = f"5x{len(acrostic)}"  # a Chinese acrostic is a five-character poem unless told otherwise
            log.info("--acrostic: writing the form %s (give --form or --lines to choose another)", form)
    poem_lines = lines or (int(form.partition("x")[2]) if form.partition("x")[2].isdigit() else 0) or len(acrostic)
    if ctx.get_parameter_source("length") == ParameterSource.DEFAULT and poem_lines:
        length = 400 * poem_lines  # a poem ends at its last line; this only bounds a runaway line
    stops = tuple(_unescape(s) for s in stop)
    seed, drawn = resolve_seed(seed)
    cfg = SamplingConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                         num_samples=num_samples, stop=stops, seed=seed,
                         limit=limit_for(corpus_config.encoding, bars, notes, primed_header="|" in (prime or "")),
                         key_penalty=float("inf") if in_key else key_penalty, key=key,
                         lines=lines or 0, acrostic=acrostic, form=form)
    cfg.validate()
    render_options = {"bpm": bpm, "program": instrument_program(instrument), "velocity": velocity,
                      "encoding": corpus_config.encoding, "wav": wav, "png": png, "musicxml": musicxml, "score": score}
    paths = output_paths(output, num_samples, ".mid" if music else ".txt") if output is not None else []
    check_free(paths, overwrite, also=tuple(".score.png" if name == "score" else f".{name}" for name in extras))
    gen = load_generator(run_dir.path, checkpoint, num_samples)
    cfg = resolve_config(gen, cfg, prime, warmup)
    if drawn and not ctx.obj["quiet"]:
        click.echo(f"seed: {seed}", err=True)
    stream = output is None and num_samples == 1 and not as_json and sys.stdout.isatty() and not drop_prime
    if stream and prime:
        click.echo(prime, nl=False)
    on_text = (lambda _s, text: (sys.stdout.write(text), sys.stdout.flush())) if stream and not valid_only else None
    if valid_only:
        if corpus_config.kind == "text":
            raise click.UsageError("--valid-only: expected a code or music run, received a text run", ctx)
        kept, tried = generate_valid(gen, cfg, prime, oov=oov, warmup=warmup)
        what = "parse as Python" if corpus_config.kind == "code" else "decode cleanly"
        log.info("--valid-only: %d of %d samples %s (%.0f%%)", len(kept), tried, what, 100 * len(kept) / tried)
        if len(kept) < num_samples:
            log.warning("--valid-only: kept %d of the %d samples asked for", len(kept), num_samples)
        results = [(c, i, s) for c, i, s in kept]
        stream = False
    else:
        samples = generate_samples(gen, cfg, prime, oov=oov, on_text=on_text, warmup=warmup)
        results = [(cfg, i, s) for i, s in enumerate(samples)]
    if stream:
        click.echo("")
        return
    # What leads each output: the prime, nothing, or (music) just the prime's header.
    lead = prime or ""
    if drop_prime:
        lead = lead[: lead.index("|") + 1] if music and "|" in lead else ""
    for i, (used_cfg, index, s) in enumerate(results):
        record = sample_record(gen, used_cfg, prime, index, s)
        if paths:
            write_output(paths[i], lead + s.text, record, render_options)
            click.echo(str(paths[i]))
        elif as_json:
            click.echo(json.dumps({**record, "text": lead + s.text}, ensure_ascii=False))
        else:
            if num_samples > 1:
                click.echo(f"--- sample {i + 1}/{num_samples} ---")
            click.echo(lead + s.text)


def _is_han(text: str) -> bool:
    import re

    from .corpora import HAN

    return bool(re.fullmatch(f"[{HAN}]+", text))


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


