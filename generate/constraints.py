"""Constraints on sampling as finite automata that run inside the compiled loop.

A constraint that depends on what a stream has written so far (the key its
tune's header chose, the line of a poem it is on) is a deterministic finite
automaton over characters. Each stream carries one integer state per
automaton; feeding a character moves it along `transitions`, and `bias[state]`
is added to the logits of the next choice: 0 leaves a character alone, a
negative number discourages it, and -inf forbids it. Both are small tables,
so the whole thing is two gathers per step in `keras.ops`, on any backend,
with no Python per character and no rejection loops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError

FORBID = float("-inf")


@dataclass(frozen=True, eq=False)
class Automaton:
    """A character-level automaton; state `start` is where every stream begins."""

    name: str  # what it enforces, for logs and compile caching
    transitions: np.ndarray  # (S, V) int32: the state after feeding character v in state s
    bias: np.ndarray  # (S, V) float32: added to the next character's logits in state s
    start: int = 0
    settings: dict = field(default_factory=dict)  # what the sidecar records

    def __post_init__(self):
        states, vocab = self.bias.shape
        if self.transitions.shape != (states, vocab):
            raise ValueError(f"transitions: expected shape {(states, vocab)}, received {self.transitions.shape}")
        allowed = np.isfinite(self.bias).any(axis=1)
        if not allowed.all():
            raise ValueError(f"{self.name}: state {int(np.argmin(allowed))} forbids every character")

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.transitions.tobytes() + self.bias.tobytes() + bytes([self.start % 256]))
        return f"{self.name}:{digest.hexdigest()[:16]}"

    def run(self, ids: list[int], state: int | None = None) -> int:
        """The state after feeding `ids` from `state` (default: the start), in NumPy."""
        state = self.start if state is None else state
        for i in ids:
            state = int(self.transitions[state, i])
        return state


class _Builder:
    """Collects states by name and fills both tables; unnamed moves default to `otherwise`."""

    def __init__(self, chars: tuple[str, ...]):
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.names: dict[object, int] = {}
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []

    def state(self, name: object) -> int:
        if name not in self.names:
            self.names[name] = len(self.rows)
            self.rows.append((np.full(len(self.chars), -1, np.int64), np.zeros(len(self.chars), np.float32)))
        return self.names[name]

    def move(self, source: object, chars: str, target: object) -> None:
        """Feeding any of `chars` in `source` leads to `target`; characters outside the vocabulary are ignored."""
        row, target_id = self.rows[self.state(source)][0], self.state(target)
        for c in chars:
            if c in self.index:
                row[self.index[c]] = target_id

    def default(self, source: object, target: object) -> None:
        row, target_id = self.rows[self.state(source)][0], self.state(target)
        row[row < 0] = target_id

    def penalize(self, source: object, chars: str, amount: float) -> None:
        bias = self.rows[self.state(source)][1]
        for c in chars:
            if c in self.index:
                bias[self.index[c]] = -amount

    def allow_only(self, source: object, chars: str) -> None:
        bias = self.rows[self.state(source)][1]
        keep = np.array([c in chars for c in self.chars])
        bias[~keep] = FORBID

    def build(self, name: str, start: object, settings: dict) -> Automaton:
        transitions = np.stack([row for row, _ in self.rows]).astype(np.int32)
        if (transitions < 0).any():
            raise ValueError(f"{name}: some moves were left undefined")
        bias = np.stack([b for _, b in self.rows])
        return Automaton(name, transitions, bias, self.names[start], settings)


# ---------------------------------------------------------------- music keys

SHARPS_RANGE = range(-6, 6)  # key signatures as sharps (negative: flats), as music headers write them


def key_automaton(chars: tuple[str, ...], encoding: str, penalty: float, key: int | None = None) -> Automaton:
    """Keeps each piece's pitches in the key its own header states.

    A header is `M:<meter> K:<sharps>|` at the start of a piece (after a
    newline, or at the very start of sampling). The automaton reads the
    `K:` value as it is written, sampled or forced, and from the header's
    closing `|` until the next newline subtracts `penalty` from the logits of
    pitches outside that key signature (`inf` forbids them).

    Args:
        chars: the run's vocabulary, in id order.
        encoding: `melody` or `chorale`; it decides which characters are pitches.
        penalty: nats subtracted from out-of-key pitch logits; `float("inf")` forbids them.
        key: if given, every sampled header must state this key signature.

    Raises:
        UsageError: `key` outside -6..5 or not writable in this vocabulary, or a negative penalty.
    """
    from .music.keys import out_of_key_chars

    if key is not None and key not in SHARPS_RANGE:
        raise UsageError(f"--key: expected a key signature from -6 (six flats) to 5 (five sharps), received {key}")
    if penalty < 0:
        raise UsageError(f"--key-penalty: expected a number >= 0, received {penalty}")
    b = _Builder(chars)
    if key is not None and not set(f"K:{key}|") <= set(chars):
        raise UsageError(f"--key {key}: this run's vocabulary cannot write the header K:{key}| (its corpus never does)")
    digits = "0123456789"
    # Header states: "header" until 'K', then 'K:' then an optional '-' then one digit.
    for name in ("header", "K", "K:", "K:-"):
        b.default(name, "header")
        b.move(name, "\n", "header")
        b.move(name, "|", "body")
        b.move(name, "K", "K")  # the last 'K' before ':' counts, as in "KK:1"
    b.move("K", ":", "K:")
    b.move("K:", "-", "K:-")
    for d in digits:
        b.move("K:", d, ("keyed header", int(d)) if int(d) in SHARPS_RANGE else "header")
        b.move("K:-", d, ("keyed header", -int(d)) if -int(d) in SHARPS_RANGE else "header")
    if key is not None:
        b.allow_only("K:", "-" if key < 0 else str(key))
        if key < 0:
            b.allow_only("K:-", str(-key))
    for sharps in SHARPS_RANGE:
        b.default(("keyed header", sharps), ("keyed header", sharps))
        b.move(("keyed header", sharps), "\n", "header")
        b.move(("keyed header", sharps), "|", ("body", sharps))
        b.default(("body", sharps), ("body", sharps))
        b.move(("body", sharps), "\n", "header")
        b.penalize(("body", sharps), out_of_key_chars(encoding, sharps), penalty)
    b.default("body", "body")  # a header without a readable key: no constraint until the next piece
    b.move("body", "\n", "header")
    settings = {"key_penalty": penalty if np.isfinite(penalty) else "inf", "key": key}
    return b.build(f"key({encoding})", "header", settings)
