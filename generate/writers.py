"""Output writers, one per format, chosen by file extension (whisper-style registry).

Every writer is atomic, refuses to replace an existing file unless asked, and
writes a JSON sidecar (`NAME.EXT.json`) recording how the output was made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .errors import GenerateError, UsageError
from .fileio import atomic_write_bytes, atomic_write_text, check_writable_location

WRITERS: dict[str, Callable[[Path, str], None]] = {}


def writer(*extensions: str):
    def register(fn: Callable[[Path, str], None]):
        for ext in extensions:
            WRITERS[ext] = fn
        return fn

    return register


@writer(".txt", ".md", ".py", "")
def write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def check_free(paths: list[Path], overwrite: bool) -> None:
    """Raises UsageError if an output cannot be written, or exists and overwrite is off."""
    for path in paths[:1]:  # all outputs share one directory
        check_writable_location(path, "-o")
    if overwrite:
        return
    taken = [p for path in paths for p in (path, sidecar_path(path)) if p.exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise UsageError(f"output {str(taken[0])!r}{more} already exists: expected a new path (use --overwrite to replace)")


def write_output(path: Path, text: str, record: dict) -> None:
    """Writes one sample and its sidecar, each atomically."""
    write = WRITERS.get(path.suffix.lower(), write_text)
    try:
        write(path, text)
        atomic_write_bytes(sidecar_path(path), (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as exc:
        raise GenerateError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
