"""Noticing a run that is not learning: its loss still at the corpus's unigram entropy.

The unigram entropy is what a model scores by predicting each character's
frequency and nothing else: a run whose loss sits there has learned no
context at all, however long it trains. The trainer asks this watch after
every step and every validation, and says so on stderr once, with what to try.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..data.vocab import unigram_entropy

CHECK_AFTER_STEPS = 300  # the training loss is judged once, at this global step
RECENT_STEPS = 50  # on the mean of this many latest steps
FIRST_JUDGED_EPOCH = 2  # validation losses are judged from this epoch on: one epoch of a tiny corpus is a few steps
MARGIN_NATS = 0.02  # a loss above the unigram entropy less this is not learning


class LearningWatch:
    """Judges a run's losses against its training split's unigram entropy.

    Args:
        train_ids: the training split's ids (memory-mapped; read once, when first needed).
        vocab_size: the vocabulary's size.
        learning_rate: the run's rate, for the advice.
    """

    def __init__(self, train_ids, vocab_size: int, learning_rate: float):
        self.train_ids, self.vocab_size, self.learning_rate = train_ids, vocab_size, learning_rate
        self.recent: deque[float] = deque(maxlen=RECENT_STEPS)
        self.warned = False
        self._entropy: float | None = None

    @property
    def entropy(self) -> float:
        if self._entropy is None:
            self._entropy = unigram_entropy(self.train_ids, self.vocab_size)
        return self._entropy

    def after_step(self, global_step: int, loss: float) -> str | None:
        """A warning the first time the recent training loss is judged and found stuck, else None."""
        self.recent.append(loss)
        if self.warned or global_step != CHECK_AFTER_STEPS:
            return None
        return self._judge(float(np.mean(self.recent)), f"after {global_step} steps the training loss")

    def after_validation(self, val_loss: float | None, epoch: int) -> str | None:
        if self.warned or val_loss is None or epoch < FIRST_JUDGED_EPOCH:
            return None
        return self._judge(val_loss, f"after epoch {epoch} the validation loss")

    def _judge(self, loss: float, what: str) -> str | None:
        if loss <= self.entropy - MARGIN_NATS:
            return None
        self.warned = True
        return (f"not learning: {what} ({loss:.3f} nats) is still at the corpus's unigram entropy ({self.entropy:.3f} nats), "
                f"the score of predicting character frequencies alone; stop it and try a lower --learning-rate "
                f"(e.g. {self.learning_rate / 4:g}), or fewer --layers")
