"""Ingesting music files at scale: parallel, time-limited, cached per file, deduplicated.

Each piece (a file, or one tune of a multi-tune ABC file) is encoded once
and kept in a per-file cache, an SQLite table keyed by the file's path,
size and modification time and the encoding settings. A corpus of 10,000
files that gains 10 reads only those 10: the others are not even opened.

Pieces not yet cached are parsed by worker processes, one piece at a time
each, with a watchdog: a piece that runs past the time limit, or kills its
worker (a parser crash), is skipped with that reason and the worker
replaced. Results stream into the cache as they come, and the corpus text
is then written piece by piece from it, so memory stays flat however many
files there are. Pieces whose encoded text is identical to an earlier one
are dropped and counted.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from ..errors import UsageError
from ..fileio import atomic_path
from ..paths import cache_root
from ..progress import ProgressBar

log = logging.getLogger(__name__)

TIME_LIMIT = 60.0  # seconds one piece may take to parse before it is skipped; GENERATE_PARSE_TIME_LIMIT overrides it
TIME_LIMIT_ENV = "GENERATE_PARSE_TIME_LIMIT"
BATCH = 500  # cache rows read or written per SQLite statement
SCHEMA = "CREATE TABLE IF NOT EXISTS pieces (key TEXT PRIMARY KEY, text TEXT, exact INTEGER, error TEXT)"

Job = tuple[str, "int | None"]  # (path, ABC tune number or None)
# (job, settings) -> (text, exact, error); a module-level function, so worker processes can import it
Encoder = Callable[[Job, dict], tuple[str, bool, str]]


@dataclass
class IngestReport:
    """What happened to every piece."""

    pieces: int = 0  # encoded and written
    inexact: int = 0  # encoded with something approximated
    duplicates: int = 0  # dropped: the same encoded text as an earlier piece
    parsed: int = 0  # read this time (the rest came from the per-file cache)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (piece, reason)
    index: list[tuple[str, int | None, int]] = field(default_factory=list)  # (file, tune number, lines) of each piece written

    def as_dict(self) -> dict:
        return {"pieces": self.pieces, "inexact": self.inexact, "duplicates": self.duplicates,
                "skipped": [f"{piece}: {reason}" for piece, reason in self.skipped], "index": self.index}


def piece_name(job: Job) -> str:
    path, number = job
    return path + (f" (tune {number})" if number is not None else "")


def file_identity(path: Path | str) -> str:
    """What a file is known by without reading it: its absolute path, size and modification time."""
    stat = os.stat(path)
    return f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}"


def piece_key(job: Job, identity: str, settings: dict) -> str:
    """The cache key: the piece, its file's `file_identity`, and every setting that shapes its text."""
    fields = [identity, str(job[1])] + [f"{k}={settings[k]}" for k in sorted(settings)]
    return hashlib.sha256("\0".join(fields).encode()).hexdigest()


def ingest(jobs: list[Job], settings: dict, encode: Encoder, out: Path, show_progress: bool = True,
           workers: int | None = None, time_limit: float | None = None,
           identities: dict[str, str] | None = None) -> IngestReport:
    """Encodes `jobs` into `out`, one piece per line, in order; returns what happened.

    Args:
        jobs: the pieces, in corpus order.
        settings: what shapes each piece's text (encoding, transposition, track choice, format versions).
        encode: the parser, run in worker processes.
        out: the corpus text file, written atomically.
        workers: parallel parsers; None: one per core (at most 8).
        time_limit: seconds a piece may take before it is skipped; None: GENERATE_PARSE_TIME_LIMIT, else TIME_LIMIT.
        identities: each file's `file_identity`, where the caller has them already (each file is stat'ed once).
    """
    if time_limit is None:
        configured = os.environ.get(TIME_LIMIT_ENV) or str(TIME_LIMIT)
        try:
            time_limit = float(configured)
        except ValueError:
            time_limit = -1.0
        if not time_limit > 0:
            raise UsageError(f"{TIME_LIMIT_ENV}: expected seconds > 0, received {configured!r}")
    identities = identities if identities is not None else {}
    keys = [piece_key(job, identities.get(job[0]) or file_identity(job[0]), settings) for job in jobs]
    report = IngestReport()
    with _cache() as db:
        missing = [i for i, found in enumerate(_known(db, keys)) if not found]
        report.parsed = len(missing)
        if missing:
            bar = ProgressBar(len(missing), desc=f"parsing {len(missing)} of {len(jobs)} pieces", unit="file",
                              enabled=show_progress)
            rows: list[tuple] = []
            for done, (index, (text, exact, error)) in enumerate(
                    _parse(jobs, missing, settings, encode, workers, time_limit), start=1):
                rows.append((keys[index], text, int(exact), error))
                if len(rows) >= BATCH:
                    _store(db, rows)
                bar.update(done)
            _store(db, rows)
            bar.close()
        seen: set[bytes] = set()
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            for job, (text, exact, error) in zip(jobs, _rows(db, keys)):
                if error:
                    report.skipped.append((piece_name(job), error))
                    continue
                if not text:
                    report.skipped.append((piece_name(job), "no notes"))
                    continue
                digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
                if digest in seen:
                    report.duplicates += 1
                    continue
                seen.add(digest)
                handle.write(text + "\n")
                report.index.append((job[0], job[1], text.count("\n") + 1))
                report.pieces += 1
                report.inexact += not exact
    return report


def _cache() -> sqlite3.Connection:
    path = cache_root() / "music" / "pieces.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")  # readers and one writer at once: two builds can share the cache
    db.execute(SCHEMA)
    return db


def _known(db: sqlite3.Connection, keys: list[str]) -> list[bool]:
    found: set[str] = set()
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        found.update(k for (k,) in db.execute(f"SELECT key FROM pieces WHERE key IN ({','.join('?' * len(chunk))})", chunk))
    return [k in found for k in keys]


def _store(db: sqlite3.Connection, rows: list[tuple]) -> None:
    if rows:
        with db:
            db.executemany("INSERT OR REPLACE INTO pieces VALUES (?, ?, ?, ?)", rows)
        rows.clear()


def _rows(db: sqlite3.Connection, keys: list[str]) -> Iterator[tuple[str, bool, str]]:
    """Each key's (text, exact, error), in order, a batch at a time."""
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        found = {k: (t, bool(x), e) for k, t, x, e in
                 db.execute(f"SELECT key, text, exact, error FROM pieces WHERE key IN ({','.join('?' * len(chunk))})", chunk)}
        for key in chunk:
            yield found.get(key, ("", False, "lost from the cache"))


# ---------------------------------------------------------------- parallel parsing with a watchdog


def _parse(jobs: list[Job], indices: list[int], settings: dict, encode: Encoder, workers: int | None,
           time_limit: float) -> Iterator[tuple[int, tuple[str, bool, str]]]:
    """Yields (index, result) for every job in `indices`, in the order they finish."""
    count = min(workers or min(os.cpu_count() or 1, 8), len(indices))
    if count <= 1 and len(indices) <= 2:  # a primer or two: not worth a process
        for index in indices:
            yield index, _guarded(encode, jobs[index], settings)
        return
    context = multiprocessing.get_context("spawn")  # never fork a process that may hold TensorFlow's threads
    pool = [_Worker(context, encode, settings) for _ in range(max(count, 1))]
    queue = list(reversed(indices))
    try:
        while queue or any(w.index is not None for w in pool):
            for worker in pool:
                if worker.index is None and queue:
                    worker.start(queue.pop(), jobs)
            busy = [w for w in pool if w.index is not None]
            ready = wait([w.conn for w in busy], timeout=0.5)
            for worker in busy:
                if worker.conn in ready:
                    try:
                        result = worker.conn.recv()
                    except (EOFError, OSError):  # the worker died: a parser crash
                        yield worker.index, ("", False, "crashed the parser")
                        worker.restart(context, encode, settings)
                        continue
                    yield worker.index, result
                    worker.index = None
                elif time.monotonic() - worker.started > time_limit:
                    yield worker.index, ("", False, f"time limit: parsing took over {time_limit:g} s")
                    worker.restart(context, encode, settings)
    finally:
        for worker in pool:
            worker.stop()


class _Worker:
    """One parsing process and the piece it is on."""

    def __init__(self, context, encode: Encoder, settings: dict):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, encode, settings), daemon=True)
        self.process.start()
        child.close()
        self.index: int | None = None
        self.started = 0.0

    def start(self, index: int, jobs: list[Job]) -> None:
        self.index, self.started = index, time.monotonic()
        self.conn.send(jobs[index])

    def restart(self, context, encode: Encoder, settings: dict) -> None:
        self.stop()
        self.__init__(context, encode, settings)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


def _serve(conn, encode: Encoder, settings: dict) -> None:
    """A worker's loop: a job in, its result out, until the pipe closes."""
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        conn.send(_guarded(encode, job, settings))


def _guarded(encode: Encoder, job: Job, settings: dict) -> tuple[str, bool, str]:
    try:
        return encode(job, settings)
    except Exception as exc:  # a parser may raise anything on a malformed file: it is a skip, never a crash
        return "", False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
