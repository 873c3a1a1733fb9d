"""Sampling options: what a user asks of a sample, declared once.

Each field of `SampleOptions` carries its `Declaration`: help, range, choices,
and whether it is a command-line option and a job-file key (with the reason
when it is not). Everything else is derived from it: `generate sample`'s
flags (`cli/options.py`), the job file's sample keys (`jobs/schema.py`), the
Python API's keywords, and the type and range checks in `verify_declared`.
`resolve.resolve_options` adds the checks that depend on each other or on
the run. This module imports nothing heavy, so `--help` can show defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError
from ..typed_values import has_lone_surrogate

# Characters per sample when none is asked for, by the run's kind. A tune ends at its newline (or at
# --bars/--notes) long before its bound; a chorale needs about five characters a sixteenth note.
DEFAULT_LENGTH = {"text": 500, "code": 500, "music": 8000}
BOUNDED_MUSIC_LENGTH = 20_000  # music with --bars or --notes, which end it
POEM_LINE_LENGTH = 400  # per line of a constrained poem, which ends at its last line: this bounds a runaway line
MAX_POEM_LINES = 1000
REGULATED_FORMS = ((5, 4), (7, 4), (5, 8), (7, 8))  # (columns, lines) of the four regulated Tang forms
FORM_PATTERN = re.compile(r"([1-9][0-9]?)x([1-9][0-9]?)")  # COLUMNSxLINES, e.g. 5x4
MAX_SEED = 2**63
MAX_BEAM = 256
MAX_TEMPERATURE = 3.0  # the highest temperature taken; the co-writing screen stops at 2
OOV_CHOICES = ("error", "drop", "unk")  # data.config.OOV_POLICIES, which a test keeps equal
MAX_LABEL_STRENGTH = 10.0  # guidance far above this writes noise
RENDER_NAMES = ("wav", "png", "musicxml", "score", "abc")  # music.RENDER_SUFFIXES' keys, which a test keeps equal


@dataclass(frozen=True)
class Declaration:
    """How one option is named, shown and checked everywhere it appears.

    `minimum`/`maximum` are inclusive bounds, `above`/`below` exclusive ones; a
    None value always passes (it means "not asked for"). `cli` and `job` say
    whether the option is a `generate sample` flag and a job-file key; when one
    is False, `why` says what takes its place.
    """

    help: str
    short: str = ""  # a one-letter CLI alias such as "-n"
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    bounds_text: str = ""  # how to say the range when the numbers read badly (2**63)
    choices: tuple[str, ...] = ()
    default_text: str = ""  # the default as help shows it, when it depends on the run
    cli: bool = True
    job: bool = True
    why: str = ""
    cycles: bool = False  # a job file may give a list of values, used in turn by its outputs
    job_help: str = ""  # the key's meaning in a job file, where it differs
    music: bool = False  # only music runs take it
    draws: bool = False  # it changes how a character is drawn from the logits, which beam search does not do
    # A `draws` option whose default is None takes the run's own recorded default (`RunDir.sampling_defaults`),
    # else this value.
    fallback: object = None

    def expected(self, integer: bool) -> str:
        """The range in words, as error messages say it: `an integer >= 1`, `a number in (0, 1]`."""
        noun = "an integer" if integer else "a number"
        if self.bounds_text:
            return f"{noun} in {self.bounds_text}"
        low = (f"[{_number(self.minimum)}" if self.minimum is not None else f"({_number(self.above)}") \
            if self.minimum is not None or self.above is not None else ""
        high = (f"{_number(self.maximum)}]" if self.maximum is not None else f"{_number(self.below)})") \
            if self.maximum is not None or self.below is not None else ""
        if low and high:
            return f"{noun} in {low}, {high}"
        if low:
            return f"{noun} {'>=' if self.minimum is not None else '>'} {low[1:]}"
        return f"{noun} {'<=' if self.maximum is not None else '<'} {high[:-1]}" if high else noun

    def holds(self, value: float) -> bool:
        return ((self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
                and (self.above is None or value > self.above) and (self.below is None or value < self.below))


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def option(default, help: str, **declared):
    """A `SampleOptions` field with its declaration."""
    return field(default=default, metadata={"declaration": Declaration(help, **declared)})


@dataclass(frozen=True)
class SampleOptions:
    """What a user asks of a sample.

    Every field is a `generate sample` option (`--top-k`) and a job-file key
    (`top_k`) of the same name, except where its declaration says otherwise
    and why (`num_samples` and `renders`). The Python API takes the same names
    as keywords: `generate.load("shakespeare").sample(prime="ROMEO:", top_k=5)`.
    """

    prime: str | None = option(None, "Text the samples continue from.", cycles=True,
                               job_help="prime text; a list is used in turn, output n takes item n mod its length")
    prime_file: Path | None = option(None, "Read the prime from a UTF-8 file, or a MIDI, ABC or MusicXML file for music runs.")
    oov: str = option("error", "Prime characters outside the vocabulary: fail, drop them, or map to the unknown token.",
                      choices=OOV_CHOICES)
    length: int | None = option(None, "Characters to generate per sample.", short="-n", minimum=1,
                                default_text=f"{DEFAULT_LENGTH['text']}; music runs {DEFAULT_LENGTH['music']}, ended by the end of the tune or piece")
    # Above about 2 a character model writes noise; 1e6 is uniform noise. The bound is generous, and said.
    temperature: float | None = option(None, "Softmax temperature; 0 is greedy.", short="-t", minimum=0,
                                       maximum=MAX_TEMPERATURE, cycles=True, draws=True, fallback=1.0,
                                       default_text="the model's own (its card says), else 1",
                                job_help="sampling temperature; a list is used in turn like prime.")
    top_k: int = option(0, "Sample from the k likeliest characters; 0 = all.", minimum=0, draws=True)
    top_p: float = option(1.0, "Sample from the smallest set holding this probability.", above=0, maximum=1, draws=True)
    greedy: bool = option(False, "Always take the likeliest character.", draws=True)
    num_samples: int = option(1, "Samples generated together as one batch.", short="-N", minimum=1, job=False,
                              why="a job makes `count` outputs, one sample each, each from its own derived seed")
    stop: tuple[str, ...] = option((), "End a sample before this string (repeatable; \\n escapes allowed).",
                                   job_help="strings that end a sample (a sample ends just before the first)")
    seed: int | None = option(None, "Same seed, same output; drawn and printed to stderr if omitted.", minimum=0,
                              below=MAX_SEED, bounds_text="[0, 2**63)",
                              job_help="base seed; default: derived from the run id, so a rerun repeats it")
    beam: int = option(0, "Beam search with K beams instead of sampling: the likeliest continuations by mean "
                          "log-probability per character, best first (-N of them). Beams often share all but their "
                          "last characters: for different texts, sample (-N without --beam).", minimum=0, maximum=MAX_BEAM)
    warmup: bool = option(True, "Without a prime, start each sample after a first tune, file or paragraph.")
    lines: int = option(0, "A poem of N non-empty lines, then stop.", minimum=0, maximum=MAX_POEM_LINES)
    acrostic: str = option("", "Line i of the poem begins with character i of TEXT.")
    form: str = option("", "A Chinese form COLUMNSxLINES, e.g. 5x4: a five-character quatrain with ，and 。; or "
                           "sonnet: 14 English lines, ABAB CDCD EFEF GG, in pentameter.")
    regulated: bool = option(False, "With --form 5x4, 7x4, 5x8 or 7x8: regulated verse by construction, each "
                                    "character's level or oblique tone and the even lines' rhyme by the Pingshui tables.")
    rhyme: str = option("", "English verse: the lines' rhyme scheme, one letter a line (AABB, ABAB, ABCB, "
                            "ABABCDCDEFEFGG); lines with one letter end on words that rhyme by the CMU dictionary. "
                            "With more --lines, the scheme repeats with new rhymes.")
    meter: str = option("", "English verse: lines of this many syllables, within one (trimeter 6, tetrameter 8, "
                            "pentameter 10, hexameter 12).")
    new_lines: bool = option(True, "Chinese verse: redraw a poem (--form, --lines or --acrostic) that copies a line "
                                   "of five or seven characters from the corpus, with derived, recorded seeds (for "
                                   "models that carry their corpus's lines: lines.json).")
    bars: int | None = option(None, "Music: stop after this many bars.", minimum=1, music=True)
    notes: int | None = option(None, "Music: stop after this many notes (note onsets, for chorales).", minimum=1, music=True)
    in_key: bool = option(False, "Music: never sample a pitch outside the key its piece's header names (the prime's or "
                                 "a sampled one).", music=True)
    key: str | int | None = option(None, "Music: every sampled header names this key: sharps (-6..5) or a name such as "
                                         "D, Bb or F#m.", music=True)
    key_penalty: float | None = option(None, "Music: nats off the logits of out-of-key pitches (0 turns it off).",
                                       minimum=0, default_text="1.5 for melodies, 1 for chorales", music=True)
    syntax: bool | None = option(None, "Keep the text well formed as it is sampled: code, valid Python (brackets, "
                                       "strings, indentation, expressions); music, pieces that decode with nothing "
                                       "dropped (header, notes, bars) and run to the corpus's usual length.",
                                 default_text="on for Python and music runs")
    valid_only: bool = option(False, "Keep only samples that parse (code, with ast) or decode cleanly (music); "
                                     "resample the rest.")
    min_length: int = option(0, "Redraw samples shorter than this (a stop string can end them early), with derived, "
                                "recorded seeds.", minimum=0)
    max_copy: int | None = option(None, "Redraw samples that copy more than this many characters in a row from the "
                                        "training corpus, with derived, recorded seeds.", minimum=1)
    label: str | None = option(None, "Write in this style: one of the labels a labelled model was trained with "
                                     "(`generate info` lists them), none, or any (each sample draws one, as often "
                                     "as the corpus has it; what a model labelled by rhyme does unless told).")
    then_label: str | None = option(None, "Change style partway: LABEL@N switches to LABEL after N characters of the "
                                          "sample, e.g. reel@400.")
    label_strength: float | None = option(None, "How hard a label steers: 1 is the model's own distribution given the "
                                                "label; above 1 sharpens it (classifier-free guidance against no label).",
                                          minimum=0, maximum=MAX_LABEL_STRENGTH, fallback=2.0,
                                          default_text="the model's own (its card says), else 2")
    drop_prime: bool = option(False, "Leave the prime out of the output (music keeps its header).")
    bpm: float = option(120.0, "Music: tempo of MIDI output.", minimum=1, maximum=1000, music=True)
    instrument: str | int = option("piano", "Music: a General MIDI program number or name (fiddle, flute, ...).", music=True)
    velocity: int = option(80, "Music: MIDI note velocity (loudness).", minimum=1, maximum=127, music=True)
    gain: float = option(0.0, "Music with --wav: decibels added to the WAV's peak, which is set to -1 dBFS "
                              "(-6 for a quieter file; at most 1, a full-scale peak).", minimum=-60, maximum=1, music=True)
    renders: tuple[str, ...] = option((), "Music: files rendered beside each MIDI output.", choices=RENDER_NAMES,
                                      cli=False, job=False, music=True,
                                      why="one flag per render (--wav, --png, --musicxml, --score, --abc); a job's `formats` names them")


def declarations() -> dict[str, Declaration]:
    """Every option's declaration, by field name, in the dataclass's order."""
    return {f.name: f.metadata["declaration"] for f in dataclasses.fields(SampleOptions)}


def defaults() -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(SampleOptions)}


@dataclass(frozen=True)
class Kind:
    """A field's type as the checks, the CLI and job files see it."""

    types: tuple[type, ...]  # accepted Python types of one value (an int passes for a float)
    optional: bool  # None is allowed
    sequence: bool  # a tuple of values (a list in TOML and JSON)

    @property
    def integer(self) -> bool:
        return self.types == (int,)

    def accepts(self, value: object) -> bool:
        if value is None:
            return self.optional
        values = value if self.sequence else (value,)
        if self.sequence and not isinstance(value, (list, tuple)):
            return False
        return all(isinstance(v, self.types) and not (isinstance(v, bool) and bool not in self.types)
                   and not (isinstance(v, float) and not math.isfinite(v)) and not (isinstance(v, str) and has_lone_surrogate(v))
                   for v in values)

    def describe(self) -> str:
        names = " or ".join("a path" if t is Path else t.__name__ for t in self.types)
        return f"a list of {names}" if self.sequence else names


@functools.cache
def kinds() -> dict[str, Kind]:
    """Each field's `Kind`, read from its annotation (once: every request's checks ask for it)."""
    hints = typing.get_type_hints(SampleOptions)
    found = {}
    for name, hint in hints.items():
        args = typing.get_args(hint) or (hint,)
        optional = type(None) in args
        args = tuple(a for a in args if a is not type(None))
        sequence = typing.get_origin(hint) is tuple
        if sequence:
            args = (typing.get_args(hint)[0],)
        types = tuple(t for a in args for t in ((float, int) if a is float else (str, Path) if a is Path else (a,)))
        found[name] = Kind(tuple(dict.fromkeys(types)), optional, sequence)
    return found


def verify_declared(options: SampleOptions) -> None:
    """Checks every field against its declared type, choices and range.

    Raises:
        OptionError: naming the first field that fails.
    """
    field_kinds = kinds()
    for name, declaration in declarations().items():
        value, kind = getattr(options, name), field_kinds[name]
        if not kind.accepts(value):
            texts = value if kind.sequence and isinstance(value, (list, tuple)) else (value,)
            if any(isinstance(t, str) and has_lone_surrogate(t) for t in texts):
                raise OptionError(name, f"expected valid Unicode text, received {value!r} (a lone surrogate)")
            raise OptionError(name, f"expected {kind.describe()}, received {type(value).__name__} {value!r}")
        if value is None:
            continue
        for item in value if kind.sequence else (value,):
            if declaration.choices and item not in declaration.choices:
                raise OptionError(name, f"expected {'names from' if kind.sequence else 'one of'} "
                                        f"{', '.join(declaration.choices)}, received {item!r}")
            if isinstance(item, (int, float)) and not isinstance(item, bool) and not declaration.holds(item):
                raise OptionError(name, f"expected {declaration.expected(kind.integer)}, received {item!r}")


def flag_name(field: str) -> str:
    """A field's `generate sample` flag: `top_k` is `--top-k`."""
    return "--" + field.replace("_", "-")


def command_words(model: str, options: SampleOptions) -> list[str]:
    """`generate sample` as typed to draw `options` again: the model, then each option set away from its default.

    `shlex.join` of it is a command a shell runs as it is (stop strings escaped as the command line reads them).
    """
    words = ["generate", "sample", model]
    field_defaults, field_kinds = defaults(), kinds()
    for name, declared in declarations().items():
        value = getattr(options, name)
        if not declared.cli or value is None or value == field_defaults[name]:
            continue
        if field_kinds[name].types == (bool,):
            words.append(flag_name(name) if value else f"--no-{name.replace('_', '-')}")
        elif field_kinds[name].sequence:
            for item in value:
                words += [flag_name(name), str(item).replace("\n", "\\n").replace("\t", "\\t")]
        else:
            words += [flag_name(name), str(value)]
    return words


def options_from(keys: dict, where: str = "") -> SampleOptions:
    """`SampleOptions` from keyword names (the Python API, a server's JSON); lists become tuples.

    Raises:
        OptionError: an unknown name, naming the closest known one (`verify_declared` checks the values).
    """
    known = declarations()
    values = {}
    for name, value in keys.items():
        if name not in known:
            close = difflib.get_close_matches(name.replace("-", "_"), known, n=1, cutoff=0.75)
            expected = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(known)}"
            raise OptionError(name, f"unknown option{where}; {expected}")
        values[name] = tuple(value) if isinstance(value, list) else value
    return SampleOptions(**values)
