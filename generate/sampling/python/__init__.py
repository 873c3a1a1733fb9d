"""Python as automata: brackets, quotes, layout, tokens and blocks kept valid while code is sampled.

A plug-in of the sampler: `python_automata(chars)` builds (and caches) the
tables for a run's vocabulary; the generic table builder they use is
`constraints.explore`. `generator.SYNTAX_AUTOMATA` names it `python`.
"""

from .automata import python_automata

__all__ = ["python_automata"]
