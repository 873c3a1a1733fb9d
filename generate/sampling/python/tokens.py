"""Python's expressions as an automaton: operands and operators take turns.

The third of the syntax automata (`automata.py` holds the other two and builds
all three). It follows the shared lexer (`lexer.lex`) and, in code, which
kind of token may come next:

- after an operand (a name, number, string or closed bracket) comes an
  operator, a call or subscript, an attribute, a comma, a colon, a closer,
  the end of the statement, or, after a space, a keyword such as `and`,
  `in`, `if`, `for`, `as` or `import`; never a second operand;
- after an operator or a keyword such as `return`, `not` or `import` comes
  an operand (or a unary `-`, `+`, `~`, `*`); a statement cannot end there,
  and only where the operand is optional (`return`, `raise`, after a comma
  or an opener) may a closer, a colon or the end of the line come instead;
- a statement's keywords (`if`, `return`, `def`, `pass`, ...) start
  statements and nothing else; inside an expression only `not`, `lambda`,
  `await` and `yield` stand where an operand may;
- operators are Python's own, one to three characters (`!` only in `!=`);
  a string prefix (`r`, `b`, `f`, ...) is the only name a quote may follow,
  and a string is the only operand another string may follow;
- numbers have Python's forms (no leading zeros, digits after an exponent's
  `e` or a base's `0x`); `->` comes only after a def's parameters;
- `from` takes a dotted module name and then ` import `; an import takes
  names, `as`, commas and one pair of parentheses; a `for` loop's target is
  names, commas and brackets up to its ` in `;
- a conditional expression at depth 0 owes its `else` before a comma;
- `None`, `True` and `False` are not assigned to and name no keyword
  argument, and a def's default takes no bare generator (`a=x for x in y`).

The rules are a regular approximation of the grammar: they accept some
invalid code (`x = (a,)` forms and keywords used as names are left to the
model), but real code in the standard library's style passes them whole.
"""

from __future__ import annotations

import functools

from ...data.config import FILE_SEPARATOR
from .lexer import (
    CLOSERS,
    CODE,
    CONTINUED,
    MAX_DEPTH,
    OPENERS,
    QUOTES,
    exact_char_class,
    in_code,
    is_identifier,
    lex,
    lexer_forbids,
)

# Keywords that start a statement and only there, by what follows them: an optional operand, a required
# one, or (like a name) an operator or the statement's end.
STATEMENT_OPTIONAL = ("return", "raise", "except")
STATEMENT_REQUIRED = ("del", "assert", "global", "nonlocal", "import", "if", "elif", "while", "for", "with", "def",
                      "class")
STATEMENT_ONLY_PREFIX = ("async",)
STATEMENT_BARE = ("pass", "break", "continue", "try", "else", "finally")
STATEMENT_ONLY = STATEMENT_OPTIONAL + STATEMENT_REQUIRED + STATEMENT_BARE + STATEMENT_ONLY_PREFIX
# Keywords that may stand where any operand may, and want one after them (optional or required).
EXPRESSION_OPTIONAL = ("yield", "lambda")
EXPRESSION_REQUIRED = ("not", "await", "from")  # "from" for "yield from"
# Keywords that may follow an operand (after a space), each then wanting an operand.
BINARY_KEYWORDS = ("and", "or", "in", "is", "not in", "if", "else", "for", "as", "import", "from", "async")
STRING_PREFIXES = ("r", "u", "b", "f", "rb", "br", "fr", "rf", "R", "U", "B", "F")
RESERVED_NAMES = ("and", "or", "in", "is", "as")  # keywords that never stand where an operand may
CONSTANTS = ("None", "True", "False")  # operands that are never assigned to, nor name a keyword argument
OPERAND_WORDS = STATEMENT_ONLY + EXPRESSION_OPTIONAL + EXPRESSION_REQUIRED + STRING_PREFIXES + RESERVED_NAMES + CONSTANTS
OPERATORS = ("+", "-", "*", "/", "%", "@", "&", "|", "^", "<", ">", "=", "**", "//", "<<", ">>", "<=", ">=", "==", "!=",
             "->", ":", ":=", "+=", "-=", "*=", "/=", "%=", "@=", "&=", "|=", "^=", "**=", "//=", "<<=", ">>=")
OPERATOR_CHARS = "+-*/%@&|^<>=!~"
NUMBER_CHARS = "0123456789_.abcdefABCDEFxXoOjJ"  # digits, a fraction, hex digits, exponents and the base letters

_OPERATOR_PREFIXES = {op[:k] for op in OPERATORS + ("!=",) for k in range(1, len(op) + 1)}
_OPERAND_PREFIXES = {w[:k] for w in OPERAND_WORDS for k in range(1, len(w) + 1)}
_BINARY_PREFIXES = {w[:k] for w in BINARY_KEYWORDS for k in range(1, len(w) + 1)}
_AFTER_STRING_PREFIXES = _BINARY_PREFIXES | {w[:k] for w in STRING_PREFIXES for k in range(1, len(w) + 1)}

# Token states: START a statement's start; ("operand", strict) an operand's place; STAR after a unary "*" or "**";
# ("after", string, spaced) after an operand; DOT after an attribute's "."; RELATIVE after a "." where an operand
# goes (".5", "...", "from . import"); ("name", context, prefix) spelling a name (context: see `_end_name`),
# prefix being what of OPERAND_WORDS or BINARY_KEYWORDS it spells so far (None: none); ("op", chars);
# STRING inside a string; DEF_NAME after "def", DEF_NAMED after its name, PARAMETER where a parameter's
# name goes. ("number", part) spells a number literal; `_number` says what each part takes.
START = ("start",)
STRICT, OPTIONAL = ("operand", True), ("operand", False)
STAR, DOT, RELATIVE, STRING = ("star",), ("dot",), ("relative",), ("string",)
DONE = ("done",)  # after "pass", "break" or "continue": the statement ends
AFTER = ("after", False, False)
AFTER_STRING = ("after", True, False)

# What the statement at hand is: TARGET while it could still be an assignment's target ("x", "a.b[i], c");
# CALLED just after a call, which a subscript or an attribute makes a target again ("f()[0] = x");
# SIMPLE any other simple statement; LAMBDA one whose lambda still owes its ":"; IMPORT an import;
# COMPOUND a block's header (if, for, def, try, ...), whose colon at depth 0 ends it, and CONDITION one of
# if, elif or while, where no comma stands at depth 0; PARAMETERS inside a
# def's parentheses, where each item is a parameter's name, DEFAULTS there after a parameter's default, and
# KEYWORD_ONLY after a "*";
# RAISE a raise, where "from" may follow an operand; RETURNS a def's header between its parameters' ")" and
# its ":", the only place for "->"; FROM a from-import's module ("from a.b"), where only " import " may follow
# the dotted name; IMPORT the modules an import brings in, IMPORTED the names a from-import brings in, ALIAS
# after an import's "as"; FOR a for loop's target, up to its " in "; CHAINED an assignment's or an
# annotation's value, which may be another target ("a = b = c") but takes no annotation ("x = a: b"); DEL a
# del statement's targets, DEL_CALLED one just after a call, which only "." or "[" makes a target again.
TARGET, CALLED, SIMPLE, LAMBDA, IMPORT, RAISE = "target", "called", "simple", "lambda", "import", "raise"
IMPORTED, ALIAS, CHAINED = "imported", "alias", "chained"
DEL, DEL_CALLED = "del", "del called"
COMPOUND, CONDITION, RETURNS, FROM, FOR = "compound", "condition", "returns", "from", "for"
IMPORT_KINDS = (FROM, IMPORT, IMPORTED, ALIAS)
PARAMETERS, DEFAULTS, KEYWORD_ONLY = "parameters", "defaults", "keyword-only"
PARAMETER_KINDS = (PARAMETERS, DEFAULTS, KEYWORD_ONLY)
COMPOUND_KEYWORDS = ("with", "except", "class", "try", "else", "finally")
CONDITION_KEYWORDS = ("if", "elif", "while")
ASSIGNMENTS = ("=", "+=", "-=", "*=", "/=", "%=", "@=", "&=", "|=", "^=", "**=", "//=", "<<=", ">>=")
KEYWORDS = ("False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
            "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
            "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield")
_KEYWORD_PREFIXES = {w[:k] for w in KEYWORDS for k in range(1, len(w) + 1)}
DEF_NAME, DEF_NAMED, PARAMETER, PARAMETER_NAMED = ("def name",), ("def named",), ("parameter",), ("parameter named",)

STATEMENT_START = (CODE, 0, START, TARGET)
TOKENS_START = (*STATEMENT_START, False)


def _operand_place(tok: tuple) -> bool:
    return tok in (START, STRICT, OPTIONAL, STAR)


def _end_name(context: str, prefix: str | None, c: str):
    """The token state after a name that `c` ends, or None where the name cannot end there.

    `context` is where the name began: "statement" at a statement's start, "operand" at any other
    operand's place, "after" or "after string" after an operand (only keywords, or a string's prefix
    after a string, may come there), "attribute" after a ".", "def" a function's name, "parameter" a
    parameter's.
    """
    if context in ("after", "after string"):
        if prefix in BINARY_KEYWORDS:
            return STRICT
        return STRICT if context == "after string" and prefix in STRING_PREFIXES and c in QUOTES else None
    if context == "def":
        return DEF_NAMED
    if context in ("statement", "operand"):
        if prefix in RESERVED_NAMES or (prefix in STATEMENT_ONLY and context != "statement"):
            return None  # "x = return", "[if", "import in": a keyword where it cannot stand
        if prefix == "async":
            return START  # "async def", "async with", "async for": the statement's keyword follows
        if prefix in ("pass", "break", "continue"):
            return DONE
        if prefix == "def":
            return DEF_NAME
        if prefix in STATEMENT_OPTIONAL + EXPRESSION_OPTIONAL:
            return OPTIONAL
        if prefix in STATEMENT_REQUIRED + EXPRESSION_REQUIRED:
            return STRICT
        if prefix in STRING_PREFIXES and c in QUOTES:
            return STRICT  # the quote starts the string this prefix belongs to
    return AFTER


def _end_operator(chars: str, depth: int, statement: str):
    """(token state, statement) after operator `chars`, or None where it cannot stand."""
    if chars not in OPERATORS:
        return None
    if chars == "->":
        return (STRICT, COMPOUND) if statement == RETURNS and depth == 0 else None
    if depth:
        # a slice, a dict's value, a lambda's body or a parameter's annotation; or any operator's operand
        return (OPTIONAL if chars == ":" else STRICT), statement
    if chars == ":":
        if statement in (COMPOUND, CONDITION, RETURNS):
            return START, TARGET  # a one-line body may follow the block's header
        if statement == LAMBDA:
            return STRICT, SIMPLE
        return (STRICT, CHAINED) if statement == TARGET else None  # an annotation: "x: int = 0", not "x = a: b"
    if chars == "=" and statement == LAMBDA:
        return STRICT, LAMBDA  # a lambda's default: "lambda d=b: d"
    if chars in ASSIGNMENTS:
        if statement not in (TARGET, CHAINED):
            return None  # "f(x) = 1", "if x = 1:", "a + b = c"
        return STRICT, CHAINED if chars == "=" else SIMPLE  # "a = b = c" chains
    return STRICT, SIMPLE if statement in (TARGET, CALLED, CHAINED) else statement


@functools.lru_cache(maxsize=512)  # `explore` asks for each move twice, as a step and as a forbid
def tokens_advance(state: tuple, c: str):
    """The state after `c`, or None where `c` cannot come next.

    The last element says whether a conditional expression at depth 0 still
    owes its `else` ("x = a if b"): an `else` comes only then, and the
    statement cannot end before it.
    """
    *inner, owes_else = state
    following = _advance(tuple(inner), c)
    if following is None:
        return None
    tok, new_tok, depth = inner[2], following[2], inner[1]
    if owes_else and depth == 0 and c in ",:" and in_code(inner[0], c):
        return None  # "x = a if b, c", "if a if b:": the condition ends at its "else"
    if tok[0] == "name" and tok[1] in ("after", "after string") and new_tok[0] != "name" and depth == 0:
        if tok[2] == "if":
            owes_else = True
        elif tok[2] == "else":
            if not owes_else:
                return None  # an "else" with no "if" before it
            owes_else = False
    if new_tok == START and following[1] == 0:
        if owes_else:
            return None  # "x = a if b" ends without its "else"
        owes_else = False
    return (*following, owes_else)


def _advance(state: tuple, c: str):
    mode, depth, tok, statement = state
    if c == FILE_SEPARATOR:
        return STATEMENT_START if tok == START and depth == 0 and mode[0] in ("code", "comment") else None
    if lexer_forbids(mode, c, depth > 0):
        return None
    kind = mode[0]
    if kind == "open" and mode[2] == 2 and c != mode[1]:  # "" was an empty string; c is code
        mode, tok, kind = CODE, AFTER_STRING, "code"
    if kind in ("open", "s1", "s3"):
        new_mode, _ = lex(mode, c, depth > 0)
        if new_mode[0] in ("code", "nl"):
            if c == "\n" and depth == 0:
                return (new_mode, 0, START, TARGET)
            return (new_mode, depth, AFTER_STRING, statement)
        return (new_mode, depth, STRING, statement)
    if kind == "comment":
        if c != "\n":
            return state
        if depth == 0:
            return (lex(mode, c, False)[0], 0, START, TARGET)
        return (lex(mode, c, True)[0], depth, tok, statement)
    if kind == "backslash":
        return (CONTINUED, depth, tok, statement)
    if kind == "continued" and c in " \t":
        return state
    return _code(CODE if kind == "continued" else mode, depth, tok, statement, c)


# Long on purpose: a lexer table, one branch per state read top to bottom; split up, its transitions would scatter.
def _code(mode: tuple, depth: int, tok: tuple, statement: str, c: str):
    """A character read as code, from token state `tok`."""
    # First, the token being spelled either takes c or ends before it.
    if tok[0] == "name":
        _, context, prefix = tok
        if is_identifier(c) or (c == " " and context in ("after", "after string") and prefix == "not"):  # "not in"
            spelled = None if prefix is None else prefix + c
            if context == "parameter":
                return (mode, depth, ("name", context, spelled if spelled in _KEYWORD_PREFIXES else None), statement)
            if context == "after":
                return (mode, depth, ("name", context, spelled), statement) if spelled in _BINARY_PREFIXES else None
            if context == "after string":
                return (mode, depth, ("name", context, spelled), statement) if spelled in _AFTER_STRING_PREFIXES else None
            if context in ("statement", "operand") and spelled in _OPERAND_PREFIXES:
                return (mode, depth, ("name", context, spelled), statement)
            return (mode, depth, ("name", context, None), statement)
        if context == "parameter":
            if prefix in KEYWORDS:
                return None
            return _definition(lex(mode, c, True)[0], depth, PARAMETER_NAMED, c, statement)
        if context in ("after", "after string") and not _binary_keyword_fits(prefix, depth, statement):
            return None
        tok = _end_name(context, prefix, c)
        if tok is None or (statement in IMPORT_KINDS and context == "operand" and prefix in KEYWORDS):
            return None  # "from None", "import not"
        if context == "statement" and prefix in CONDITION_KEYWORDS:
            statement = CONDITION
        elif context == "statement" and prefix in COMPOUND_KEYWORDS:
            statement = COMPOUND
        elif context == "statement" and prefix == "for":
            statement = FOR
        elif context == "statement" and prefix == "from":
            statement = FROM
        elif prefix == "import":
            statement = IMPORT if context == "statement" else IMPORTED
        elif prefix == "as" and statement in (IMPORT, IMPORTED):
            statement = ALIAS
        elif context != "statement" and prefix == "in" and statement == FOR and depth == 0:
            statement = COMPOUND  # the loop's iterable: any expression, up to the ":"
        elif context == "statement" and prefix == "raise":
            statement = RAISE
        elif context == "statement" and prefix == "del":
            statement = DEL
        elif prefix == "lambda" and depth == 0 and statement not in (COMPOUND, CONDITION):
            statement = LAMBDA
        elif (tok != AFTER or prefix in CONSTANTS) and statement in (TARGET, CHAINED) and depth == 0:
            statement = SIMPLE  # a keyword: "return x", "not x", "del x", "None = x" assign nothing
        if prefix in CONSTANTS and context == "operand" and c == "=" and depth > 0:
            return None  # "f(None=1)"; a comparison puts spaces around "=="
    elif tok[0] == "number":
        part = _number(tok[1], c)
        if part is not None:
            return (mode, depth, ("number", part), statement)
        if tok[1] not in NUMBER_ENDS:
            return None  # "1e", "0x", "1_": the literal is not finished
        tok = AFTER
    elif tok[0] == "op":
        if tok[1] + c == "->" and (statement != RETURNS or depth):
            return None  # an arrow only annotates a def's return
        if tok[1] + c in _OPERATOR_PREFIXES:
            if tok[1] + c == ":=" and depth == 0 and statement not in (COMPOUND, CONDITION):
                return None  # an assignment expression stands in parentheses, or in an if or while header
            return (mode, depth, ("op", tok[1] + c), statement)
        ended = _end_operator(tok[1], depth, statement)
        if ended is None:
            return None
        tok, statement = ended
    if tok in (DEF_NAME, DEF_NAMED, PARAMETER, PARAMETER_NAMED):
        return _definition(lex(mode, c, depth > 0)[0], depth, tok, c, statement)
    following = _token(lex(mode, c, depth > 0)[0], depth, tok, statement, c)
    if following is None:
        return None
    new_mode, new_depth, new_tok = following
    if statement in (*IMPORT_KINDS, FOR) and not _names_only_allow(statement, depth, tok, new_tok, c):
        return None
    if statement == ALIAS and c == ",":
        statement = IMPORTED  # the next name: "import a as b, c"
    if statement in (DEL, DEL_CALLED) and depth == 0:
        if new_tok[0] == "op" or new_tok == STAR:
            return None  # "del a + b"
        if statement == DEL_CALLED and c not in " \t(":
            if c not in ".[":
                return None  # "del f(x)": a call is no target
            statement = DEL
        elif c == "(" and not _operand_place(tok):
            statement = DEL_CALLED
    if statement in PARAMETER_KINDS:
        if new_depth == 0:
            statement = RETURNS  # the parameters' ")"
        elif new_depth == 1 and c == "," and depth == 1:
            new_tok = PARAMETER
    if new_tok == START and depth == 0 and c in "\n;":
        statement = TARGET
    elif statement in (TARGET, CHAINED) and depth == 0 and not _keeps_target(tok, new_tok, c):
        statement = CALLED if c == "(" else SIMPLE
    elif statement == CALLED and depth == 0 and c not in " \t(":
        statement = TARGET if c in ".[" else SIMPLE
    return (new_mode, new_depth, new_tok, statement)


def _keeps_target(tok: tuple, new_tok: tuple, c: str) -> bool:
    """Whether `c`, read at depth 0 from `tok`, leaves a statement that could still be assigned to."""
    if new_tok[0] == "name" and new_tok[1] in ("statement", "operand", "attribute"):
        return True  # a name, or an attribute's
    if c in " \t.,[]*\\" or new_tok[0] == "op":
        return True  # operators decide when they end (`_end_operator`)
    return c == "(" and _operand_place(tok)  # "(a, b) = pair"; a call's "(" is no target


def _binary_keyword_fits(keyword: str | None, depth: int, statement: str) -> bool:
    """Where a keyword after an operand may stand: "for" in comprehensions, "import" and "as" in their statements."""
    if keyword in ("for", "async"):
        return depth > 0 and statement not in PARAMETER_KINDS  # "def f(a=x for x in y)" needs the generator's own brackets
    if statement == FROM:
        return keyword == "import"
    if statement in (IMPORT, IMPORTED):
        return keyword == "as"
    if statement == ALIAS or (statement in (DEL, DEL_CALLED) and depth == 0):
        return False  # "import a as b as c", "del a if b else c"
    if statement == FOR and depth == 0:
        return keyword == "in"
    if keyword == "import":
        return False  # only a from-import's module comes before it
    if keyword == "as":
        return depth > 0 or statement == COMPOUND
    if keyword == "from":
        return statement == RAISE and depth == 0  # "raise X from Y"; "yield from" is an operand's keyword
    return True


def _names_only_allow(statement: str, depth: int, tok: tuple, new_tok: tuple, c: str) -> bool:
    """What an import's module and names, and a for loop's target, take besides names, "." and spaces.

    "from a.b import (c as d, e)", "import a.b as c, d", "from . import *"; "for a, (b, c) in" and
    "for x.y[i] in", whose subscript may hold any expression.
    """
    if c == "." and statement in (IMPORTED, ALIAS):
        return False  # "from a import b.c", "import a as b.c"
    if c in " \t\\." or (is_identifier(c) and new_tok[0] == "name"):
        return True
    if statement == FOR:
        if depth > 0:
            return c not in "\n#"  # a subscript's or a tuple's items
        return c in "([,*" and not (c == "(" and tok[0] == "after")  # "for f(x) in" assigns to a call
    if statement == FROM:
        return False
    if c in "*(":
        return statement == IMPORTED and depth == 0 and tok == STRICT  # "from a import *", "from a import (b, c)"
    if c in ",)\n#":
        return True
    return c == ";" and depth == 0


# Number literals, part by part: after a leading "0" ("zero"), other digits ("integer"), a "." ("fraction"),
# an exponent's "e" and its sign, its digits ("exponent"), a base's letter ("base": 0x, 0o, 0b) and its
# digits ("based"), a "j" ("imaginary"), and ("_", part) after an underscore, which a digit must follow.
NUMBER_ENDS = ("zero", "integer", "fraction", "exponent", "based", "imaginary")
HEX_DIGITS = "0123456789abcdefABCDEF"


def _number(part, c: str):
    """The number literal's part after `c`, or None where `c` does not continue it."""
    if isinstance(part, tuple):  # after "_"
        following = part[1]
        if following in ("base", "based"):
            return "based" if c in HEX_DIGITS else None
        return following if c.isdigit() else None
    if part in ("base", "based"):
        if c in HEX_DIGITS:  # octal and binary digits are left to the model
            return "based"
        return ("_", part) if c == "_" else None
    if part == "imaginary":
        return None
    if part in ("exponent sign", "exponent digit"):
        if c in "+-" and part == "exponent sign":
            return "exponent digit"
        return "exponent" if c.isdigit() else None
    if c == "_":
        return ("_", part)
    if c.isdigit():
        if part == "zero":
            return "zero" if c == "0" else None  # "01": leading zeros
        return part
    if c in "jJ":
        return "imaginary"
    if part == "exponent":
        return None
    if c in "eE":
        return "exponent sign"
    if part == "zero" and c in "xXoObB":
        return "base"
    return "fraction" if c == "." and part != "fraction" else None


def _definition(mode: tuple, depth: int, tok: tuple, c: str, statement: str):
    """`def NAME(` and each parameter's start: names, "*", "**" and "/" only; after a default, defaults."""
    if tok == DEF_NAME:
        if c == " ":
            return (mode, depth, tok, COMPOUND)
        return (mode, depth, ("name", "def", None), COMPOUND) if is_identifier(c) and not c.isdigit() else None
    if tok == DEF_NAMED:
        return (mode, min(depth + 1, MAX_DEPTH), PARAMETER, PARAMETERS) if c == "(" else None
    if c in " \n#":
        return (mode, depth, tok, statement)
    if tok == PARAMETER_NAMED:  # a default, an annotation, or the next parameter
        if c in ",)" and statement == DEFAULTS:
            return None  # "def f(a=1, b)": after a default, every positional parameter has one
        if c == ",":
            return (mode, depth, PARAMETER, statement)
        if c == ")":
            return (mode, depth - 1, AFTER, RETURNS)
        if c == "=":  # its default: an operand follows, never a second "="
            return (mode, depth, STRICT, statement if statement == KEYWORD_ONLY else DEFAULTS)
        return (mode, depth, ("op", c), statement) if c == ":" else None
    if c == ")":
        return (mode, depth - 1, AFTER, RETURNS)
    if c in "*/":
        return (mode, depth, STAR, KEYWORD_ONLY if c == "*" else statement)  # keyword-only ones need no default
    if is_identifier(c) and not c.isdigit():
        return (mode, depth, ("name", "parameter", c if c in _KEYWORD_PREFIXES else None), statement)
    return None


# Long on purpose: a lexer table, one branch per state read top to bottom; split up, its transitions would scatter.
def _token(new_mode: tuple, depth: int, tok: tuple, statement: str, c: str):
    """(mode, depth, token state) after code character `c` at a token's boundary, or None."""
    if tok == DONE:
        if c in " \t\\":
            return (new_mode, depth, DONE)
        if c not in "\n;#":
            return None
        tok = AFTER
    operand_place = _operand_place(tok)
    after = tok[0] == "after"
    if c in " \t":
        if tok == DOT:
            return None
        if tok == RELATIVE:
            return (new_mode, depth, ("after", False, True))  # "from . import", "... or"
        return (new_mode, depth, ("after", tok[1], True) if after else tok)
    if c == "\n":
        if depth > 0:
            return (new_mode, depth, tok) if tok != DOT else None  # the next line starts with spaces, which a "." cannot take
        return (new_mode, 0, START) if tok in (START, OPTIONAL, STAR, RELATIVE) or after else None  # STAR: "import *"
    if c == "\\":
        return (new_mode, depth, tok)
    if c == "#":
        if (depth > 0 and tok != DOT) or tok in (START, OPTIONAL) or after:
            return (new_mode, depth, tok if depth > 0 else START)
        return None
    if c in QUOTES:
        return (new_mode, depth, STRING) if operand_place or (after and tok[1]) else None
    if c in OPENERS:
        if statement == RETURNS:
            return None  # "def f(a)(": the header goes on with ":" or "->"
        if operand_place or (after and c != "{"):
            return (new_mode, min(depth + 1, MAX_DEPTH), OPTIONAL)
        return None
    if c in CLOSERS:
        if depth > 0 and (after or tok in (OPTIONAL, STAR, RELATIVE)):
            return (new_mode, depth - 1, AFTER)
        return None
    if c == ",":
        if depth == 0 and statement in (CONDITION, RAISE):
            return None  # "if a, b:" tests a tuple, which is always true; "raise a, b" is Python 2
        if tok == STAR:
            return (new_mode, depth, OPTIONAL) if statement in (*PARAMETER_KINDS, LAMBDA) else None  # "def f(*, a)"
        return (new_mode, depth, OPTIONAL) if after or tok == RELATIVE else None
    if c == ";":
        return (new_mode, depth, START) if depth == 0 and after else None
    if c == ":":
        if after or tok == RELATIVE:
            return (new_mode, depth, ("op", ":"))
        return (new_mode, depth, ("op", ":")) if tok == OPTIONAL else None
    if c == ".":
        if after:
            return (new_mode, depth, DOT)
        return (new_mode, depth, RELATIVE) if operand_place or tok == RELATIVE else None  # ".5", "...", "from ..."
    if c.isdigit():
        if tok == RELATIVE:
            return (new_mode, depth, ("number", "fraction"))  # ".5"
        return (new_mode, depth, ("number", "zero" if c == "0" else "integer")) if operand_place else None
    if is_identifier(c):
        if tok == DOT:
            return (new_mode, depth, ("name", "attribute", None)) if not c.isdigit() else None
        if operand_place or (tok == RELATIVE and statement == FROM):  # "from .a import b"; not "x = .a"
            context = "statement" if tok == START else "operand"
            return (new_mode, depth, ("name", context, c if c in _OPERAND_PREFIXES else None))
        if after and tok[1] and tok[2] and c in _AFTER_STRING_PREFIXES:  # after a space: a keyword, or the next string's prefix
            return (new_mode, depth, ("name", "after string", c))
        if after and tok[2] and c in _BINARY_PREFIXES:
            return (new_mode, depth, ("name", "after", c))
        return None
    if c in OPERATOR_CHARS:
        if after:
            return (new_mode, depth, ("op", c)) if c != "~" else None
        if operand_place:
            if c in "-+~":
                return (new_mode, depth, STRICT)
            if c == "*":
                return (new_mode, depth, STAR)
            if c == "@" and tok == START:
                return (new_mode, depth, STRICT)  # a decorator
            if c == "=" and tok == OPTIONAL and depth == 0:
                return (new_mode, depth, ("op", c))  # "x, = pair"
        return None
    return None  # anything else cannot come in code


_DISTINCT_LETTERS = set("".join(KEYWORDS + BINARY_KEYWORDS + STRING_PREFIXES) + NUMBER_CHARS)


def tokens_char_class(c: str) -> str:
    """Characters this automaton cannot tell apart share a class: digits, and letters in no keyword."""
    if c.isascii() and c.isdigit():
        return "0" if c == "0" else "<digit>"  # a leading "0" takes no other digit
    if is_identifier(c) and c not in _DISTINCT_LETTERS:
        return "<letter>"
    return exact_char_class(c)


def tokens_step(state: tuple, c: str) -> tuple:
    following = tokens_advance(state, c)
    return state if following is None else following  # a forbidden character is never fed: any target will do


def tokens_forbids(state: tuple, c: str) -> bool:
    return tokens_advance(state, c) is None


def tokens_end(state: tuple) -> bool:
    return state == TOKENS_START  # a finished statement, outside any bracket, string or comment
