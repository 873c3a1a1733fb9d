"""Python's syntax as automata: brackets, string quotes, indentation and expressions, honoured while sampling.

Four automata run side by side in the sampling loop (`constraints.Automaton`),
each following the same small lexer (`lexer.py`: code, comments,
single-line and triple-quoted strings, escapes, backslash continuations).
Two are here; `python_tokens` (operands and operators, keywords, parameters,
assignment targets) is in `tokens.py`, and `python_blocks` (which
block a dedented `else`, `elif`, `except` or `finally` closes; a `try` left
only for its handlers) in `blocks.py`:

- `python_brackets` keeps a stack of open brackets, up to `MAX_DEPTH`: a
  closer must match the innermost opener, and none comes at depth 0. A
  single-quoted string cannot take a newline; a triple-quoted string or an
  open bracket cannot take a third newline in a row. It knows each
  bracket's kind: inside a `(` that holds no def's parameters, a `:` only
  follows a lone name (`(n := 1)`) or ends a lambda's parameters, and a
  lone `=` only follows a lone name (a keyword argument); inside `[` and
  `{` an `=` only makes a comparison, and no bracket holds `+=` and the like.
- `python_layout` keeps the indentation, in steps of four spaces, up to
  `MAX_LEVEL`. After a line ending in `:` the next line (after at most one
  blank line) is indented one step, and no other line is; a dedent lands on
  a multiple of four, and a backslash's next line is not empty. As PEP 8
  lays out a module, leaving an indented block for column 0 takes two blank
  lines first, except for `else`, `elif`, `except` and `finally`. A `def`
  name is followed by `(`, a `class` name by `(` or `:`, and the
  parameters' `)` by `:` or a `->` annotation (a dotted name, a subscript or
  a union) that ends in `:`. A line that starts with `if`, `elif`, `for`,
  `while`, `with` or `except` ends at its `:`; `try`, `else` and `finally`
  take theirs at once. `else`, `elif`, `except` and `finally` come only on
  a line that returns from a deeper one. A line inside brackets is indented
  past its statement's, unless it starts with a closer.

Each automaton also knows how far every state is from one where the text
may end (`Automaton.distance`: strings and brackets closed, a header's body
begun, the line finished), so the sampling loop can end a sample cleanly at
its length.

So a sample that a stop string such as a blank-line pair ends has closed its
brackets, strings and blocks, by construction: nothing is rejected and
resampled. What the automata cannot see (names, what a conditional
expression inside brackets owes) is still the model's to get right.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import lzma
import sys
from pathlib import Path

import numpy as np

from ...data.config import FILE_SEPARATOR
from ...errors import WriteError
from ...fileio import atomic_path
from ...paths import cache_root, shipped_checkpoints_dir
from .. import constraints
from ..constraints import Automaton, explore
from . import blocks, lexer, tokens
from .blocks import BLOCKS_START, blocks_char_class, blocks_end, blocks_forbids, blocks_step
from .lexer import (
    CLOSERS,
    CODE,
    MAX_BLANK_RUN,
    MAX_DEPTH,
    MAX_LEVEL,
    OPENERS,
    QUOTES,
    consuming_mode,
    in_code,
    is_identifier,
    is_junk,
    lex,
    lexer_forbids,
)
from .tokens import TOKENS_START, tokens_char_class, tokens_end, tokens_forbids, tokens_step

log = logging.getLogger(__name__)

DEDENT_KEYWORDS = ("else", "elif", "except", "finally")
HEADER_KEYWORDS = ("def", "class")
ANNOTATION_CHARS = " .|[:"  # besides names, what may follow "->" at depth 0; a space only before " | "
# nats off the space that starts " -> annotation" after a def's parameters: in corpus:python 2% of defs
# annotate their return, and a weak model that has lost track of the def line wants a space more than ":"
RETURN_ANNOTATION_PENALTY = 3.0
# nats off a single-quoted string's other quote: in the standard library 5% of "..." strings hold a "'" and
# 1.4% of '...' strings a '"', while a weak model that has lost track of which quote opened the string
# reaches for the other one to close it, and writes code into the string from there on
OTHER_QUOTE_PENALTY = 2.0
MAX_ANNOTATION_SEPARATORS = 2  # "." and "|" in a return annotation at depth 0: "-> os.PathLike | None"
EXPRESSION_KEYWORDS = ("if", "elif", "for", "while", "with", "except")  # a header line: an expression, then ":"
BARE_KEYWORDS = ("try", "else", "finally")  # ":" at once
STATEMENT_KEYWORDS = HEADER_KEYWORDS + EXPRESSION_KEYWORDS + BARE_KEYWORDS


def _char_class(c: str) -> str:
    """Characters the automata cannot tell apart share a class, so each class is stepped once."""
    if c in " \t\n#\\'\"()[]{}:->.|" + FILE_SEPARATOR or c in "".join(STATEMENT_KEYWORDS):
        return c
    if is_identifier(c):
        return "<digit>" if c.isdigit() else "<letter>"
    return "<junk>" if is_junk(c) else "<other>"


# ---------------------------------------------------------------- brackets and quotes


# States: (mode, stack, word, after) where mode is the lexer's; stack the open brackets, innermost last, each
# "(", "[" or "{", or "p" for a def's parameters, "k" for a call's after a keyword argument, or "λ" for a
# parenthesis whose lambda still owes its ":".
# word: at depth 0, what of "def" the line has spelled ("def!" once spelled, until its "("); just inside a
# "(" or "k", what its item is so far: "" nothing yet, a prefix of "lambda", "-" a bare name, "- " one and
# spaces after it, "=" a keyword argument's value ("=l"... while it spells "lambda"), "x" anything else; in a
# def's parameters, "" at a parameter's start, "-" or "- " after its name, "a" in its annotation, "=" in its
# default.
# after: "cmp" just after "<", ">", "!" or "=" in code, "op" just after another operator inside brackets, "="
# where only "=" may come ("(x :=", "[a =="), "kw" just after a keyword argument's "=" (another "=" makes it a
# comparison) and "kwk" after a later one's (where "==" would make a positional argument).
BRACKETS_START = (CODE, (), "", "")
CLOSER_OF = {"(": ")", "k": ")", "p": ")", "λ": ")", "[": "]", "{": "}"}
LAMBDA_PREFIXES = tuple("lambda"[:k] for k in range(1, 7))
BARE_NAME = LAMBDA_PREFIXES + ("-", "- ")  # an item that is one name so far: "(x :=", "f(key="


def _word(word: str, c: str, stack: tuple) -> str:
    """The word tracker after code character `c` (not a bracket)."""
    if not stack:  # a def's parameters open the first "(" after "def"
        if word == "def!":
            return word
        if is_identifier(c):
            return word + c if word != "-" and "def".startswith(word + c) else "-"
        return "def!" if word == "def" else ""
    if stack[-1] == "p":  # a parameter: "-" its name, "a" its annotation after ":", "=" its default
        if c == ",":
            return ""
        if c in "#\n" or word not in ("", "-", "- "):
            return word
        if is_identifier(c):
            return "x" if word == "- " else "-"
        if c in " \t":
            return "- " if word else ""
        return word if c in "*/" and not word else "x"  # "*args", "**kw", "/"
    if stack[-1] not in "(k":
        return ""
    if c == ",":
        return ""
    if word.startswith("="):  # a keyword argument's value: "=" at its start, "=l"... spelling "lambda"
        if c in "#\n" or (c in " \t" and word == "="):
            return word
        return word + c if is_identifier(c) and "lambda".startswith(word[1:] + c) else "x"
    if c in "#\n":
        return word  # a comment or a line break inside the item changes nothing
    if c in " \t":
        return "- " if word in BARE_NAME else word
    if is_identifier(c):
        if word in LAMBDA_PREFIXES and "lambda".startswith(word + c):
            return word + c
        if word == "":
            return c if c == "l" else "x" if c.isdigit() else "-"
        return "-" if word in BARE_NAME[:-1] else "x"
    return "x"


def _brackets_step(state: tuple, c: str) -> tuple:
    mode, stack, word, after = state
    if c == FILE_SEPARATOR:
        return BRACKETS_START
    code, in_comment = in_code(mode, c), mode[0] == "comment"
    mode, event = lex(mode, c, bool(stack))
    if not code:  # a string makes a parenthesis's item more than a name; a comment changes nothing
        if not in_comment and word != "def!":
            word = "x" if stack and stack[-1] in "(k" else ""
        return mode, stack, word, ""
    if event == "open":
        kind = "p" if c == "(" and word == "def!" else c
        return mode, (stack + (kind,))[:MAX_DEPTH], "", ""
    if event == "close":  # in a parameter, a bracket closes inside its annotation or its default
        return mode, stack[:-1], {"(": "x", "k": "x", "p": "a"}.get(stack[-2] if len(stack) > 1 else "", ""), ""
    if c == "\n" and not stack:
        return mode, stack, "", ""
    if after == "=":  # the "=" it wanted
        return mode, stack, "x" if stack[-1] in "(k" else "", ""
    if after in ("kw", "kwk"):  # just after a keyword argument's "="
        if c == "=":  # "f(a == b)": a comparison after all
            return mode, stack[:-1] + ("(",), "x", ""
        after = ""
    if stack and stack[-1] in "(k" and word in ("lambda", "=lambda") and not is_identifier(c):
        stack, word = stack[:-1] + ("λ",), ""
    if stack and stack[-1] == "λ" and c == ":":
        return mode, stack[:-1] + ("(",), "", ""
    if stack and c == ":" and stack[-1] == "(":
        return mode, stack, "x", "="  # an assignment expression: "(x := 1)"
    if stack and c == ":" and stack[-1] == "p" and word != "=":
        return mode, stack, "a", ""
    if stack and c == "=" and after != "cmp":
        top = stack[-1]
        if top in "[{" or (top in "(k" and word not in BARE_NAME) or (top == "p" and word not in ("-", "- ", "a")):
            return mode, stack, _word(word, c, stack), "="  # "==": "[a = 1]", "f(a.b = 1)", "def f(a=b=1)"
        if top in "(k":  # a keyword argument: every later argument is one too, or *args or **kwargs
            return mode, stack[:-1] + ("k",), "=", "kw" if top == "(" else "kwk"
        if top == "p":
            return mode, stack, "=", "cmp"  # a default, or "=="
    if c in "<>!=" and after != "cmp":
        after = "cmp"
    else:  # ">>" and "<<" are shifts, whose "=" assigns
        after = "op" if stack and (c in "+-*/%&|^@~:" or (c in "<>" and after == "cmp")) else ""
    return mode, stack, _word(word, c, stack), after


def _brackets_forbids(state: tuple, c: str) -> bool:
    mode, stack, word, after = state
    if lexer_forbids(mode, c, bool(stack)):
        return True
    if not in_code(mode, c):
        return False
    if after == "=":
        return c != "="
    if after == "kwk" and c == "=":
        return True  # "f(a=1, b == 2)": a positional argument after a keyword argument
    if stack and stack[-1] == "k" and after != "kw" and _positional(word, c):
        return True
    if after == "op" and c == "=":
        return True  # "[a += 1]", "{a: = 1}": no assignment inside brackets
    if c in OPENERS:
        return len(stack) >= MAX_DEPTH
    if c in CLOSERS:
        return not stack or CLOSER_OF[stack[-1]] != c
    if c == ":" and stack and stack[-1] == "(":
        return word not in BARE_NAME  # a slice's, a dict's or a block's colon in a call: only "name :=" or a lambda's here
    if c == ":" and stack and stack[-1] == "p":
        return word not in ("-", "- ", "=")  # an annotation follows a parameter's name; a default may hold a lambda
    return c == ":" and bool(stack) and stack[-1] == "k"


def _positional(word: str, c: str) -> bool:
    """Whether `c` makes the item a positional argument, in a call that has had a keyword argument."""
    if word == "":  # the item's start: a name (for "name="), "*args" or "**kwargs", or the call's end
        return not (c in " \t\n#*)" or (is_identifier(c) and not c.isdigit()))
    if word in LAMBDA_PREFIXES or word == "-":
        return not (is_identifier(c) or c in " \t=")
    return word == "- " and c not in " \t="


def _brackets_penalty(state: tuple, c: str) -> float:
    mode = consuming_mode(state[0], c)
    return OTHER_QUOTE_PENALTY if mode[0] == "s1" and not mode[2] and c in QUOTES and c != mode[1] else 0.0


def _brackets_end(state: tuple) -> bool:
    return state == BRACKETS_START  # every bracket closed, outside any string or comment


def _brackets_char_class(c: str) -> str:
    return c if c in "lambdef=<>!,*" else _char_class(c)


# ---------------------------------------------------------------- indentation and block headers
#
# States: ("line", level, spaces, blank lines before, must indent) at the start of a line;
# ("comment line", level, blank lines before, must indent) on a line of only a comment;
# ("word", level, letters, dedent, dedented) spelling a statement's first word, where dedent says only
# else, elif, except or finally may come (column 0 after fewer than two blank lines) and dedented that the
# line came back from a deeper one; ("name", level, keyword, started)
# after "def " or "class "; ("body", mode, depth, level, ends with a colon, header) everywhere else,
# where header follows a def or class line from its "(" to its ":": "params" inside the parentheses,
# "closed" just after them, "space" after ") ", "dash" after ") -", "arrow" after "->", "returns" after
# "-> " and after ".", "|" or " | ", "annotation" after a name's first character, "union" after a space in it, "bar" after
# that " |", each of the four followed by a "+" for each "." or "|" so far; "compound" on an if, elif, for, while, with or except
# line until its colon; "" otherwise.

FILE_START = ("line", 0, 0, MAX_BLANK_RUN, False)


def _target_spaces(level: int, must: bool) -> int:
    return 4 * (level + 1) if must else 4 * level


def _words(dedent: bool) -> tuple[str, ...]:
    return DEDENT_KEYWORDS if dedent else STATEMENT_KEYWORDS


def _body(level: int, c: str, depth: int = 0, colon: bool = False, mode: tuple = CODE, header: str = "") -> tuple:
    """The body state after feeding `c` from (mode, depth, level, colon, header)."""
    mode, event = lex(mode, c, depth > 0)
    if event == "open":
        depth = min(depth + 1, MAX_DEPTH)
    elif event == "close":
        depth = max(depth - 1, 0)
    if event in ("open", "close", "code"):
        colon = c == ":" and depth == 0
    if header == "params" and event == "close" and depth == 0:
        header = "closed"
    elif header == "closed" and c == " ":
        header = "space"
    elif header == "space" and c == "-":
        header = "dash"
    elif header == "dash" and c == ">":
        header = "arrow"
    elif header == "arrow" and c == " ":
        header = "returns"
    elif header.startswith("returns"):
        header = header.replace("returns", "annotation")
    elif header.startswith("annotation") and c in ".|" and depth == 0:
        header = _separated(header.replace("annotation", "returns"))
    elif header.startswith("annotation") and c == " " and depth == 0:
        header = header.replace("annotation", "union")
    elif header.startswith("union"):
        header = header.replace("union", "bar")
    elif header.startswith("bar"):
        header = _separated(header.replace("bar", "returns"))
    elif (header in ("closed", "compound") or header.startswith("annotation")) and colon:
        header = ""
    if event == "newline":
        return ("line", level, 0, 0, colon) if depth == 0 else ("continued line", mode, depth, level, 0, header)
    return ("body", mode, depth, level, colon, header)


def _separated(header: str) -> str:
    # Counted up to the limit only: the explorer also steps characters a state forbids.
    return header + "+" if header.count("+") < MAX_ANNOTATION_SEPARATORS else header


def _layout_step(state: tuple, c: str) -> tuple:
    if c == FILE_SEPARATOR:
        return FILE_START
    kind = state[0]
    if kind == "line":
        _, level, spaces, blank, must = state
        if c in " \t":
            return ("line", level, min(spaces + 1, 4 * (MAX_LEVEL + 1)), blank, must)
        if c == "\n":
            return ("line", level, 0, min(blank + 1, MAX_BLANK_RUN), must)
        if c == "#":  # a comment line: neither a statement nor a blank line
            return ("comment line", level, blank, must)
        new_level = min(spaces // 4, MAX_LEVEL)
        dedent = not must and spaces == 0 and level > 0 and blank < MAX_BLANK_RUN
        if any(word.startswith(c) for word in _words(dedent)):
            return ("word", new_level, c, dedent, new_level < level)
        return _body(new_level, c)
    if kind == "comment line":
        _, level, blank, must = state
        return ("line", level, 0, blank, must) if c == "\n" else state
    if kind == "word":
        _, level, letters, dedent, dedented = state
        spelled = letters + c
        if any(word.startswith(spelled) for word in _words(dedent)):
            return ("word", level, spelled, dedent, dedented)
        if letters in HEADER_KEYWORDS and c == " ":
            return ("name", level, letters, False)
        if is_identifier(c):
            return ("body", CODE, 0, level, False, "")
        return _body(level, c, header="compound" if letters in EXPRESSION_KEYWORDS else "")
    if kind == "name":
        _, level, keyword, started = state
        if is_identifier(c):
            return ("name", level, keyword, True)
        if c == " " and not started:
            return state
        return _body(level, c, header="params" if c == "(" else "")
    if kind == "continued line":
        _, mode, depth, level, spaces, header = state
        if c == " ":
            return ("continued line", mode, depth, level, min(spaces + 1, 4 * level + 1), header)
        return _body(level, c, depth, False, mode, header)
    _, mode, depth, level, colon, header = state
    return _body(level, c, depth, colon, mode, header)


# Long on purpose: a lexer table, one branch per state read top to bottom; split up, its transitions would scatter.
def _layout_forbids(state: tuple, c: str) -> bool:
    kind = state[0]
    if kind == "line":
        _, level, spaces, blank, must = state
        if c == FILE_SEPARATOR:
            return must
        if c == " ":
            return spaces + 1 > _target_spaces(level, must)
        if c == "\n":
            return must and blank >= 1  # one blank line may follow a block header, not two
        if c == "#":
            return False
        if c == "\t" or is_junk(c):
            return True
        if must:
            return spaces != _target_spaces(level, must)
        if spaces % 4:
            return True
        dedent = spaces == 0 and level > 0 and blank < MAX_BLANK_RUN
        return dedent and not any(word.startswith(c) for word in DEDENT_KEYWORDS)
    if kind == "comment line":
        return c == FILE_SEPARATOR and state[3]
    if kind == "continued line":  # inside brackets, a line is indented past its statement, or starts with a closer
        _, mode, depth, level, spaces, header = state
        if lexer_forbids(mode, c, True):
            return True
        return c not in " \n" + CLOSERS and spaces <= 4 * level
    if kind == "word":
        _, level, letters, dedent, dedented = state
        spelled = letters + c
        if any(word.startswith(spelled) for word in _words(dedent)):
            return False
        if dedent and (letters not in DEDENT_KEYWORDS or is_identifier(c)):  # a dedent keyword is spelled out, and ends
            return True
        if letters in DEDENT_KEYWORDS and not is_identifier(c) and not dedented:
            return True  # "else", "elif", "except" and "finally" close a block: they come back from a deeper line
        if letters in BARE_KEYWORDS and not is_identifier(c):
            return c != ":" or level >= MAX_LEVEL
        if letters in EXPRESSION_KEYWORDS and not is_identifier(c):  # an expression follows, except after a bare except
            return c not in " (" and not (c == ":" and letters == "except" and level < MAX_LEVEL)
        return c == FILE_SEPARATOR or lexer_forbids(CODE, c, False) or (c == ":" and level >= MAX_LEVEL)
    if kind == "name":
        _, level, keyword, started = state
        if is_identifier(c):
            return not started and c.isdigit()
        if not started:
            return c != " "
        return c not in ("(:" if keyword == "class" else "(")
    _, mode, depth, level, colon, header = state
    if c == FILE_SEPARATOR:
        return True  # a file ends at the start of a line
    if lexer_forbids(mode, c, depth > 0):
        return True
    if depth == 0 and in_code(mode, c):
        if header == "closed":
            return c not in " :"
        if header == "space":
            return c != "-"
        if header == "dash":
            return c != ">"
        if header == "arrow":
            return c != " "
        if header.startswith("returns"):  # a name starts the annotation, and follows each "." or "|"
            return not (is_identifier(c) and not c.isdigit())
        if header.startswith("annotation"):  # a dotted name, a subscript or a union, then the header's colon
            if c in ANNOTATION_CHARS and c not in "[:" and header.count("+") >= MAX_ANNOTATION_SEPARATORS:
                return True
            return not (is_identifier(c) or c in ANNOTATION_CHARS)
        if header.startswith("union"):  # a space in an annotation is one around a union's "|"
            return c != "|"
        if header.startswith("bar"):
            return c != " "
        if header == "compound" and not colon:  # the line ends at its colon, so no comment before it either
            return c in "\n#"
    return c == ":" and depth == 0 and level >= MAX_LEVEL and in_code(mode, c)


def _layout_penalty(state: tuple, c: str) -> float:
    return RETURN_ANNOTATION_PENALTY if state[0] == "body" and state[5] == "closed" and c == " " else 0.0


def _layout_end(state: tuple) -> bool:
    return state[0] == "line" and not state[4]  # a finished line that is not a block's header


_cache: dict[tuple[str, ...], tuple[Automaton, ...]] = {}
AUTOMATA = ("python_brackets", "python_layout", "python_tokens", "python_blocks")
SHIPPED_SUFFIX = ".xz"


def python_automata(chars: tuple[str, ...]) -> tuple[Automaton, ...]:
    """The bracket, layout, token and block automata over a run's vocabulary, starting at the start of a file.

    Exploring them takes about a minute, so a shipped model carries its tables
    (`checkpoints/python/automata/`), and any other run's are kept in the cache directory,
    keyed by the vocabulary and the source of the modules that define them, and
    built again only when either changes. Processes that need the same tables at
    once (a server's workers, a cron job beside a terminal) build them once: the
    first holds a lock while it builds, and the others then read its file.
    """
    if chars not in _cache:
        name = tables_file_name(chars)
        path = cache_root() / "automata" / name
        _cache[chars] = _load_shipped(name) or _load_tables(path) or _build_once(path, chars)
    return _cache[chars]


def tables_file_name(chars: tuple[str, ...]) -> str:
    """The tables' file name: it changes with the vocabulary and with the code that builds them."""
    return f"python-{_tables_key(chars)}.npz"


def _load_shipped(name: str) -> tuple[Automaton, ...] | None:
    """Tables a shipped model carries (`checkpoints/NAME/automata/NAME.xz`), so its first sample builds nothing.

    They ship as an uncompressed `.npz` inside xz: 2.0 MB where the cache's zip-compressed `.npz` is 5.2 MB,
    which keeps the wheel within its size.
    """
    for path in sorted(shipped_checkpoints_dir().glob(f"*/automata/{name}{SHIPPED_SUFFIX}")):
        try:
            tables = _load_tables(io.BytesIO(lzma.decompress(path.read_bytes())))
        except (OSError, lzma.LZMAError) as exc:
            log.debug("not using %s (%s)", path, exc)
            continue
        if tables:
            return tables
    return None


def shipped_tables(automata: tuple[Automaton, ...]) -> bytes:
    """The tables as a shipped model carries them (`_load_shipped`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **_table_arrays(automata))
    return lzma.compress(buffer.getvalue(), preset=9)


def _build_once(path: Path, chars: tuple[str, ...]) -> tuple[Automaton, ...]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_suffix(".lock"), "a+")
    except OSError:  # a read-only cache: build without sharing
        return _build(chars)
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        tables = _load_tables(path)
        if tables is None:
            log.info("building the Python syntax tables for this vocabulary (once; about a minute, then cached in %s)",
                     path.parent)
            tables = _save_tables(path, _build(chars))
        return tables


def _build(chars: tuple[str, ...]) -> tuple[Automaton, ...]:
    settings = {"syntax": "python"}
    return (
        explore("python_brackets", chars, BRACKETS_START, _brackets_step, _brackets_forbids, settings, _brackets_end,
                _brackets_char_class, _brackets_penalty),
        explore("python_layout", chars, FILE_START, _layout_step, _layout_forbids, settings, _layout_end, _char_class,
                _layout_penalty),
        explore("python_tokens", chars, TOKENS_START, tokens_step, tokens_forbids, settings, tokens_end,
                tokens_char_class),
        explore("python_blocks", chars, BLOCKS_START, blocks_step, blocks_forbids, settings, blocks_end,
                blocks_char_class),
    )


def _tables_key(chars: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\x00".join(chars).encode("utf-8"))
    for module in (constraints, lexer, tokens, blocks, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:24]


def _load_tables(path) -> tuple[Automaton, ...] | None:
    try:
        with np.load(path, allow_pickle=False) as tables:
            return tuple(Automaton(name, tables[f"{name}.transitions"], tables[f"{name}.bias"], 0, {"syntax": "python"},
                                   tables[f"{name}.distance"], tables[f"{name}.columns"]) for name in AUTOMATA)
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError) as exc:  # a damaged file is built again
        log.debug("rebuilding %s (%s)", path, exc)
        return None


def _table_arrays(automata: tuple[Automaton, ...]) -> dict[str, np.ndarray]:
    return {f"{a.name}.{field}": getattr(a, field) for a in automata for field in ("transitions", "bias", "distance", "columns")}


def _save_tables(path: Path, automata: tuple[Automaton, ...]) -> tuple[Automaton, ...]:
    arrays = _table_arrays(automata)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    except (OSError, WriteError) as exc:  # a read-only cache only costs the next run the build again
        log.debug("could not keep %s (%s)", path, exc)
    return automata
