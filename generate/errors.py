"""Exceptions the library raises for problems a user can fix.

The CLI turns these into one-line messages: `UsageError` exits with status 2
(a bad option, argument or primer), `GenerateError` with status 1 (bad data,
a broken checkpoint, a failed write).
"""

from __future__ import annotations

import re


class GenerateError(Exception):
    """A failure caused by the user's data or environment, not by a bug."""

    exit_code = 1


class UsageError(GenerateError):
    """A bad command-line value: an option, an argument or a primer."""

    exit_code = 2


class OptionError(UsageError):
    """A bad value for one named setting.

    The message names it as a command-line option (`--top-k: ...`); a job
    file re-raises it in its own terms (`jobs.toml: job 'x': top_k: ...`)
    from `option` and `problem`.

    Args:
        option: the setting's field name, e.g. `top_k`.
        problem: what is wrong, e.g. `expected an integer >= 0, received -1`.
    """

    def __init__(self, option: str, problem: str):
        super().__init__(f"--{option.replace('_', '-')}: {problem}")
        self.option = option
        self.problem = problem

    def as_keyword(self) -> OptionError:
        """The same error in the Python API's and a server's terms: `top_k: ...`, its advice naming keys, not flags."""
        renamed = OptionError(self.option, self.problem)
        renamed.args = (f"{self.option}: {flags_as_keys(self.problem)}",)
        return renamed


def flags_as_keys(message: str) -> str:
    """A message written for the command line with its flags named as keys: `--oov drop` is `"oov" drop`."""
    return re.sub(r"(?<![\w-])--([a-z][a-z0-9-]*)", lambda m: '"' + m[1].replace("-", "_") + '"', message)


class CorpusError(GenerateError):
    """A corpus source that cannot be read, decoded or used for training."""


class CheckpointError(GenerateError):
    """A run directory or checkpoint file that is missing, foreign or damaged."""


class WorkerLostError(GenerateError):
    """A collective step of distributed training failed: a worker died, hung or could not be reached.

    Args:
        message: the one-line account for the user.
        engine_message: the engine's own words, which may name the task it lost.
        reason: what failed, in a few words, without advice (a launcher quotes it).
    """

    def __init__(self, message: str, engine_message: str = "", reason: str = ""):
        super().__init__(message)
        self.engine_message = engine_message or message
        self.reason = reason or message


class RenderError(GenerateError):
    """A render beside a MIDI file (a WAV, an engraved score) that a missing or failing tool could not make.

    Raised only after the MIDI file and its sidecar, which records the
    failure, were written.
    """


class WriteError(GenerateError):
    """A file that could not be written: a full disk, a lost mount, a read-only directory.

    Raised only after the write was undone: the file it would have replaced
    is still the old one.

    Args:
        path: the file or directory that could not be written.
        reason: the system's words, e.g. `No space left on device`.
    """

    def __init__(self, path: object, reason: str):
        super().__init__(f"cannot write {str(path)!r}: {reason}")
        self.path = path

    @classmethod
    def from_os_error(cls, path: object, exc: OSError) -> WriteError:
        return cls(path, exc.strerror or str(exc))


def expect(ok: bool, option: str, expected: str, received: object) -> None:
    """Raises `OptionError` for `option` unless `ok`, saying what was expected and what was received."""
    if not ok:
        raise OptionError(option, f"expected {expected}, received {received!r}")
