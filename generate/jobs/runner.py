"""One job of a job file: sample, filter, resample, write atomically, record, prune.

`schedule.py` validates, locks and orders the jobs; this file is what
happens inside one of them.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import GenerateError
from ..fileio import atomic_write_text
from ..model.checkpoint import RunDir
from ..music import RENDER_SUFFIXES
from ..music.midi import instrument_program
from ..outputs.writers import sidecar_path, write_output
from ..sampling import novelty
from ..sampling.generator import Generator, generate_samples, is_valid, load_generator, sample_record
from .manifest import append_manifest, prune, read_manifest
from .naming import RunClock, output_base, output_files, output_seed
from .schema import Job

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



def similar(a: str, b: str, threshold: float) -> bool:
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold


def run_job(job: Job, run: RunDir, clock: RunClock, overwrite: bool, result: JobResult, on_file=None) -> None:
    """Makes the job's `count` outputs into `result`; failures of single outputs are collected, not raised.

    Raises:
        GenerateError: the model cannot be loaded, or an output failed every attempt.
    """
    gen = load_generator(run.path, job["checkpoint"], 1)
    music = gen.facts.music
    records = read_manifest(job.manifest)
    recorded = {(r.get("job"), r.get("run_id"), r.get("n")) for r in records if r.get("event") == "made"}
    earlier = _earlier_texts(job, records)
    # max_copy needs the corpus; without it, each sidecar still records the longest copy when the corpus is at hand.
    copy_index = _copy_index(gen) if job["max_copy"] else novelty.optional_copy_index(gen.config, gen.vocab)[0]
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
        made = _make_output(job, gen, clock, n, files, music, earlier, copy_index, result)
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


def _make_output(job: Job, gen: Generator, clock: RunClock, n: int, files: list[Path], music: bool,
                 earlier: list[str], copy_index, result: JobResult):
    """Samples until one passes every filter; returns (paths written, text, record) or None."""
    for attempt in range(job["max_attempts"]):
        options = job.sample_options(n, output_seed(job, clock, n, attempt))
        cfg = gen.resolve(options)
        sample = generate_samples(gen, cfg)[0]
        text = cfg.prime + sample.text
        checks: dict = {"max_copy": None}
        reason = _rejection(job, gen, text, sample.text, earlier, copy_index, checks)
        if reason:
            result.rejected[reason] = result.rejected.get(reason, 0) + 1
            log.info("job %s output %d attempt %d: rejected (%s)", job.name, n, attempt + 1, reason)
            continue
        record = sample_record(gen, cfg, 0, sample)
        record.update({"job": job.name, "job_file": str(job.source.resolve()), "run_id": clock.run_id, "n": n,
                       "attempt": attempt, "max_copy": checks["max_copy"], "longest_copy": checks["max_copy"],
                       "created": clock.moment.isoformat(),
                       "version": __version__, "text": text})
        written = []
        for path in files:
            render = {"encoding": gen.facts.encoding, "bpm": options.bpm, "title": f"{job.name} {n}"}
            if music:
                render.update({"program": instrument_program(options.instrument), "velocity": options.velocity,
                               "renders": options.renders})
            # The sidecar goes first: a kill before the output lands leaves a claim a rerun recognises as its own.
            atomic_write_text(sidecar_path(path), json.dumps(record, indent=2, ensure_ascii=False) + "\n")
            if path.suffix == ".json":
                atomic_write_text(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
                facts = {}
            else:
                facts = write_output(path, _markdown(job, n, text) if path.suffix == ".md" else text, record, render)
            written.append(path)
            for rendered in (Path(facts[k]) for k in RENDER_SUFFIXES if facts.get(k)):
                atomic_write_text(sidecar_path(rendered), json.dumps({**record, "rendered_from": str(path)}, indent=2,
                                                                     ensure_ascii=False) + "\n")
                written.append(rendered)
        return written, text, record
    return None


def _rejection(job: Job, gen: Generator, text: str, sampled: str, earlier: list[str], copy_index, checks: dict) -> str:
    """The first filter a sample fails, or "" if it passes them all."""
    if len(sampled) < job["min_length"]:
        return "min_length"
    if job["valid_only"] and not is_valid(gen, text):
        return "valid_only"
    if copy_index is not None:
        checks["max_copy"] = novelty.longest_copy(gen.vocab, copy_index, sampled)
        if job["max_copy"] and checks["max_copy"] > job["max_copy"]:
            return "max_copy"
    threshold = DEDUPE_DEFAULT if job["dedupe"] is True else float(job["dedupe"] or 0)
    if threshold and any(similar(text, other, threshold) for other in earlier):
        return "dedupe"
    return ""


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


def _copy_index(gen: Generator):
    """The training corpus's copy index, or a clear error if the corpus is not available."""
    try:
        return novelty.copy_index(gen.config, gen.vocab)
    except novelty.CorpusUnavailable as exc:
        raise GenerateError(f"max_copy needs the model's training corpus: {exc}") from None


def _markdown(job: Job, n: int, text: str) -> str:
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    return f"# {job.name} {n}\n\n" + "  \n".join(lines) + "\n"
