"""One job of a job file: each output a pipeline request (sample, filter, redraw, write), recorded; then prune.

`schedule.py` validates, locks and orders the jobs; this file is what
happens inside one of them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import GenerateError, OptionError
from ..model.rundir import RunDir
from ..music import RENDER_SUFFIXES
from ..outputs.writers import RenderSettings, sidecar_path
from ..pipeline.filters import build_filters, copy_index
from ..pipeline.loaded import LoadedModel
from ..pipeline.request import Request
from .manifest import append_manifest, prune, read_manifest
from .naming import RunClock, output_base, output_files, output_seed
from .schema import Job

log = logging.getLogger(__name__)


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



def run_job(job: Job, run: RunDir, clock: RunClock, overwrite: bool, result: JobResult, on_file=None) -> None:
    """Makes the job's `count` outputs into `result`; failures of single outputs are collected, not raised.

    Raises:
        GenerateError: the model cannot be loaded, or an output failed every attempt.
    """
    model = LoadedModel(run, job["checkpoint"])
    music = model.facts.music
    records = read_manifest(job.manifest)
    recorded = {(r.get("job"), r.get("run_id"), r.get("n")) for r in records if r.get("event") == "made"}
    earlier = _earlier_texts(job, records)
    # max_copy needs the corpus; without it, each sidecar still records the longest copy when the corpus is at hand.
    try:
        copies = copy_index(model.facts, model.generator.config, job.sample_options(1, 0), wanted=True)
    except OptionError as exc:
        raise GenerateError(f"max_copy {exc.problem}") from None
    failures = []
    for n in range(1, job["count"] + 1):
        files = output_files(job, output_base(job, clock, n), music)
        _remove_stale_temp_files(files)
        if all(_made_by(p, job, clock, n) for p in files) and not overwrite:
            result.existing += 1
            if (job.name, clock.run_id, n) not in recorded:  # made by a run killed before it wrote the manifest
                record = json.loads(sidecar_path(files[0]).read_text(encoding="utf-8"))
                _record_made(job, clock, n, sorted(set(files) | _renders(files)), record)
            continue
        # Files of this very output (a rerun after some were lost) are remade identically; others are never clobbered.
        taken = [p for p in files if (p.exists() or sidecar_path(p).exists()) and not _made_by(p, job, clock, n, whole=False)]
        if taken and not overwrite:
            failures.append(f"output {n}: {taken[0]} already exists (not from run {clock.run_id}); use --overwrite")
            continue
        made = _make_output(job, model, clock, n, files, earlier, copies, result)
        if made is None:
            failures.append(f"output {n}: every one of {job['max_attempts']} samples was rejected")
            continue
        paths, text, record = made
        earlier.append(text)
        result.made += paths
        for path in paths:
            if on_file:
                on_file(path, "made")
        _record_made(job, clock, n, paths, record)
    result.pruned = prune(job, clock, read_manifest(job.manifest))
    append_manifest(job.manifest, {"event": "run", "job": job.name, "run_id": clock.run_id, "time": clock.moment.isoformat(),
                                   "made": len(result.made), "existing": result.existing, "rejected": result.rejected,
                                   "pruned": result.pruned, "failures": failures})
    if failures:
        raise GenerateError("; ".join(failures))


def _record_made(job: Job, clock: RunClock, n: int, paths: list[Path], record: dict) -> None:
    append_manifest(job.manifest, {"event": "made", "job": job.name, "n": n, "run_id": clock.run_id,
                                   "time": clock.moment.isoformat(), "files": [str(p) for p in paths],
                                   "seed": record["seed"], "attempt": record["attempt"], "job_file": str(job.source),
                                   "checkpoint_sha256": record["checkpoint_sha256"], "max_copy": record.get("max_copy")})


def _renders(files: list[Path]) -> set[Path]:
    """The files rendered beside a MIDI output, where they exist."""
    return {p.with_suffix(s) for p in files if p.suffix == ".mid" for s in RENDER_SUFFIXES.values()
            if p.with_suffix(s).exists()}


def job_request(job: Job, model: LoadedModel, clock: RunClock, n: int, files: list[Path], earlier: list[str],
                copy_index, copy_unavailable: str) -> Request:
    """Output `n` of a job as a pipeline request: one sample, redrawn from each attempt's seed until the filters keep it."""
    seeds = tuple(output_seed(job, clock, n, attempt) for attempt in range(job["max_attempts"]))
    options = job.sample_options(n, seeds[0])
    filters = build_filters(options, model.facts, copy_index, job["dedupe"], earlier)
    extra = {"job": job.name, "job_file": str(job.source.resolve()), "run_id": clock.run_id, "n": n,
             "created": clock.moment.isoformat(), "version": __version__}
    settings = RenderSettings.of(options, model.facts.encoding, title=f"{job.name} {n}")
    return Request(options, model.generator.resolve(options), settings, filters, seeds, (tuple(files),), claim=True,
                   copy_unavailable=copy_unavailable, extra=extra)


def _make_output(job: Job, model: LoadedModel, clock: RunClock, n: int, files: list[Path],
                 earlier: list[str], copies: tuple, result: JobResult):
    """Samples until one passes every filter; returns (paths written, text, record) or None."""
    done = model.run(job_request(job, model, clock, n, files, earlier, *copies))
    for reason, count in done.rejected.items():
        result.rejected[reason] = result.rejected.get(reason, 0) + count
        log.info("job %s output %d: %d sample(s) rejected (%s)", job.name, n, count, reason)
    if not done.outputs:
        return None
    output = done.outputs[0]
    written = list(output.paths) + sorted(_renders(list(output.paths)))
    return written, output.text, output.record


def _remove_stale_temp_files(files: list[Path]) -> None:
    """Temp files a killed run left beside these outputs (`.NAME.xxxx.tmp`): never real outputs."""
    for path in files:
        for name in (path.name, sidecar_path(path).name):
            for stale in path.parent.glob(f".{name}.*"):
                stale.unlink(missing_ok=True)


def _made_by(path: Path, job: Job, clock: RunClock, n: int, whole: bool = True) -> bool:
    """Whether `path`'s sidecar says it is this very output (same job, run id and number); `whole`: and the file is there."""
    try:
        record = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (path.exists() or not whole) and (record.get("job"), record.get("run_id"), record.get("n")) == (job.name, clock.run_id, n)


def _earlier_texts(job: Job, records: list[dict]) -> list[str]:
    """Texts of this job's earlier outputs that still exist, for `dedupe`."""
    if not job["dedupe"]:
        return []
    texts = []
    for record in records:
        if record.get("event") == "made" and record.get("job") == job.name and record.get("files"):
            try:
                texts.append(json.loads(sidecar_path(Path(record["files"][0])).read_text(encoding="utf-8"))["text"])
            except (OSError, ValueError, KeyError):
                continue  # pruned or removed by hand
    return texts
