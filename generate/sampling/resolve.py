"""Resolving sampling options: the one place that checks them, then fills in the run's defaults.

`resolve_options` checks a `SampleOptions` once: ranges, combinations, and
what the run's kind and vocabulary allow. It raises `OptionError` naming the
field, which the command line reports as `--top-k: ...` and a job file as
`jobs.toml: job 'x': top_k: ...`. It then fills in the defaults that depend
on the run (lengths, warm-up, music limits and key penalties, poem forms)
and returns the `SamplingConfig` the loop runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.config import FILE_SEPARATOR, is_python_corpus
from ..data.labels import ANY, NONE, rhyme_group
from ..data.prosody import METERS, SONNET
from ..data.vocab import ENGLISH_MIN_LETTERS, HAN, Vocab, han_chars, latin_letters
from ..errors import OptionError, UsageError, expect
from ..limits import Limit
from ..music import MUSIC_SUFFIXES
from ..music.keys import header_sharps, parse_key
from ..music.midi import instrument_program
from ..music.sampling import DEFAULT_KEY_PENALTY, MIN_MUSIC_CHARS, limit_for
from .config import SamplingConfig
from .options import (
    BOUNDED_MUSIC_LENGTH,
    DEFAULT_LENGTH,
    FORM_PATTERN,
    POEM_LINE_LENGTH,
    REGULATED_FORMS,
    SampleOptions,
    declarations,
    defaults,
    verify_declared,
)

if TYPE_CHECKING:  # a run directory's module imports NumPy; options are checked before it is needed
    from ..model.rundir import PieceBars, RunDir

log = logging.getLogger(__name__)
# The fields `resolve_options` resolves; every other field `SamplingConfig` shares with `SampleOptions` is copied as given.
RESOLVED = {"length", "stop", "seed", "limit", "warmup", "min_chars", "syntax", "key_penalty", "key", "acrostic", "form", "regulated", "prime",
            "label", "then_label", "label_strength", "rhyme", "meter"}
PASSED_THROUGH = tuple(sorted(({f.name for f in dataclasses.fields(SamplingConfig)}
                               & {f.name for f in dataclasses.fields(SampleOptions)}) - RESOLVED))


@dataclass(frozen=True)
class RunFacts:
    """What options are checked against: a run's kind, music encoding and vocabulary (no TensorFlow)."""

    kind: str
    encoding: str
    vocab: Vocab
    python: bool = False  # a code run trained on Python source
    sampling_defaults: tuple[tuple[str, float], ...] = ()  # the run's own defaults for settings left unset
    piece_bars: PieceBars | None = None  # music: the corpus's usual bars per piece (`RunDir.piece_bars`)
    labels: tuple[str, ...] = ()  # a labelled model's label names in id order, `<none>` first
    meters: dict | None = field(default=None, hash=False)  # music: the corpus's meters, counted (`RunDir.piece_meters`)
    repeats: dict | None = field(default=None, hash=False)  # music: how often the corpus's tunes repeat a part
    corpus_lines: object = field(default=None, hash=False, compare=False)  # Chinese verse: hashes of the corpus's lines
    label_source: str = ""  # where a labelled model's labels came from (`--labels`: folder, rhythm, rhyme, ...)
    label_shares: tuple[tuple[str, float], ...] = ()  # each label's pieces (or files), `<none>` left out

    @classmethod
    def of(cls, run: RunDir) -> RunFacts:
        """The facts of `run`, its recorded sampling defaults checked as the options themselves are.

        Raises:
            UsageError: a sampling default that is not a setting, or out of its range.
        """
        config = run.load_config()
        defaults = run.sampling_defaults()
        for name, value in defaults.items():
            declared = declarations().get(name)
            if declared is None or declared.fallback is None:
                settable = [n for n, d in declarations().items() if d.fallback is not None]
                raise UsageError(f"{run.sampling}: {name!r} is not a setting a run may default; expected "
                                 f"{', '.join(settable)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not declared.holds(value):
                raise UsageError(f"{run.sampling}: {name}: expected {declared.expected(False)}, received {value!r}")
        labels = run.label_record() or {}
        counts = labels.get("counts", {})
        shares = tuple((name, float(counts.get(name, {}).get(labels.get("unit", "files"), 0)))
                       for name in labels.get("names", ())[1:])
        return cls(config.corpus.kind, config.corpus.encoding, run.load_vocab(), is_python_corpus(config.corpus),
                   tuple(sorted((name, float(value)) for name, value in defaults.items())),
                   run.piece_bars() if config.corpus.kind == "music" else None, run.label_names(),
                   run.piece_meters() if config.corpus.kind == "music" else None,
                   run.piece_repeats() if config.corpus.kind == "music" else None,
                   run.corpus_line_hashes(), labels.get("from", ""), tuple((name, n) for name, n in shares if n > 0))

    def default_setting(self, name: str):
        """A drawing setting left unset: the run's recorded default, else the declared fallback."""
        return dict(self.sampling_defaults).get(name, declarations()[name].fallback)

    @property
    def music(self) -> bool:
        return self.kind == "music"

    def has(self, chars: str) -> bool:
        return all(self.vocab.id_of(c) is not None for c in chars)

    def default_prime(self) -> str:
        """What a sample starts from when no prime is given: a file start for code, a newline for text."""
        for candidate in (FILE_SEPARATOR if self.kind == "code" else "\n", "\n", " "):
            if self.has(candidate):
                return candidate
        return self.vocab.chars[0]

    def default_warmup(self) -> str:
        """Where a sample without a prime starts: after a tune, a file, or a blank line."""
        candidate = {"code": FILE_SEPARATOR, "music": "\n"}.get(self.kind, "\n\n")
        return candidate if self.has(candidate) else ""

    def default_stops(self) -> tuple[str, ...]:
        # A code model's file separator means "end of this file"; a music model's newline, "end of this tune".
        return {"code": (FILE_SEPARATOR,), "music": ("\n",)}.get(self.kind, ())


def resolve_seed(seed: int | None) -> int:
    """A given seed, or a fresh one (the caller reports it)."""
    return secrets.randbits(32) if seed is None else seed


def resolve_options(options: SampleOptions, run: RunFacts) -> SamplingConfig:
    """Verifies `options` for `run` and resolves them into the settings the sampler runs with.

    Returns:
        A `SamplingConfig` with every default filled in, the prime read, and the seed drawn if none was given.

    Raises:
        OptionError: naming the first field that is out of range, conflicts with another, or asks
            for something the run cannot do.
    """
    _verify_ranges(options, len(run.vocab))
    _verify_combinations(options, run)
    prime = read_prime(options, run)
    key = _resolve_key(options, run, prime)
    if options.regulated and not han_chars(run.vocab.chars):
        raise OptionError("regulated", "expected a model that writes Chinese verse; this vocabulary has no Han characters")
    verse = _resolve_english_verse(options, run)  # drawn line by line (`english_verse`), not by the poem automaton
    acrostic = _in_the_vocabulary_script(options.acrostic, run)
    form, lines = ("", 0) if verse else (options.form, options.lines)
    if acrostic and not (form or lines) and re.fullmatch(f"[{HAN}]+", acrostic) and run.has("，。"):
        form = f"5x{len(acrostic)}"  # a Chinese acrostic is a five-character poem unless told otherwise
        log.info("--acrostic: writing the form %s (give --form or --lines to choose another)", form)
    poem_lines = _verify_poem(run, acrostic, form, lines, prime)
    if options.regulated and tuple(int(n) for n in (form or "0x0").split("x")) not in REGULATED_FORMS:
        raise OptionError("regulated", f"expected --form 5x4, 7x4, 5x8 or 7x8 (or a 4- or 8-character --acrostic), "
                                       f"received {('--form ' + form) if form else 'no form'}")
    if prime:
        run.vocab.encode(prime, oov=options.oov, option="prime")
    music_on = run.music
    length = POEM_LINE_LENGTH * verse["verse_lines"] if verse else options.length
    if length is None:
        bounded = music_on and (options.bars or options.notes)
        length = POEM_LINE_LENGTH * poem_lines if poem_lines else (
            BOUNDED_MUSIC_LENGTH if bounded else DEFAULT_LENGTH[run.kind])
    limit = limit_for(run.encoding, options.bars, options.notes, primed_header="|" in prime) if music_on else None
    if poem_lines:
        # The poem ends just before the newline of its last line; a prime's own lines count.
        limit = Limit("\n", poem_lines - prime.count("\n"), False)
    if options.in_key:
        key_penalty = float("inf")
    elif options.key_penalty is not None:
        key_penalty = float(options.key_penalty)
    else:
        key_penalty = DEFAULT_KEY_PENALTY.get(run.encoding, 0.0) if music_on else 0.0
    # Settings the loop takes as the user gave them (the logit filters' among them) pass straight through;
    # one left unset takes the run's own default (a beam draws nothing, so it keeps the fallback).
    passed = {name: getattr(options, name) for name in PASSED_THROUGH}
    for name, value in passed.items():
        if value is None and declarations()[name].fallback is not None:
            passed[name] = declarations()[name].fallback if options.beam else run.default_setting(name)
    return SamplingConfig(
        **passed, length=length, stop=tuple(options.stop), seed=resolve_seed(options.seed), limit=limit,
        # A beam starts from the prime or the model's default start: the warm-up samples, and would differ per beam.
        warmup=run.default_warmup() if options.warmup and not prime and not options.beam else "",
        # A primed piece is the user's: never drop it for being short, or its continuation would lose the prime's header.
        min_chars=MIN_MUSIC_CHARS if music_on and not prime and not options.beam else 0,
        syntax=_syntax(options, run),
        key_penalty=key_penalty, key=key, acrostic=acrostic, form=form, regulated=options.regulated, prime=prime,
        **_resolve_labels(options, run, prime), **verse,
    )


def _resolve_labels(options: SampleOptions, run: RunFacts, prime: str) -> dict:
    """`label`, `then_label`, `label_after` and `label_strength` (as given, else the run's default) for the loop,
    checked against the model's labels.

    Raises:
        OptionError: a label the model was not trained with, a label for a model without labels, or a
            `then_label` that is not LABEL@N.
    """
    names = [name for name in run.labels if name != NONE]
    label = options.label
    if run.label_source == "rhyme" and (label is None or label.lower() == ANY):
        # A poem rhymes in a group chosen before it is written, as a poet's does; a prime whose second
        # line is written has chosen it already (or rhymes in no group the model knows: no label).
        chosen = rhyme_group(prime)
        label = ANY if chosen is None else chosen if chosen in run.labels else "none"
    if options.label_strength is not None and not run.labels:
        raise OptionError("label_strength", "this model was trained without labels (generate train --labels makes one that has them)")
    resolved = {"label_strength": float(options.label_strength if options.label_strength is not None
                                        else run.default_setting("label_strength"))}
    for option, value in (("label", label), ("then_label", options.then_label)):
        if value is None:
            continue
        name, at = (value.rpartition("@")[0], value.rpartition("@")[2]) if option == "then_label" else (value, "0")
        if option == "then_label" and not (name and at.isdigit()):
            raise OptionError(option, f"expected LABEL@N (switch to LABEL after N characters), received {value!r}")
        if not run.labels:
            raise OptionError(option, "this model was trained without labels (generate train --labels makes one that has them)")
        if name.lower() in ("none", NONE):
            name = ""
        elif option == "label" and name.lower() == ANY:
            if not run.label_shares:
                raise OptionError(option, "any: expected a model whose labels.json counts its labels' pieces")
            name = ANY
            resolved["label_shares"] = run.label_shares
        elif name not in names:
            lowered = {n.lower(): n for n in names}
            close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise OptionError(option, f"expected one of {', '.join(names)} or none, received {name!r}{hint}")
        resolved[option] = name
        if option == "then_label":
            resolved["label_after"] = int(at)
    return resolved


def _in_the_vocabulary_script(acrostic: str, run: RunFacts) -> str:
    """A simplified-Chinese acrostic written in the traditional forms a traditional vocabulary has (said on stderr).

    Classical poetry corpora are in traditional characters and many writers type simplified ones:
    春风 becomes 春風 where the model knows 風. Characters with no known form are left to the vocabulary check.
    """
    unknown = [c for c in acrostic if not run.has(c)]
    if not unknown or not re.search(f"[{HAN}]", "".join(unknown)):
        return acrostic
    try:
        import opencc  # OpenCC's simplified-to-traditional tables: loaded only for a Han acrostic the vocabulary lacks
    except ImportError:
        return acrostic
    converter = opencc.OpenCC("s2t")
    converted = converter.convert(acrostic)
    if len(converted) != len(acrostic):  # a phrase rule changed the length: character by character instead
        converted = "".join(converter.convert(c)[:1] or c for c in acrostic)
    mapped = "".join(t if not run.has(c) and run.has(t) else c for c, t in zip(acrostic, converted))
    if mapped != acrostic:
        log.info("--acrostic %s: written as %s, the traditional characters this model was trained on", acrostic, mapped)
    return mapped


def _syntax(options: SampleOptions, run: RunFacts) -> str:
    """Which syntax automata a sample runs under: `python` (on for Python runs), `music` (on for music runs), or none."""
    if options.syntax is False:
        return ""
    if run.music:
        return "music"
    return "python" if options.syntax or run.python else ""


def read_prime(options: SampleOptions, run: RunFacts) -> str:
    """The prime text: given, read from a UTF-8 file, or encoded from a music file; "" for none.

    Raises:
        OptionError: an unreadable or non-UTF-8 file, or a music file for a run that is not music.
    """
    path = options.prime_file
    if path is None:
        return options.prime or ""
    if Path(path).suffix.lower() in MUSIC_SUFFIXES:
        if not run.music:
            raise OptionError("prime_file", f"{str(path)!r} is a music file, expected a music run for it")
        from ..music.dataset import encode_primer  # the score readers: not loaded for --help

        return encode_primer(path, run.encoding)
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OptionError("prime_file", f"{str(path)!r}: invalid UTF-8 at byte {exc.start}") from None
    except OSError as exc:
        raise OptionError("prime_file", f"{str(path)!r}: cannot read ({exc.strerror})") from None


def _verify_ranges(options: SampleOptions, vocab_size: int) -> None:
    """The declared checks (types, choices, ranges), then the bounds that depend on the run or on another field."""
    verify_declared(options)
    expect(options.top_k <= vocab_size, "top_k", f"an integer in [0, {vocab_size}] (the vocab size)", options.top_k)
    expect(options.length is None or options.min_length <= options.length, "min_length",
           f"at most --length ({options.length})", options.min_length)
    expect(all(options.stop), "stop", "non-empty strings", options.stop)
    expect(not options.form or options.form.lower() == "sonnet" or FORM_PATTERN.fullmatch(options.form), "form",
           "COLUMNSxLINES, e.g. 5x4 or 7x8, or sonnet", options.form)
    instrument_program(options.instrument)


def _resolve_english_verse(options: SampleOptions, run: RunFacts) -> dict:
    """`rhyme`, `meter` and `verse_lines` for English verse (`--rhyme`, `--meter`, `--form sonnet`); {} without.

    Raises:
        OptionError: a scheme that is not letters, an unknown meter, a model that writes no English lines,
            or an option English verse cannot take with them.
    """
    sonnet = options.form.lower() == "sonnet"
    asked = [name for name, given in (("form", sonnet), ("rhyme", options.rhyme), ("meter", options.meter)) if given]
    if not asked:
        return {}
    first = asked[0]
    letters = latin_letters(run.vocab.chars)
    if run.kind != "text" or letters < ENGLISH_MIN_LETTERS or not run.has("\n "):
        what = "music" if run.music else "code" if run.kind == "code" else "no English words (its vocabulary has " \
            f"{letters} Latin letters)"
        raise OptionError(first, f"expected a model that writes English lines; this one writes {what}")
    scheme = options.rhyme.upper()
    if scheme and not re.fullmatch(r"[A-Z]{1,64}", scheme):
        raise OptionError("rhyme", f"expected a scheme of letters, one a line, such as AABB or ABAB, received {options.rhyme!r}")
    if options.meter and options.meter not in METERS:
        raise OptionError("meter", f"expected one of {', '.join(METERS)}, received {options.meter!r}")
    if sonnet and scheme and scheme != SONNET:
        raise OptionError("rhyme", f"expected none with --form sonnet (its scheme is {SONNET}), received {scheme}")
    lines = options.lines or (len(SONNET) if sonnet else 0) or len(scheme) or 4
    if sonnet and lines != len(SONNET):
        raise OptionError("lines", f"expected {len(SONNET)} to match form sonnet, received {lines}")
    for name in ("acrostic", "regulated", "beam"):
        if getattr(options, name):
            raise OptionError(name, f"expected none with --{first} (English verse is drawn line by line)")
    return {"rhyme": SONNET if sonnet else scheme, "meter": options.meter or ("pentameter" if sonnet else ""),
            "verse_lines": lines}


def _verify_combinations(options: SampleOptions, run: RunFacts) -> None:
    """Options that exclude each other, and options that only some kinds of run take."""
    for first, second in (("prime", "prime_file"), ("bars", "notes"), ("in_key", "key_penalty")):
        if getattr(options, first) not in (None, False) and getattr(options, second) is not None:
            raise OptionError(first, f"expected one of --{first.replace('_', '-')} and --{second.replace('_', '-')}, "
                                     "received both")
    if not run.music:
        asked = {"bars": options.bars is not None, "notes": options.notes is not None, "in_key": options.in_key,
                 "key": options.key is not None, "key_penalty": options.key_penalty is not None}
        music_only = [name for name, given in asked.items() if given] + list(options.renders)
        if music_only:
            raise OptionError(music_only[0], f"expected a music run, received a {run.kind} run")
    else:
        poem = [name for name in ("acrostic", "form", "lines") if getattr(options, name)]
        if poem:
            raise OptionError(poem[0], "expected a text run, received a music run")
    poem = [name for name in ("lines", "form", "acrostic") if getattr(options, name)]
    if poem and options.length is not None:  # one rule: a poem is always whole, and its lines set its length
        raise OptionError("length", f"expected none for a poem ({poem[0]} is given): its lines set its length")
    if options.syntax and run.kind == "text":
        raise OptionError("syntax", "expected a code or music run, received a text run")
    if options.beam:
        drawn_as = defaults()
        given = [name for name, declared in declarations().items() if declared.draws and getattr(options, name) != drawn_as[name]]
        if given:
            raise OptionError(given[0], "expected no sampling setting with --beam, which ranks by the model's own "
                                        "probabilities")
        if options.num_samples > options.beam:
            raise OptionError("num_samples", f"expected at most --beam ({options.beam}) samples, the beams found, "
                                             f"received {options.num_samples}")
        if options.num_samples > 1:
            log.info("--beam %d -N %d: the %d likeliest beams, best first; they often differ only in their last "
                     "characters (for different texts, sample with -N and no --beam)", options.beam,
                     options.num_samples, options.num_samples)
    if options.valid_only and run.kind == "text":
        raise OptionError("valid_only", "expected a code or music run, received a text run")


def _resolve_key(options: SampleOptions, run: RunFacts, prime: str) -> int | None:
    """The key signature every sampled header must name, as sharps, or None."""
    if options.key is None:
        return None
    try:
        key = parse_key(str(options.key))
    except ValueError as exc:
        raise OptionError("key", str(exc)) from None
    primed = header_sharps(prime)
    if primed is not None and primed != key:
        raise OptionError("key", f"the prime's header already names K:{primed}, received {options.key!r}")
    if not run.has(f"K:{key}|"):
        raise OptionError("key", f"{options.key!r}: this run's vocabulary cannot write the header K:{key}| "
                                 "(its corpus never does)")
    return key


def _verify_poem(run: RunFacts, acrostic: str, form: str, lines: int, prime: str) -> int:
    """Checks a constrained poem's options against each other, the prime and the vocabulary; returns its lines."""
    match = FORM_PATTERN.fullmatch(form) if form else None
    form_lines = int(match.group(2)) if match else 0
    for option, count in (("lines", lines), ("form", form_lines)):
        if count and acrostic and count != len(acrostic):
            raise OptionError("acrostic", f"expected {count} characters, one per line of {option} {form or lines}, "
                                          f"received {len(acrostic)} ({acrostic!r})")
    if lines and form_lines and lines != form_lines:
        raise OptionError("lines", f"expected {form_lines} to match form {form}, received {lines}")
    poem_lines = lines or form_lines or len(acrostic)
    if not poem_lines:
        return 0
    missing = sorted(set(acrostic) - set(run.vocab.chars))
    if missing:
        also = " (nor a traditional form of it)" if any(re.fullmatch(f"[{HAN}]", c) for c in missing) else ""
        raise OptionError("acrostic", f"this model's vocabulary has no {', '.join(repr(c) for c in missing)}{also}")
    needed = "\n" + ("，。" if form else "")
    missing = [c for c in needed if not run.has(c)]
    if missing:
        raise OptionError("form" if form else "lines", f"this model's vocabulary has no {', '.join(map(repr, missing))}")
    if form and not han_chars(run.vocab.chars):
        raise OptionError("form", f"expected a model that writes Chinese for {form}, this vocabulary has no Han characters")
    if prime.count("\n") >= poem_lines:
        raise OptionError("prime", f"holds {prime.count(chr(10))} lines, expected fewer than the poem's {poem_lines}")
    return poem_lines
