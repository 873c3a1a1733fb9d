"""Running job files unattended: validate everything first, lock the file, run each job.

`run_jobs` validates the whole file first (nothing runs if anything is
wrong), takes a lock on it, then runs each job in turn. A failed job never
stops the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import GenerateError, OptionError, UsageError
from ..fileio import check_writable_location
from ..model.rundir import RunDir, resolve_run
from ..paths import cache_root
from ..sampling.options import declarations
from ..sampling.resolve import RunFacts, resolve_options
from .naming import RunClock, output_base, planned_files
from .runner import JobResult, run_job
from .schema import MUSIC_FORMATS, TEXT_FORMATS, Job, load_jobs

log = logging.getLogger(__name__)


def validate(jobs: list[Job]) -> dict[str, RunDir]:
    """Checks models, formats, every sampling option and output locations before anything runs.

    Raises:
        UsageError: naming the job file, the job and the key.
    """
    runs = {}
    for job in jobs:
        where = f"{job.source}: job {job.name!r}"
        try:
            runs[job.name] = resolve_run(job.model)
        except GenerateError as exc:
            raise UsageError(f"{where}: model: {exc}") from None
        try:
            runs[job.name].sampling_model(job["checkpoint"])
        except GenerateError as exc:
            raise UsageError(f"{where}: checkpoint: {exc}") from None
        facts = RunFacts.of(runs[job.name])
        allowed = MUSIC_FORMATS if facts.music else TEXT_FORMATS
        wrong = [f for f in job["formats"] if f not in allowed]
        if wrong:
            raise UsageError(f"{where}: formats: a {facts.kind} model writes {', '.join(allowed)}, received {wrong[0]!r}")
        for n in range(1, _cycle_length(job) + 1):  # every prime and temperature the job will use
            try:
                resolve_options(job.sample_options(n, seed=0), facts)
            except OptionError as exc:
                raise job.option_error(exc) from None
        try:
            check_writable_location(output_base(job, RunClock.from_run_id(None), 1), "out")
        except GenerateError as exc:
            raise UsageError(f"{where}: out: {exc}") from None
    return runs


@contextlib.contextmanager
def job_file_lock(path: Path, wait: bool) -> Iterator[None]:
    """Holds an exclusive lock for one job file, so two runs never interleave.

    Raises:
        GenerateError: another run holds it and `wait` is off.
    """
    lock_path = path.with_name(f".{path.name}.lock")
    if not os.access(path.parent, os.W_OK):  # a read-only jobs folder (/etc, say): lock in the cache instead
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        lock_path = cache_root() / "locks" / f"{path.name}-{digest}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            if not wait:
                raise GenerateError(f"{path}: another run (pid {holder}) is running this job file; "
                                    "use --wait to wait for it") from None
            log.info("%s: waiting for the run with pid %s to finish", path, holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_jobs(path: Path, only: str | None = None, run_id: str | None = None, dry_run: bool = False,
             overwrite: bool = False, wait: bool = True, on_file=None) -> list[JobResult]:
    """Runs the jobs of a job file (or just `only`); returns one result per job.

    Raises:
        UsageError: anything wrong with the file, found before any job runs.
        GenerateError: the lock is held and `wait` is off.
    """
    jobs = load_jobs(path)
    if only is not None:
        jobs = [j for j in jobs if j.name == only]
        if not jobs:
            raise UsageError(f"--job {only!r}: expected one of {', '.join(j.name for j in load_jobs(path))}")
    runs = validate(jobs)
    clock = RunClock.from_run_id(run_id)
    if dry_run:
        return [_plan(job, runs[job.name], clock, on_file) for job in jobs]
    results = []
    with job_file_lock(path, wait):
        for job in jobs:
            started = time.monotonic()
            result = JobResult(job.name)
            try:
                run_job(job, runs[job.name], clock, overwrite, result, on_file)
            except GenerateError as exc:
                result.error = str(exc)
            log.debug("job %s took %.1f s", job.name, time.monotonic() - started)
            results.append(result)
    return results


def _plan(job: Job, run: RunDir, clock: RunClock, on_file) -> JobResult:
    result = JobResult(job.name)
    music = run.load_config().corpus.kind == "music"
    for n in range(1, job["count"] + 1):
        for path in planned_files(job, output_base(job, clock, n), music):
            if on_file:
                on_file(path, "exists" if path.exists() else "would write")
    return result


def _cycle_length(job: Job) -> int:
    """Outputs after which the job's lists of primes and temperatures repeat (at most `count`)."""
    lengths = [len(job[key]) for key, declared in declarations().items() if declared.cycles and isinstance(job[key], list)]
    return min(math.lcm(1, *lengths), job["count"])
