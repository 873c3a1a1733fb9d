"""Which block a dedented `else`, `elif`, `except` or `finally` closes, as an automaton.

The fourth of the syntax automata (`automata.py` builds them all). It follows
the shared lexer (`lexer.lex`) and, line by line, the indentation level
of the block the code is in, the kind of the header that opened it, and the
kind of the header that opened the block around that one. A line that
returns one or two levels, to one of those headers' own, may start with what
continues that header's statement:

| the block was opened by | the line may start with |
|---|---|
| `if`, `elif` | `elif`, `else` |
| `for`, `while` | `else` |
| `try` | `except` or `finally`, and nothing else |
| `except` | `except`, `else`, `finally` |
| `else` | `finally` (after a try's `else`) |
| `finally`, `def`, `class`, `with` | none of them |

A `try` block is left only for its `except` or `finally`: no line comes back
past its header, and the text does not end inside it. After a line returns
more than two levels, the kind of the header it returns to is not known, and
any of the four keywords may start it. Two kinds, not a stack per level:
a stack would multiply the states by the kinds to the power of the depth.
(Which lines may return at all is `python_layout`'s to say.) A decorator's
line is followed by another decorator, a `def` or a `class`.
"""

from __future__ import annotations

import functools

from ...data.config import FILE_SEPARATOR
from .lexer import (
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
           "else": "else", "finally": "other", "def": "other", "class": "other", "with": "other",
           "async": "other"}
CONTINUES = {  # the keywords that may start a line returning to a header of each kind ("": not known)
    "if": ("elif", "else"), "loop": ("else",), "try": ("except", "finally"), "except": ("except", "else", "finally"),
    "else": ("finally",), "other": (), "": ("elif", "else", "except", "finally"),
}
DEDENT_KEYWORDS = ("elif", "else", "except", "finally")
DECORATED = ("def", "class", "async")  # what a decorator's line may be followed by, besides another decorator
_PREFIXES = {w[:k] for w in (*KIND_OF, *DECORATED) for k in range(1, len(w) + 1)}
_LETTERS = set("".join(KIND_OF))

# States: ("line", level, opener, parent, spaces, blank lines before, decorated) at a line's start, where level
# is the indentation of the block the code is in, opener the kind of the header that opened it, parent the kind
# of the header that opened the block around it ("" where not known), and decorated whether a decorator's line
# came last; ("comment", level, opener, parent, blank lines before, decorated) on a line of only a comment;
# ("word", level, returned, opener, parent, letters, required) spelling the first word of a line, letters
# being a prefix of a keyword, returned the kind of the header the line comes back to (None: it does not come
# back; "": not known), opener and parent those of the block the line is in, and required the words it must
# be one of (`_required`) or None; ("body", mode, depth, level, opener, parent, header, colon) on the rest of
# the line, where opener and parent are already those the next line's block will have if header (the line
# starts with a header's keyword, or is "@": a decorator) and colon (it ends in ":" at depth 0).
BLOCKS_START = ("line", 0, "", "", 0, MAX_BLANK_RUN, False)


def _required(returned: str | None, column_zero: bool, decorated: bool) -> tuple[str, ...] | None:
    """The words a line coming back to a header of kind `returned` must start with, or None for any.

    A try block is left only for its handlers. At column 0 after fewer than
    two blank lines, python_layout lets only the dedent keywords come: here,
    only those that continue the header the line returns to.
    """
    if decorated:
        return DECORATED
    if returned == "try" or (column_zero and returned is not None):
        return CONTINUES[returned]
    return None


def _levels_back(state: tuple) -> tuple[int, int]:
    """(the level a line starting at this "line" state's spaces is at, how many levels it comes back)."""
    new_level = min(state[4] // 4, MAX_LEVEL)
    return new_level, state[1] - new_level


def _line_start(state: tuple) -> tuple:
    """(new level, returned, opener, parent, required) for a line starting at this "line" state's spaces.

    returned, opener and parent are as in a "word" state.
    """
    _, _, opener, parent, spaces, blank, decorated = state
    new_level, back = _levels_back(state)
    if back <= 0:
        returned = None
    elif back == 1:
        returned, opener, parent = opener, parent, ""
    else:
        returned, opener, parent = (parent if back == 2 else ""), "", ""
    return new_level, returned, opener, parent, _required(returned, spaces == 0 and blank < MAX_BLANK_RUN, decorated)


def _leaves_try(state: tuple) -> bool:
    """Whether a line starting at this state's spaces comes back past the header of a try block it is in."""
    _, _, opener, parent, _, _, _ = state
    back = _levels_back(state)[1]
    return (opener == "try" and back >= 2) or (parent == "try" and back >= 3)


def _start_body(level: int, opener: str, parent: str, word: str, c: str) -> tuple:
    """The body state after a line's first word `word` (maybe "") in a block (`opener`, `parent`) ends at `c`."""
    kind = KIND_OF.get(word)
    if kind is not None:  # the block this header opens, inside the one the line is in
        opener, parent = kind, opener
    return _body(("body", CODE, 0, level, opener, parent, kind is not None, False), c)


def _coarse(mode: tuple) -> tuple:
    """The lexer's mode without the blank-line counts the other automata keep: fewer states here."""
    if mode[0] == "nl":
        return NEWLINE_IN_BRACKETS
    if mode[0] == "s3":
        return mode[:3] + (0,) + mode[4:]
    return mode


@functools.cache  # a few thousand (mode, depth, c) triples recur across all the states
def _lexed(mode: tuple, depth: int, c: str) -> tuple[tuple, int, str, bool]:
    """(mode, depth, event, whether c is code) after `c` on the rest of a line."""
    code = in_code(mode, c)
    mode, event = lex(mode, c, depth > 0)
    if event == "open":
        depth = min(depth + 1, MAX_DEPTH)
    elif event == "close":
        depth = max(depth - 1, 0)
    return _coarse(mode), depth, event, code


def _body(state: tuple, c: str) -> tuple:
    _, mode, depth, level, opener, parent, header, colon = state
    mode, depth, event, code = _lexed(mode, depth, c)
    if event == "newline" and depth == 0:
        if header == "@":
            return ("line", level, opener, parent, 0, 0, True)
        if header and colon:
            if level == MAX_LEVEL:  # deeper than the levels counted: the blocks' kinds are not known
                return ("line", level, "", "", 0, 0, False)
            return ("line", level + 1, opener, parent, 0, 0, False)
        if header:  # a one-line body: the line's block is still the one around the header's
            return ("line", level, parent, "", 0, 0, False)
        return ("line", level, opener, parent, 0, 0, False)
    if code and c not in " \t\n#" and header is True:  # a comment after the colon leaves it the last code
        colon = c == ":" and depth == 0
    return ("body", mode, depth, level, opener, parent, header, colon)


def blocks_step(state: tuple, c: str) -> tuple:
    if c == FILE_SEPARATOR:
        return BLOCKS_START
    kind = state[0]
    if kind == "line":
        _, level, opener, parent, spaces, blank, decorated = state
        if c in " \t":  # a line goes no deeper than its block (python_layout): more spaces change nothing here
            return ("line", level, opener, parent, min(spaces + 1, 4 * level + 4), blank, decorated)
        if c == "\n":
            return ("line", level, opener, parent, 0, min(blank + 1, MAX_BLANK_RUN), decorated)
        if c == "#":
            return ("comment", level, opener, parent, blank, decorated)
        new_level, returned, opener, parent, required = _line_start(state)
        if c == "@":
            return ("body", CODE, 0, new_level, opener, parent, "@", False)
        if c in _PREFIXES:
            return ("word", new_level, returned, opener, parent, c, required)
        return _start_body(new_level, opener, parent, "", c)
    if kind == "comment":
        _, level, opener, parent, blank, decorated = state
        return ("line", level, opener, parent, 0, blank, decorated) if c == "\n" else state
    if kind == "word":
        _, level, returned, opener, parent, letters, required = state
        if is_identifier(c):
            if letters + c in _PREFIXES:
                return ("word", level, returned, opener, parent, letters + c, required)
            return _start_body(level, opener, parent, "", c)
        return _start_body(level, opener, parent, letters, c)
    return _body(state, c)


def _inside_try(state: tuple) -> bool:
    return "try" in state[2:4]


def blocks_forbids(state: tuple, c: str) -> bool:
    kind = state[0]
    if kind == "line":
        decorated = state[6]
        if c == FILE_SEPARATOR:
            return _inside_try(state) or decorated
        if c in " \t\n#":
            return False
        if _leaves_try(state):
            return True
        _, returned, _, _, required = _line_start(state)
        if decorated:
            return returned is not None or not (c == "@" or any(w.startswith(c) for w in required))
        return required is not None and not any(w.startswith(c) for w in required)
    if kind == "comment":
        return c == FILE_SEPARATOR and (_inside_try(state) or state[5])
    if kind == "word":
        _, level, returned, opener, parent, letters, required = state
        ends = not is_identifier(c)
        if required is not None:
            return letters not in required if ends else not any(w.startswith(letters + c) for w in required)
        if ends and letters in DEDENT_KEYWORDS and returned is not None:
            return letters not in CONTINUES[returned]
        return False
    return c == FILE_SEPARATOR  # the other automata say which characters the lexer cannot take


def blocks_end(state: tuple) -> bool:
    return state[0] == "line" and state[4] == 0 and not _inside_try(state) and not state[6]


def blocks_char_class(c: str) -> str:
    """The letters of the header keywords are told apart; other letters, and digits, are not."""
    if c in _LETTERS or not is_identifier(c):
        return exact_char_class(c)
    return "<digit>" if c.isdigit() else "<letter>"
