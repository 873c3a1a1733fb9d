"""Corpora: resolving sources, decoding UTF-8, and caching encoded ids.

A corpus is a list of files read as one character stream. Text files are
joined with newlines; code files are each preceded by FILE_SEPARATOR so a
model learns where files begin and end. The stream is normalised (BOM
stripped, CRLF to LF) and encoded to a compact integer array that is cached
on disk, keyed by the sources' content hash, and memory-mapped on load, so
corpora larger than RAM train in constant memory.
"""

from __future__ import annotations

import codecs
import dataclasses
import fnmatch
import glob
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CorpusError, UsageError
from ..fileio import atomic_path, atomic_write_text
from ..music.dataset import encode_music_corpus
from ..paths import cache_root
from ..progress import ProgressBar
from .config import FILE_SEPARATOR, CorpusConfig
from .labels import Labelling, label_corpus
from .registry import PREFIX, get_entry, music_collections, resolve_source
from .vocab import Vocab

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 << 20
CACHE_FORMAT = 1  # bump when the on-disk layout or normalisation changes
# Directory and file names never read as code: VCS data, vendored and generated trees.
DEFAULT_CODE_EXCLUDES = (
    ".git", ".hg", ".svn", ".tox", ".venv", "venv", "__pycache__", "node_modules",
    "vendor", "vendored", "third_party", "site-packages", "dist", "build", "*.egg-info",
    "*.min.js", "*.min.css", "*.lock", "package-lock.json",
)
DEFAULT_TEXT_EXCLUDES = (".git", ".hg", ".svn", "__pycache__")


def corpus_config(sources: list[str], kind: str | None = None, encoding: str | None = None, **options) -> CorpusConfig:
    """A corpus config for `sources`; built-in corpora (`corpus:NAME`) bring their kind and music encoding.

    Args:
        sources: files, directories, glob patterns or `corpus:NAME`.
        kind, encoding: as given by the user, or None for the built-in corpus's (else text and melody).
        options: the other `CorpusConfig` fields.
    """
    builtin = next((get_entry(s) for s in sources if s.startswith(PREFIX)), None)
    defaults = CorpusConfig()
    kind = kind or (builtin.kind if builtin else defaults.kind)
    encoding = encoding or (builtin.encoding if builtin else defaults.encoding)
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    return CorpusConfig(sources=list(sources), kind=kind, encoding=encoding, **options)


def resolve_files(cfg: CorpusConfig, build: bool = True) -> list[Path]:
    """Expands files, directories and glob patterns into an ordered file list.

    With `build=False`, a built-in corpus that is not built yet raises CorpusError.

    Raises:
        UsageError: a source that does not exist or a pattern that matches nothing.
        CorpusError: a directory with no usable files.
    """
    if not cfg.sources:
        raise UsageError("no corpus sources given: expected one or more files, directories or glob patterns")
    excludes = tuple(cfg.exclude) + (DEFAULT_CODE_EXCLUDES if cfg.kind == "code" else DEFAULT_TEXT_EXCLUDES)
    files: list[Path] = []
    for source in cfg.sources:
        if source.startswith(PREFIX):
            entry = get_entry(source)
            if entry.kind != cfg.kind:
                raise UsageError(f"corpus source {source!r}: a {entry.kind} corpus, expected --kind {entry.kind}")
            if not build and entry.build_info() is None:
                raise CorpusError(f"corpus source {source!r}: not built (run `generate corpus build {entry.name}`)")
            files.append(resolve_source(source))
            continue
        if glob.has_magic(source):
            matches = [Path(p) for p in sorted(glob.glob(os.path.expanduser(source), recursive=True)) if os.path.isfile(p)]
            matches = [p for p in matches if not _excluded(p, excludes)]
            if cfg.kind == "code":
                matches = [p for p in matches if not _skip_binary(p)]
            if not matches:
                raise UsageError(f"corpus source {source!r}: pattern matches no files")
            files.extend(matches)
            continue
        path = Path(os.path.expanduser(source))
        if path.is_dir():
            found = list(_walk(path, cfg.include, excludes))
            if not found:
                raise CorpusError(f"corpus source {source!r}: directory holds no matching files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise CorpusError(f"corpus source {source!r}: expected a regular file or directory")
        else:
            raise UsageError(f"corpus source {source!r}: no such file or directory")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _walk(root: Path, include: list[str], excludes: tuple[str, ...]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _matches(d, excludes))
        for name in sorted(filenames):
            if _matches(name, excludes) or (include and not _matches(name, tuple(include))):
                continue
            path = Path(dirpath) / name
            if not _skip_binary(path):
                yield path


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _excluded(path: Path, patterns: tuple[str, ...]) -> bool:
    return any(_matches(part, patterns) for part in path.parts)


def _skip_binary(path: Path) -> bool:
    if _looks_binary(path):
        log.debug("skipping binary file %s", path)
        return True
    return False


def _looks_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return b"\x00" in handle.read(8192)
    except OSError:
        return False


# Long on purpose: the hot read loop (hundreds of MB/s); its state across blocks (offset, BOM, a CR cut off) stays in locals.
def iter_file_text(path: Path, errors: str, on_read: Callable[[int], None] | None = None) -> Iterator[str | bytes]:
    """Decodes one file as UTF-8 in chunks, stripping a BOM and normalising CRLF.

    A block of pure ASCII comes back as `bytes`, undecoded: ASCII bytes are
    their own code points, and skipping the decoder (and the 4-byte-per-
    character arrays that follow it) is what lets a 1 GB corpus be read at
    hundreds of MB/s. Anything else comes back as `str`.

    Args:
        path: the file to read.
        errors: `strict`, `replace` or `ignore`; `skip` behaves as `strict`
            here and the caller drops the file.
        on_read: called with the number of bytes of each block read, for progress.

    Raises:
        CorpusError: invalid UTF-8 under `strict`/`skip`, naming the byte offset.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict" if errors == "skip" else errors)
    offset = 0
    first = True
    pending_cr = ""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        while True:
            raw = handle.read(CHUNK_BYTES)
            final = not raw
            if on_read and raw:
                on_read(len(raw))
            # A decoder holding part of a character would reject ASCII anyway: let it.
            if raw and raw.isascii() and not decoder.getstate()[0]:
                offset += len(raw)
                first = False
                block = (b"\r" if pending_cr else b"") + raw
                pending_cr = ""
                if block.endswith(b"\r"):
                    block, pending_cr = block[:-1], "\r"
                block = block.replace(b"\r\n", b"\n")
                if block:
                    yield block
                continue
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                buffered = len(decoder.getstate()[0]) if not final else 0
                position = offset - buffered + exc.start
                raise CorpusError(
                    f"{path}: invalid UTF-8 at byte {position}: expected UTF-8 text "
                    "(use --encoding-errors replace, ignore or skip)"
                ) from None
            offset += len(raw)
            if first and text:
                text = text.removeprefix("\ufeff")
                first = False
            text = pending_cr + text
            pending_cr = ""
            if text.endswith("\r") and not final:
                text, pending_cr = text[:-1], "\r"
            text = text.replace("\r\n", "\n")
            if text:
                yield text
            if final:
                return


@dataclass
class Corpus:
    """A resolved, hashed corpus whose ids are cached on disk."""

    cfg: CorpusConfig
    files: list[Path]  # files that contribute, in stream order
    sha256: str  # hash of the raw bytes and reading options
    n_chars: int  # characters after normalisation
    counts: dict[str, int]  # character frequencies
    skipped: list[str]  # files dropped under --encoding-errors skip
    cache_dir: Path
    file_chars: list[int] = dataclasses.field(default_factory=list)  # characters each file adds to the stream

    def labelling(self, source: str) -> Labelling:
        """Which label each character carries, from `source` (a `--labels` value; `labels.py`).

        Raises:
            UsageError, CorpusError: as `labels.label_corpus`.
        """
        if self.cfg.kind != "music":
            return label_corpus(source, self.cfg.kind, self.cfg.sources, self.files, self.file_chars)
        encoded = self.files[0]
        index = json.loads(encoded.with_suffix(".json").read_text(encoding="utf-8")).get("index")
        if index is None:
            raise CorpusError(f"{encoded}: encoded before pieces were indexed; run `generate corpus build` again")
        lengths = [len(line) + 1 for line in encoded.read_text(encoding="utf-8").split("\n")[:-1]]
        return label_corpus(source, "music", self.cfg.sources, self.files, lengths, index)

    def ids(self, vocab: Vocab, show_progress: bool = True) -> np.ndarray:
        """The corpus as a memory-mapped id array, built once per vocabulary."""
        dtype = _id_dtype(vocab)
        path = _ids_path(self.cache_dir, vocab)
        if path.exists():
            ids = _load_ids(path, self.n_chars, dtype)
            if ids is not None:
                return ids
            log.warning("rebuilding stale corpus cache %s", path)
        table = vocab.lookup_table()
        ascii_table = table[:0x80]
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (self.n_chars,)}
        # Plain writes, not a writable memmap: its dirty pages would count
        # against the process's memory until the kernel wrote them back.
        with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as out:
            np.lib.format.write_array_header_1_0(out, header)
            written = 0
            for chunk in self._stream(show_progress, "encoding"):
                code_points = _code_points(chunk)
                ids = (ascii_table if code_points.dtype == np.uint8 else table)[code_points]
                if (ids < 0).any():
                    bad = sorted({chr(code_points[i]) for i in np.flatnonzero(ids < 0)[:20]})
                    raise CorpusError(f"corpus has characters outside the vocabulary: {bad!r}")
                out.write(ids.astype(dtype).tobytes())
                written += len(ids)
            if written != self.n_chars:
                raise CorpusError(f"corpus changed while it was read: expected {self.n_chars} characters, read {written}")
        return np.load(path, mmap_mode="r")

    def _stream(self, show_progress: bool, desc: str) -> Iterator[str | bytes]:
        bar = _byte_bar(self.files, desc, show_progress)
        yield from _stream_files(self.files, self.cfg, bar.advance)
        bar.close()


def _byte_bar(files: list[Path], desc: str, show_progress: bool) -> ProgressBar:
    total = sum(f.stat().st_size for f in files)
    return ProgressBar(total, desc=desc, unit="B", enabled=show_progress and total > 64 << 20)


def _stream_files(files: list[Path], cfg: CorpusConfig, on_read: Callable[[int], None] | None = None) -> Iterator[str | bytes]:
    """The corpus as one stream of chunks: file separators for code, a final newline for text files."""
    for path in files:
        if cfg.kind == "code":
            yield FILE_SEPARATOR
        last: str | bytes = ""
        for chunk in iter_file_text(path, cfg.encoding_errors, on_read):
            last = chunk
            yield chunk
        if cfg.kind == "text" and last and last[-1:] not in ("\n", b"\n"):
            yield "\n"


def _count_code_points(code_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct code points, counts): bincount for big chunks and ASCII, a sort for small files."""
    if code_points.dtype == np.uint8:
        counts = np.bincount(code_points, minlength=0x80)
        present = np.flatnonzero(counts)
        return present, counts[present]
    if len(code_points) > 1 << 20:
        counts = np.bincount(code_points, minlength=0x110000)
        present = np.flatnonzero(counts)
        return present, counts[present]
    return np.unique(code_points, return_counts=True)


def cached_ids(corpus_sha256: str, vocab: Vocab, n_chars: int) -> np.ndarray | None:
    """The id array a run was trained on, straight from the cache (no sources read), or None if it is not cached."""
    path = _ids_path(cache_root() / "corpora" / corpus_sha256[:32], vocab)
    return _load_ids(path, n_chars, _id_dtype(vocab)) if corpus_sha256 and path.exists() else None


def _id_dtype(vocab: Vocab) -> type:
    return np.uint8 if len(vocab) <= 0x100 else np.uint16 if len(vocab) <= 0x10000 else np.uint32


def _ids_path(cache_dir: Path, vocab: Vocab) -> Path:
    return cache_dir / f"ids-{vocab.sha256[:16]}.npy"


def _load_ids(path: Path, n_chars: int, dtype: type) -> np.ndarray | None:
    try:
        ids = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return ids if ids.shape == (n_chars,) and ids.dtype == dtype else None


def _code_points(chunk: str | bytes) -> np.ndarray:
    """Code points of a chunk: uint8 for an ASCII `bytes` block, uint32 for `str`."""
    if isinstance(chunk, bytes):
        return np.frombuffer(chunk, dtype=np.uint8)
    return np.frombuffer(chunk.encode("utf-32-le"), dtype="<u4")


class CorpusChanged(UsageError):
    """A run's corpus whose bytes are no longer those it was trained on; each caller says what that refuses."""

    def __init__(self, expected: str, actual: str):
        super().__init__(f"the corpus hashes to sha256 {actual[:12]}..., not the {expected[:12]}... the run was trained on")
        self.expected, self.actual = expected, actual


def load_run_corpus(cfg: CorpusConfig, expected_sha256: str, sources: list[str] | None = None, **options) -> Corpus:
    """The corpus a run was trained on, read where the run recorded it or from `sources`, checked by its hash.

    Args:
        cfg: the run's corpus settings (left unchanged; `sources` replaces its sources in a copy).
        expected_sha256: the hash the run recorded; "" (runs older than the hash) checks nothing.
        **options: for `load_corpus`.

    Raises:
        CorpusChanged: the bytes differ from the ones the run was trained on.
        CorpusError, UsageError: as `load_corpus`.
    """
    if sources:
        cfg = dataclasses.replace(cfg, sources=list(sources))
    corpus = load_corpus(cfg, **options)
    if expected_sha256 and corpus.sha256 != expected_sha256:
        raise CorpusChanged(expected_sha256, corpus.sha256)
    return corpus


def load_corpus(cfg: CorpusConfig, show_progress: bool = True, build: bool = True,
                skipped_report: Path | None = None) -> Corpus:
    """Resolves, hashes and (if not cached) scans a corpus.

    Args:
        cfg: the sources and how to read them.
        show_progress: progress bars on stderr.
        build: build a built-in corpus or encode a music corpus that is not cached yet; with False,
            such a corpus raises CorpusError instead (a caller that only wants it if it is at hand).
        skipped_report: music: a file listing every skipped piece with its reason.

    Raises:
        CorpusError: unreadable sources, invalid UTF-8, an empty corpus, or (`build=False`) one not built.
    """
    cfg.validate()
    if cfg.kind == "music":
        files = [encode_music_corpus(cfg.sources, cfg.encoding, show_progress, cfg.transpose, music_collections(), build,
                                     cfg.track, skipped_report)]
    else:
        files = resolve_files(cfg, build)
    digest = hashlib.sha256(json.dumps([CACHE_FORMAT, cfg.kind, cfg.encoding_errors]).encode())
    for path in files:
        try:
            with open(path, "rb") as handle:
                digest.update(f"\0{path.stat().st_size}\0".encode())
                while block := handle.read(CHUNK_BYTES):
                    digest.update(block)
        except OSError as exc:
            raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    key = digest.hexdigest()
    cache_dir = cache_root() / "corpora" / key[:32]
    meta_path = cache_dir / "meta.json"
    meta = _read_meta(meta_path, key)
    if meta is None:
        meta = _scan(files, cfg, show_progress)
        meta["sha256"] = key
        atomic_write_text(meta_path, json.dumps(meta, ensure_ascii=False))
    used = [Path(f) for f in meta["files"]]
    for name in meta["skipped"]:
        log.warning("skipped %s: not valid UTF-8", name)
    if meta["n_chars"] == 0:
        raise CorpusError(f"corpus is empty: {len(files)} file(s) from {', '.join(cfg.sources)} hold no text")
    counts = {chr(int(cp)): n for cp, n in meta["counts"].items()}
    return Corpus(cfg, used, key, meta["n_chars"], counts, meta["skipped"], cache_dir, meta["file_chars"])


def _read_meta(path: Path, key: str) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("sha256") == key and "file_chars" in meta and all(Path(f).is_file() for f in meta["files"]):
            return meta
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _scan(files: list[Path], cfg: CorpusConfig, show_progress: bool) -> dict:
    """Counts characters per file; under `skip`, drops files that fail to decode."""
    counts = np.zeros(0x110000, dtype=np.int64)
    used, skipped, file_chars = [], [], []
    bar = _byte_bar(files, "scanning", show_progress)
    for path in files:
        # Per-file (code point, count) pairs, so a file that fails under `skip` adds nothing.
        file_counts: list[tuple[np.ndarray, np.ndarray]] = []
        read_before = bar.done
        try:
            for chunk in _stream_files([path], cfg, bar.advance):
                file_counts.append(_count_code_points(_code_points(chunk)))
        except CorpusError:
            if cfg.encoding_errors != "skip":
                raise
            skipped.append(str(path))
            continue
        finally:
            bar.update(read_before + path.stat().st_size)
        for code_points, n in file_counts:
            counts[code_points] += n
        used.append(str(path))
        file_chars.append(int(sum(int(n.sum()) for _, n in file_counts)))
    bar.close()
    nonzero = np.flatnonzero(counts)
    return {
        "files": used,
        "skipped": skipped,
        "n_chars": int(counts.sum()),
        "file_chars": file_chars,
        "counts": {str(int(cp)): int(counts[cp]) for cp in nonzero},
    }
