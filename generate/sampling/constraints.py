"""Constraints on sampling as finite automata that run inside the compiled loop.

A constraint that depends on what a stream has written so far (the key its
tune's header chose, the line of a poem it is on) is a deterministic finite
automaton over characters. Each stream carries one integer state per
automaton; feeding a character moves it along `transitions`, and `bias[state]`
(spread over the characters by `columns`) is added to the logits of the next
choice: 0 leaves a character alone, a negative number discourages it, and
-inf forbids it. Both are small tables, so the whole thing is a few gathers
per step in `keras.ops`, on any backend, with no Python per character and no
rejection loops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..data.vocab import han_chars
from ..music.keys import KEY_SIGNATURES, out_of_key_chars

FORBID = float("-inf")


@dataclass(frozen=True, eq=False)
class Automaton:
    """A character-level automaton; state `start` is where every stream begins.

    Its tables have a column per class of characters it cannot tell apart,
    and `columns` maps each character of the vocabulary to its class. The
    Python automata tell a fifth to a third of a code vocabulary's
    characters apart, so their tables are that much smaller than one column per
    character would make them. Without `columns`, each character is its own class.
    """

    name: str  # what it enforces, for logs and compile caching
    transitions: np.ndarray  # (S, C) int32: the state after feeding a character of class c in state s
    bias: np.ndarray  # (S, C) float32: added to the logits of class c's characters in state s
    start: int = 0
    settings: dict = field(default_factory=dict)  # what the sidecar records
    # (S,) int32: the fewest characters from each state to one where the text may end, or None where it
    # may end anywhere. The sampling loop uses it to end cleanly within its length (`loop.make_chunk_fn`).
    distance: np.ndarray | None = None
    columns: np.ndarray | None = None  # (V,) int32: each character's class, its column in both tables

    def __post_init__(self):
        states, classes = self.bias.shape
        if self.transitions.shape != (states, classes):
            raise ValueError(f"transitions: expected shape {(states, classes)}, received {self.transitions.shape}")
        allowed = np.isfinite(self.bias).any(axis=1)
        if not allowed.all():
            raise ValueError(f"{self.name}: state {int(np.argmin(allowed))} forbids every character")
        if self.distance is not None and self.distance.shape != (states,):
            raise ValueError(f"distance: expected shape {(states,)}, received {self.distance.shape}")
        if self.columns is not None and (self.columns.ndim != 1 or not np.all((0 <= self.columns) & (self.columns < classes))):
            raise ValueError(f"columns: expected one class in [0, {classes}) per character, received {self.columns!r}")

    @property
    def fingerprint(self) -> str:
        ending = b"" if self.distance is None else self.distance.tobytes()
        columns = b"" if self.columns is None else self.columns.tobytes()
        digest = hashlib.sha256(self.transitions.tobytes() + self.bias.tobytes() + bytes([self.start % 256]) + ending
                                + columns)
        return f"{self.name}:{digest.hexdigest()[:16]}"

    def char_bias(self, state: int) -> np.ndarray:
        """(V,) what state `state` adds to each character's logit."""
        row = self.bias[state]
        return row if self.columns is None else row[self.columns]

    def next_state(self, state: int, char_id: int) -> int:
        return int(self.transitions[state, char_id if self.columns is None else self.columns[char_id]])

    def tensors(self, vocab_size: int, ops) -> AutomatonTensors:
        """Its tables as backend tensors, for the compiled loops."""
        return AutomatonTensors(self, vocab_size, ops)

    def run(self, ids: list[int], state: int | None = None) -> int:
        """The state after feeding `ids` from `state` (default: the start), in NumPy."""
        state = self.start if state is None else state
        for i in ids:
            state = self.next_state(state, i)
        return state


class AutomatonTensors:
    """An automaton's tables as backend tensors, with the lookups the compiled loops make in them."""

    def __init__(self, automaton: Automaton, vocab_size: int, ops):
        self.ops = ops
        self.classes = automaton.transitions.shape[1]
        self.moves = ops.convert_to_tensor(automaton.transitions.reshape(-1))
        self.bias = ops.convert_to_tensor(automaton.bias)
        columns = np.arange(vocab_size, dtype=np.int32) if automaton.columns is None else automaton.columns
        self.columns = ops.convert_to_tensor(columns.astype(np.int32))
        self.per_character = automaton.columns is None  # the tables already have a column per character

    def step(self, states, tokens):
        """(N,) states after feeding each stream its token."""
        ops = self.ops
        if self.per_character:
            return ops.take(self.moves, states * self.classes + tokens, axis=0)
        return ops.take(self.moves, states * self.classes + ops.take(self.columns, tokens, axis=0), axis=0)

    def char_bias(self, states):
        """(N, V) what each stream's state adds to every character's logit."""
        ops = self.ops
        rows = ops.take(self.bias, states, axis=0)
        return rows if self.per_character else ops.take(rows, self.columns, axis=1)

    def next_states(self, states):
        """(N, V) the state each stream would reach on every character."""
        ops = self.ops
        return ops.take(self.moves, states[:, None] * self.classes + self.columns[None, :], axis=0)


def stream_states(start, n: int) -> np.ndarray:
    """`n` streams' copies of one state: (n,) for an automaton's, (n, K) for a tracker's vector."""
    start = np.asarray(start, np.int32)
    return np.tile(start, (n, 1)) if start.ndim else np.full((n,), start, np.int32)


def stream_state(states: np.ndarray, row: int) -> int | tuple[int, ...]:
    """Stream `row`'s state, as `stream_states` takes it back."""
    state = np.asarray(states)[row]
    return tuple(int(x) for x in state) if state.ndim else int(state)


UNREACHABLE = np.iinfo(np.int32).max // 2  # the distance of a state from which no allowed path ends


def distances_to_end(transitions: np.ndarray, bias: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The fewest allowed characters from each state to one in `ends`, by breadth-first search backwards.

    Args:
        transitions: (S, C) next states, by character or class of characters.
        bias: (S, C) biases; a -inf entry is a move the automaton forbids.
        ends: (S,) bool, the states where the text may end.

    Returns:
        (S,) int32 distances; UNREACHABLE where no allowed path reaches an end.
    """
    states = transitions.shape[0]
    sources, columns = np.nonzero(np.isfinite(bias))
    # Each (target, source) pair once, as one integer, sorted by target: the sources of a state are a slice.
    pairs = np.unique(transitions[sources, columns].astype(np.int64) * states + sources)
    edge_sources = pairs % states
    starts = np.searchsorted(pairs // states, np.arange(states + 1))
    distance = np.full(states, UNREACHABLE, np.int32)
    frontier = np.flatnonzero(ends)
    distance[frontier] = 0
    steps = 0
    while frontier.size:
        steps += 1
        counts = starts[frontier + 1] - starts[frontier]
        # The concatenated slices starts[t]:starts[t + 1] of every frontier state t, without a Python loop.
        positions = np.arange(counts.sum()) + np.repeat(starts[frontier] - np.cumsum(counts) + counts, counts)
        previous = edge_sources[positions]
        previous = np.unique(previous[distance[previous] == UNREACHABLE])
        distance[previous] = steps
        frontier = previous
    return distance


class AutomatonBuilder:
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
        key: if given, every sampled header must state this key signature
            (one the vocabulary can write: `resolve.resolve_options` checks).
    """
    b = AutomatonBuilder(chars)
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
        b.move("K:", d, ("keyed header", int(d)) if int(d) in KEY_SIGNATURES else "header")
        b.move("K:-", d, ("keyed header", -int(d)) if -int(d) in KEY_SIGNATURES else "header")
    if key is not None:
        b.allow_only("K:", "-" if key < 0 else str(key))
        if key < 0:
            b.allow_only("K:-", str(-key))
    for sharps in KEY_SIGNATURES:
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


# ---------------------------------------------------------------- poems


def _boundary_moves(boundary: str, matched: int, char: str) -> int:
    """How much of `boundary` is matched after `char`, given `matched` characters of it before (KMP)."""
    text = boundary[:matched] + char
    return next(k for k in range(min(len(boundary), len(text)), -1, -1) if text.endswith(boundary[:k]))


def poem_automaton(chars: tuple[str, ...], lines: int, acrostic: str = "", columns: int = 0,
                   boundary: str = "", skip_first: bool = False) -> Automaton:
    """Makes every stream write a poem of `lines` lines, line i starting with `acrostic[i]`.

    With `columns` (a Chinese form such as 5x4), each line is exactly
    `columns` Han characters, then `，` on odd lines and `。` on even ones,
    then a newline. Without it, lines are simply never empty. Sampling ends
    at the last line's newline (the caller's limit); nothing is resampled.

    Args:
        chars: the run's vocabulary, in id order.
        lines: how many lines the poem has.
        acrostic: the first character of each line; empty for none.
        columns: characters per line for a Chinese form; 0 for free lines.
        boundary: the poem starts after this string (the warm-up's), or at once when empty.
        skip_first: the first character fed is a default prime, not part of the text.

    Every character the poem needs must be in `chars` (`resolve.resolve_options` checks).
    """
    han = han_chars(chars)
    b = AutomatonBuilder(chars)
    first_line = ("line", 0, 0)
    start: object = first_line
    if boundary:
        for matched in range(len(boundary)):
            for c in set(chars):
                after = _boundary_moves(boundary, matched, c)
                b.move(("warm", matched), c, first_line if after == len(boundary) else ("warm", after))
        start = ("warm", 0)
    if skip_first:
        b.default("skip", start)
        start = "skip"
    done = "done"
    for i in range(lines):
        next_line = ("line", i + 1, 0) if i + 1 < lines else done
        if columns:
            for col in range(columns):
                b.default(("line", i, col), ("line", i, col + 1))
                b.allow_only(("line", i, col), acrostic[i] if col == 0 and acrostic else han)
            b.default(("line", i, columns), ("line", i, columns + 1))
            b.allow_only(("line", i, columns), "，" if i % 2 == 0 else "。")
            b.default(("line", i, columns + 1), next_line)
            b.allow_only(("line", i, columns + 1), "\n")
        else:
            b.default(("line", i, 0), ("line", i, 1))
            if acrostic:
                b.allow_only(("line", i, 0), acrostic[i])
            else:
                b.allow_only(("line", i, 0), "".join(c for c in chars if c != "\n"))
            b.default(("line", i, 1), ("line", i, 1))
            b.move(("line", i, 1), "\n", next_line)
    b.default(done, done)
    if columns:
        b.allow_only(done, "\n")  # a blank line closes the poem, as in the corpus
    settings = {"lines": lines, "acrostic": acrostic, "columns": columns}
    return b.build("poem", start, settings)


def explore(name: str, chars: tuple[str, ...], start, step, forbids, settings: dict, ends=None,
            char_class=lambda c: c, penalty=None) -> Automaton:
    """Tabulates the states reachable from `start` under `step` into an `Automaton`.

    `step(state, c)` and `forbids(state, c)` must depend on `c` only through `char_class`. Moves into
    states that could go no further are forbidden too (`_without_dead_ends`). With `ends(state)`, whether
    the text may end in a state, the automaton also knows how far each state is from an end. With
    `penalty(state, c)`, nats taken off allowed characters' logits: discouraged, not forbidden.
    """
    classes = sorted({char_class(c) for c in chars})
    representative = {cls: next(c for c in chars if char_class(c) == cls) for cls in classes}
    column = np.array([classes.index(char_class(c)) for c in chars])
    reps = [representative[cls] for cls in classes]
    no_penalties = [0.0] * len(reps)
    index, order = {start: 0}, [start]
    moves, allowed, penalties = [], [], []
    # Millions of (state, class) pairs pass through here: the loop keeps its lookups local.
    for state in order:  # grows while it is read: each new state is visited in turn
        row = []
        for c in reps:
            target = step(state, c)
            found = index.get(target)
            if found is None:
                found = index[target] = len(order)
                order.append(target)
            row.append(found)
        moves.append(row)
        allowed.append([not forbids(state, c) for c in reps])
        penalties.append([penalty(state, c) for c in reps] if penalty else no_penalties)
    moves_by_class, allowed = np.asarray(moves, np.int32), _without_dead_ends(np.asarray(moves), np.asarray(allowed, bool))
    bias = np.where(allowed, -np.asarray(penalties, np.float32), np.float32(FORBID)).astype(np.float32)
    distance = None if ends is None else distances_to_end(moves_by_class, bias, np.array([ends(state) for state in order]))
    return Automaton(name, moves_by_class, bias, 0, settings, distance, column.astype(np.int32))




def _without_dead_ends(moves: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Forbids every move into a state that allows nothing, until no such move is left.

    "x = 1 for" at depth 0 can continue no way at all ("for" needs a bracket
    around it), so the "r" that would spell it is forbidden, and so on back.
    A state with nothing left even so (one that wants a character the
    vocabulary lacks, such as "-" for "->", or one only a forced prime
    reaches) forbids nothing, so sampling never stalls.

    Args:
        moves: (S, C) the state after each character class.
        allowed: (S, C) whether each move is allowed.
    """
    allowed = allowed.copy()
    while True:
        dead = ~allowed.any(axis=1)
        into_dead = allowed & dead[moves]
        if not into_dead.any():
            break
        allowed &= ~into_dead
    allowed[~allowed.any(axis=1)] = True
    return allowed
