"""Sample filters: each decides whether one finished sample is kept, and says what it measured.

A filter sees a `Candidate` (the sampled text, and the text with its prime)
and returns whether it rejects it; `notes` lands in the sample's record. A
rejected sample is redrawn from a derived, recorded seed. A new filter is a
class here, a line in `build_filters`, and the option that turns it on.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..data.corpus_lines import copied_lines
from ..errors import OptionError
from ..sampling import novelty
from ..sampling.generator import is_valid
from ..sampling.options import SampleOptions
from ..sampling.resolve import RunFacts

DEDUPE_DEFAULT = 0.9  # `dedupe = true`: reject a sample at least this similar (difflib ratio) to an earlier one


@dataclass
class Candidate:
    text: str  # what was sampled
    full: str  # the prime and the sample: what must parse or decode
    notes: dict = field(default_factory=dict)  # what filters measured, for the record


class SampleFilter:
    name: str = ""  # the option that turns it on, as a job file names it
    goal: str = ""  # what a kept sample does, for the summary line

    def rejects(self, candidate: Candidate) -> bool:
        raise NotImplementedError


@dataclass
class MinLength(SampleFilter):
    minimum: int
    name = "min_length"

    @property
    def goal(self) -> str:
        return f"have at least {self.minimum} characters"

    def rejects(self, candidate: Candidate) -> bool:
        return len(candidate.text) < self.minimum


@dataclass
class ValidOnly(SampleFilter):
    facts: RunFacts
    name = "valid_only"

    @property
    def goal(self) -> str:
        return "parse as Python" if self.facts.kind == "code" else "decode cleanly"

    def rejects(self, candidate: Candidate) -> bool:
        return not is_valid(self.facts, candidate.full)


@dataclass
class CopyMeasure(SampleFilter):
    """The longest run copied from the training corpus: measured for every record, a filter with a maximum."""

    facts: RunFacts
    index: object  # novelty.CopyIndex
    maximum: int | None = None
    name = "max_copy"

    @property
    def goal(self) -> str:
        return f"copy at most {self.maximum} characters in a row"

    def rejects(self, candidate: Candidate) -> bool:
        if "longest_copy" not in candidate.notes:
            candidate.notes["longest_copy"] = novelty.longest_copy(self.facts.vocab, self.index, candidate.text)
        return self.maximum is not None and candidate.notes["longest_copy"] > self.maximum


@dataclass
class NewLines(SampleFilter):
    """Rejects a poem with a line of five or seven characters that its model's corpus has (`data.corpus_lines`),
    as Jiuge refuses copied lines. A prime's lines are the writer's own, and not judged."""

    hashes: object  # the corpus's line hashes, sorted (`RunFacts.corpus_lines`)
    name = "new_lines"
    goal = "copy no line of the corpus"

    def rejects(self, candidate: Candidate) -> bool:
        copied = copied_lines(candidate.text, self.hashes)
        candidate.notes["copied_lines"] = len(copied)
        return bool(copied)


@dataclass
class Dedupe(SampleFilter):
    """Rejects a sample identical, or at least `threshold` similar, to an earlier one (a job's outputs)."""

    threshold: float
    earlier: list[str] = field(default_factory=list)
    name = "dedupe"
    goal = "differ from earlier outputs"

    def rejects(self, candidate: Candidate) -> bool:
        return any(similar(candidate.full, other, self.threshold) for other in self.earlier)


def similar(a: str, b: str, threshold: float) -> bool:
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold


def copy_index(facts: RunFacts, config, options: SampleOptions, wanted: bool) -> tuple[object | None, str]:
    """(index, "") for --max-copy, or when records want the measure and the corpus is at hand; else (None, why not).

    Raises:
        OptionError: --max-copy, and the run's corpus is not at hand.
    """
    if options.max_copy is not None:
        try:
            return novelty.copy_index(config, facts.vocab), ""
        except novelty.CorpusUnavailable as exc:
            raise OptionError("max_copy", f"needs the run's training corpus: {exc}") from None
    return novelty.optional_copy_index(config, facts.vocab) if wanted else (None, "")


def build_filters(options: SampleOptions, facts: RunFacts, index=None, dedupe: float | bool = False,
                  earlier: list[str] | None = None) -> tuple[SampleFilter, ...]:
    """The filters `options` ask for, in the order they run (cheapest first); the copy measure comes with an index."""
    filters: list[SampleFilter] = []
    if options.min_length:
        filters.append(MinLength(options.min_length))
    if options.valid_only:
        filters.append(ValidOnly(facts))
    if options.new_lines and facts.corpus_lines is not None and (options.form or options.lines or options.acrostic):
        filters.append(NewLines(facts.corpus_lines))
    if index is not None:
        filters.append(CopyMeasure(facts, index, options.max_copy))
    threshold = DEDUPE_DEFAULT if dedupe is True else float(dedupe or 0)
    if threshold:
        filters.append(Dedupe(threshold, earlier if earlier is not None else []))
    return tuple(filters)


def first_rejection(filters: tuple[SampleFilter, ...], candidate: Candidate) -> str:
    """The name of the first filter that rejects `candidate`, or "" when every one keeps it."""
    return next((f.name for f in filters if f.rejects(candidate)), "")


def redraws(filters: tuple[SampleFilter, ...]) -> bool:
    """Whether any filter can reject a sample (the copy measure alone only measures)."""
    return any(not isinstance(f, CopyMeasure) or f.maximum is not None for f in filters)
