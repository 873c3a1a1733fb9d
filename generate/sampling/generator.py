"""Sampling from a run directory: load, prime, generate, check, and record.

`load_generator` builds the sampling model at its own batch size from the
same builder as training, loads the checkpoint's weights into it, and reads
them into the fused step network that `loop.Sampler` runs. `generate_samples`
runs one batch for settings that `resolve.resolve_options` made.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.config import FILE_SEPARATOR
from ..data.labels import ANY
from ..fileio import sha256_file
from ..model import bundle
from ..model.builder import build_model
from ..model.checkpoint import load_weights_into
from ..model.config import RunConfig
from ..model.label_schedule import drawn_labels
from ..model.network import StepNetwork
from ..model.rundir import RunDir, resolve_run
from ..music import chorale, melody
from ..music.sampling import repeat_shares, usual_meters
from .beam import BeamSearch
from .constraints import Automaton, key_automaton, poem_automaton
from .english_verse import write_verse
from .loop import Sample, Sampler, SamplingConfig
from .music_form import bar_automaton, cadence_automaton, ending_automaton, music_automaton
from .options import SampleOptions
from .python import python_automata
from .python.lines import mend
from .regulated import RegulatedVerse
from .repeats import RepeatedParts
from .resolve import RunFacts, resolve_options
from .voice_leading import VoiceLeading

log = logging.getLogger(__name__)
# Syntax plug-ins: `SamplingConfig.syntax` names one, which builds its automata for a vocabulary.
SYNTAX_AUTOMATA = {"python": python_automata}  # (music's is `music_form.music_automaton`, which takes the bars too)


@dataclass
class Generator:
    run: RunDir
    config: RunConfig
    facts: RunFacts
    checkpoint: Path
    sampler: Sampler

    @property
    def vocab(self):
        return self.facts.vocab

    def resolve(self, options: SampleOptions) -> SamplingConfig:
        """`options` verified and resolved for this run."""
        return resolve_options(options, self.facts)

    def sample(self, options: SampleOptions, on_text: Callable[[int, str], None] | None = None) -> list[Sample]:
        """Samples one batch for `options` (see `generate_samples`)."""
        return generate_samples(self, self.resolve(options), on_text)


def load_generator(run_path: Path | str, checkpoint: str = "best", num_samples: int = 1) -> Generator:
    """Prepares a run (a path or a shipped model's name) for sampling `num_samples` streams at once.

    Raises:
        UsageError: not a run directory, or a bad checkpoint choice.
        CheckpointError: a damaged checkpoint.
    """
    run = resolve_run(run_path)
    config = run.load_config()
    facts = RunFacts.of(run)
    path = run.sampling_model(checkpoint)
    if checkpoint == "best" and path == run.latest:
        log.warning("%s has not validated yet (no best.keras): sampling latest.keras, its newest weights", run.path)
    return Generator(run, config, facts, path, Sampler(step_network(run, path, num_samples), facts.vocab.chars, facts.labels))


def step_network(run: RunDir, path: Path, num_samples: int = 1):
    """The network `path` holds, ready to step: a bundle's graph on onnxruntime, or a checkpoint's weights in Keras.

    Raises:
        CheckpointError: a damaged checkpoint, or a graph onnxruntime cannot load.
    """
    if path.suffix == ".onnx":  # `RunDir.sampling_model` returns a bundle's model.onnx
        return bundle.step_network(run.path)
    config = run.load_config()
    model = build_model(config.model, num_samples, seq_len=1)
    load_weights_into(model, path)
    return StepNetwork.from_model(model, config.model)


def generate_samples(gen: Generator, cfg: SamplingConfig, on_text: Callable[[int, str], None] | None = None,
                     runner=None) -> list[Sample]:
    """Samples `cfg.num_samples` texts after `cfg.prime` (or the model's default start).

    Without a prime and with a warm-up, each stream first runs to a natural
    boundary (the end of a tune, file or paragraph), and its sample starts
    there: from a hidden state like those seen in training, not from zeros.

    Args:
        gen: the loaded run.
        cfg: settings from `gen.resolve(options)`, which verified them.
        on_text: called as (stream, text) with final text, for streaming output.
        runner: where the model runs: by default `gen.sampler`, here on this thread; a server's
            `serving.engine.EngineRunner`, whose `generate`, `prefill` and `run_job` stand for the sampler's.
    """
    prime_ids = gen.vocab.encode(cfg.prime, oov=cfg.oov, option="prime") if cfg.prime else []
    if not prime_ids:
        prime_ids = gen.vocab.encode(gen.facts.default_prime())
    rng = np.random.default_rng(cfg.seed)
    run_cfg = replace(cfg, stop=tuple(cfg.stop) + gen.facts.default_stops())
    runner = runner if runner is not None else gen.sampler
    if cfg.verse_lines:
        return [Sample(write_verse(gen.sampler, gen.vocab, run_cfg, prime_ids, index, runner=runner,
                                   on_line=(lambda text, i=index: on_text(i, text)) if on_text else None), True)
                for index in range(cfg.num_samples)]
    if cfg.beam:
        beams = runner.run_job(BeamSearch(gen.sampler, prime_ids, run_cfg, build_automata(gen.facts, cfg)))
        return [Sample(b.text, b.stopped, b.score, b.logprob, -float(np.mean(b.fed_logprobs)) if b.fed_logprobs else None)
                for b in beams[: cfg.num_samples]]
    automata = build_automata(gen.facts, cfg)
    if cfg.syntax == "python":  # each sample read by Python's parser, and drawn again from a line that breaks it
        samples = runner.generate(prime_ids, run_cfg, rng, automata=automata)
        budget = [cfg.length * cfg.num_samples]
        samples = [mend(runner, gen.vocab, run_cfg, cfg.prime, prime_ids, i, s, automata, budget)
                   for i, s in enumerate(samples)]
        for index, sample in enumerate(samples):
            if on_text and sample.text:
                on_text(index, sample.text)
        return samples
    samples = runner.generate(prime_ids, run_cfg, rng, on_text=on_text, automata=automata)
    if cfg.poem_lines and cfg.warmup and any(not s.text for s in samples):
        log.warning("%d stream(s) wrote no blank line to start a poem after within the warm-up; "
                    "give a --prime or --no-warmup", sum(not s.text for s in samples))
    return samples


def build_automata(run: RunFacts, cfg: SamplingConfig) -> tuple[Automaton | VoiceLeading | RegulatedVerse | RepeatedParts, ...]:
    """The constraints that `cfg` asks for, as automata over the run's vocabulary."""
    automata = []
    if run.music and (cfg.key_penalty or cfg.key is not None):
        automata.append(key_automaton(run.vocab.chars, run.encoding, cfg.key_penalty or 0.0, cfg.key))
    if cfg.poem_lines:
        columns = cfg.form_shape[0] if cfg.form_shape else 0
        # Without a prime, the default prime is fed first (not part of the text) and the poem starts after
        # the warm-up boundary; a prime is the poem's own beginning.
        automata.append(poem_automaton(run.vocab.chars, cfg.poem_lines, cfg.acrostic, columns,
                                       boundary=cfg.warmup, skip_first=not cfg.prime))
        if cfg.regulated:
            automata.append(RegulatedVerse(run.vocab.chars, *cfg.form_shape))
    if cfg.syntax == "music":
        # A piece runs to the corpus's usual length, unless --bars or --notes (a limit) says how long.
        lengths = run.piece_bars if cfg.limit is None else None
        bounds = (lengths.low, lengths.high, lengths.median) if lengths else ()
        label = cfg.label if cfg.label != ANY else ""
        if run.repeats and run.encoding == "melody" and cfg.limit is None:
            # Before the form's rules, so that a part played back wins over any rule that would now decide otherwise.
            automata.append(RepeatedParts(run.vocab.chars, *repeat_shares(run.repeats, label),
                                           lengths.high if lengths else None))
        automata.append(music_automaton(run.vocab.chars, run.encoding, *bounds))
        if run.meters:
            automata.append(bar_automaton(run.vocab.chars, run.encoding, usual_meters(run.meters, label)))
        if run.encoding == "chorale":
            automata.extend((cadence_automaton(run.vocab.chars), VoiceLeading(run.vocab.chars)))
        else:
            automata.append(ending_automaton(run.vocab.chars))
    elif cfg.syntax:
        automata.extend(SYNTAX_AUTOMATA[cfg.syntax](run.vocab.chars))
    return tuple(automata)


def is_valid(facts: RunFacts, text: str) -> bool:
    """Code parses with `ast`; music decodes with nothing repaired and at least one note; text always passes."""
    kind = facts.kind
    if kind == "code":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences in sampled strings
                ast.parse(textwrap.dedent(text.replace(FILE_SEPARATOR, "")))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        return True
    if kind == "music":
        decode = chorale.decode_chorale if facts.encoding == "chorale" else melody.decode_tune
        pieces = [decode(line) for line in text.splitlines() if line.strip()]
        voices = [voice for piece, _ in pieces for voice in getattr(piece, "voices", None) or [piece.events]]
        has_notes = any(event.pitch is not None for voice in voices for event in voice)
        return bool(pieces) and has_notes and all(report.dropped == 0 for _, report in pieces)
    return True


def derived_seed(seed: int, round_index: int) -> int:
    """The seed of redraw round `round_index` (round 0 is `seed` itself)."""
    return seed if round_index == 0 else (seed + round_index * 0x9E3779B97F4A7C15) % 2**63


def sample_record(gen: Generator, cfg: SamplingConfig, index: int, sample: Sample) -> dict:
    """The sidecar for one output: enough to regenerate it exactly."""
    return {
        "run": str(gen.run.path.resolve()),
        "checkpoint": str(gen.checkpoint.resolve()),
        "checkpoint_sha256": _checkpoint_hash(gen.checkpoint),
        "sample_index": index,
        **_settings_record(cfg),
        **({"drawn_label": drawn_labels(cfg.seed, cfg.num_samples, cfg.label_shares)[0 if cfg.beam else index]} if cfg.label == ANY else {}),
        "stopped": sample.stopped,
        "chars": len(sample.text),
        **({"beam_score": sample.beam_score, "logprob": sample.logprob, "fed_nats": sample.fed_nats} if cfg.beam else {}),
        "version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# How a setting is recorded where its value alone would not say it plainly; the rest are recorded as they are.
_RECORDED_AS = {
    "greedy": lambda cfg: cfg.is_greedy,
    "key_penalty": lambda cfg: cfg.key_penalty if cfg.key_penalty != float("inf") else "inf",
    "beam": lambda cfg: cfg.beam or None,
    "syntax": lambda cfg: cfg.syntax or None,
}
# Internal, a choice about the prime that the recorded prime already reflects, or the model's own label counts.
_NOT_RECORDED = ("banned", "oov", "label_shares")


def _settings_record(cfg: SamplingConfig) -> dict:
    """Every sampling setting of `cfg`, as JSON: a new setting is recorded without code here."""
    record = {}
    for f in fields(cfg):
        if f.name not in _NOT_RECORDED:
            value = _RECORDED_AS[f.name](cfg) if f.name in _RECORDED_AS else getattr(cfg, f.name)
            record[f.name] = list(value) if isinstance(value, tuple) else value
    return record


_hashes: dict[Path, str] = {}


def _checkpoint_hash(path: Path) -> str:
    if path not in _hashes:
        _hashes[path] = sha256_file(path)
    return _hashes[path]
