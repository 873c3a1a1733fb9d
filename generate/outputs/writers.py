"""Output writers, one per format, chosen by file extension (whisper-style registry).

Every writer is atomic, refuses to replace an existing file unless asked, and
writes a JSON sidecar (`NAME.EXT.json`) recording how the output was made.
`RenderSettings` is how every caller says how to render: made once from the
sampling options, never as a loose dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import RenderError, UsageError, WriteError
from ..fileio import atomic_write_bytes, atomic_write_text, check_writable_location
from ..music import RENDER_SUFFIXES
from ..music.midi import instrument_program
from ..music.render import MAX_MALFORMED_SHARE, malformed_characters, render_music


@dataclass(frozen=True)
class RenderSettings:
    """How a sample becomes a file: the music encoding and MIDI settings, the renders beside it, a title."""

    encoding: str = "melody"  # music text's encoding (melody or chorale); unused for text
    bpm: float = 120.0
    program: int = 0  # General MIDI program
    velocity: int = 80
    renders: tuple[str, ...] = ()  # names from music.RENDER_SUFFIXES, beside each MIDI file
    title: str = ""  # a Markdown output's heading
    gain: float = 0.0  # a WAV's peak, in decibels from -1 dBFS

    @classmethod
    def of(cls, options, encoding: str, title: str = "") -> RenderSettings:
        """From a `SampleOptions` (or anything with bpm, instrument, velocity and renders), checked once."""
        return cls(encoding, float(options.bpm), instrument_program(options.instrument), options.velocity,
                   tuple(getattr(options, "renders", ())), title, float(getattr(options, "gain", 0.0)))

    def facts(self, instrument: str | int) -> dict:
        """What a music sidecar records of these settings."""
        return {"bpm": self.bpm, "instrument": instrument, "program": self.program, "velocity": self.velocity}


# A writer takes (path, text, record, settings) and returns facts to record in the sidecar.
WRITERS: dict[str, Callable[[Path, str, dict, RenderSettings], dict]] = {}


def writer(*extensions: str):
    def register(fn: Callable[[Path, str, dict, RenderSettings], dict]):
        for ext in extensions:
            WRITERS[ext] = fn
        return fn

    return register


@writer(".txt", ".py", "")
def write_text(path: Path, text: str, record: dict, settings: RenderSettings) -> dict:
    atomic_write_text(path, text)
    return {}


@writer(".md")
def write_markdown(path: Path, text: str, record: dict, settings: RenderSettings) -> dict:
    """The text as Markdown: a heading when there is a title, and each line kept a line (a trailing double space)."""
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    heading = f"# {settings.title}\n\n" if settings.title else ""
    atomic_write_text(path, heading + "  \n".join(lines) + "\n")
    return {}


@writer(".json")
def write_json(path: Path, text: str, record: dict, settings: RenderSettings) -> dict:
    """The record itself, with its text: what a program reading the output wants."""
    atomic_write_text(path, _json({**record, "text": text}))
    return {}


@writer(".mid", ".midi")
def write_midi_file(path: Path, text: str, record: dict, settings: RenderSettings) -> dict:
    """Music text to MIDI, with the renders `settings` asks for beside it."""
    return render_music(text, path, encoding=settings.encoding, bpm=settings.bpm, program=settings.program,
                        velocity=settings.velocity, renders=settings.renders, gain=settings.gain)


def _json(record: dict) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def sidecar_path(path: Path) -> Path:
    """Where a sample's record goes: beside it, or (a JSON output, which holds its record) the file itself."""
    return path if path.suffix.lower() == ".json" else path.with_name(path.name + ".json")


def output_paths(target: str | Path, count: int, extension: str = ".txt") -> list[Path]:
    """One file for a single sample, else numbered files in a directory.

    A target that exists as a directory, ends with a slash (given as a string: a
    `Path` drops it), or names several samples is treated as a directory.

    Raises:
        UsageError: several samples asked for, and the target is a file.
    """
    as_dir = str(target).endswith(("/", "\\")) or Path(target).is_dir() or count > 1
    target = Path(target)
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


def write_output(path: Path, text: str, record: dict, settings: RenderSettings | None = None, claim: bool = False) -> dict:
    """Writes one sample and its sidecar, each atomically; returns the sidecar record.

    The sidecar of a rendered format (MIDI) also keeps the text it was rendered from, and each
    render beside it gets a sidecar of its own.

    Args:
        claim: write the sidecar first as well, so a kill before the output lands leaves a record
            that a rerun recognises as its own (scheduled jobs).

    Raises:
        RenderError: a render beside a MIDI file failed; the file and its sidecar were written.
        GenerateError: a write failed.
    """
    settings = settings or RenderSettings()
    write = WRITERS.get(path.suffix.lower(), write_text)
    try:
        if claim:
            atomic_write_text(sidecar_path(path), _json(record))
        facts = write(path, text, record, settings)
        record = {**record, **facts, **({"text": text} if write is write_midi_file else {})}
        if sidecar_path(path) != path:
            atomic_write_bytes(sidecar_path(path), _json(record).encode("utf-8"))
        for name in RENDER_SUFFIXES:
            if facts.get(name):
                atomic_write_text(sidecar_path(Path(facts[name])), _json({**record, "rendered_from": str(path)}))
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
    dropped, characters = malformed_characters(text, encoding)
    if not characters or dropped > MAX_MALFORMED_SHARE * characters:
        other = "chorale" if encoding != "chorale" else "melody"
        raise UsageError(f"SOURCE {str(source)!r}: {dropped:,} of its {characters:,} characters are not {encoding} "
                         f"music; expected a music model's sample (or --encoding {other})")
    settings = RenderSettings(encoding, float(bpm), instrument_program(instrument), 80, renders)
    check_free([output], overwrite, renders)
    record = {"source": str(Path(source).resolve()), "bpm": settings.bpm, "program": settings.program,
              "encoding": encoding, "renders": renders}
    return write_output(output, text, record, settings)
