"""Running job files unattended: seeds from the run id, filters, atomic outputs, a manifest, retention.

`run_jobs` validates the whole file first (nothing runs if anything is
wrong), takes a lock on it, then runs each job in turn. A failed job never
stops the others. Every output's seed derives from the run id, the job and
the output number, so rerunning a run id makes the same bytes; outputs that
already exist from that run are left alone, never duplicated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import fcntl
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .checkpoint import RunDir, resolve_run
from .errors import GenerateError, UsageError
from .fileio import check_writable_location
from .jobs import MUSIC_FORMATS, TEXT_FORMATS, Job, load_jobs, resolve_path
from .writers import sidecar_path

log = logging.getLogger(__name__)
DEDUPE_DEFAULT = 0.9  # `dedupe = true`: reject a sample at least this similar (difflib ratio) to an earlier one


@dataclass
class JobResult:
    name: str
    made: list[Path] = field(default_factory=list)  # files written by this run
    existing: int = 0  # outputs this run id had already made
    rejected: dict = field(default_factory=dict)  # filter -> samples it rejected
    pruned: int = 0  # old outputs removed by retention
    error: str = ""  # why the job failed, if it did

    def summary(self) -> str:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items())) or "0"
        status = f"FAILED: {self.error}" if self.error else "ok"
        return (f"job {self.name}: made {len(self.made)} file(s), {self.existing} output(s) already there, "
                f"rejected {rejected}, pruned {self.pruned}: {status}")


@dataclass
class RunClock:
    run_id: str
    moment: dt.datetime  # the run's time: from the run id when it holds one, so reruns name files alike

    @classmethod
    def from_run_id(cls, run_id: str | None, now: dt.datetime | None = None) -> "RunClock":
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
    return resolve_path(job.out.format(**fields))


def output_files(job: Job, base: Path, music: bool) -> list[Path]:
    """The files of one output: for music the MIDI file first (the others render from it)."""
    if music:
        return [base.with_name(base.name + ".mid")]
    return [base.with_name(f"{base.name}.{fmt}") for fmt in job["formats"]]


def validate(jobs: list[Job]) -> dict[str, RunDir]:
    """Checks models, formats and output locations before anything runs.

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
        kind = runs[job.name].load_config().corpus.kind
        allowed = MUSIC_FORMATS if kind == "music" else TEXT_FORMATS
        wrong = [f for f in job["formats"] if f not in allowed]
        if wrong:
            raise UsageError(f"{where}: formats: a {kind} model writes {', '.join(allowed)}, received {wrong[0]!r}")
        if kind == "music" and (job["lines"] or job["acrostic"] or job["form"]):
            raise UsageError(f"{where}: lines/acrostic/form: expected a text model, received a music model")
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
        from .corpus import cache_root

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
    from .runner import run_job

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
        for path in output_files(job, output_base(job, clock, n), music):
            if on_file:
                on_file(path, "exists" if path.exists() else "would write")
    return result


def similar(a: str, b: str, threshold: float) -> bool:
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold


def read_manifest(path: Path) -> list[dict]:
    """Every record of a manifest; a torn last line (a crash mid-append) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def append_manifest(path: Path, record: dict) -> None:
    """Appends one JSON line; O_APPEND writes of one line do not interleave between processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(job: Job, clock: RunClock, records: list[dict]) -> int:
    """Removes this job's old outputs past its `keep`; only files its manifest records list."""
    rule = job.retention
    if rule is None:
        return 0
    made = [r for r in records if r.get("event") == "made" and r.get("job") == job.name]
    gone = {tuple(r["files"]) for r in records if r.get("event") == "pruned" and r.get("job") == job.name}
    alive = [r for r in made if tuple(r["files"]) not in gone]
    alive.sort(key=lambda r: (r["time"], r["run_id"], r["n"]))
    if rule[0] == "count":
        doomed = alive[: max(len(alive) - rule[1], 0)]
    else:
        cutoff = (clock.moment - dt.timedelta(days=rule[1])).isoformat()
        doomed = [r for r in alive if r["time"] < cutoff]
    for record in doomed:
        for name in record["files"]:  # every file the output made, renders included
            for victim in (Path(name), sidecar_path(Path(name))):
                with contextlib.suppress(FileNotFoundError):
                    victim.unlink()
        append_manifest(job.manifest, {"event": "pruned", "job": job.name, "files": record["files"],
                                       "run_id": clock.run_id, "time": clock.moment.isoformat()})
    return len(doomed)
