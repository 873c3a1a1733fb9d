"""The sampling engine: N streams decoded together in one compiled loop.

The trained Keras layers are read into a fused single-step network
(`StepNetwork`): the embedding is folded into the first layer's input
projection, LSTM gates are reordered so one sigmoid covers three of them,
and deeper layers multiply `[input, state]` by one stacked matrix. A chunk of
steps runs inside one compiled loop (`compiled.compile_loop`), so Python is
entered once per chunk, never per character, and `model.predict` is never
called. All math is `keras.ops`, so every backend runs it.

Randomness comes from NumPy: one uniform number per stream and step, drawn in
order, is turned into a character by inverse-CDF sampling. Output therefore
depends only on the seed and settings, never on how steps are chunked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import ModelConfig
from .constraints import Automaton
from .errors import UsageError
from .model import import_keras, recurrent_layer_name

log = logging.getLogger(__name__)

CHUNK_STEPS = 256  # steps per compiled call; the buffer size, fixed so the loop traces once
SPLIT_COLUMNS = 512  # per-step weight matrices at least this wide run as two half-width products...
SPLIT_MIN_STREAMS = 16  # ...when at least this many streams are sampled together
WARMUP_MAX_CHARS = 8000  # a warm-up that finds no boundary in this many characters starts output anyway (a chorale line runs to ~6000)


@dataclass
class SamplingConfig:
    length: int = 500  # characters to generate per sample, after the prime
    temperature: float = 1.0  # divides the logits; lower is more conservative
    top_k: int = 0  # keep only the k most likely characters; 0 disables
    top_p: float = 1.0  # keep the smallest set of characters holding this probability mass
    greedy: bool = False  # always take the most likely character (also temperature 0)
    num_samples: int = 1  # streams generated together as one batch
    stop: tuple[str, ...] = ()  # a sample ends just before the first of these strings
    seed: int | None = None  # seeds the uniform draws; same seed, same text
    # (characters, n, after, start): end at the nth of the characters, just after or before it,
    # counting only past the first `start` character when `start` is not empty (a music header).
    limit: tuple[str, int, bool, str] | None = None
    banned: tuple[int, ...] = ()  # token ids never sampled, e.g. pitches outside a key
    # Output starts after the first occurrence of this string in the stream. Sampling starts from a
    # zero hidden state that training rarely sees, so the first unit (tune, paragraph) is unreliable.
    warmup: str = ""
    min_chars: int = 0  # a sample that a stop string ends sooner is discarded and the stream goes on
    # Music: nats taken off the logits of pitches outside the key that the current piece's header
    # names; inf forbids them, 0 turns it off, None means the run's default (`generation.py`).
    key_penalty: float | None = None
    key: int | None = None  # music: every sampled header names this key signature (sharps; negative: flats)
    lines: int = 0  # a poem of this many lines, never empty ones; 0: free text
    acrostic: str = ""  # line i of the poem begins with character i
    form: str = ""  # a Chinese form, COLUMNSxLINES such as 5x4: exact line lengths and punctuation

    def validate(self, vocab_size: int | None = None) -> None:
        """Raises UsageError for a bad setting; top-k is bounded only once vocab_size is known."""
        top_k_max = vocab_size if vocab_size is not None else self.top_k
        checks = (
            (self.length >= 1, "length", "an integer >= 1", self.length),
            (self.temperature >= 0, "temperature", "a number >= 0", self.temperature),
            (0 <= self.top_k <= top_k_max, "top-k", f"an integer in [0, {vocab_size}] (the vocab size)", self.top_k),
            (0 < self.top_p <= 1, "top-p", "a number in (0, 1]", self.top_p),
            (self.num_samples >= 1, "num-samples", "an integer >= 1", self.num_samples),
            (all(self.stop), "stop", "non-empty strings", self.stop),
            (self.key_penalty is None or self.key_penalty >= 0, "key-penalty", "a number >= 0", self.key_penalty),
            (self.key is None or -6 <= self.key <= 5, "key", "a key signature from -6 (six flats) to 5 (five sharps)", self.key),
            (0 <= self.lines <= 1000, "lines", "an integer in [0, 1000]", self.lines),
            (not self.form or self.form_shape is not None, "form", "COLUMNSxLINES, e.g. 5x4 or 7x8", self.form),
        )
        for ok, option, expected, received in checks:
            if not ok:
                raise UsageError(f"--{option}: expected {expected}, received {received!r}")
        lines = self.poem_lines
        for option, count in (("lines", self.lines), ("form", self.form_shape[1] if self.form_shape else 0)):
            if count and self.acrostic and count != len(self.acrostic):
                raise UsageError(f"--acrostic {self.acrostic!r}: expected {count} characters to match --{option}, "
                                 f"received {len(self.acrostic)}")
        if self.lines and self.form_shape and self.lines != lines:
            raise UsageError(f"--lines {self.lines}: expected {lines} to match --form {self.form}")

    @property
    def form_shape(self) -> tuple[int, int] | None:
        """(characters per line, lines) of `form`, or None if it is not COLUMNSxLINES."""
        match = re.fullmatch(r"([1-9][0-9]?)x([1-9][0-9]?)", self.form)
        return (int(match.group(1)), int(match.group(2))) if match else None

    @property
    def poem_lines(self) -> int:
        """Lines of the constrained poem, or 0 when sampling is free."""
        return self.lines or (self.form_shape[1] if self.form_shape else 0) or len(self.acrostic)

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0


# ---------------------------------------------------------------- logit filters
# Each filter maps logits (N, V) to logits, masking with -inf; they chain in
# order, as in whisper's decoding. Later constraints (acrostics, forms, keys)
# are more filters.


class LogitFilter:
    def apply(self, logits):
        raise NotImplementedError


@dataclass
class TokenMask(LogitFilter):
    banned: tuple[int, ...]  # ids that may never be sampled

    def apply(self, logits):
        ops = import_keras().ops
        allowed = np.ones(logits.shape[-1], dtype=bool)
        allowed[list(self.banned)] = False
        return ops.where(ops.convert_to_tensor(allowed)[None, :], logits, float("-inf"))


@dataclass
class Temperature(LogitFilter):
    temperature: float

    def apply(self, logits):
        return logits / self.temperature


@dataclass
class TopK(LogitFilter):
    k: int

    def apply(self, logits):
        ops = import_keras().ops
        kth_largest = ops.top_k(logits, self.k, sorted=True)[0][:, -1:]
        return ops.where(logits < kth_largest, float("-inf"), logits)


@dataclass
class TopP(LogitFilter):
    p: float

    def apply(self, logits):
        ops = import_keras().ops
        descending = ops.flip(ops.sort(logits, axis=-1), axis=-1)
        probs = ops.softmax(descending, axis=-1)
        mass_before = ops.cumsum(probs, axis=-1) - probs
        # The most likely character always has mass_before == 0 < p, so one survives.
        threshold = ops.min(ops.where(mass_before < self.p, descending, float("inf")), axis=-1, keepdims=True)
        return ops.where(logits < threshold, float("-inf"), logits)


def build_filters(cfg: SamplingConfig) -> list[LogitFilter]:
    filters: list[LogitFilter] = []
    if cfg.banned:
        filters.append(TokenMask(tuple(sorted(cfg.banned))))
    if not cfg.is_greedy and cfg.temperature != 1.0:
        filters.append(Temperature(cfg.temperature))
    if cfg.top_k:
        filters.append(TopK(cfg.top_k))
    if cfg.top_p < 1.0 and not cfg.is_greedy:
        filters.append(TopP(cfg.top_p))
    return filters


# ---------------------------------------------------------------- fused step network


@dataclass
class StepNetwork:
    """The trained network as plain arrays, arranged for single-step decoding."""

    cell: str
    units: int
    first_table: np.ndarray  # (V, G*H): embedding @ W_in + input bias of layer 0
    input_kernels: list[np.ndarray]  # layers >= 1: W_in, stacked over W_rec for LSTM/RNN
    recurrent_kernels: list[np.ndarray]  # layer 0 always; layers >= 1 for GRU only
    biases: list[np.ndarray]  # layers >= 1 input biases (layer 0's is in first_table)
    recurrent_biases: list[np.ndarray]  # GRU only: one per layer
    residual: list[bool]  # whether layer i adds its input to its output
    out_kernel: np.ndarray  # (H, V)
    out_bias: np.ndarray  # (V,)
    embedding: np.ndarray | None = None  # (V, E), kept only when layer 0 is residual
    tensors: dict = field(default_factory=dict)

    @classmethod
    def from_model(cls, model, cfg: ModelConfig) -> "StepNetwork":
        """Reads the weights of any model made by `model.build_model`."""
        embedding = np.asarray(model.get_layer("embedding").get_weights()[0], dtype=np.float32)
        net = cls(cfg.cell, cfg.units, None, [], [], [], [], [], None, None)  # type: ignore[arg-type]
        width = cfg.embedding_dim
        for i in range(cfg.layers):
            kernel, recurrent, bias = (np.asarray(w, np.float32) for w in model.get_layer(recurrent_layer_name(cfg, i)).get_weights())
            if cfg.cell == "lstm":
                kernel, recurrent, bias = (_lstm_gate_order(w, cfg.units) for w in (kernel, recurrent, bias))
            input_bias = bias[0] if cfg.cell == "gru" else bias
            if cfg.cell == "gru":
                net.recurrent_biases.append(bias[1])
            if i == 0:
                net.first_table = embedding @ kernel + input_bias
                net.recurrent_kernels.append(recurrent)
            elif cfg.cell == "gru":
                net.input_kernels.append(kernel)
                net.recurrent_kernels.append(recurrent)
                net.biases.append(input_bias)
            else:
                net.input_kernels.append(np.concatenate([kernel, recurrent], axis=0))
                net.biases.append(input_bias)
            net.residual.append(bool(cfg.residual and width == cfg.units))
            if i == 0 and net.residual[0]:
                net.embedding = embedding
            width = cfg.units
        net.out_kernel, net.out_bias = (np.asarray(w, np.float32) for w in model.get_layer("logits").get_weights())
        return net

    @property
    def num_layers(self) -> int:
        return len(self.residual)

    @property
    def vocab_size(self) -> int:
        return self.out_bias.shape[0]

    def initial_states(self, batch: int) -> list:
        per_layer = 2 if self.cell == "lstm" else 1
        return [np.zeros((batch, self.units), np.float32) for _ in range(per_layer * self.num_layers)]

    def prepare(self) -> "StepNetwork":
        """Converts every array to a backend tensor, outside any compiled trace.

        Backend tensors are made once, eagerly: a tensor first made inside one
        trace cannot be used by the next.
        """
        ops = import_keras().ops
        # Each bias rides as the last row of its matrix, times a column of ones
        # that `_product` appends to the input. XLA's CPU compiler fused a
        # separate bias add into the product itself and emitted that as its own
        # slow loop; without it one stream of a 2x512 LSTM sampled 1.3x faster
        # (benchmarks/RESULTS.md).
        arrays = {"table": self.first_table, "out": _with_bias(self.out_kernel, self.out_bias)}
        arrays["rec0"] = _with_bias(self.recurrent_kernels[0], self.recurrent_biases[0]) if self.cell == "gru" else self.recurrent_kernels[0]
        if self.embedding is not None:
            arrays["embedding"] = self.embedding
        for i in range(1, self.num_layers):
            arrays[f"in{i}"] = _with_bias(self.input_kernels[i - 1], self.biases[i - 1])
            if self.cell == "gru":
                arrays[f"rec{i}"] = _with_bias(self.recurrent_kernels[i], self.recurrent_biases[i])
        self.tensors = {name: ops.convert_to_tensor(value) for name, value in arrays.items()}
        # With many streams, each wide product also runs as two over halves of
        # the columns, which XLA's CPU runtime can overlap on the two cores:
        # 1.06x for the products of 64 streams. At one stream it never did,
        # and the whole product was faster.
        self.column_blocks = {name: [ops.convert_to_tensor(block) for block in np.array_split(value, 2, axis=1)]
                              for name, value in arrays.items()
                              if name not in ("table", "embedding") and value.shape[1] >= SPLIT_COLUMNS}
        return self

    def _product(self, x, name: str, affine: bool = False):
        """x @ the named matrix; `affine` for a matrix whose last row is a bias."""
        ops = import_keras().ops
        if affine:
            x = ops.concatenate([x, ops.ones((ops.shape(x)[0], 1), x.dtype)], axis=-1)
        blocks = self.column_blocks.get(name)
        if blocks is None or (x.shape[0] or 0) < SPLIT_MIN_STREAMS:
            return ops.matmul(x, self.tensors[name])
        return ops.concatenate([ops.matmul(x, block) for block in blocks], axis=-1)

    def step(self, tokens, states):
        """One time step: ids (N,) and states -> logits (N, V) and new states."""
        ops = import_keras().ops
        H = self.units
        new_states = []
        x = ops.take(self.tensors["embedding"], tokens, axis=0) if self.residual[0] else None
        for i in range(self.num_layers):
            h = states[2 * i] if self.cell == "lstm" else states[i]
            if i == 0:
                projected = ops.take(self.tensors["table"], tokens, axis=0)
            elif self.cell == "gru":
                projected = self._product(x, f"in{i}", affine=True)
            else:
                projected = self._product(ops.concatenate([x, h], axis=-1), f"in{i}", affine=True)
            if self.cell == "lstm":
                z = projected if i else projected + self._product(h, "rec0")
                gates = ops.sigmoid(z[:, : 3 * H])
                c = gates[:, H : 2 * H] * states[2 * i + 1] + gates[:, :H] * ops.tanh(z[:, 3 * H :])
                h = gates[:, 2 * H : 3 * H] * ops.tanh(c)
                new_states += [h, c]
            elif self.cell == "gru":
                inner = self._product(h, f"rec{i}", affine=True)
                zr = ops.sigmoid(projected[:, : 2 * H] + inner[:, : 2 * H])
                candidate = ops.tanh(projected[:, 2 * H :] + zr[:, H:] * inner[:, 2 * H :])
                h = zr[:, :H] * h + (1.0 - zr[:, :H]) * candidate
                new_states.append(h)
            else:
                z = projected if i else projected + self._product(h, "rec0")
                h = ops.tanh(z)
                new_states.append(h)
            x = h + x if self.residual[i] else h
        logits = self._product(x, "out", affine=True)
        return logits, new_states


def _with_bias(matrix: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return np.concatenate([matrix, bias[None, :]], axis=0)


def _lstm_gate_order(weights: np.ndarray, units: int) -> np.ndarray:
    # Keras stores gates as [i, f, c, o]; [i, f, o, c] lets one sigmoid cover i, f and o.
    i, f, c, o = (weights[..., k * units : (k + 1) * units] for k in range(4))
    return np.concatenate([i, f, o, c], axis=-1)


# ---------------------------------------------------------------- the compiled loop


def make_chunk_fn(net: StepNetwork, filters: list[LogitFilter], greedy: bool, automata: tuple[Automaton, ...] = ()):
    """Builds `run(token, states, automaton_states, forced, uniforms, steps)` for one chunk.

    `forced[t]` holds ids to feed instead of sampling (the prime), or -1;
    `uniforms[t]` holds the random draws for step t. Only the first `steps`
    rows are used, so one trace serves every chunk length. Each automaton
    moves on every character fed, forced or sampled, and biases the next choice.
    """
    keras = import_keras()
    ops = keras.ops
    from .compiled import compile_loop

    vocab_size = net.vocab_size
    tables = [(ops.convert_to_tensor(a.transitions.reshape(-1)), ops.convert_to_tensor(a.bias)) for a in automata]

    def choose(logits, uniform):
        # Step 1: constrain the distribution (temperature, top-k, top-p, ...).
        for logit_filter in filters:
            logits = logit_filter.apply(logits)
        if greedy:
            return ops.cast(ops.argmax(logits, axis=-1), "int32")
        # Step 2: unnormalised probabilities, and their running total (the CDF).
        weights = ops.exp(logits - ops.max(logits, axis=-1, keepdims=True))
        cdf = ops.cumsum(weights, axis=-1)
        # Step 3: invert the CDF at u * total; u > 0 so masked (zero-weight) ids are never chosen.
        target = ops.maximum(uniform, 1e-7)[:, None] * cdf[:, -1:]
        return ops.cast(ops.sum(ops.cast(cdf < target, "int32"), axis=-1), "int32")

    def run(token, states, automaton_states, forced, uniforms, steps):
        out = ops.zeros(ops.shape(forced), "int32")
        rows = ops.arange(ops.shape(forced)[0], dtype="int32")[:, None]

        def body(t, carry):
            token, states, automaton_states, out = carry
            # Feed the current character through every layer.
            logits, states = net.step(token, states)
            # Move each automaton on the same character; add its bias for the next choice.
            automaton_states = [ops.take(moves, state * vocab_size + token, axis=0)
                                for (moves, _), state in zip(tables, automaton_states)]
            for (_, bias), state in zip(tables, automaton_states):
                logits = logits + ops.take(bias, state, axis=0)
            # Take the prime's next character if one is forced, else sample.
            forced_t = ops.take(forced, t, axis=0)
            chosen = choose(logits, ops.take(uniforms, t, axis=0))
            token = ops.where(forced_t >= 0, forced_t, chosen)
            # Record it in row t of the output buffer.
            out = ops.where(rows == t, token[None, :], out)
            return token, states, automaton_states, out

        return ops.fori_loop(0, steps, body, (token, list(states), list(automaton_states), out))

    return compile_loop(run)


@dataclass
class Sample:
    text: str  # generated characters, without the prime, cut before any stop string
    stopped: bool  # True if a stop string ended it before `length`


class _StreamText:
    """One stream's text: skips a warm-up, cuts at stop strings and limits, releases final text.

    Text is released only once no stop string can still begin inside it, so a
    streamed sample never shows characters that are later cut.
    """

    def __init__(self, stops: tuple[str, ...], limit: tuple[str, int, bool, str] | None = None,
                 warmup: str = "", length: int | None = None, min_chars: int = 0, strict_warmup: bool = False):
        self.stops = stops
        self.strict_warmup = strict_warmup  # a constraint starts at the boundary: never start without one
        self.min_chars = min_chars
        self.limit = limit
        self.warmup = warmup
        self.warm_text = ""
        self.length = length
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.text = ""
        self.emitted = 0
        self.stopped = False  # a stop string or limit ended it
        self.full = False  # it reached `length`

    @property
    def finished(self) -> bool:
        return self.stopped or self.full

    def append(self, piece: str, last: bool) -> str:
        """Adds `piece`; returns the newly final text (everything, if `last`)."""
        if self.finished:
            return ""
        if self.warmup:
            # The start depends only on the stream, never on chunking: just after the boundary
            # if it ends within WARMUP_MAX_CHARS, else exactly at WARMUP_MAX_CHARS.
            self.warm_text += piece
            boundary = self.warm_text.find(self.warmup)
            if 0 <= boundary <= WARMUP_MAX_CHARS - len(self.warmup):
                start = boundary + len(self.warmup)
            elif len(self.warm_text) >= WARMUP_MAX_CHARS and not self.strict_warmup:
                start = WARMUP_MAX_CHARS
            else:
                return ""
            piece, self.warmup = self.warm_text[start:], ""
        search_from = max(len(self.text) - self.hold, 0)
        self.text += piece
        hits = [i for i in (self.text.find(s, search_from) for s in self.stops) if i >= 0]
        while hits and min(hits) < self.min_chars:
            # Too short to keep (a failed tune, say): drop it and carry on from after its stop.
            cut = min(hits)
            stop = next(s for s in self.stops if self.text.startswith(s, cut))
            self.text = self.text[cut + len(stop):]
            hits = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.text, self.stopped = self.text[: min(hits)], True
        if self.limit:
            chars, n, after, start = self.limit
            begin = self.text.find(start) + 1 if start else 0  # 0 while a `start` is still missing
            counting = begin > 0 or not start
            positions = [i for i, c in enumerate(self.text) if counting and i >= begin and c in chars]
            if len(positions) >= n:
                cut = positions[n - 1] + (1 if after else 0)
                self.text, self.stopped = self.text[:cut], True
        if self.length is not None and len(self.text) >= self.length and not self.stopped:
            self.text, self.full = self.text[: self.length], True
        final = len(self.text) if self.finished or last else max(len(self.text) - self.hold, 0)
        if len(self.text) < self.min_chars and not (self.finished or last):
            final = 0  # it may still be dropped
        released, self.emitted = self.text[self.emitted : final], max(self.emitted, final)
        return released


class Sampler:
    """Generates `num_samples` streams at once from a StepNetwork."""

    def __init__(self, net: StepNetwork, chars: tuple[str, ...]):
        self.net = net.prepare()
        self.chars = np.array(chars, dtype=object)
        self._compiled: dict = {}

    def generate(
        self,
        prime_ids: list[int],
        cfg: SamplingConfig,
        rng: np.random.Generator,
        on_text: Callable[[int, str], None] | None = None,
        chunk_steps: int = CHUNK_STEPS,
        automata: tuple[Automaton, ...] = (),
    ) -> list[Sample]:
        """Runs the prime through the network, then samples `cfg.length` characters.

        Args:
            prime_ids: at least one id; the last one is the first input to sample from.
            cfg: decoding settings.
            rng: the source of every random draw.
            on_text: called as (stream, text) with text that is final (never
                later cut by a stop string), for streaming output.
            chunk_steps: at most this many steps per compiled call.
            automata: constraints that follow each stream's text (`constraints.py`).

        Returns:
            One `Sample` per stream.
        """
        ops = import_keras().ops
        run = self._chunk_fn(cfg, automata)
        n = cfg.num_samples
        token = ops.convert_to_tensor(np.full((n,), prime_ids[0], np.int32))
        states = [ops.convert_to_tensor(s) for s in self.net.initial_states(n)]
        automaton_states = [ops.convert_to_tensor(np.full((n,), a.start, np.int32)) for a in automata]
        pending_prime, generated = list(prime_ids[1:]), 0
        strict = bool(cfg.poem_lines)  # the poem automaton starts at the boundary itself
        streams = [_StreamText(cfg.stop, cfg.limit, cfg.warmup, cfg.length, cfg.min_chars, strict) for _ in range(n)]
        budget = cfg.length + (WARMUP_MAX_CHARS if cfg.warmup else 0)  # steps, the warm-up included
        want = 16  # a short first chunk puts the first characters on screen sooner
        while generated < budget and not all(s.finished for s in streams):
            # 1. Plan the chunk: prime characters to force, then steps to sample.
            n_forced = min(len(pending_prime), chunk_steps)
            steps = min(chunk_steps, n_forced + min(budget - generated, want))
            forced = np.full((chunk_steps, n), -1, np.int32)
            forced[:n_forced] = np.asarray(pending_prime[:n_forced], np.int32)[:, None]
            # 2. Draw one uniform per sampled step and stream, in order, from the seeded RNG.
            uniforms = np.zeros((chunk_steps, n), np.float32)
            uniforms[n_forced:steps] = rng.random((steps - n_forced, n), dtype=np.float32)
            # 3. Run the whole chunk in one compiled call.
            token, states, automaton_states, out = run(token, states, automaton_states, forced, uniforms, np.int32(steps))
            new_ids = np.asarray(ops.convert_to_numpy(out))[n_forced:steps]
            pending_prime, generated, want = pending_prime[n_forced:], generated + steps - n_forced, chunk_steps
            # 4. Decode, apply stop strings, and hand final text to the caller.
            for i, stream in enumerate(streams):
                released = stream.append("".join(self.chars[new_ids[:, i]]), last=generated >= budget)
                if on_text and released:
                    on_text(i, released)
        return [Sample(s.text, s.stopped) for s in streams]

    def _chunk_fn(self, cfg: SamplingConfig, automata: tuple[Automaton, ...]):
        # One compiled loop per filter chain and set of automata; reused across calls with the same settings.
        filters = build_filters(cfg)
        key = (repr(filters), cfg.is_greedy, tuple(a.fingerprint for a in automata))
        if key not in self._compiled:
            self._compiled[key] = make_chunk_fn(self.net, filters, cfg.is_greedy, automata)
        return self._compiled[key]
