"""The lexer the Python syntax automata share.

`lex` follows code, comments, single-line and triple-quoted strings, escapes
and backslash continuations one character at a time; `lexer_forbids` says
what none of the automata lets through; `exact_char_class` is the coarsest
classing of characters they all respect. `constraints.explore` tabulates them.
"""

from __future__ import annotations

from ...data.config import FILE_SEPARATOR

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


# Long on purpose: a lexer table, one branch per state read top to bottom; split up, its transitions would scatter.
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
