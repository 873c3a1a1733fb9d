"""`SamplingConfig`: the resolved settings the sampling loop runs with.

Users never build one: `resolve.resolve_options` makes it from their
`SampleOptions`, having checked them, with every run-dependent default
filled in. Sidecars record it, so an output can be regenerated exactly.

Its fields are the settings resolved here (`ResolvedSettings`) and, added
from their declarations, every option declared to change how a character is
drawn (`draws=True`: temperature, top-k, top-p, greedy). A new logit filter
is therefore its class (`filters.py`) and its option's declaration.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from ..limits import Limit
from .options import SampleOptions, declarations


@dataclass(frozen=True)
class ResolvedSettings:
    """The settings `resolve.resolve_options` works out; `SamplingConfig` adds the drawing options to them."""

    length: int = 500  # characters to generate per sample, after the prime
    num_samples: int = 1  # streams generated together as one batch
    stop: tuple[str, ...] = ()  # a sample ends just before the first of these strings
    seed: int | None = None  # seeds the uniform draws; same seed, same text
    limit: Limit | None = None  # end at the nth of some characters: bars, notes, a poem's lines
    banned: tuple[int, ...] = ()  # token ids never sampled
    # Output starts after the first occurrence of this string in the stream. Sampling starts from a
    # zero hidden state that training rarely sees, so the first unit (tune, paragraph) is unreliable.
    warmup: str = ""
    min_chars: int = 0  # a sample that a stop string ends sooner is discarded and the stream goes on
    key_penalty: float = 0.0  # music: nats off out-of-key pitch logits; inf forbids them, 0 turns it off
    key: int | None = None  # music: every sampled header names this key signature (sharps; negative: flats)
    lines: int = 0  # a poem of this many lines, never empty ones; 0: free text
    acrostic: str = ""  # line i of the poem begins with character i
    rhyme: str = ""  # English verse: the rhyme scheme, a letter a line, repeated stanza by stanza (`english_verse`)
    meter: str = ""  # English verse: a meter of `prosody.METERS`, the syllables a line holds (within one)
    verse_lines: int = 0  # English verse: the poem's lines; 0 for anything else
    form: str = ""  # a Chinese form, COLUMNSxLINES such as 5x4: exact line lengths and punctuation
    regulated: bool = False  # with a regulated form: tones and rhymes by the Pingshui tables (sampling/regulated.py)
    syntax: str = ""  # "python": brackets, quotes and indentation as automata (sampling/python/); "": free
    beam: int = 0  # beam search with this many beams instead of sampling; 0: sample
    prime: str = ""  # text the samples continue; "" starts from the model's default
    oov: str = "error"  # prime characters outside the vocabulary: error, drop or unk
    label: str = ""  # a labelled model: the label every character is written with; "": <none>; "any": drawn per stream
    label_shares: tuple[tuple[str, float], ...] = ()  # with label "any": each label's share of the corpus's pieces
    then_label: str = ""  # a labelled model: the label written with after `label_after` sampled characters; "": no change
    label_after: int = 0  # sampled characters written with `label` before `then_label`
    label_strength: float = 2.0  # guidance: logits are none + strength * (label - none); 1 is the labelled model's own

    @property
    def form_shape(self) -> tuple[int, int] | None:
        """(characters per line, lines) of `form`, or None without one."""
        columns, _, lines = self.form.partition("x")
        return (int(columns), int(lines)) if self.form else None

    @property
    def poem_lines(self) -> int:
        """Lines of the constrained poem, or 0 when sampling is free."""
        return self.lines or (self.form_shape[1] if self.form_shape else 0) or len(self.acrostic)

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0


def _drawing_fields() -> list[tuple[str, object, dataclasses.Field]]:
    """(name, type, field with its default) of each option declared `draws=True`, in declaration order."""
    hints = typing.get_type_hints(SampleOptions)
    defaults = {f.name: f.default for f in dataclasses.fields(SampleOptions)}
    # A setting the run may record a default for (None in `SampleOptions`) is always concrete once resolved.
    return [(name, hints[name], dataclasses.field(default=declared.fallback if defaults[name] is None else defaults[name]))
            for name, declared in declarations().items() if declared.draws]


SamplingConfig = dataclasses.make_dataclass(
    "SamplingConfig", _drawing_fields(), bases=(ResolvedSettings,), frozen=True,
    namespace={"__doc__": "Resolved settings the loop runs with; `resolve.resolve_options` makes them from a user's `SampleOptions`.",
               "__module__": __name__})
