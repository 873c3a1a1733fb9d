"""Critics: samples judged as a reader of their kind would judge them, beside the same measures on the corpus.

One critic per kind of writing, in one registry (`CRITICS`): a new kind's
critic is a class and a line. `generate eval` (`critics.evaluate`) samples a
model, or reads files, and prints each measure for the samples beside the
same measure on the run's own corpus.
"""

from __future__ import annotations

from ..data.vocab import ENGLISH_MIN_LETTERS, latin_letters
from ..errors import UsageError
from .base import Critic, Measure
from .code import CodeCritic
from .english import EnglishVerseCritic
from .music import ChoraleCritic, MelodyCritic
from .text import TextCritic
from .verse import ChineseVerseCritic

# Keyed by what a run writes: a music run's encoding, Chinese verse, else its corpus's kind.
CRITICS: dict[str, type[Critic]] = {
    "melody": MelodyCritic,
    "chorale": ChoraleCritic,
    "chinese verse": ChineseVerseCritic,
    "english verse": EnglishVerseCritic,
    "code": CodeCritic,
    "text": TextCritic,
}


def critic_key(kind: str, encoding: str, chars: tuple[str, ...] = ()) -> str:
    if kind == "music":
        return encoding
    if kind == "text" and "，" in chars and any("\u4e00" <= c <= "\u9fff" for c in chars):
        return "chinese verse"
    if kind == "text" and latin_letters(chars) >= ENGLISH_MIN_LETTERS:
        return "english verse"
    return kind


def critic_for(kind: str, encoding: str = "", chars: tuple[str, ...] = ()) -> type[Critic]:
    """The critic class for a run of `kind` (and music `encoding`, or a vocabulary `chars` that writes verse).

    Raises:
        UsageError: no critic judges that kind yet.
    """
    key = critic_key(kind, encoding, chars)
    if key not in CRITICS:
        raise UsageError(f"generate eval: no critic judges {key!r} yet; expected a model that writes "
                         f"{' or '.join(sorted(CRITICS))}")
    return CRITICS[key]


__all__ = ["CRITICS", "Critic", "Measure", "critic_for", "critic_key"]
