"""The lexer the Python syntax automata share, and the explorer that tabulates them.

`lex` follows code, comments, single-line and triple-quoted strings, escapes
and backslash continuations one character at a time; `lexer_forbids` says
what none of the automata lets through. `explore` turns a step function over
hashable states into an `Automaton` table, visiting each class of characters
the automata cannot tell apart once.
"""

from __future__ import annotations

import numpy as np

from ..data.config import FILE_SEPARATOR
from .constraints import FORBID, Automaton, distances_to_end

MAX_DEPTH = 4  # brackets open at once; a deeper opener is forbidden
MAX_LEVEL = 7  # indentation steps of four spaces; a block header is forbidden at the deepest
MAX_BLANK_RUN = 2  # newlines in a row inside strings, brackets or after a block header: a third would end a sample at "\n\n\n"
OPENERS, CLOSERS = "([{", ")]}"
QUOTES = "'\""
# Outside strings and comments these never make valid Python.
JUNK = set("$?`")

CODE, COMMENT, BACKSLASH, CONTINUED = ("code",), ("comment",), ("backslash",), ("continued",)
NEWLINE_IN_BRACKETS = ("nl", 1)  # ("nl", n): n newlines in a row inside brackets


def is_identifier(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def is_junk(c: str) -> bool:
    return c in JUNK or (not c.isascii() and c != FILE_SEPARATOR) or (ord(c) < 32 and c not in "\n\t" + FILE_SEPARATOR)


# ---------------------------------------------------------------- the shared lexer


def lex(mode: tuple, c: str, nested: bool) -> tuple[tuple, str]:
    """One character through the lexer.

    Args:
        mode: CODE, ("nl", newlines in a row inside brackets), COMMENT, BACKSLASH, CONTINUED (after a
            backslash and its newline), ("open", quote, n) after n opening
            quotes, ("s1", quote, escaped) or ("s3", quote, closing quotes seen, newlines in a row, escaped).
        c: the character.
        nested: inside brackets, where a newline continues the line.

    Returns:
        (the next mode, the event): "open" or "close" (a bracket), "code" (any other
        character of code that is not a space), "newline" (a newline that ends
        code or a comment, or that a string could not take), or "" for nothing
        the layout needs to know.
    """
    kind = mode[0]
    if kind in ("code", "nl"):
        if c == "#":
            return COMMENT, ""
        if c == "\\":
            return BACKSLASH, ""
        if c in QUOTES:
            return ("open", c, 1), "code"
        if c in OPENERS:
            return CODE, "open"
        if c in CLOSERS:
            return CODE, "close"
        if c == "\n":
            if not nested:
                return CODE, "newline"
            return (("nl", min(mode[1] + 1, MAX_BLANK_RUN)) if kind == "nl" else NEWLINE_IN_BRACKETS), "newline"
        if c in " \t":
            return mode, ""
        return CODE, "code"
    if kind == "comment":
        return ((NEWLINE_IN_BRACKETS if nested else CODE), "newline") if c == "\n" else (COMMENT, "")
    if kind == "backslash":
        return (CONTINUED, "") if c == "\n" else lex(CODE, c, nested)
    if kind == "continued":
        return (CONTINUED, "") if c in " \t" else lex(CODE, c, nested)
    if kind == "open":
        _, quote, n = mode
        if c == quote:
            return (("open", quote, 2), "") if n == 1 else (("s3", quote, 0, 0, False), "")
        if n == 2:  # "" was an empty string
            return lex(CODE, c, nested)
        return lex(("s1", quote, False), c, nested)
    if kind == "s1":
        _, quote, escaped = mode
        if escaped:
            return ("s1", quote, False), ""
        if c == quote:
            return CODE, "code"
        if c == "\\":
            return ("s1", quote, True), ""
        if c == "\n":  # an unterminated string (only a forced prime gets here): the line ends it
            return lex(CODE, c, nested)
        return mode, ""
    _, quote, closing, newlines, escaped = mode
    if escaped:
        return ("s3", quote, 0, 0, False), ""
    if c == quote:
        return (CODE, "code") if closing == 2 else (("s3", quote, closing + 1, 0, False), "")
    if c == "\\":
        return ("s3", quote, 0, 0, True), ""
    if c == "\n":
        return ("s3", quote, 0, min(newlines + 1, MAX_BLANK_RUN), False), ""
    return ("s3", quote, 0, 0, False), ""


def consuming_mode(mode: tuple, c: str) -> tuple:
    """The mode that reads `c`: after an opening quote, `c` may be a string's first character or, after
    an empty string, code."""
    if mode[0] == "open" and c != mode[1]:
        return CODE if mode[2] == 2 else ("s1", mode[1], False)
    return mode


def in_code(mode: tuple, c: str) -> bool:
    """Whether `c` is read as code (not in a string or comment, and not a backslash's newline)."""
    return consuming_mode(mode, c)[0] in ("code", "nl", "continued")


def lexer_forbids(mode: tuple, c: str, nested: bool) -> bool:
    """What no automaton may let through: newlines that strings and brackets cannot take, junk in code."""
    mode = consuming_mode(mode, c)
    kind = mode[0]
    if c == FILE_SEPARATOR:
        return kind not in ("code", "comment") or nested
    if kind == "backslash":
        return c != "\n"
    if kind == "continued":  # the line a backslash continues is not empty
        return c == "\n" or is_junk(c)
    if kind == "nl":
        return (c == "\n" and mode[1] >= MAX_BLANK_RUN) or is_junk(c)
    if kind == "code":
        return is_junk(c)
    if kind == "s1":
        return c == "\n" and not mode[2]
    if kind == "s3":
        return c == "\n" and mode[3] >= MAX_BLANK_RUN and not mode[4]
    return False


# ---------------------------------------------------------------- tables


def exact_char_class(c: str) -> str:
    """Every ASCII character its own class; the rest are junk or other characters."""
    if not is_junk(c):
        return c if c.isascii() else "<other>"
    return "<junk>"


def explore(name: str, chars: tuple[str, ...], start, step, forbids, settings: dict, ends=None,
            char_class=exact_char_class, penalty=None) -> Automaton:
    """Tabulates the states reachable from `start` under `step` into an `Automaton`.

    `step(state, c)` and `forbids(state, c)` must depend on `c` only through `char_class`. Moves into
    states that could go no further are forbidden too (`_without_dead_ends`). With `ends(state)`, whether
    the text may end in a state, the automaton also knows how far each state is from an end. With
    `penalty(state, c)`, nats taken off allowed characters' logits: discouraged, not forbidden.
    """
    classes = sorted({char_class(c) for c in chars})
    representative = {cls: next(c for c in chars if char_class(c) == cls) for cls in classes}
    column = np.array([classes.index(char_class(c)) for c in chars])
    index, order = {start: 0}, [start]
    moves, allowed, penalties = [], [], []
    while len(moves) < len(order):
        state = order[len(moves)]
        row = []
        for cls in classes:
            target = step(state, representative[cls])
            if target not in index:
                index[target] = len(order)
                order.append(target)
            row.append(index[target])
        moves.append(row)
        allowed.append([not forbids(state, representative[cls]) for cls in classes])
        penalties.append([penalty(state, representative[cls]) if penalty else 0.0 for cls in classes])
    moves_by_class, allowed = np.asarray(moves, np.int32), _without_dead_ends(np.asarray(moves), np.asarray(allowed, bool))
    bias = np.where(allowed, -np.asarray(penalties, np.float32), np.float32(FORBID)).astype(np.float32)
    distance = None if ends is None else distances_to_end(moves_by_class, bias, np.array([ends(state) for state in order]))
    return Automaton(name, moves_by_class, bias, 0, settings, distance, column.astype(np.int32))




def _without_dead_ends(moves: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Forbids every move into a state that allows nothing, until no such move is left.

    "x = 1 for" at depth 0 can continue no way at all ("for" needs a bracket
    around it), so the "r" that would spell it is forbidden, and so on back.
    A state with nothing left even so (one that wants a character the
    vocabulary lacks, such as "-" for "->", or one only a forced prime
    reaches) forbids nothing, so sampling never stalls.

    Args:
        moves: (S, C) the state after each character class.
        allowed: (S, C) whether each move is allowed.
    """
    allowed = allowed.copy()
    while True:
        dead = ~allowed.any(axis=1)
        into_dead = allowed & dead[moves]
        if not into_dead.any():
            break
        allowed &= ~into_dead
    allowed[~allowed.any(axis=1)] = True
    return allowed
