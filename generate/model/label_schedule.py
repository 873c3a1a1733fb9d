"""What a labelled network feeds with each character: a label schedule per stream, and guidance by it.

A stream's schedule is one row of four numbers: the label now, the label to
switch to, how many steps remain before the switch, and the label's
strength. It rides with the recurrent states as their last entry, so
everything that carries states (contexts, beams, a server's batch of many
requests) carries each stream's label with them, and a label can change
partway through a compiled chunk.

Strength is classifier-free guidance (Ho and Salimans 2022; for language
models, Sanchez et al. 2023): every stream is stepped twice, with its label
and with `<none>` (which label dropout trained the same model for), and the
logits are `none + strength * (label - none)`. At 1 that is the labelled
model's own distribution; above 1 the label steers harder. The states of
both branches ride along, so a labelled network's states are its layers'
states twice, then the schedule.

Written against `ops` (`keras.ops` or `backend.numpy_ops`), so a run's
compiled loop and a bundle's NumPy loop step alike.
"""

from __future__ import annotations

import numpy as np

WIDTH = 4  # [label now, label after the switch, steps before the switch, strength]


def schedule_rows(n: int, label: int = 0, then_label: int | None = None, after_steps: int = 0,
                  strength: float = 1.0) -> np.ndarray:
    """(n, WIDTH): `label` for `after_steps` steps, then `then_label` (the same label for good where that is None)."""
    later = label if then_label is None else then_label
    steps = after_steps if then_label is not None else 0
    return np.tile(np.array([[label, later, steps, strength]], np.float32), (n, 1))


_DRAW_TAG = 0x1abe1


def drawn_labels(seed: int, n: int, shares: tuple[tuple[str, float], ...]) -> list[str]:
    """The labels `n` streams draw under `--label any`: each one in proportion to its share of the corpus.

    Drawn from the seed alone, one uniform per stream in order, so stream i draws the same label whatever
    follows it in the batch, and a sample's record can name the label it drew.
    """
    names = [name for name, _ in shares]
    weights = np.array([share for _, share in shares], np.float64)
    uniforms = np.random.default_rng([seed, _DRAW_TAG]).random(n)
    picks = np.searchsorted(np.cumsum(weights / weights.sum()), uniforms, side="right")
    return [names[min(i, len(names) - 1)] for i in picks]


def fixed_labels(labels: np.ndarray) -> np.ndarray:
    """(N, WIDTH): each stream's own label for good, at strength 1 (teacher-forced scoring, self-checks)."""
    labels = np.asarray(labels, np.float32)
    return np.stack([labels, labels, np.zeros_like(labels), np.ones_like(labels)], axis=1)


def guided_initial_states(branch_states: list) -> list:
    """A labelled network's zero states: one branch's states for the label, the same for `<none>`, and the schedule."""
    batch = len(branch_states[0])
    return [*branch_states, *(np.array(s) for s in branch_states), schedule_rows(batch)]


def guided_step(core, tokens, states, ops, guided: bool = True):
    """One step of a labelled network: `core(tokens, labels, states)` on both branches at once (2N rows).

    Args:
        core: steps plain rows: ids (M,), label ids (M,) and a branch's states -> logits (M, V) and new states.
        states: the label branch's states, the `<none>` branch's, then the schedule (`guided_initial_states`).
        guided: False steps the label branch alone and copies its states into the other: what a draw
            without guidance takes (no label, or strength 1; `needs_guidance`), at half the work.

    Returns:
        The logits (N, V) and the new states in the same layout.
    """
    schedule = states[-1]
    k = (len(states) - 1) // 2
    left = schedule[:, 2]
    labels = ops.cast(ops.where(left > 0, schedule[:, 0], schedule[:, 1]), "int32")
    strength = schedule[:, 3:4]
    advanced = ops.concatenate([schedule[:, :2], ops.maximum(left - 1.0, 0.0)[:, None], strength], axis=1)
    if not guided:
        logits, new = core(tokens, labels, states[:k])
        return logits, [*new, *new, advanced]
    n = ops.shape(tokens)[0]
    both = [ops.concatenate([a, b], axis=0) for a, b in zip(states[:k], states[k:2 * k])]
    logits, new = core(ops.concatenate([tokens, tokens], axis=0), ops.concatenate([labels, labels * 0], axis=0), both)
    labelled, unlabelled = logits[:n], logits[n:]
    guided_logits = unlabelled + strength * (labelled - unlabelled)
    return guided_logits, [s[:n] for s in new] + [s[n:] for s in new] + [advanced]


def needs_guidance(label: str, then_label: str, strength: float) -> bool:
    """Whether a draw's streams step both branches: only a label (now or later) at a strength other than 1 does."""
    return bool(label or then_label) and strength != 1.0
