"""One sampling request, as `generate sample` makes it: verify, load, sample, then write or return.

The command line builds `SampleOptions` and an output target, and calls
`sample`. Everything is checked before the model loads: the options against
the run (`resolve.resolve_options`), and the output files against the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError, RenderError
from ..model.checkpoint import resolve_run
from ..music.midi import instrument_program
from ..outputs.writers import check_free, output_paths, write_output
from ..sampling import novelty
from ..sampling.generator import generate_samples, generate_valid, is_valid, load_generator, sample_record
from ..sampling.options import SampleOptions
from ..sampling.resolve import RunFacts, resolve_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Output:
    """One finished sample."""

    text: str  # what the user gets: the lead (prime, its music header, or nothing) and the sample
    record: dict  # the sidecar: everything needed to regenerate it
    path: Path | None = None  # where it was written, with `output`


@dataclass(frozen=True)
class SampleResult:
    outputs: list[Output]
    seed: int  # the seed of the first batch
    seed_drawn: bool  # no seed was given: this one was drawn, and the caller should report it
    streamed: bool  # the text went to `on_text` as it was sampled; nothing is left to print
    render_errors: tuple[str, ...] = ()  # renders a missing tool could not make; every output and sidecar was still written


def sample(run: str | Path, options: SampleOptions, checkpoint: str = "best", output: Path | None = None,
           overwrite: bool = False, on_text: Callable[[str], None] | None = None,
           on_start: Callable[[int, bool], None] | None = None, with_records: bool = False) -> SampleResult:
    """Samples `options.num_samples` texts from `run` (a run directory or a shipped model's name).

    Args:
        run: the run or shipped model.
        options: what to sample; checked here, before the model loads.
        checkpoint: `best`, `latest` or a `.keras` file in the run.
        output: a file or directory to write outputs and sidecars to; None returns the texts only.
        overwrite: replace existing output files.
        on_text: for a single sample with no output file, receives the prime and then the
            sample's text as it is generated (a terminal shows it as it comes).
        on_start: called with (seed, drawn) once everything is checked and the model is loaded.
        with_records: the caller shows the records (`--json`): measure each sample's longest copy
            from the training corpus for them, as for sidecars, when the corpus is at hand.

    Raises:
        OptionError: a bad option, named as its field.
        UsageError: a bad run, checkpoint or output path.
        GenerateError: a failed write.

    A render a missing tool cannot make (a WAV without fluidsynth) does not
    stop the other outputs: it lands in `SampleResult.render_errors`.
    """
    run_dir = resolve_run(run)
    facts = RunFacts.of(run_dir)
    cfg = resolve_options(options, facts)
    if options.renders and output is None:
        raise OptionError(options.renders[0], "expected -o, a MIDI file to render beside")
    render = {"bpm": options.bpm, "program": instrument_program(options.instrument), "velocity": options.velocity,
              "encoding": facts.encoding, "renders": options.renders}
    paths = output_paths(output, options.num_samples, ".mid" if facts.music else ".txt") if output is not None else []
    check_free(paths, overwrite, options.renders)
    # Before the model loads: --max-copy without its corpus is a usage error.
    corpus_index, unavailable = _corpus_index(run_dir.load_config(), facts.vocab, options, bool(paths) or with_records)
    gen = load_generator(run_dir.path, checkpoint, options.num_samples)
    if on_start:
        on_start(cfg.seed, options.seed is None and not options.beam)
    stream = on_text is not None and output is None and options.num_samples == 1 and not options.drop_prime \
        and not options.valid_only and not options.min_length and options.max_copy is None and not options.beam
    copies: dict[str, int] = {}  # sampled text -> its longest copy, measured once

    def copy_of(s) -> int:
        if s.text not in copies:
            copies[s.text] = novelty.longest_copy(gen.vocab, corpus_index, s.text)
        return copies[s.text]

    filters = {"--valid-only": options.valid_only, "--min-length": options.min_length,
               "--max-copy": options.max_copy is not None}
    if any(filters.values()):
        def accept(s) -> bool:
            return (len(s.text) >= options.min_length
                    and (not options.valid_only or is_valid(gen, cfg.prime + s.text))
                    and (options.max_copy is None or copy_of(s) <= options.max_copy))

        kept, tried = generate_valid(gen, cfg, accept=accept)
        flags = " and ".join(name for name, on in filters.items() if on)
        what = " and ".join([*(["parse as Python" if facts.kind == "code" else "decode cleanly"] if options.valid_only else []),
                             *([f"have at least {options.min_length} characters"] if options.min_length else []),
                             *([f"copy at most {options.max_copy} characters in a row"] if options.max_copy is not None else [])])
        log.info("%s: %d of %d samples %s (%.0f%%)", flags, len(kept), tried, what, 100 * len(kept) / tried)
        if len(kept) < options.num_samples:
            log.warning("%s: kept %d of the %d samples asked for", flags, len(kept), options.num_samples)
    else:
        if stream and cfg.prime:
            on_text(cfg.prime)
        samples = generate_samples(gen, cfg, on_text=(lambda _stream, text: on_text(text)) if stream else None)
        kept = [(cfg, index, s) for index, s in enumerate(samples)]
    lead = _lead(cfg.prime, options.drop_prime, facts.music)
    outputs, render_errors = [], []
    for i, (used_cfg, index, s) in enumerate(kept):
        record = sample_record(gen, used_cfg, index, s)
        record["max_copy"] = options.max_copy
        record["longest_copy"] = copy_of(s) if corpus_index is not None else None
        if unavailable:
            record["longest_copy_unavailable"] = unavailable
        if facts.music:
            record.update(bpm=options.bpm, instrument=options.instrument, program=render["program"], velocity=options.velocity)
        if paths:
            try:
                write_output(paths[i], lead + s.text, record, render)
            except RenderError as exc:  # the MIDI file and sidecar are written; the other outputs still come
                render_errors.append(f"{paths[i]}: {exc}")
        outputs.append(Output(lead + s.text, record, paths[i] if paths else None))
    return SampleResult(outputs, cfg.seed, options.seed is None and not options.beam, stream, tuple(render_errors))


def _corpus_index(config, vocab, options: SampleOptions, records: bool):
    """(copy index, "") for --max-copy or for sidecars, or (None, why not): --max-copy needs the corpus, sidecars take it if at hand."""
    if options.max_copy is not None:
        try:
            return novelty.copy_index(config, vocab), ""
        except novelty.CorpusUnavailable as exc:
            raise OptionError("max_copy", f"needs the run's training corpus: {exc}") from None
    return novelty.optional_copy_index(config, vocab) if records else (None, "")


def _lead(prime: str, drop_prime: bool, music: bool) -> str:
    """What leads each output: the prime, nothing, or (music) just the prime's header."""
    if not drop_prime:
        return prime
    return prime[: prime.index("|") + 1] if music and "|" in prime else ""
