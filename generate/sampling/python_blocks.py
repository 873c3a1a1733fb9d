"""Which block a dedented `else`, `elif`, `except` or `finally` closes, as an automaton.

The fourth of the syntax automata (`syntax.py` builds them all). It follows
the shared lexer (`python_lexer.lex`) and, line by line, the indentation level
of the block the code is in and the kind of the header that opened it. A line
that returns exactly one level, to that header's own, may start with what
continues the header's statement:

| the block was opened by | the line may start with |
|---|---|
| `if`, `elif` | `elif`, `else` |
| `for`, `while` | `else` |
| `try` | `except` or `finally`, and nothing else |
| `except` | `except`, `else`, `finally` |
| `else` | `finally` (after a try's `else`) |
| `finally`, `def`, `class`, `with` | none of them |

A `try` block is left only for its `except` or `finally`: no line comes back
further, and the text does not end inside it. After a line returns more than
one level, the kind of the block it lands in is not known, and any of the
four keywords may start the next dedented line. (Which lines may return at
all is `python_layout`'s to say.)
"""

from __future__ import annotations

from ..data.config import FILE_SEPARATOR
from .python_lexer import (
    CODE,
    MAX_BLANK_RUN,
    MAX_DEPTH,
    MAX_LEVEL,
    NEWLINE_IN_BRACKETS,
    exact_char_class,
    in_code,
    is_identifier,
    lex,
)

KIND_OF = {"if": "if", "elif": "if", "for": "loop", "while": "loop", "try": "try", "except": "except",
           "else": "else", "finally": "finally", "def": "other", "class": "other", "with": "other",
           "async": "other"}
CONTINUES = {  # the keywords that may start a line returning to a header of each kind ("": not known)
    "if": ("elif", "else"), "loop": ("else",), "try": ("except", "finally"), "except": ("except", "else", "finally"),
    "else": ("finally",), "finally": (), "other": (), "": ("elif", "else", "except", "finally"),
}
DEDENT_KEYWORDS = ("elif", "else", "except", "finally")
_PREFIXES = {w[:k] for w in KIND_OF for k in range(1, len(w) + 1)}
_LETTERS = set("".join(KIND_OF))

# States: ("line", level, opener, spaces, blank lines before) at a line's start, where level is the
# indentation of the block the code is in and opener the kind of the header that opened it ("" where not
# known); ("comment", level, opener, blank lines before) on a line of only a comment; ("word", level, opener,
# back, letters, required) spelling the first word of a line at `level`, letters being a prefix of a header's
# keyword, back how far the line came back ("" not at all, "one" one level, whose header's kind is opener,
# "more": opener "") and required the words it must be one of (`_required`) or None; ("body", mode, depth,
# level, opener, header, colon) on the rest of the line, where opener is already the kind the next line's
# block will have if header (the line starts with a header's keyword) and colon (it ends in ":" at depth 0).
BLOCKS_START = ("line", 0, "", 0, MAX_BLANK_RUN)


def _required(opener: str, back: str, column_zero: bool) -> tuple[str, ...] | None:
    """The words a line coming `back` must start with, or None for any.

    A try block is left only for its handlers. At column 0 after fewer than
    two blank lines, python_layout lets only the dedent keywords come: here,
    only those that continue the header the line returns to.
    """
    if back == "one" and opener == "try":
        return CONTINUES["try"]
    if column_zero and back:
        return CONTINUES[opener] if back == "one" else DEDENT_KEYWORDS
    return None


def _start_body(level: int, opener: str, back: str, word: str, c: str) -> tuple:
    """The body state after a line's first word `word` (maybe "") at `level` ends at character `c`."""
    kind = KIND_OF.get(word)
    if kind is None:
        opener = "" if back else opener  # a line back from a block is in one whose opener is not known
    return _body(("body", CODE, 0, level, kind or opener, kind is not None, False), c)


def _coarse(mode: tuple) -> tuple:
    """The lexer's mode without the blank-line counts the other automata keep: fewer states here."""
    if mode[0] == "nl":
        return NEWLINE_IN_BRACKETS
    if mode[0] == "s3":
        return mode[:3] + (0,) + mode[4:]
    return mode


def _body(state: tuple, c: str) -> tuple:
    _, mode, depth, level, opener, header, colon = state
    code = in_code(mode, c)
    mode, event = lex(mode, c, depth > 0)
    mode = _coarse(mode)
    if event == "open":
        depth = min(depth + 1, MAX_DEPTH)
    elif event == "close":
        depth = max(depth - 1, 0)
    if event == "newline" and depth == 0:
        if header and colon:
            return ("line", min(level + 1, MAX_LEVEL), opener, 0, 0)
        return ("line", level, "" if header else opener, 0, 0)  # a one-line body leaves the block's opener unknown
    if code and c not in " \t\n" and header:
        colon = c == ":" and depth == 0
    return ("body", mode, depth, level, opener, header, colon)


def _line_start(state: tuple, c: str) -> tuple:
    """(new level, opener, back, required) for a line whose first character is `c`."""
    _, level, opener, spaces, blank = state
    new_level = min(spaces // 4, MAX_LEVEL)
    back = "" if new_level >= level else "one" if new_level == level - 1 else "more"
    opener = "" if back == "more" else opener
    return new_level, opener, back, _required(opener, back, spaces == 0 and blank < MAX_BLANK_RUN)


def blocks_step(state: tuple, c: str) -> tuple:
    if c == FILE_SEPARATOR:
        return BLOCKS_START
    kind = state[0]
    if kind == "line":
        _, level, opener, spaces, blank = state
        if c in " \t":
            return ("line", level, opener, min(spaces + 1, 4 * (MAX_LEVEL + 1)), blank)
        if c == "\n":
            return ("line", level, opener, 0, min(blank + 1, MAX_BLANK_RUN))
        if c == "#":
            return ("comment", level, opener, blank)
        new_level, opener, back, required = _line_start(state, c)
        if c in _PREFIXES:
            return ("word", new_level, opener, back, c, required)
        return _start_body(new_level, opener, back, "", c)
    if kind == "comment":
        return ("line", state[1], state[2], 0, state[3]) if c == "\n" else state
    if kind == "word":
        _, level, opener, back, letters, required = state
        if is_identifier(c):
            if letters + c in _PREFIXES:
                return ("word", level, opener, back, letters + c, required)
            return _start_body(level, opener, back, "", c)
        return _start_body(level, opener, back, letters, c)
    return _body(state, c)


def blocks_forbids(state: tuple, c: str) -> bool:
    kind = state[0]
    if kind == "line":
        _, level, opener, spaces, blank = state
        if c == FILE_SEPARATOR:
            return opener == "try"
        if c in " \t\n#":
            return False
        _, _, back, required = _line_start(state, c)
        if opener == "try" and back == "more":
            return True  # a try block is left only for its "except" or "finally", one level back
        return required is not None and not any(w.startswith(c) for w in required)
    if kind == "comment":
        return c == FILE_SEPARATOR and state[2] == "try"
    if kind == "word":
        _, level, opener, back, letters, required = state
        ends = not is_identifier(c)
        if required is not None:
            return letters not in required if ends else not any(w.startswith(letters + c) for w in required)
        if ends and letters in DEDENT_KEYWORDS and back == "one":
            return letters not in CONTINUES[opener]
        return False
    return c == FILE_SEPARATOR  # the other automata say which characters the lexer cannot take


def blocks_end(state: tuple) -> bool:
    return state[0] == "line" and state[3] == 0 and state[2] != "try"


def blocks_char_class(c: str) -> str:
    """The letters of the header keywords are told apart; other letters, and digits, are not."""
    if c in _LETTERS or not is_identifier(c):
        return exact_char_class(c)
    return "<digit>" if c.isdigit() else "<letter>"
