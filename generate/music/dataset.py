"""Music corpora: parse sources with music21, encode them, cache the text.

Sources are MIDI, ABC (multi-tune files are read tune by tune), MusicXML and
Humdrum files, directories and globs of them, or the built-in collections
`corpus:folk` (Essen, O'Neill's 1850, Aird's Airs, Ryan's Mammoth) and
`corpus:bach` (the chorales) from the corpus that ships with music21.
Parsing is slow, so tunes are parsed in parallel with a progress bar, and
the encoded text is cached under the corpus cache, keyed by the sources'
content hash, the encoding and the music21 version. A tune that fails to
parse is skipped with a warning that names it.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path

from .. import faults
from ..errors import CorpusError, OptionError, UsageError, WriteError
from ..fileio import atomic_write_text
from ..paths import cache_root
from . import ENCODINGS, MUSIC_SUFFIXES, TRANSPOSE_MODES
from .chorale import HIGHEST_PITCH as CHORALE_HIGH
from .chorale import LOWEST_PITCH as CHORALE_LOW
from .chorale import VOICE_RANGES, encode_chorale
from .fast_midi import MidiSkip, chorale_from_midi, read_midi, tune_from_midi
from .ingest import file_identity, ingest
from .keys import transposed_sharps, transpositions
from .melody import HIGHEST_PITCH, LOWEST_PITCH, encode_tune
from .sources import abc_tune_numbers, chorale_from_score, shifted, tune_from_score

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when an encoding's output changes
MIDI_SUFFIXES = (".mid", ".midi")


def resolve_music_files(sources: list[str], collections: dict[str, tuple[str, ...]] | None = None) -> list[Path]:
    """Music files from paths, directories, globs and built-in collection names.

    Args:
        sources: paths, directories, glob patterns, or `corpus:NAME` names of built-in collections.
        collections: `corpus:NAME` -> the music21 corpus folders it stands for (the corpus registry's).

    Raises:
        UsageError: an unknown `corpus:` name, a missing path, or no music files.
    """
    files: list[Path] = []
    for source in sources:
        if source.startswith("corpus:"):
            builtin = collections or {}
            if source not in builtin:
                raise UsageError(f"corpus source {source!r}: expected one of {', '.join(builtin)}")
            from music21 import corpus  # music21 takes seconds to import: only parsing needs it

            folders = builtin[source]
            found = sorted(Path(p) for p in corpus.getPaths()
                           if any(f"/{name}/" in str(p) for name in folders) and Path(p).suffix.lower() in MUSIC_SUFFIXES)
            stems: set[str] = set()  # the collection holds some pieces twice, in two formats
            files.extend(p for p in found if not (p.stem in stems or stems.add(p.stem)))
            continue
        path = Path(os.path.expanduser(source))
        if glob.has_magic(source):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(source), recursive=True))
        elif path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            matches = [path]
        else:
            raise UsageError(f"corpus source {source!r}: no such file or directory")
        music = [p for p in matches if p.suffix.lower() in MUSIC_SUFFIXES]
        if not music:
            raise UsageError(f"corpus source {source!r}: expected music files ({', '.join(MUSIC_SUFFIXES)}), found none")
        files.extend(music)
    return files


def encode_music_corpus(sources: list[str], encoding: str = "melody", show_progress: bool = True,
                        transpose: str = "none", collections: dict[str, tuple[str, ...]] | None = None,
                        build: bool = True, track: str = "auto", skipped_report: Path | None = None) -> Path:
    """Returns a cached text file with one encoded piece per line.

    MIDI files are read with symusic (`fast_midi.py`); ABC, MusicXML and
    Humdrum with music21. With `transpose="common"` every piece moves to the
    key signature without sharps or flats; with `"all"`, every transposition
    whose pitches stay in the encoding's range is written (up to twelve lines
    per piece). Pieces are parsed in parallel and cached one by one
    (`ingest.py`); duplicates are dropped and skips counted by reason.

    Args:
        track: which MIDI tracks a melody comes from: auto, all, an index or a name.
        build: with False, a corpus not encoded yet raises CorpusError instead.
        skipped_report: a file to list every skipped piece in, with its reason (TSV).

    Raises:
        UsageError: bad sources, encoding or track.
        CorpusError: nothing parsed, or (`build=False`) not encoded yet.
    """
    if encoding not in ENCODINGS:
        raise UsageError(f"--encoding: expected one of {', '.join(ENCODINGS)}, received {encoding!r}")
    if transpose not in TRANSPOSE_MODES:
        raise UsageError(f"--transpose: expected one of {', '.join(TRANSPOSE_MODES)}, received {transpose!r}")
    files = resolve_music_files(sources, collections)
    settings = corpus_settings(encoding, transpose, track)
    # The corpus's key: every file's path, size and modification time, so a cached corpus is found without reading one.
    identities = {str(path): file_identity(path) for path in files}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for identity in identities.values():
        digest.update(f"\0{identity}".encode())
    out = cache_root() / "music" / f"{digest.hexdigest()[:32]}-{encoding}-{transpose}.txt"
    meta_path = out.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if out.exists() and meta_path.exists() else None
    if meta is None and not build:
        raise CorpusError(f"music corpus {', '.join(sources)}: not encoded yet (training or `generate corpus build` encodes it)")
    if meta is None or ("index" not in meta and build):  # a cache older than the piece index labels need is rewritten from the piece cache
        jobs = [(str(p), n) for p in files for n in (abc_numbers(p) if p.suffix.lower() == ".abc" else [None])]
        result = ingest(jobs, settings, encode_job, out, show_progress, identities=identities)
        meta = {**result.as_dict(), "encoding": encoding, "parsed": result.parsed, "files": len(files)}
        if not result.pieces:
            out.unlink(missing_ok=True)
            raise CorpusError(f"no music could be parsed from {', '.join(sources)} ({len(result.skipped)} piece(s) skipped"
                              + (f", {result.duplicates} duplicate(s)" if result.duplicates else "") + ")")
        atomic_write_text(meta_path, json.dumps(meta, indent=1))
    if skipped_report is not None:
        write_skipped_report(skipped_report, meta["skipped"])
    _report(meta)
    return out


def corpus_settings(encoding: str, transpose: str, track: str) -> dict:
    """Everything that shapes a piece's text, for the cache keys: the versions of the code and the parsers too."""
    from importlib.metadata import version  # reads package metadata only, not music21 itself

    ranges = {"voice_ranges": VOICE_RANGES} if encoding == "chorale" and transpose != "none" else {}
    return {"format": FORMAT_VERSION, "encoding": encoding, "transpose": transpose, "track": track, **ranges,
            "music21": version("music21"), "symusic": version("symusic")}


def encode_job(job: tuple[str, int | None], settings: dict) -> tuple[str, bool, str]:
    """One piece for `ingest.ingest`'s workers."""
    faults.before_parse(Path(job[0]))
    return encode_piece(job, settings["encoding"], settings["transpose"], settings["track"])


def write_skipped_report(path: Path, skipped: list[str]) -> None:
    """Every skipped piece and its reason, one per line, tab-separated."""
    lines = ["piece\treason"] + [entry.replace(": ", "\t", 1) if ": " in entry else entry + "\t" for entry in skipped]
    try:
        atomic_write_text(Path(path), "\n".join(lines) + "\n")
    except OSError as exc:
        raise WriteError.from_os_error(Path(path), exc) from None


def skip_reason(entry: str) -> str:
    """The kind of reason of a "piece: reason (details)" entry, to count skips by."""
    reason = entry.split(": ", 1)[1] if ": " in entry else "unknown"
    return reason.split(" (")[0].split(":")[0]


def _report(meta: dict) -> None:
    skipped = meta["skipped"]
    for entry in skipped[:20]:
        log.warning("skipped %s", entry)
    if len(skipped) > 20:
        log.warning("... and %d more skipped (--skipped-report FILE lists them all)", len(skipped) - 20)
    reasons = Counter(skip_reason(entry) for entry in skipped)
    by_reason = "".join(f"; {n} {reason}" for reason, n in reasons.most_common())
    log.info("music corpus: %d pieces encoded (%d approximated), %d duplicate(s) dropped, %d skipped%s",
             meta["pieces"], meta["inexact"], meta.get("duplicates", 0), len(skipped), by_reason)


def abc_numbers(path: Path) -> list:
    """The tune numbers to parse an ABC file by, one at a time ([None] for a file without `X:` lines)."""
    return abc_tune_numbers(path) or [None]


def encode_piece(job: tuple[str, int | None], encoding: str, transpose: str = "none",
                 track: str = "auto") -> tuple[str, bool, str]:
    """Parses and encodes one piece (a pool worker); returns (text, exact, error).

    Under augmentation the text holds one line per transposition.
    """
    path, number = job
    try:
        if Path(path).suffix.lower() in MIDI_SUFFIXES:
            midi = read_midi(path)
            piece = chorale_from_midi(midi) if encoding == "chorale" else tune_from_midi(midi, track)
        else:
            from music21 import converter  # music21 takes seconds to import: only parsing needs it

            score = converter.parse(path, number=number, format="abc") if number is not None else converter.parse(path)
            piece = chorale_from_score(score) if encoding == "chorale" else tune_from_score(score)
        low, high = (CHORALE_LOW, CHORALE_HIGH) if encoding == "chorale" else (LOWEST_PITCH, HIGHEST_PITCH)
        lines, exact = [], True
        for semitones in transpositions(piece.sharps, transpose):
            moved = shifted(piece, semitones, transposed_sharps(piece.sharps, semitones))
            pitches = [e.pitch for v in _voices(moved) for e in v if e.pitch is not None]
            if semitones and not all(low <= p <= high for p in pitches):
                continue  # an augmented copy must not need octave folding
            if semitones and encoding == "chorale" and not _voices_in_range(moved):
                continue  # nor push a voice out of the range it sings in
            text, piece_exact = encode_chorale(moved) if encoding == "chorale" else encode_tune(moved)
            lines.append(text)
            exact &= piece_exact
        return "\n".join(lines), exact, ""
    except MidiSkip as exc:
        return "", False, str(exc)
    except Exception as exc:  # music21 raises anything on malformed files
        return "", False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _voices_in_range(piece) -> bool:
    return all(low <= e.pitch <= high for (low, high), voice in zip(VOICE_RANGES, piece.voices)
               for e in voice if e.pitch is not None)


def _voices(piece) -> list:
    return piece.voices if hasattr(piece, "voices") else [piece.events]


def encode_primer(path: Path, encoding: str) -> str:
    """Encodes a MIDI, ABC or MusicXML file (its first tune) as a primer.

    Raises:
        OptionError: the file cannot be parsed as music (named as `prime_file`).
    """
    number = abc_numbers(Path(path))[0] if Path(path).suffix.lower() == ".abc" else None
    text, _, error = encode_piece((str(path), number), encoding)
    if error:
        raise OptionError("prime_file", f"{str(path)!r} cannot be read as music ({error})")
    return text
