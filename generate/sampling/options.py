"""Sampling options: what a user asks of a sample, as one frozen dataclass.

`SampleOptions` holds every setting as the user gave it, from `generate
sample`'s options or from a job file's keys (the field names are both:
`--top-k` and `top_k`). `resolve.resolve_options` is the one place that
checks them against each other and the run, and fills in the defaults that
depend on the run. This module imports nothing heavy, so `--help` can show
its defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Characters per sample when none is asked for, by the run's kind. A tune ends at its newline (or at
# --bars/--notes) long before its bound; a chorale needs about five characters a sixteenth note.
DEFAULT_LENGTH = {"text": 500, "code": 500, "music": 8000}
BOUNDED_MUSIC_LENGTH = 20_000  # music with --bars or --notes, which end it
POEM_LINE_LENGTH = 400  # per line of a constrained poem, which ends at its last line: this bounds a runaway line
MAX_POEM_LINES = 1000
FORM_PATTERN = re.compile(r"([1-9][0-9]?)x([1-9][0-9]?)")  # COLUMNSxLINES, e.g. 5x4
MAX_SEED = 2**63
MAX_BEAM = 256


@dataclass(frozen=True)
class SampleOptions:
    """What a user asks of a sample. Every field is both a CLI option and a job-file key."""

    prime: str | None = None  # text the samples continue; None: the model's default start
    prime_file: Path | None = None  # read the prime from this file; a MIDI, ABC or MusicXML file is encoded
    oov: str = "error"  # prime characters outside the vocabulary: error, drop or unk
    length: int | None = None  # characters per sample; None: DEFAULT_LENGTH for the run's kind
    temperature: float = 1.0  # divides the logits; 0 is greedy
    top_k: int = 0  # sample from the k likeliest characters; 0: all
    top_p: float = 1.0  # sample from the smallest set holding this probability
    greedy: bool = False  # always take the likeliest character
    num_samples: int = 1  # samples generated together as one batch
    stop: tuple[str, ...] = ()  # a sample ends just before any of these strings
    seed: int | None = None  # same seed, same output; None: drawn (and reported by the caller)
    beam: int = 0  # beam search with this many beams, best first; 0: sample
    warmup: bool = True  # without a prime, start after a first tune, file or paragraph
    lines: int = 0  # a poem of this many non-empty lines; 0: free text
    acrostic: str = ""  # line i of the poem begins with character i
    form: str = ""  # a Chinese form COLUMNSxLINES, e.g. 5x4
    bars: int | None = None  # music: end after this many bars
    notes: int | None = None  # music: end after this many notes (note onsets, for chorales)
    in_key: bool = False  # music: never a pitch outside the header's key
    key: str | int | None = None  # music: every sampled header names this key (sharps or a name such as F#m)
    key_penalty: float | None = None  # music: nats off out-of-key pitches; None: DEFAULT_KEY_PENALTY
    syntax: bool | None = None  # code: brackets, quotes and indentation kept valid as sampled; None: on for Python runs
    valid_only: bool = False  # keep only samples that parse (code) or decode cleanly (music)
    min_length: int = 0  # redraw samples (stop strings end them early) shorter than this many characters
    max_copy: int | None = None  # redraw samples that copy more than this many characters in a row from the corpus
    drop_prime: bool = False  # leave the prime out of the output (music keeps its header)
    bpm: float = 120.0  # music: tempo of the MIDI output
    instrument: str | int = "piano"  # music: a General MIDI program number or name
    velocity: int = 80  # music: MIDI note velocity
    renders: tuple[str, ...] = ()  # music: files beside each MIDI output, from music.RENDER_SUFFIXES
