"""Output writers, one per format, chosen by file extension (whisper-style registry).

Every writer is atomic, refuses to replace an existing file unless asked, and
writes a JSON sidecar (`NAME.EXT.json`) recording how the output was made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..errors import RenderError, UsageError, WriteError
from ..fileio import atomic_write_bytes, atomic_write_text, check_writable_location
from ..music import RENDER_SUFFIXES
from ..music.midi import instrument_program
from ..music.render import render_music

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
    """Music text to MIDI; `options` may hold encoding, bpm, program, velocity and renders."""
    keys = ("encoding", "bpm", "program", "velocity", "renders")
    return render_music(text, path, **{k: options[k] for k in keys if k in options})


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def output_paths(target: Path, count: int, extension: str = ".txt") -> list[Path]:
    """One file for a single sample, else numbered files in a directory.

    A target that exists as a directory, ends with a slash, or has no suffix
    while count > 1 is treated as a directory.

    Raises:
        UsageError: several samples asked for, and the target is a file.
    """
    as_dir = target.is_dir() or str(target).endswith(("/", "\\")) or count > 1
    if not as_dir:
        return [target]
    if target.exists() and not target.is_dir():
        raise UsageError(f"-o {str(target)!r}: expected a directory for {count} samples, found a file")
    width = max(2, len(str(count)))
    return [target / f"sample-{i + 1:0{width}d}{extension}" for i in range(count)]


def check_free(paths: list[Path], overwrite: bool, renders: tuple[str, ...] = ()) -> None:
    """Raises UsageError if an output cannot be written, or exists and overwrite is off.

    Args:
        paths: the outputs; each also gets a sidecar.
        overwrite: whether existing files may be replaced.
        renders: renders written beside each MIDI output (`music.render.RENDER_SUFFIXES`).
    """
    also = tuple(RENDER_SUFFIXES[name] for name in renders)
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

    Raises:
        RenderError: a render beside a MIDI file failed; the file and its sidecar were written.
        GenerateError: a write failed.
    """
    write = WRITERS.get(path.suffix.lower(), write_text)
    try:
        facts = write(path, text, options or {})
        record = {**record, **facts, **({"text": text} if write is not write_text else {})}
        atomic_write_bytes(sidecar_path(path), (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as exc:
        raise WriteError.from_os_error(path, exc) from None
    if record.get("render_errors"):
        raise RenderError(next(iter(record["render_errors"].values())))
    return record


def render_file(source: Path, output: Path, bpm: float = 120.0, instrument: str | int = "piano",
                encoding: str | None = None, renders: tuple[str, ...] = (), overwrite: bool = False) -> dict:
    """Renders encoded music text (a `.txt`, or a sample's `.json` sidecar) to a MIDI file and its renders.

    Returns:
        The sidecar record: pieces, notes, and malformed characters dropped.

    Raises:
        UsageError: unreadable text, a sidecar without text, an output that is not `.mid`, or one that exists.
    """
    try:
        raw = Path(source).read_text(encoding="utf-8")
        sidecar = json.loads(raw) if Path(source).suffix == ".json" else {}
        text = sidecar["text"] if sidecar else raw
        encoding = encoding or sidecar.get("encoding") or "melody"
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"SOURCE {str(source)!r}: expected UTF-8 music text or a sample sidecar with a 'text' field") from None
    if output.suffix.lower() not in (".mid", ".midi"):
        raise UsageError(f"-o: expected a .mid path, received {str(output)!r}")
    options = {"bpm": bpm, "program": instrument_program(instrument), "encoding": encoding, "renders": renders}
    check_free([output], overwrite, renders)
    return write_output(output, text, {"source": str(Path(source).resolve()), **options}, options)
