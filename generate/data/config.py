"""What a corpus is made of and how it is read: `CorpusConfig`, saved in a run's `config.json`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OptionError, expect
from ..music import ENCODINGS, TRANSPOSE_MODES

KINDS = ("text", "code", "music")
ENCODING_ERRORS = ("strict", "replace", "ignore", "skip")
OOV_POLICIES = ("error", "drop", "unk")  # characters outside a vocabulary: fail, drop them, or map to unknown
PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")
PYTHON_CORPORA = ("corpus:python",)  # built-in corpora of Python source
LABEL_SOURCES = ("folder", "tsv:FILE", "rhythm", "mode", "rhyme")  # where a labelled corpus's labels come from (`labels.py`)
FILE_SEPARATOR = "\x1c"  # ASCII "file separator": marks the start of each file in code corpora


@dataclass(frozen=True)
class CorpusConfig:
    sources: list[str] = field(default_factory=list)  # files, directories or glob patterns
    kind: str = "text"  # text, code (walks trees, marks file boundaries) or music (parsed by music21)
    encoding: str = "melody"  # how music is written as text (music only)
    transpose: str = "none"  # music augmentation: none, common (to C/Am) or all (every key in range)
    track: str = "auto"  # MIDI melodies: auto (the likeliest tune track), all (the top line of every track), an index or a name
    include: list[str] = field(default_factory=list)  # glob patterns a file name must match (code)
    exclude: list[str] = field(default_factory=list)  # extra glob patterns to skip
    encoding_errors: str = "strict"  # strict, replace, ignore or skip (the whole file)
    min_count: int = 1  # characters seen fewer times map to the unknown token
    labels: str = ""  # where style labels come from (`LABEL_SOURCES`); "": no labels

    def validate(self) -> None:
        """Raises OptionError naming the first bad field."""
        expect(self.kind in KINDS, "kind", f"one of {', '.join(KINDS)}", self.kind)
        expect(self.encoding in ENCODINGS, "encoding", f"one of {', '.join(ENCODINGS)}", self.encoding)
        expect(self.transpose in TRANSPOSE_MODES, "transpose", f"one of {', '.join(TRANSPOSE_MODES)}", self.transpose)
        expect(self.encoding_errors in ENCODING_ERRORS, "encoding_errors", f"one of {', '.join(ENCODING_ERRORS)}",
               self.encoding_errors)
        expect(isinstance(self.track, str) and self.track.strip() != "", "track", "auto, all, a track index or a name",
               self.track)
        expect(self.min_count >= 1, "min_count", "an integer >= 1", self.min_count)
        if self.labels:
            check_label_source(self.labels)


def is_python_corpus(corpus: CorpusConfig) -> bool:
    """A code corpus that is Python by its include patterns, or else by every one of its sources."""
    if corpus.kind != "code":
        return False
    if corpus.include:
        return all(pattern.endswith(PYTHON_SUFFIXES) for pattern in corpus.include)
    return bool(corpus.sources) and all(s in PYTHON_CORPORA or s.endswith(PYTHON_SUFFIXES) for s in corpus.sources)


def check_label_source(value: str) -> None:
    """Raises OptionError (as `--labels`) for anything but one of LABEL_SOURCES."""
    if value in ("folder", "rhythm", "mode", "rhyme") or (value.startswith("tsv:") and len(value) > 4):
        return
    raise OptionError("labels", f"expected one of {', '.join(LABEL_SOURCES)}, received {value!r}")
