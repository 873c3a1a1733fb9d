"""Naming a job's outputs: the run's clock, output paths from the `out` template, and seeds.

Every output's seed derives from the run id (or the job's `seed`), the job's
name and the output number, never from the clock, so rerunning a run id
makes the same bytes under the same names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..music import RENDER_SUFFIXES
from .schema import Job, out_template, resolve_path


@dataclass
class RunClock:
    run_id: str
    moment: dt.datetime  # the run's time: from the run id when it holds one, so reruns name files alike

    @classmethod
    def from_run_id(cls, run_id: str | None, now: dt.datetime | None = None) -> RunClock:
        now = now or dt.datetime.now()
        if run_id is None:
            return cls(now.strftime("%Y-%m-%dT%H%M%S"), now.replace(microsecond=0))
        for pattern in ("%Y-%m-%dT%H%M%S", "%Y-%m-%dT%H%M", "%Y-%m-%d"):
            with contextlib.suppress(ValueError):
                return cls(run_id, dt.datetime.strptime(run_id, pattern))
        return cls(run_id, now.replace(hour=0, minute=0, second=0, microsecond=0))


def output_seed(job: Job, clock: RunClock, n: int, attempt: int) -> int:
    """The seed of attempt `attempt` at output `n`: from the job's seed, or the run id, never the clock."""
    base = job["seed"] if job["seed"] is not None else f"{clock.run_id}/{job.name}"
    return int(hashlib.sha256(f"{base}/{n}/{attempt}".encode()).hexdigest()[:15], 16)


def output_base(job: Job, clock: RunClock, n: int) -> Path:
    fields = {"date": clock.moment.strftime("%Y-%m-%d"), "time": clock.moment.strftime("%H%M%S"), "job": job.name,
              "n": n, "seed": output_seed(job, clock, n, 0), "run_id": clock.run_id}
    return resolve_path(out_template(job.out).format(**fields))


def planned_files(job: Job, base: Path, music: bool) -> list[Path]:
    """Every file one output makes: for music, the MIDI file and each render its formats name beside it."""
    files = output_files(job, base, music)
    if music:
        files += [files[0].with_suffix(RENDER_SUFFIXES[fmt]) for fmt in job["formats"] if fmt in RENDER_SUFFIXES]
    return files


def output_files(job: Job, base: Path, music: bool) -> list[Path]:
    """The files of one output: for music the MIDI file first (the others render from it)."""
    if music:
        return [base.with_name(base.name + ".mid")]
    return [base.with_name(f"{base.name}.{fmt}") for fmt in job["formats"]]
