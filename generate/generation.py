"""Sampling from a run directory: load, prime, generate, and record.

`load_generator` builds the sampling model at its own batch size from the
same builder as training, loads the checkpoint's weights into it, and reads
them into the fused step network that `sampling.Sampler` runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .checkpoint import RunDir, load_weights_into, resolve_run
from .config import RunConfig
from .constraints import Automaton, key_automaton, poem_automaton
from .corpus import FILE_SEPARATOR
from .errors import UsageError
from .fileio import sha256_file
from .model import build_model
from .sampling import Sample, Sampler, SamplingConfig, StepNetwork
from .config import OOV_POLICIES
from .vocab import Vocab

log = logging.getLogger(__name__)
MIN_MUSIC_CHARS = 100  # a sampled tune or piece shorter than this (a failed header, say) is replaced by the next
# Nats off out-of-key pitch logits for music by default, per encoding: enough to keep a model's
# melodies in key at least as often as the corpus (benchmarks/RESULTS.md, "Staying in key") while
# leaving accidentals possible; chorales get less, since Bach's harmony needs its leading tones.
DEFAULT_KEY_PENALTY = {"melody": 1.5, "chorale": 1.0}


@dataclass
class Generator:
    run: RunDir
    config: RunConfig
    vocab: Vocab
    checkpoint: Path
    sampler: Sampler

    def default_prime(self) -> str:
        """What a sample starts from when no prime is given: a file start for code, a newline for text."""
        for candidate in (FILE_SEPARATOR if self.config.corpus.kind == "code" else "\n", "\n", " "):
            if self.vocab.id_of(candidate) is not None:
                return candidate
        return self.vocab.chars[0]

    def default_warmup(self) -> str:
        """Where a sample without a prime starts: after a tune, a file, or a blank line."""
        candidate = {"code": FILE_SEPARATOR, "music": "\n"}.get(self.config.corpus.kind, "\n\n")
        return candidate if all(self.vocab.id_of(c) is not None for c in candidate) else ""

    def default_stops(self) -> tuple[str, ...]:
        # A code model's file separator means "end of this file"; a music model's newline, "end of this tune".
        return {"code": (FILE_SEPARATOR,), "music": ("\n",)}.get(self.config.corpus.kind, ())

    @property
    def output_extension(self) -> str:
        return ".mid" if self.config.corpus.kind == "music" else ".txt"


def load_generator(run_path: Path, checkpoint: str = "best", num_samples: int = 1) -> Generator:
    """Prepares a run for sampling `num_samples` streams at once.

    Raises:
        UsageError: not a run directory, or a bad checkpoint choice.
        CheckpointError: a damaged checkpoint.
    """
    run = resolve_run(run_path)
    config = run.load_config()
    vocab = run.load_vocab()
    path = run.checkpoint(checkpoint)
    model = build_model(config.model, num_samples, seq_len=1)
    load_weights_into(model, path)
    net = StepNetwork.from_model(model, config.model)
    return Generator(run, config, vocab, path, Sampler(net, vocab.chars))


def resolve_seed(seed: int | None) -> tuple[int, bool]:
    """Returns (seed, drawn): a given seed, or a fresh one that the caller should report."""
    if seed is not None:
        if not 0 <= seed < 2**63:
            raise UsageError(f"--seed: expected an integer in [0, 2**63), received {seed}")
        return seed, False
    return secrets.randbits(32), True


def generate_samples(
    gen: Generator,
    cfg: SamplingConfig,
    prime: str | None,
    oov: str = "error",
    on_text: Callable[[int, str], None] | None = None,
    warmup: bool = True,
) -> list[Sample]:
    """Samples `cfg.num_samples` texts after `prime` (or the model's default start).

    Without a prime and with `warmup`, each stream first runs to a natural
    boundary (the end of a tune, file or paragraph), and its sample starts
    there: from a hidden state like those seen in training, not from zeros.

    Raises:
        UsageError: bad settings, or prime characters outside the vocabulary under `oov="error"`.
    """
    if oov not in OOV_POLICIES:
        raise UsageError(f"--oov: expected one of {', '.join(OOV_POLICIES)}, received {oov!r}")
    cfg.validate(len(gen.vocab))
    if cfg.seed is None:
        raise ValueError("cfg.seed must be resolved before sampling")
    prime_ids = gen.vocab.encode(prime, oov=oov, what="--prime") if prime else []
    if not prime_ids:
        prime_ids = gen.vocab.encode(gen.default_prime())
    rng = np.random.default_rng(cfg.seed)
    cfg = resolve_config(gen, cfg, prime, warmup)
    cfg = replace(cfg, stop=tuple(cfg.stop) + gen.default_stops())
    samples = gen.sampler.generate(prime_ids, cfg, rng, on_text=on_text, automata=build_automata(gen, cfg, prime))
    if cfg.poem_lines and cfg.warmup and any(not s.text for s in samples):
        log.warning("%d stream(s) wrote no blank line to start a poem after within the warm-up; "
                    "give a --prime or --no-warmup", sum(not s.text for s in samples))
    return samples


def build_automata(gen: Generator, cfg: SamplingConfig, prime: str | None = None) -> tuple[Automaton, ...]:
    """The constraints that `cfg` asks for, as automata over this run's vocabulary.

    Raises:
        UsageError: a music-only setting on a text or code run.
    """
    music = gen.config.corpus.kind == "music"
    if not music and (cfg.key is not None or cfg.key_penalty):
        option = "--key" if cfg.key is not None else ("--in-key" if cfg.key_penalty == float("inf") else "--key-penalty")
        raise UsageError(f"{option}: expected a music run, received a {gen.config.corpus.kind} run")
    automata = []
    if music and (cfg.key_penalty or cfg.key is not None):
        automata.append(key_automaton(gen.vocab.chars, gen.config.corpus.encoding, cfg.key_penalty or 0.0, cfg.key))
    if cfg.poem_lines:
        if music:
            raise UsageError(f"--{'acrostic' if cfg.acrostic else 'form' if cfg.form else 'lines'}: expected a text run, received a music run")
        columns = cfg.form_shape[0] if cfg.form_shape else 0
        # Without a prime, the default prime is fed first (not part of the text) and the poem starts after
        # the warm-up boundary; a prime is the poem's own beginning.
        automata.append(poem_automaton(gen.vocab.chars, cfg.poem_lines, cfg.acrostic, columns,
                                       boundary=cfg.warmup, skip_first=not prime))
    return tuple(automata)


MAX_VALID_ROUNDS = 4  # --valid-only samples at most this many batches before giving up on the rest


def is_valid(gen: Generator, text: str) -> bool:
    """Code parses with `ast`; music decodes with nothing repaired and at least one note; text always passes."""
    kind = gen.config.corpus.kind
    if kind == "code":
        import ast
        import textwrap
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences in sampled strings
                ast.parse(textwrap.dedent(text.replace(FILE_SEPARATOR, "")))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        return True
    if kind == "music":
        from .music import chorale, melody

        decode = chorale.decode_chorale if gen.config.corpus.encoding == "chorale" else melody.decode_tune
        pieces = [decode(line) for line in text.splitlines() if line.strip()]
        voices = [voice for piece, _ in pieces for voice in getattr(piece, "voices", None) or [piece.events]]
        has_notes = any(event.pitch is not None for voice in voices for event in voice)
        return bool(pieces) and has_notes and all(report.dropped == 0 for _, report in pieces)
    return True


def generate_valid(gen: Generator, cfg: SamplingConfig, prime: str | None, oov: str = "error",
                   warmup: bool = True, rounds: int = MAX_VALID_ROUNDS) -> tuple[list[tuple[SamplingConfig, int, Sample]], int]:
    """Samples batches until `cfg.num_samples` samples are valid (`is_valid`), or `rounds` batches are spent.

    Each batch after the first draws from a new seed derived from `cfg.seed`,
    recorded with every sample it yields, so each output can be regenerated.

    Returns:
        (kept, tried): (settings, index in its batch, sample) for each valid sample, and how many were tried.
    """
    kept: list[tuple[SamplingConfig, int, Sample]] = []
    tried = 0
    for round_index in range(rounds):
        round_cfg = replace(cfg, seed=derived_seed(cfg.seed, round_index))
        for index, sample in enumerate(generate_samples(gen, round_cfg, prime, oov=oov, warmup=warmup)):
            tried += 1
            if len(kept) < cfg.num_samples and is_valid(gen, (prime or "") + sample.text):
                kept.append((round_cfg, index, sample))
        if len(kept) >= cfg.num_samples:
            break
    return kept, tried


def derived_seed(seed: int, round_index: int) -> int:
    """The seed of resampling round `round_index` (round 0 is `seed` itself)."""
    return seed if round_index == 0 else (seed + round_index * 0x9E3779B97F4A7C15) % 2**63


def resolve_config(gen: Generator, cfg: SamplingConfig, prime: str | None, warmup: bool = True) -> SamplingConfig:
    """The settings a run actually samples with, for recording in sidecars; `cfg` is not changed.

    Adds the warm-up boundary (when there is no prime) and, for music, the
    minimum length below which an unprimed piece is replaced by the next, and
    the default key penalty.
    """
    music = gen.config.corpus.kind == "music"
    # A primed piece is the user's: never drop it for being short, or its continuation would lose the prime's header.
    min_chars = cfg.min_chars or (MIN_MUSIC_CHARS if music and not prime else 0)
    key_penalty = cfg.key_penalty if cfg.key_penalty is not None else (
        DEFAULT_KEY_PENALTY.get(gen.config.corpus.encoding, 0.0) if music else 0.0)
    limit = cfg.limit
    if cfg.poem_lines and limit is None:
        # The poem ends just before the newline of its last line; a prime's own lines count.
        remaining = cfg.poem_lines - (prime or "").count("\n")
        if remaining < 1:
            raise UsageError(f"--prime: holds {cfg.poem_lines - remaining} lines, expected fewer than the poem's {cfg.poem_lines}")
        limit = ("\n", remaining, False, "")
    return replace(cfg, warmup=gen.default_warmup() if warmup and not prime else "", min_chars=min_chars,
                   key_penalty=key_penalty, limit=limit)


def sample_record(gen: Generator, cfg: SamplingConfig, prime: str | None, index: int, sample: Sample) -> dict:
    """The sidecar for one output: enough to regenerate it exactly."""
    return {
        "run": str(gen.run.path.resolve()),
        "checkpoint": str(gen.checkpoint.resolve()),
        "checkpoint_sha256": _checkpoint_hash(gen.checkpoint),
        "seed": cfg.seed,
        "sample_index": index,
        "num_samples": cfg.num_samples,
        "prime": prime or "",
        "length": cfg.length,
        "temperature": cfg.temperature,
        "top_k": cfg.top_k,
        "top_p": cfg.top_p,
        "greedy": cfg.is_greedy,
        "stop": list(cfg.stop),
        "warmup": cfg.warmup,
        "min_chars": cfg.min_chars,
        "key_penalty": cfg.key_penalty if cfg.key_penalty != float("inf") else "inf",
        "key": cfg.key,
        "lines": cfg.lines,
        "acrostic": cfg.acrostic,
        "form": cfg.form,
        "limit": list(cfg.limit) if cfg.limit else None,
        "stopped": sample.stopped,
        "chars": len(sample.text),
        "version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


_hashes: dict[Path, str] = {}


def _checkpoint_hash(path: Path) -> str:
    if path not in _hashes:
        _hashes[path] = sha256_file(path)
    return _hashes[path]


def output_paths(target: Path, count: int, extension: str = ".txt") -> list[Path]:
    """One file for a single sample, else numbered files in a directory.

    A target that exists as a directory, ends with a slash, or has no suffix
    while count > 1 is treated as a directory.
    """
    as_dir = target.is_dir() or str(target).endswith(("/", "\\")) or count > 1
    if not as_dir:
        return [target]
    if target.exists() and not target.is_dir():
        raise UsageError(f"-o {str(target)!r}: expected a directory for {count} samples, found a file")
    width = max(2, len(str(count)))
    return [target / f"sample-{i + 1:0{width}d}{extension}" for i in range(count)]
