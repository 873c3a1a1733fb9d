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

# A writer takes (path, text, options) and returns facts to record in the sidecar.
WRITERS: dict[str, Callable[[Path, str, dict], dict]] = {}


def writer(*extensions: str):
    def register(fn: Callable[[Path, str, dict], dict]):
        for ext in extensions:
            WRITERS[ext] = fn
        return fn

    return register


@writer(".txt", ".md", ".py", "")
def write_text(path: Path, text: str, options: dict) -> dict:
    atomic_write_text(path, text)
    return {}


@writer(".mid", ".midi")
def write_midi_file(path: Path, text: str, options: dict) -> dict:
    """Music text to MIDI; `options` may hold encoding, bpm, program and velocity."""
    from .music.render import render_music

    keys = ("encoding", "bpm", "program", "velocity", "png", "wav", "musicxml", "score")
    return render_music(text, path, **{k: options[k] for k in keys if k in options})


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def check_free(paths: list[Path], overwrite: bool, also: tuple[str, ...] = ()) -> None:
    """Raises UsageError if an output cannot be written, or exists and overwrite is off.

    Args:
        paths: the outputs; each also gets a sidecar.
        overwrite: whether existing files may be replaced.
        also: suffixes of further files written beside each output (".wav", ".png").
    """
    for path in paths[:1]:  # all outputs share one directory
        check_writable_location(path, "-o")
    if overwrite:
        return
    taken = [p for path in paths for p in (path, sidecar_path(path), *(path.with_suffix(s) for s in also)) if p.exists()]
    if taken:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise UsageError(f"output {str(taken[0])!r}{more} already exists: expected a new path (use --overwrite to replace)")


def write_output(path: Path, text: str, record: dict, options: dict | None = None) -> dict:
    """Writes one sample and its sidecar, each atomically; returns the sidecar record.

    The sidecar of a rendered format (MIDI) also keeps the text it was rendered from.
    """
    write = WRITERS.get(path.suffix.lower(), write_text)
    try:
        facts = write(path, text, options or {})
        record = {**record, **facts, **({"text": text} if write is not write_text else {})}
        atomic_write_bytes(sidecar_path(path), (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        return record
    except OSError as exc:
        raise GenerateError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
