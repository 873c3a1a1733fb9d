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

import functools
import glob
import hashlib
import json
import logging
import os
from pathlib import Path

from ..errors import CorpusError, OptionError, UsageError
from ..fileio import atomic_write_text
from ..paths import cache_root
from ..progress import ProgressBar
from . import ENCODINGS, MUSIC_SUFFIXES, TRANSPOSE_MODES
from .chorale import HIGHEST_PITCH as CHORALE_HIGH
from .chorale import LOWEST_PITCH as CHORALE_LOW
from .chorale import encode_chorale
from .keys import transposed_sharps, transpositions
from .melody import HIGHEST_PITCH, LOWEST_PITCH, encode_tune
from .sources import abc_tune_numbers, chorale_from_score, shifted, tune_from_score

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when an encoding's output changes


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
                        build: bool = True) -> Path:
    """Returns a cached text file with one encoded piece per line.

    With `transpose="common"` every piece moves to the key signature without
    sharps or flats; with `"all"`, every transposition whose pitches stay in
    the encoding's range is written (up to twelve lines per piece).

    With `build=False`, a corpus not encoded yet raises CorpusError instead.

    Raises:
        UsageError: bad sources or encoding.
        CorpusError: nothing parsed, or (`build=False`) not encoded yet.
    """
    if encoding not in ENCODINGS:
        raise UsageError(f"--encoding: expected one of {', '.join(ENCODINGS)}, received {encoding!r}")
    if transpose not in TRANSPOSE_MODES:
        raise UsageError(f"--transpose: expected one of {', '.join(TRANSPOSE_MODES)}, received {transpose!r}")
    files = resolve_music_files(sources, collections)
    import music21  # for its version, which keys the cache: only parsing needs it

    digest = hashlib.sha256(json.dumps([FORMAT_VERSION, encoding, transpose, music21.__version__]).encode())
    for path in files:
        digest.update(f"\0{path.name}\0".encode())
        digest.update(path.read_bytes())
    out = cache_root() / "music" / f"{digest.hexdigest()[:32]}-{encoding}-{transpose}.txt"
    meta_path = out.with_suffix(".json")
    if out.exists() and meta_path.exists():
        _report(json.loads(meta_path.read_text()))
        return out
    if not build:
        raise CorpusError(f"music corpus {', '.join(sources)}: not encoded yet (training or `generate corpus build` encodes it)")
    jobs = [(str(p), n) for p in files for n in (abc_numbers(p) if p.suffix.lower() == ".abc" else [None])]
    lines, skipped, inexact = [], [], 0
    bar = ProgressBar(len(jobs), desc=f"parsing {len(jobs)} pieces", unit="piece", enabled=show_progress)
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: only parsing needs it, never --help

    workers = min(os.cpu_count() or 1, 8)
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 and len(jobs) > 20 else _Serial() as pool:
        encode = functools.partial(encode_piece, encoding=encoding, transpose=transpose)
        for done, (job, result) in enumerate(zip(jobs, pool.map(encode, jobs, chunksize=16)), start=1):
            text, exact, error = result
            if error:
                skipped.append(f"{job[0]}" + (f" (tune {job[1]})" if job[1] is not None else "") + f": {error}")
            elif text:
                lines.append(text)
                inexact += not exact
            bar.update(done)
    bar.close()
    meta = {"pieces": len(lines), "skipped": skipped, "inexact": inexact, "encoding": encoding}
    if not lines:
        raise CorpusError(f"no music could be parsed from {', '.join(sources)} ({len(skipped)} piece(s) failed)")
    atomic_write_text(out, "".join(line + "\n" for line in lines))
    atomic_write_text(meta_path, json.dumps(meta, indent=1))
    _report(meta)
    return out


def _report(meta: dict) -> None:
    for entry in meta["skipped"][:20]:
        log.warning("skipped %s", entry)
    log.info("music corpus: %d pieces encoded (%d approximated), %d skipped",
             meta["pieces"], meta["inexact"], len(meta["skipped"]))


def abc_numbers(path: Path) -> list:
    """The tune numbers to parse an ABC file by, one at a time ([None] for a file without `X:` lines)."""
    return abc_tune_numbers(path) or [None]


def encode_piece(job: tuple[str, int | None], encoding: str, transpose: str = "none") -> tuple[str, bool, str]:
    """Parses and encodes one piece (a pool worker); returns (text, exact, error).

    Under augmentation the text holds one line per transposition.
    """
    path, number = job
    try:
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
            text, piece_exact = encode_chorale(moved) if encoding == "chorale" else encode_tune(moved)
            lines.append(text)
            exact &= piece_exact
        return "\n".join(lines), exact, ""
    except Exception as exc:  # music21 raises anything on malformed files
        return "", False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _voices(piece) -> list:
    return piece.voices if hasattr(piece, "voices") else [piece.events]


class _Serial:
    """A stand-in for a process pool, for small jobs."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items, chunksize=1):
        return map(fn, items)


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
