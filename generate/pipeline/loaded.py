"""A loaded model: one run's network, loaded once, serving any number of sample and score requests.

`load` returns one; `LoadedModel.run` takes a `request.Request` through the
pipeline's steps, each written once: draw samples (redrawing what the filters
reject), build each sample's record, and write its files. `sample_run` is the
same path for a single command: check everything, then load, then run.

    >>> import generate
    >>> model = generate.load("shakespeare")
    >>> text = model.sample(prime="ROMEO:", length=400, seed=7)
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import OptionError, RenderError
from ..model.rundir import RunDir, resolve_run
from ..outputs.writers import write_output
from ..progress import ProgressBar
from ..sampling.config import SamplingConfig
from ..sampling.generator import Generator, generate_samples, load_generator, sample_record
from ..sampling.options import SampleOptions, options_from
from ..sampling.resolve import RunFacts
from .filters import Candidate, first_rejection, redraws
from .request import Request, prepare

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Output:
    """One finished sample."""

    text: str  # what the user gets: the lead (prime, its music header, or nothing) and the sample
    record: dict  # the sidecar: everything needed to regenerate it
    path: Path | None = None  # the first file it was written to, if any
    paths: tuple[Path, ...] = ()  # every file it was written to


@dataclass(frozen=True)
class SampleResult:
    outputs: list[Output]
    seed: int  # the seed of the first batch
    seed_drawn: bool  # no seed was given: this one was drawn, and the caller should report it
    streamed: bool  # the text went to `on_text` as it was sampled; nothing is left to print
    render_errors: tuple[str, ...] = ()  # renders a missing tool could not make; every output and sidecar was still written
    tried: int = 0  # samples drawn, kept or not
    rejected: dict = field(default_factory=dict)  # filter name -> samples it rejected
    asked: int = 0  # samples the request asked for
    tested: int = 0  # samples the filters judged (a batch's extras, once enough passed, are not)

    @property
    def pass_rate(self) -> float:
        """The share of judged samples that passed every filter."""
        return (self.tested - sum(self.rejected.values())) / max(self.tested, 1)

    @property
    def shortfall(self) -> str | None:
        """Why fewer samples came than were asked for, in one line; None when all came."""
        if len(self.outputs) >= self.asked:
            return None
        reasons = ", ".join(f"{count} by --{name.replace('_', '-')}" for name, count in sorted(self.rejected.items()))
        return (f"kept {len(self.outputs)} of the {self.asked} sample(s) asked for: {self.tested} drawn, "
                f"{sum(self.rejected.values())} rejected ({reasons}), a pass rate of {self.pass_rate:.0%}; "
                "try another seed, a lower temperature, or a looser filter")


@dataclass(frozen=True)
class _Kept:
    cfg: SamplingConfig  # the settings it was drawn with (a redraw's seed)
    index: int  # its row in that batch
    attempt: int  # which batch: 0 for the first
    candidate: Candidate


class LoadedModel:
    """A run (or shipped model) whose network is loaded once; each request brings its own options and seed.

    Args:
        run: a run directory, or a shipped model's name.
        checkpoint: `best`, `latest` or a `.keras` file in the run.

    Raises:
        UsageError: not a run, or a bad checkpoint choice.
        CheckpointError: a damaged checkpoint.
    """

    def __init__(self, run: str | Path | RunDir, checkpoint: str = "best"):
        self.generator: Generator = load_generator(run.path if isinstance(run, RunDir) else run, checkpoint)
        self.name = self.generator.run.path.name
        self._scorer = None

    @property
    def run_dir(self) -> RunDir:
        return self.generator.run

    @property
    def facts(self) -> RunFacts:
        return self.generator.facts

    def __repr__(self) -> str:
        config = self.generator.config.model
        return (f"<LoadedModel {self.name!r}: {self.facts.kind}, {config.layers} x {config.units} {config.cell}, "
                f"{len(self.facts.vocab)} characters>")

    def prepare(self, options: SampleOptions, output: str | Path | None = None, overwrite: bool = False,
                with_records: bool = False) -> Request:
        """Checks a request against this model and the disk (see `request.prepare`)."""
        return prepare(self.run_dir, self.facts, options, output, overwrite, with_records, _title(self.name, options))

    def samples(self, output: str | Path | None = None, overwrite: bool = False, **options) -> list[Output]:
        """Samples with the job file's keys as keywords; each output has its text and record.

        Args:
            output: a file (one sample) or a directory to write outputs and sidecars to.
            overwrite: replace existing output files.
            **options: `SampleOptions` fields: prime, length, temperature, top_k, top_p, seed, num_samples, ...

        Raises:
            OptionError: an unknown or bad option, named.
            UsageError: an output that exists.
        """
        try:
            request = self.prepare(options_from(options), output, overwrite,
                                   with_records=True)
        except OptionError as exc:  # named as the keyword the caller wrote, not as a flag
            raise exc.as_keyword() from None
        return self.run(request).outputs

    def sample(self, **options) -> str:
        """One sample's text, exactly as `generate sample` prints it for the same options and seed.

        Raises:
            OptionError: a bad option, or `num_samples` other than 1 (use `samples`).
        """
        if options.get("num_samples", 1) != 1:
            raise OptionError("num_samples", "expected 1 for sample(); samples() returns several").as_keyword()
        outputs = self.samples(**options)
        if not outputs:
            raise OptionError("min_length" if options.get("min_length") else "valid_only",
                              "no sample passed the filters; try other options or another seed").as_keyword()
        return outputs[0].text

    def stream(self, **options) -> Iterator[str]:
        """One sample's text piece by piece as it is generated, the prime first: `"".join(model.stream(...))` is
        what `sample(...)` returns. Settings that redraw (`min_length`, `valid_only`, `max_copy`) give the
        whole text at the end. Leaving the loop early stops the sampling.

        Raises:
            OptionError: a bad option, or `num_samples` other than 1.
        """
        if options.get("num_samples", 1) != 1:
            raise OptionError("num_samples", "expected 1 for stream(); samples() returns several").as_keyword()
        try:
            request = self.prepare(options_from(options))
        except OptionError as exc:  # named as the keyword the caller wrote, not as a flag
            raise exc.as_keyword() from None
        pieces: queue.Queue = queue.Queue(maxsize=256)
        leaving = threading.Event()

        def on_text(text: str) -> None:
            if leaving.is_set():
                raise _Abandoned
            pieces.put(text)

        def work() -> None:
            try:
                result = self.run(request, on_text)
                if not result.streamed and result.outputs:
                    pieces.put(result.outputs[0].text)
                pieces.put(_DONE)
            except _Abandoned:
                pass
            except BaseException as exc:  # handed to the caller's thread, raised there
                pieces.put(exc)

        worker = threading.Thread(target=work, name="generate-stream", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            leaving.set()
            while worker.is_alive():  # a worker blocked on a full queue must see the caller leave
                with contextlib.suppress(queue.Empty):
                    pieces.get(timeout=0.05)
            worker.join()

    def score(self, text: str, oov: str = "error"):
        """The mean loss of `text` read as one stream from a fresh state (`training.scoring.Score`)."""
        from ..training.scoring import TextScorer  # builds a Keras model of its own shape, once

        if self._scorer is None:
            self._scorer = TextScorer(self.run_dir, str(self.generator.checkpoint))
        return self._scorer.score(text, oov=oov)

    def run(self, request: Request, on_text: Callable[[str], None] | None = None, runner=None,
            on_sample_text: Callable[[int, str], None] | None = None, progress: bool = False) -> SampleResult:
        """Draws, filters, records and writes the samples `request` asks for.

        Args:
            on_text: for a single sample with no output file and no filter or beam, receives the
                prime and then the sample's text as it is generated.
            runner: where the model runs (`generator.generate_samples`): here, or a server's engine.
            on_sample_text: as `on_text`, for any number of samples: receives (index, text), each
                sample's prime first.
            progress: `on_sample_text` only counts the text (a progress bar), so it may see text that a
                filter or a file output will treat otherwise; the result is not marked as streamed.
        """
        options = request.options
        streamable = not request.paths and not options.drop_prime and not redraws(request.filters) and not options.beam
        if on_sample_text is None and on_text is not None and streamable and options.num_samples == 1:
            on_sample_text = lambda _index, text: on_text(text)  # noqa: E731 - the single stream's text alone
        elif not streamable and not progress:
            on_sample_text = None
        kept, tried, tested, rejected = self._draw(request, on_sample_text, runner)
        outputs, render_errors = [], []
        for i, sample in enumerate(kept):
            output, errors = self._finish(request, sample, request.paths[i] if request.paths else ())
            outputs.append(output)
            render_errors += errors
        streamed = on_sample_text is not None and not progress
        return SampleResult(outputs, request.cfg.seed, request.seed_drawn, streamed, tuple(render_errors),
                            tried, dict(rejected), request.options.num_samples, tested)

    def _draw(self, request: Request, on_text: Callable[[int, str], None] | None,
              runner=None) -> tuple[list[_Kept], int, int, Counter]:
        """Samples batch after batch (a new seed each) until enough samples pass the filters, or the seeds run out.

        Returns:
            The kept samples, how many were drawn, how many the filters judged, and rejections by filter.
        """
        cfg, wanted, redrawing = request.cfg, request.options.num_samples, redraws(request.filters)
        kept: list[_Kept] = []
        tried, tested, rejected = 0, 0, Counter()
        if on_text is not None and cfg.prime:
            for index in range(wanted):
                on_text(index, cfg.prime)
        for attempt, seed in enumerate(request.seeds if redrawing else request.seeds[:1]):
            batch_cfg = replace(cfg, num_samples=cfg.beam) if cfg.beam and redrawing else replace(cfg, seed=seed)
            for index, sample in enumerate(generate_samples(self.generator, batch_cfg, on_text, runner)):
                tried += 1
                if len(kept) >= wanted:
                    continue
                tested += 1
                candidate = Candidate(sample.text, cfg.prime + sample.text, {"sample": sample})
                reason = first_rejection(request.filters, candidate)
                if reason:
                    rejected[reason] += 1
                    log.debug("sample %d of seed %d: rejected by %s", index, seed, reason)
                else:
                    kept.append(_Kept(batch_cfg, index, attempt, candidate))
            if len(kept) >= wanted:
                break
        # A filter on by default (a verse model's new lines) is said only when it redrew something.
        if redrawing and not request.claim and (rejected or any(f.name != "new_lines" for f in request.filters)):
            _summarise(request, tested - sum(rejected.values()), tested)
        return kept, tried, tested, rejected

    def _finish(self, request: Request, kept: _Kept, paths: tuple[Path, ...]) -> tuple[Output, list[str]]:
        """The sample's record and text, written to each of `paths`."""
        text = _lead(request.cfg.prime, request.options.drop_prime, self.facts.music) + kept.candidate.text
        record = build_record(self.generator, request, kept, text)
        errors = []
        for path in paths:
            try:
                write_output(path, text, record, request.settings, claim=request.claim)
            except RenderError as exc:  # the MIDI file and sidecar are written; the other outputs still come
                errors.append(f"{path}: {exc}")
        return Output(text, record, paths[0] if paths else None, paths), errors


class _Abandoned(Exception):
    """The caller left `LoadedModel.stream`'s loop: the sampling stops."""


_DONE = object()  # the end of a stream's pieces


def build_record(gen: Generator, request: Request, kept: _Kept, text: str) -> dict:
    """The sidecar of one sample: how it was drawn, what the filters measured, how it was rendered, and its text."""
    record = sample_record(gen, kept.cfg, kept.index, kept.candidate.notes["sample"])
    record["attempt"] = kept.attempt
    record["max_copy"] = request.options.max_copy
    record["longest_copy"] = kept.candidate.notes.get("longest_copy")
    if "copied_lines" in kept.candidate.notes:
        record["copied_lines"] = kept.candidate.notes["copied_lines"]
    if request.copy_unavailable:
        record["longest_copy_unavailable"] = request.copy_unavailable
    if gen.facts.music:
        record.update(request.settings.facts(request.options.instrument))
    record.update(request.extra)
    record["text"] = text
    return record


def _with_progress(model: LoadedModel, request: Request) -> SampleResult:
    """Runs `request`, its characters counted on a progress bar as the streams release them (a music stream
    that ends its tune early finishes the bar short of its length)."""
    cfg = request.cfg
    bar = ProgressBar(cfg.num_samples * (cfg.length + len(cfg.prime)), desc="sampling", unit="char")
    written = [0]

    def count(_index: int, text: str) -> None:
        written[0] += len(text)
        bar.update(written[0])

    try:
        return model.run(request, on_sample_text=count, progress=True)
    finally:
        bar.close()


def _summarise(request: Request, passed: int, tested: int) -> None:
    """The filters' pass rate: of the samples they judged, the share that passed (not kept over drawn)."""
    names = [f for f in request.filters if f.name != "max_copy" or request.options.max_copy is not None]
    flags = " and ".join(f"--{f.name.replace('_', '-')}" for f in names)
    log.info("%s: %d of %d samples %s: a pass rate of %.0f%%", flags, passed, tested,
             " and ".join(f.goal for f in names), 100 * passed / max(tested, 1))


def _title(name: str, options: SampleOptions) -> str:
    """A Markdown output's heading: the model's name for a single sample (several are numbered files)."""
    return name if options.num_samples == 1 else ""


def _lead(prime: str, drop_prime: bool, music: bool) -> str:
    """What leads each output: the prime, nothing, or (music) just the prime's header."""
    if not drop_prime:
        return prime
    return prime[: prime.index("|") + 1] if music and "|" in prime else ""


def load(name_or_path: str | Path, checkpoint: str = "best") -> LoadedModel:
    """A run directory or shipped model's name, loaded for sampling and scoring (`generate.load`).

    Raises:
        UsageError: not a run, or a bad checkpoint choice.
        CheckpointError: a damaged checkpoint.
    """
    return LoadedModel(name_or_path, checkpoint)


def sample_run(run: str | Path, options: SampleOptions, checkpoint: str = "best", output: str | Path | None = None,
               overwrite: bool = False, on_text: Callable[[str], None] | None = None,
               on_start: Callable[[int, bool], None] | None = None, with_records: bool = False,
               show_progress: bool = False) -> SampleResult:
    """`generate sample`: checks the options and outputs before the model loads, then loads it and runs them.

    Args:
        on_start: called with (seed, drawn) once everything is checked and the model is loaded.
        show_progress: text written to files (not shown as it comes) reports its characters on stderr (music
            is not: a piece ends when it ends, so its length is no measure of how far it is).

    Raises:
        OptionError: a bad option, named as its field.
        UsageError: a bad run, checkpoint or output path.
        GenerateError: a failed write.
    """
    run_dir = resolve_run(run)
    request = prepare(run_dir, RunFacts.of(run_dir), options, output, overwrite, with_records, _title(run_dir.path.name, options))
    model = LoadedModel(run_dir, checkpoint)
    if on_start:
        on_start(request.cfg.seed, request.seed_drawn)
    if show_progress and request.paths and on_text is None and not options.beam and not model.facts.music:
        result = _with_progress(model, request)
    else:
        result = model.run(request, on_text)
    if model.facts.music and output is None and not with_records:
        log.info("that is %s music in this model's encoding: add -o tune.mid for a MIDI file (--wav, --png and "
                 "--score render it too), or pass the text to generate render", model.facts.encoding)
    return result
