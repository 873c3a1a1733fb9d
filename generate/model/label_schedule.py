"""Which label a labelled network feeds with each character: a schedule carried per stream beside its states.

A stream's schedule is one row of three numbers: the label now, the label
to switch to, and how many steps remain before the switch. It rides with the
recurrent states as their last entry, so everything that carries states
(contexts, beams, a server's batch of many requests) carries each stream's
label with them, and a label can change partway through a compiled chunk.
Written against `ops` (`keras.ops` or `backend.numpy_ops`), so a run's
compiled loop and a bundle's NumPy loop advance it alike.
"""

from __future__ import annotations

import numpy as np

WIDTH = 3  # [label now, label after the switch, steps before the switch]


def schedule_rows(n: int, label: int = 0, then_label: int | None = None, after_steps: int = 0) -> np.ndarray:
    """(n, WIDTH): `label` for `after_steps` steps, then `then_label` (the same label for good where that is None)."""
    later = label if then_label is None else then_label
    steps = after_steps if then_label is not None else 0
    return np.tile(np.array([[label, later, steps]], np.float32), (n, 1))


def advance(schedule, ops):
    """(labels (N,) int32 to feed this step, the schedule for the next step)."""
    left = schedule[:, 2]
    labels = ops.cast(ops.where(left > 0, schedule[:, 0], schedule[:, 1]), "int32")
    return labels, ops.concatenate([schedule[:, :2], ops.maximum(left - 1.0, 0.0)[:, None]], axis=1)
