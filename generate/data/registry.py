"""Built-in corpora: a registry of named sources, checked, cleaned and cached.

`corpora/registry.toml` lists each corpus with its kind, source, sha256,
license and clean-up steps. `build` fetches the source (a download checked
against its sha256, or the same file given locally with `--from`), runs the
steps in order and writes `corpus.txt` and `build.json` into the cache, where
`corpus:NAME` finds it as a training source. Music corpora are parsed and
encoded by `music.dataset`, which keeps its own cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError, UsageError
from ..fileio import atomic_write_bytes, atomic_write_text, tomllib
from ..music.dataset import encode_music_corpus
from ..paths import cache_root, corpora_dir
from .config import FILE_SEPARATOR
from .vocab import HAN

log = logging.getLogger(__name__)

SOURCES = ("url", "file", "local", "stdlib", "music21")
PREFIX = "corpus:"


@dataclass
class CorpusEntry:
    name: str  # how `corpus:NAME` and `generate corpus build NAME` refer to it
    kind: str  # text, code or music
    description: str
    source: str  # url, file, local (a file given with --from), stdlib or music21
    license: str
    clean: list[str] = field(default_factory=list)  # clean-up steps, in order
    url: str = ""  # source = url: where to download it
    sha256: str = ""  # url and file: the source's expected hash
    bytes: int = 0  # url: the source's expected size
    path: str = ""  # file: relative to corpora/
    collections: list[str] = field(default_factory=list)  # music21: corpus folders
    encoding: str = "melody"  # music: how it is written as text

    @property
    def built_dir(self) -> Path:
        return cache_root() / "built" / self.name

    @property
    def built_file(self) -> Path:
        return self.built_dir / "corpus.txt"

    def build_info(self) -> dict | None:
        """`build.json` of the built corpus, or None when it is not built (or damaged)."""
        try:
            info = json.loads((self.built_dir / "build.json").read_text())
        except (OSError, ValueError):
            return None
        return info if self.built_file.is_file() and self.built_file.stat().st_size == info.get("bytes") else None


def load_registry(path: Path | None = None) -> dict[str, CorpusEntry]:
    """Reads and checks the registry.

    Raises:
        CorpusError: a missing or malformed registry file.
    """
    path = path or corpora_dir() / "registry.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read the corpus registry ({exc})") from None
    entries = {}
    known = {f for f in CorpusEntry.__dataclass_fields__} - {"name"}
    for name, values in raw.items():
        unknown = sorted(set(values) - known)
        if unknown or values.get("source") not in SOURCES:
            problem = f"unknown key {unknown[0]!r}" if unknown else f"source: expected one of {', '.join(SOURCES)}"
            raise CorpusError(f"{path}: [{name}] {problem}")
        entries[name] = CorpusEntry(name=name, **values)
    return entries


def music_collections() -> dict[str, tuple[str, ...]]:
    """`corpus:NAME` -> music21 corpus folders, for the registry's music entries."""
    return {PREFIX + e.name: tuple(e.collections) for e in load_registry().values() if e.source == "music21"}


def get_entry(name: str) -> CorpusEntry:
    """The registry entry `name` (with or without the `corpus:` prefix).

    Raises:
        UsageError: no such corpus.
    """
    registry = load_registry()
    bare = name.removeprefix(PREFIX)
    if bare not in registry:
        raise UsageError(f"corpus {name!r}: expected one of {', '.join(registry)}")
    return registry[bare]


# ---------------------------------------------------------------- clean-up steps


def normalize_newlines(text: str) -> str:
    """CRLF and CR line ends become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def drop_titles(text: str) -> str:
    """`title:poem` lines -> `poem` lines."""
    return "\n".join(line.split(":", 1)[1] if ":" in line else line for line in text.splitlines()) + "\n"


_QUATRAIN = re.compile(f"([{HAN}]{{5}}，)([{HAN}]{{5}}。)([{HAN}]{{5}}，)([{HAN}]{{5}}。)")


def quatrains_5x4(text: str) -> str:
    """Keeps exact five-character quatrains punctuated `，。，。`, one verse per line, blank line between.

    Drops every other poem: missing characters (`□`), notes, other forms.
    """
    poems = [match.groups() for line in text.splitlines() if (match := _QUATRAIN.fullmatch(line.strip()))]
    return "".join("\n".join(poem) + "\n\n" for poem in poems)


_REGULATED_LINE = re.compile(f"[{HAN}]{{5}}|[{HAN}]{{7}}")


def regulated_verse(text: str) -> str:
    """Keeps the four regulated forms (5 or 7 characters a line, 4 or 8 lines, `，。` in turn), one verse per line.

    Drops every other poem: a line of another length, mixed lengths, missing characters, other punctuation.
    """
    kept = []
    for poem in text.splitlines():
        lines = re.findall(r"[^，。]*[，。]", poem.strip())
        if (len(lines) in (4, 8) and "".join(lines) == poem.strip()
                and all(line[-1] == "，。"[i % 2] and _REGULATED_LINE.fullmatch(line[:-1]) for i, line in enumerate(lines))
                and len({len(line) for line in lines}) == 1):
            kept.append("\n".join(lines) + "\n\n")
    return "".join(kept)


CLEANERS: dict[str, Callable[[str], str]] = {
    "normalize-newlines": normalize_newlines,
    "drop-titles": drop_titles,
    "quatrains-5x4": quatrains_5x4,
    "regulated-verse": regulated_verse,
}
# Steps that describe what a source-specific builder does, for the listing.
DESCRIBED_STEPS = {
    "stdlib-modules": "every .py module of the standard library, minus tests, demos, encodings tables and generated files",
    "repeats-expanded": "repeats expanded, grace notes dropped, chords reduced to their top note (music.sources)",
    "top-line": "polyphonic pieces reduced to their top line",
    "four-part-only": "only pieces with exactly four parts (S, A, T, B)",
}

STDLIB_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "turtledemo",
                    "encodings", "pydoc_data", "__phello__", "_vendor", "_bundled"}
STDLIB_MAX_BYTES = 256 * 1024  # larger modules are generated tables, not code a person wrote


def stdlib_modules(root: Path | None = None) -> list[Path]:
    """The standard library's own modules, in a stable order."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in STDLIB_SKIP_DIRS and not d.startswith("config-"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if (name.endswith(".py") and not name.startswith(("test_", "_sysconfigdata"))
                    and path.stat().st_size <= STDLIB_MAX_BYTES):
                found.append(path)
    return found


# ---------------------------------------------------------------- building


def fetch(entry: CorpusEntry, local: Path | None = None) -> bytes:
    """The source bytes of a `url` or `file` entry, checked against its sha256.

    Raises:
        CorpusError: unreadable, not downloadable, or a hash mismatch.
    """
    if entry.source == "file":
        local = local or corpora_dir() / entry.path
    if local is None and entry.source == "local":
        raise CorpusError(f"corpus {entry.name!r}: build it from a local copy of its source "
                          f"(sha256 {entry.sha256}): generate corpus build {entry.name} --from PATH")
    if local is not None:
        try:
            data = Path(local).read_bytes()
        except OSError as exc:
            raise CorpusError(f"--from {str(local)!r}: cannot read ({exc.strerror})") from None
        where = str(local)
    else:
        import urllib.request  # with http and email, a fifth of --help's start-up: only downloads need it

        try:
            with urllib.request.urlopen(entry.url, timeout=60) as response:
                data = response.read()
        except OSError as exc:
            raise CorpusError(f"corpus {entry.name!r}: cannot download {entry.url} ({exc}); "
                              f"with a local copy, run: generate corpus build {entry.name} --from PATH") from None
        where = entry.url
    digest = hashlib.sha256(data).hexdigest()
    if entry.sha256 and digest != entry.sha256:
        raise CorpusError(f"{where}: sha256 mismatch for corpus {entry.name!r}: expected {entry.sha256}, received {digest}")
    return data


def build(name: str, local: Path | None = None, force: bool = False, show_progress: bool = True) -> Path:
    """Builds corpus `name` into the cache (once) and returns its text file.

    Args:
        name: a registry name, with or without `corpus:`.
        local: a local copy of a `url` source, checked against the same sha256.
        force: rebuild even if a build exists.
        show_progress: progress bars on stderr (music parsing).

    Raises:
        UsageError: an unknown name, or `local` for a source that takes none.
        CorpusError: the source is unavailable, fails its hash, or cleans to nothing.
    """
    entry = get_entry(name)
    if local is not None and entry.source not in ("url", "local"):
        raise UsageError(f"--from: corpus {entry.name!r} comes from {entry.source}, expected no --from")
    if entry.kind == "music":
        return encode_music_corpus([PREFIX + entry.name], entry.encoding, show_progress, collections=music_collections())
    if not force and entry.build_info() is not None:
        return entry.built_file
    info: dict = {"name": entry.name, "kind": entry.kind, "source": entry.source, "steps": entry.clean}
    if entry.source == "stdlib":
        modules = stdlib_modules()
        root = Path(sysconfig.get_paths()["stdlib"])
        texts = []
        for path in modules:
            try:
                texts.append(normalize_newlines(path.read_text(encoding="utf-8")))
            except (UnicodeDecodeError, OSError):
                log.warning("%s: skipped (not UTF-8)", path.relative_to(root))
        text = FILE_SEPARATOR.join(texts)  # the loader puts one more before the first file
        info.update({"python": sys.version.split()[0], "stdlib": str(root), "files": len(texts)})
    else:
        data = fetch(entry, local)
        info.update({"source_sha256": hashlib.sha256(data).hexdigest(), "source_bytes": len(data),
                     "from": str(local) if local else (entry.url or entry.path)})
        try:
            text = data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"corpus {entry.name!r}: invalid UTF-8 at byte {exc.start}") from None
        for step in entry.clean:
            text = CLEANERS[step](text)
    if not text.strip():
        raise CorpusError(f"corpus {entry.name!r}: nothing left after clean-up ({', '.join(entry.clean)})")
    encoded = text.encode("utf-8")
    info.update({"bytes": len(encoded), "chars": len(text), "sha256": hashlib.sha256(encoded).hexdigest(),
                 "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    entry.built_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(entry.built_file, encoded)
    atomic_write_text(entry.built_dir / "build.json", json.dumps(info, indent=1))
    log.info("corpus %s: %d characters -> %s", entry.name, len(text), entry.built_file)
    return entry.built_file


def resolve_source(source: str, show_progress: bool = True) -> Path:
    """The text file behind a `corpus:NAME` training source, building it when that needs no download.

    Raises:
        UsageError: an unknown name, or a downloadable corpus that is not built yet.
    """
    entry = get_entry(source)
    if entry.kind != "music" and entry.source in ("url", "local") and entry.build_info() is None:
        how = f"(or add --from PATH with a local copy of {entry.url})" if entry.url else "--from PATH"
        raise UsageError(f"corpus source {source!r}: not built yet; run `generate corpus build {entry.name}` {how}")
    return build(entry.name, show_progress=show_progress)


def describe(entry: CorpusEntry) -> dict:
    """Everything `generate corpus show` prints."""
    info = entry.build_info() if entry.kind != "music" else None
    steps = [{"step": s, "does": (CLEANERS[s].__doc__ or s).strip().splitlines()[0] if s in CLEANERS else DESCRIBED_STEPS.get(s, s)}
             for s in entry.clean]
    return {
        "name": entry.name, "kind": entry.kind, "description": entry.description, "source": entry.source,
        "url": entry.url or None, "path": entry.path or None, "collections": entry.collections or None,
        "encoding": entry.encoding if entry.kind == "music" else None,
        "sha256": entry.sha256 or None, "bytes": entry.bytes or None, "license": entry.license, "clean": steps,
        "built": info,
    }
