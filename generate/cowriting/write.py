"""`generate write`: co-write with a model in the terminal, or replay a saved session.

`write` checks everything (options, the output file) before the model loads,
then runs the screen; `s` saves the text (or MIDI, for music) with a sidecar
holding the whole session. `replay_session` rebuilds a saved text from its
sidecar alone, checking every draw of candidates on the way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import __version__
from ..errors import GenerateError, OptionError, UsageError, expect
from ..model.rundir import resolve_run
from ..outputs.writers import RenderSettings, check_free, sidecar_path, write_midi_file, write_output
from ..paths import cache_root
from ..pipeline.loaded import LoadedModel
from ..sampling.generator import Generator
from ..sampling.options import SampleOptions
from ..sampling.resolve import RunFacts, resolve_options, resolve_seed
from .candidates import CANDIDATE_LENGTH, CandidateMaker
from .session import MAX_CANDIDATES, WriteSession, replay

log = logging.getLogger(__name__)
RECORD_KIND = "generate write"
DEFAULT_WRITE_TEMPERATURE = 0.8  # a writer chooses among candidates: a little safer than sampling's 1.0


@dataclass(frozen=True)
class WriteOptions:
    """A co-writing session's settings, as `generate write` takes them."""

    candidates: int = 4  # candidates per draw, 1 to 9
    temperature: float | None = None  # the starting temperature (None: the model's own, else 0.8); t and T change it
    length: int = CANDIDATE_LENGTH  # characters sampled per candidate before its boundary cuts it
    seed: int | None = None  # the session's seed; None: drawn
    text: str = ""  # the text to start from
    lines: int = 0  # a poem of this many lines
    acrostic: str = ""  # line i of the poem begins with character i
    form: str = ""  # a Chinese form COLUMNSxLINES, e.g. 5x4
    key: str | None = None  # music: every header names this key
    in_key: bool = False  # music: never a pitch outside the header's key
    bpm: float = 120.0  # music: tempo of a saved MIDI file
    instrument: str | int = "piano"  # music: General MIDI program of a saved MIDI file
    velocity: int = 80  # music: note velocity of a saved MIDI file
    label: str | None = None  # a labelled model: the style every candidate is written in (None: <none>)

    def starting_temperature(self, facts: RunFacts) -> float:
        """The temperature the first draw uses: as given, else the model's recorded default, else 0.8."""
        if self.temperature is not None:
            return self.temperature
        return dict(facts.sampling_defaults).get("temperature", DEFAULT_WRITE_TEMPERATURE)

    def sample_options(self) -> SampleOptions:
        """The sampling options every draw shares (the prime, count, temperature and seed vary per draw)."""
        return SampleOptions(lines=self.lines, acrostic=self.acrostic, form=self.form, key=self.key,
                             in_key=self.in_key, bpm=self.bpm, instrument=self.instrument, velocity=self.velocity,
                             label=self.label, warmup=False)


def verify(options: WriteOptions, facts: RunFacts) -> SampleOptions:
    """Checks `options` against the run once, before anything loads; returns the shared sampling options.

    Raises:
        OptionError: naming the first bad option.
    """
    expect(1 <= options.candidates <= MAX_CANDIDATES, "candidates", f"an integer in [1, {MAX_CANDIDATES}]", options.candidates)
    expect(options.length >= 1, "length", "an integer >= 1", options.length)
    shared = options.sample_options()
    resolve_options(replace(shared, prime=options.text or None, temperature=options.starting_temperature(facts), seed=0),
                    facts)
    return shared


@dataclass
class WriteOutcome:
    """How a co-writing session ended."""

    session: WriteSession
    interrupted: bool  # Ctrl-C rather than q: the text is kept all the same
    output: Path | None  # where the text was last saved, if it was


def write(model: str | Path, options: WriteOptions, output: Path | None = None, overwrite: bool = False,
          checkpoint: str = "best", terminal: bool = True) -> WriteOutcome:
    """Runs a co-writing session on the terminal until the writer quits.

    Args:
        output: where `s` saves; without it, `s` asks for a file name.
        terminal: whether stdin and stdout are a terminal; checked after the options, so a bad
            option is named first.

    Raises:
        OptionError, UsageError: bad options, run or output file, or no terminal (before the model loads).
    """
    run = resolve_run(model)
    facts = RunFacts.of(run)
    shared = verify(options, facts)
    if output is not None:
        check_free([output], overwrite)
    if not terminal:
        raise UsageError("expected a terminal on stdin and stdout for the co-writing screen "
                         "(--replay SIDECAR rebuilds a saved text without one)")
    log.info("loading %s…", model)
    gen = LoadedModel(run, checkpoint).generator
    maker = CandidateMaker(gen, shared, options.length)
    seed = resolve_seed(options.seed)
    if options.seed is None:
        log.info("seed: %d (pass --seed %d to write this session again)", seed, seed)
    log.info("drawing the first candidates…")
    session = WriteSession(maker, seed, options.starting_temperature(facts), options.candidates, options.text)

    def save(path: Path) -> Path:
        save_session(path, session, gen, str(model), options)
        return path

    def check_output(path: Path) -> None:
        if path != output:  # a name typed at the prompt: refused if it exists, as -o is
            check_free([path], overwrite)

    def check_text(text: str) -> None:
        if maker.poem_done(text):
            return
        try:
            maker.check(text)
        except OptionError as exc:  # named as the option it is checked as; here it is the writer's own text
            problem = exc.problem.split(" (use --oov")[0] if exc.option == "prime" else str(exc)
            raise GenerateError(f"your text: {problem}") from None
        except UsageError as exc:
            raise GenerateError(str(exc)) from None

    from .app import WriterApp  # the terminal library loads only for the screen

    music = facts.encoding if facts.music else None
    render = _render_options(gen, options)
    play = (lambda text, path: write_midi_file(path, text, {}, render)) if music else None
    log_file = cache_root() / "logs" / "write.log"
    app = WriterApp(session, str(model), save, check_text, output, check_output, music, play, log_file)
    interrupted = app.run()
    return WriteOutcome(session, interrupted, app.output if app.output and app.output.exists() else None)


def save_session(output: Path, session: WriteSession, gen: Generator, model: str, options: WriteOptions) -> dict:
    """Writes the text (MIDI for a `.mid` name) and its sidecar, each atomically."""
    return write_output(output, session.page.text, session_record(session, gen, model, options),
                        _render_options(gen, options))


def session_record(session: WriteSession, gen: Generator, model: str, options: WriteOptions) -> dict:
    """A session's sidecar: what `generate write --replay` rebuilds the same text from."""
    return {
        "kind": RECORD_KIND, "model": model, "run": str(gen.run.path.resolve()),
        "checkpoint": str(gen.checkpoint.resolve()), "options": asdict(options), "session": session.record(),
        "version": __version__, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def replay_session(sidecar: Path, output: Path | None = None, overwrite: bool = False) -> str:
    """Rebuilds a saved session's text from its sidecar; writes it to `output` when given.

    Raises:
        UsageError: an unreadable sidecar, or one that is not from `generate write`.
        GenerateError: the replay differs from the record (another model or checkpoint).
    """
    try:
        record = json.loads(Path(sidecar).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--replay: cannot read {str(sidecar)!r} ({exc})") from None
    if not isinstance(record, dict) or record.get("kind") != RECORD_KIND:
        raise UsageError(f"--replay: {str(sidecar)!r} is not a `generate write` sidecar "
                         f"(expected the .json beside a saved text, e.g. {sidecar_path(Path('poem.txt'))})")
    if output is not None:
        check_free([output], overwrite)
    try:
        options = WriteOptions(**record["options"])
        run = resolve_run(record["run"] if Path(record["run"]).is_dir() else record["model"])
    except (KeyError, TypeError) as exc:
        raise UsageError(f"--replay: {str(sidecar)!r}: malformed record ({exc})") from None
    shared = verify(options, RunFacts.of(run))
    checkpoint = str(record.get("checkpoint", ""))
    gen = LoadedModel(run, checkpoint if checkpoint and Path(checkpoint).is_file() else "best").generator
    session = replay(record["session"], CandidateMaker(gen, shared, options.length))
    if output is not None:
        save_session(output, session, gen, record["model"], options)
    return session.page.text


def _render_options(gen: Generator, options: WriteOptions) -> RenderSettings:
    return RenderSettings.of(options, gen.facts.encoding)
