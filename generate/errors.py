"""Exceptions the library raises for problems a user can fix.

The CLI turns these into one-line messages: `UsageError` exits with status 2
(a bad option, argument or primer), `GenerateError` with status 1 (bad data,
a broken checkpoint, a failed write).
"""


class GenerateError(Exception):
    """A failure caused by the user's data or environment, not by a bug."""

    exit_code = 1


class UsageError(GenerateError):
    """A bad command-line value: an option, an argument or a primer."""

    exit_code = 2


class CorpusError(GenerateError):
    """A corpus source that cannot be read, decoded or used for training."""


class CheckpointError(GenerateError):
    """A run directory or checkpoint file that is missing, foreign or damaged."""
