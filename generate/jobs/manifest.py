"""A job's manifest (one JSON line per output made or pruned, one per run) and retention.

Appends of one line are atomic between processes, and a torn last line (a
crash mid-append) is skipped on reading. Retention removes only files the
job's own manifest lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
from pathlib import Path

from .. import faults
from ..errors import WriteError
from ..outputs.writers import sidecar_path
from .naming import RunClock
from .schema import Job


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
    """Appends one JSON line; O_APPEND writes of one line do not interleave between processes.

    A line torn by a crash gets its missing newline first, so it cannot spoil
    the record after it; a write the disk cut short is undone.

    Raises:
        WriteError: the line could not be written; the manifest is as it was.
    """
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise WriteError.from_os_error(path, exc) from exc
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        try:
            faults.before_commit(path)
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise WriteError.from_os_error(path, exc) from exc
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


def made_outputs(directory: Path) -> list[dict]:
    """What was made under `directory`, from the outputs' sidecars: file, job, model, checkpoint, seed, settings."""
    found = []
    for sidecar in sorted(Path(directory).rglob("*.json")):
        output = sidecar.with_name(sidecar.name[: -len(".json")])
        if not output.exists():
            if output.suffix:  # the sidecar of an output that is gone (poem.txt.json without poem.txt)
                continue
            output = sidecar  # a JSON output (poem.json), its own record
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or "seed" not in record or "checkpoint" not in record:
            continue
        found.append({"file": str(output), "job": record.get("job"), "run_id": record.get("run_id"),
                      "model": record.get("run"), "checkpoint_sha256": record.get("checkpoint_sha256"),
                      "seed": record.get("seed"), "prime": record.get("prime"), "temperature": record.get("temperature"),
                      "top_k": record.get("top_k"), "top_p": record.get("top_p"), "length": record.get("length"),
                      "max_copy": record.get("max_copy"), "created": record.get("created")})
    return found
