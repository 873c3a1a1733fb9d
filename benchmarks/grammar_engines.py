"""Can a grammar-constrained decoding engine keep sampled Python valid? Tries each on Python's grammar.

    pip install llguidance xgrammar lark   # not dependencies of generate: only this check needs them
    python benchmarks/grammar_engines.py

Engines that build token masks from a grammar (llguidance, XGrammar, and
outlines, which hands context-free grammars to llguidance) take a
context-free grammar. Python's is not one: its blocks are INDENT and DEDENT
tokens that a lexer makes by counting spaces against a stack (Lark's
`python.lark` declares them with `%declare _INDENT _DEDENT` and leaves them
to Python code, its `PythonIndenter`). This script gives each engine Lark's
own Python grammar, over the shipped `python` model's characters as tokens,
and prints what it says; then it times one mask per character on the part
of Python an engine can hold (brackets and strings), beside the project's
automata stepping the same text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEXT = "def merge(left, right):\n    out = [x for x in (left + right) if x]\n    return sorted(out, key=len)\n"


class CharTokenizer:
    """The model's characters as an engine's tokens, with an end token after them."""

    def __init__(self, chars: list[str]):
        self.tokens = [c.encode("utf-8") for c in chars] + [b"<eos>"]
        self.eos_token_id, self.bos_token_id, self.special_token_ids = len(chars), None, [len(chars)]
        self.index = {c: i for i, c in enumerate(chars)}

    def __call__(self, text):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        return [self.index[c] for c in text if c in self.index]


def main() -> None:
    vocab = json.loads((REPO / "checkpoints" / "python" / "vocab.json").read_text(encoding="utf-8"))
    chars = vocab["chars"] if isinstance(vocab, dict) else vocab
    try:
        import lark
        import llguidance
    except ImportError:
        print("llguidance and lark are not installed: pip install llguidance xgrammar lark")
        return
    grammar = (Path(lark.__file__).parent / "grammars" / "python.lark").read_text(encoding="utf-8")
    tokenizer = llguidance.LLTokenizer(llguidance.TokenizerWrapper(CharTokenizer(chars)))
    print(f"llguidance {llguidance.get_version() if hasattr(llguidance, 'get_version') else ''}: lark {lark.__version__} python.lark:")
    try:
        ok = llguidance.LLMatcher.validate_grammar(llguidance.grammar_from("lark", grammar), tokenizer)
        print("  validates:", str(ok).splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - any refusal is the finding
        print("  refused:", str(exc).splitlines()[0])
    brackets = r'''
start: line*
line: item* "\n"
item: /[^\n()\[\]{}"']+/ | "(" inner* ")" | "[" inner* "]" | "{" inner* "}" | STRING
inner: /[^()\[\]{}"']+/ | "(" inner* ")" | "[" inner* "]" | "{" inner* "}" | STRING | "\n"
STRING: /"[^"\n]*"/ | /'[^'\n]*'/
'''
    matcher = llguidance.LLMatcher(tokenizer, llguidance.grammar_from("lark", brackets))
    ids = CharTokenizer(chars)(TEXT)
    started = time.perf_counter()
    for token in ids:
        matcher.compute_logit_bias()
        matcher.consume_token(token)
    per_char = (time.perf_counter() - started) / len(ids)
    print(f"  brackets and strings only: {per_char * 1e6:.0f} us per character for one stream's mask"
          f" (error: {matcher.get_error() or 'none'})")
    try:
        from importlib.metadata import version

        import xgrammar

        print(f"xgrammar {version('xgrammar')} ({xgrammar.__name__}): takes EBNF (GBNF), context-free; "
              "no form of it holds INDENT/DEDENT")
    except ImportError:
        print("xgrammar is not installed")

    import numpy as np

    from generate.model.backend import numpy_ops
    from generate.sampling.python import python_automata

    automata = python_automata(tuple(chars))
    tables = [a.tensors(len(chars), numpy_ops) for a in automata]
    states = [np.asarray([a.start] * 64, np.int32) for a in automata]
    index = {c: i for i, c in enumerate(chars)}
    started = time.perf_counter()
    for c in TEXT:
        token = np.full((64,), index[c], np.int32)
        states = [t.step(s, token) for t, s in zip(tables, states)]
        for t, s in zip(tables, states):
            t.char_bias(s)
    per_char = (time.perf_counter() - started) / len(TEXT)
    print(f"the project's four Python automata (layout included), NumPy: {per_char * 1e6:.0f} us per character "
          "for 64 streams at once")


if __name__ == "__main__":
    main()
