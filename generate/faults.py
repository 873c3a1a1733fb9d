"""Deterministic fault injection, for the fault suite (`tests/`, `benchmarks/faults.py`).

Every atomic write (`fileio.atomic_path`) calls `before_commit` once its
temp file is complete and before it replaces the real file. Rules in the
environment variable GENERATE_FAULTS, comma-separated, make that moment
fail the way real machines fail:

    enospc:NAME[:N]   the Nth write of a file named NAME (every one if N is
                      left out) fails with ENOSPC, as on a full disk
    kill:NAME[:N]     the process SIGKILLs itself during the Nth write of
                      NAME, leaving its temp file behind
    delay:NAME:S      the writes of NAME wait S seconds first, a window in
                      which a test can send a signal

NAME is a file name (`latest.keras`), or `*` for every file. Without the
variable, which is the normal case, a write pays one dictionary lookup.

Music ingestion calls `before_parse` before it parses each piece, where two
more rules apply (a parser that never returns, and one that crashes):

    hang:NAME[:S]     parsing NAME sleeps S seconds first (default an hour)
    kill:NAME         the parsing process SIGKILLs itself at NAME
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections import Counter
from pathlib import Path

ENV = "GENERATE_FAULTS"
ACTIONS = ("enospc", "kill", "delay")
PARSE_ACTIONS = ("hang", "kill")
_writes: Counter[str] = Counter()  # writes seen per rule, for the Nth-write rules


def before_commit(path: Path) -> None:
    """Applies the GENERATE_FAULTS rules that match `path`; does nothing when the variable is unset.

    Raises:
        OSError: ENOSPC, for a matching `enospc` rule.
    """
    for rule, action, argument in _matching(path, ACTIONS):
        if action == "delay":
            time.sleep(float(argument or 1))
            continue
        _writes[rule] += 1
        if argument and _writes[rule] != int(argument):
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def before_parse(path: Path) -> None:
    """Applies the GENERATE_FAULTS `hang` and `kill` rules that match the music file `path`."""
    for _, action, argument in _matching(path, PARSE_ACTIONS):
        if action == "hang":
            time.sleep(float(argument or 3600))
        else:
            os.kill(os.getpid(), signal.SIGKILL)


def _matching(path: Path, actions: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(rule, action, argument) of every GENERATE_FAULTS rule for `path` among `actions`, in order."""
    spec = os.environ.get(ENV)
    if not spec:
        return []
    found = []
    for rule in spec.split(","):
        action, _, rest = rule.strip().partition(":")
        name, _, argument = rest.partition(":")
        if action in actions and name in ("*", path.name):
            found.append((rule, action, argument))
    return found
