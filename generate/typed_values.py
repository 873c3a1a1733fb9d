"""Values from JSON (a server's request, a job file) checked against a frozen dataclass's annotations.

JSON gives strings where numbers belong, floats where counts belong, lists
where a choice belongs, NaN and lone surrogates: each is refused here, naming
its key, before any rule about its range runs.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

from .errors import OptionError

_HINTS: dict[type, dict] = {}


def check_value_types(cls, values: dict) -> None:
    """Raises OptionError naming the first value in `values` that `cls`'s field of that name cannot hold.

    Unknown names are left to the caller (which knows what to suggest).
    """
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for name, value in values.items():
        if name in fields and not _fits(value, _HINTS[cls][name]):
            raise OptionError(name, f"expected {_describe(_HINTS[cls][name])}, received {_shown(value)}")


def has_lone_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str) and not has_lone_surrogate(value)
    if hint is Path:
        return isinstance(value, (str, Path))
    return True


def _describe(hint) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return "a list of strings" if typing.get_args(hint)[0] is str else f"a list, each {_describe(typing.get_args(hint)[0])}"
    if args and typing.get_origin(hint) is not tuple:
        described = " or ".join(_describe(a) for a in args)
        return described + (" or null" if type(None) in typing.get_args(hint) else "")
    return {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string of valid Unicode",
            Path: "a path"}.get(hint, str(hint))


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
