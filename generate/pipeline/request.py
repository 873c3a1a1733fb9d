"""A sample request, checked before anything loads: options, outputs, filters and render settings.

`prepare` is the one place a request is verified: the options against the
run (`resolve.resolve_options`), the output files against the disk, and the
corpus that `--max-copy` needs. What it returns is frozen; a loaded model runs
it (`loaded.LoadedModel.run`) as often as asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError
from ..model.rundir import RunDir
from ..outputs.writers import RenderSettings, check_free, output_paths
from ..sampling.config import SamplingConfig
from ..sampling.generator import derived_seed
from ..sampling.options import SampleOptions
from ..sampling.resolve import RunFacts, resolve_options
from .filters import SampleFilter, build_filters, copy_index

MAX_ROUNDS = 4  # a filtered request samples at most this many batches before giving up on the rest


@dataclass(frozen=True)
class Request:
    """Everything one request needs, verified: what to sample, which samples to keep, where they go."""

    options: SampleOptions  # as the user asked
    cfg: SamplingConfig  # resolved for the run, seed drawn
    settings: RenderSettings
    filters: tuple[SampleFilter, ...] = ()
    seeds: tuple[int, ...] = ()  # the seed of each batch drawn in turn while filters reject samples
    paths: tuple[tuple[Path, ...], ...] = ()  # per kept sample, the files it is written to; () returns texts only
    claim: bool = False  # sidecars first (scheduled jobs: a rerun recognises its own half-written output)
    copy_unavailable: str = ""  # why no sidecar records the longest copy, when the corpus is not at hand
    extra: dict = field(default_factory=dict)  # more for every record (a job's name, run id and number)

    @property
    def seed_drawn(self) -> bool:
        """No seed was given: the caller should report the one drawn (a beam needs none)."""
        return self.options.seed is None and not self.options.beam


def prepare(run: RunDir, facts: RunFacts, options: SampleOptions, output: str | Path | None = None, overwrite: bool = False,
            with_records: bool = False, title: str = "") -> Request:
    """Checks a request as `generate sample` and the Python API make it.

    Args:
        run: the run directory (its config says where its corpus is).
        facts: the run's kind, encoding and vocabulary.
        options: what to sample.
        output: a file, or a directory for several samples (or one, written `out/`); None returns texts only.
        overwrite: replace existing output files.
        with_records: the caller shows records: measure each sample's longest copy from the corpus, if at hand.
        title: a Markdown output's heading.

    Raises:
        OptionError: a bad option, named as its field.
        UsageError: an output that exists, or that cannot be written.
    """
    cfg = resolve_options(options, facts)
    if options.renders and output is None:
        raise OptionError(options.renders[0], "expected -o, a MIDI file to render beside")
    paths = output_paths(output, options.num_samples, ".mid" if facts.music else ".txt") if output is not None else []
    check_free(paths, overwrite, options.renders)
    index, unavailable = copy_index(facts, run.load_config(), options, bool(paths) or with_records)
    rounds = 1 if options.beam else MAX_ROUNDS
    return Request(options, cfg, RenderSettings.of(options, facts.encoding, title), build_filters(options, facts, index),
                   tuple(derived_seed(cfg.seed, r) for r in range(rounds)), tuple((p,) for p in paths), False, unavailable)
