"""Atomic file writes (a temp file in the same directory, fsync, then rename), and TOML reading.

A reader (or a crash) sees either the old file or the new one, never half of
either, which is what keeps checkpoints and samples safe from `kill -9`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from . import faults
from .errors import UsageError, WriteError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["atomic_directory", "atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable_location", "sha256_file", "tomllib"]


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp", verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yields a temp path beside `path`; renames it onto `path` on success.

    Args:
        path: the final destination.
        suffix: ending for the temp name, for writers that check extensions
            (Keras insists on `.keras`).
        verify: called with the temp path once it is complete and on disk,
            before it replaces `path`; it raises to abandon the write.

    Raises:
        WriteError: an OSError while writing (a full disk, say), naming `path`.
        Whatever else the body or `verify` raises.
        In every case the temp file is removed and `path` is untouched.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if verify is not None:
            verify(tmp)
        faults.before_commit(path)
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError.from_os_error(path, exc) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_directory(path: Path, replace: bool = False) -> Iterator[Path]:
    """Yields a hidden temp directory beside `path`; renames it to `path` on success.

    `path` appears whole or not at all. It may exist as an empty directory,
    which the rename replaces; with `replace`, a full one is moved aside
    first and removed once the new one is in place (the caller checks that it
    may go). Temp directories that a killed writer left for the same `path`
    are removed first.

    Raises:
        WriteError: an OSError while writing or renaming, naming `path`.
        Whatever else the body raises; the temp directory is removed either way.
    """
    path = Path(path)
    parent = path.absolute().parent
    for stale in parent.glob(f".{path.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=parent))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700 directories
        yield staging
        if replace and path.is_dir() and any(path.iterdir()):
            aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=parent))
            os.rename(path, aside / path.name)
            os.rename(staging, path)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(staging, path)
    except OSError as exc:
        raise WriteError.from_os_error(path, exc) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    _fsync_dir(parent)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_writable_location(path: Path, what: str) -> None:
    """Checks, before any work, that `path` could be created or replaced.

    Args:
        path: the file or directory to be written.
        what: how to name it in an error, e.g. `-o` or `run`.

    Raises:
        UsageError: an ancestor is a file, or the nearest existing directory is not writable.
    """
    ancestor = Path(path).absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{what} {str(path)!r}: {str(ancestor)!r} is a file, expected a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {str(path)!r}: directory {str(ancestor)!r} is not writable")
    # Permission bits do not tell the whole story (root ignores them; a read-only mount or a kernel
    # filesystem refuses anyway): create and remove a file there, as the atomic write will.
    try:
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".generate-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{what} {str(path)!r}: cannot write in {str(ancestor)!r} ({exc.strerror})") from None
