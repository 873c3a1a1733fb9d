"""Many steps in one onnxruntime call: a bundle's step graph inside an ONNX `Loop`, the draw included.

The NumPy loop calls the step graph once a character; at one stream the
Python and NumPy around each call cost about a quarter of the step. Here the
step graph becomes the body of a `Loop` that also takes the prime's forced
characters, filters the logits (temperature, top-k, banned characters),
draws by inverse CDF from the caller's uniforms, and feeds the character to
the next step: one `session.run` a chunk (`chunk_graph`).

**Exactness.** The filters and the comparisons are exact in any runtime,
but onnxruntime's `Exp` differs from NumPy's by up to 3 units in the last
place, so a uniform that lands next to a boundary of the CDF could choose
another character. The graph therefore checks every draw: where the target
lies within `draw_margin` of a boundary (a bound on how far the two
runtimes' CDFs can drift apart), it stops after that step, and the caller
draws each call's last step again with NumPy from the logits the graph hands
back, as the NumPy loop would (`sampling.loop`). Every sampled byte is the
NumPy loop's.

The graph is built in memory from the bundle's own `model.onnx` bytes by
writing the few protobuf messages it needs here (`_Proto`): the `onnx`
package takes 0.7 s to import, more than a light sample's whole start.
"""

from __future__ import annotations

import struct

import numpy as np

# onnx.TensorProto's element types
FLOAT, INT64, BOOL = 1, 7, 9
# The filters the graph can apply, by `LogitFilter.shape[0]`; any other sends the chunk to the NumPy loop.
IN_GRAPH_FILTERS = ("Temperature", "TopK", "TokenMask")


def draw_margin(vocab_size: int) -> float:
    """How close to a boundary of the CDF, as a share of its total, a target must lie for two runtimes to disagree.

    Each weight's `exp` may differ by 3 units in the last place (measured: onnxruntime 1.32 against NumPy 2);
    each partial sum of V weights then by 3 units plus one rounding a term, and the target, u times the
    total, by as much again plus its own rounding. Twice that, to be safe: about 3.3e-5 for 65 characters.
    """
    unit = 2.0**-23
    return 2 * (2 * (3 + vocab_size) * unit + unit)


def supports(filter_shapes: tuple) -> bool:
    return all(shape[0] in IN_GRAPH_FILTERS for shape in filter_shapes)


def filter_kinds(filter_shapes: tuple) -> tuple[str, ...]:
    """What a chunk graph is built for: the filters' kinds. Their shapes' values (top-k's k, the banned characters)
    are fed at run time (`filter_feeds`), so a server's requests with a hundred values of k share one graph."""
    return tuple(shape[0] for shape in filter_shapes)


def filter_feeds(filter_shapes: tuple, vocab_size: int) -> dict[str, np.ndarray]:
    """The chunk graph's inputs for these filters' values: top-k's k (at most the vocabulary: all of it then
    stays, as NumPy's `top_k` keeps it), and the characters a banned list leaves allowed."""
    feeds = {}
    for i, shape in enumerate(filter_shapes):
        if shape[0] == "TopK":
            feeds[f"top_k{i}"] = np.array([min(shape[1], vocab_size)], np.int64)
        elif shape[0] == "TokenMask":
            allowed = np.ones((1, vocab_size), bool)
            allowed[0, list(shape[1])] = False
            feeds[f"allowed{i}"] = allowed
    return feeds


def chunk_graph(step_model: bytes, filter_kinds: tuple, greedy: bool, state_names: list[str], units: int,
                vocab_size: int) -> bytes:
    """A model that runs the step graph `steps` times, drawing each character; see the module's text.

    Inputs: `steps` (int64 scalar), `first_id` (int64 [N]), the states (`first_state0`, ...), `logits0`
    (float [N, V], any values), `uniforms` (float [T, N]), `forced` (int64 [T, N]: -1 to draw) and
    `settings` (float [F, N]: filter i's setting in row i), and each filter's own (`filter_feeds`). Outputs: the character to feed next, the
    states, the last step's logits and `tokens` (int64 [steps run, N]). Fewer rows than `steps`: the
    last one's draw was too close to call.
    """
    model_fields, graph = _split_model(step_model)
    draw = _Draw(filter_kinds, greedy, vocab_size)
    carried = [("ids", INT64, ["N"]), *((name, FLOAT, ["N", units]) for name in state_names),
               ("logits_in", FLOAT, ["N", vocab_size])]
    body_outputs = [("clear_out", BOOL, []), ("draw_next", INT64, ["N"]),
                    *((f"{name}_out", FLOAT, ["N", units]) for name in state_names),
                    ("logits", FLOAT, ["N", vocab_size]), ("draw_token", INT64, ["N"])]
    body = (_Proto.graph_without_signature(graph) + draw.body.message() + _Proto.string(2, "draw-body")
            + b"".join(_Proto.field(11, _Proto.value(*v)) for v in [("iteration", INT64, []), ("condition", BOOL, []), *carried])
            + b"".join(_Proto.field(12, _Proto.value(*v)) for v in body_outputs))

    finals = ["next_id", *(f"{name}_final" for name in state_names), "last_logits"]
    # The outer graph's names are apart from the body's: a subgraph may not shadow its parent's values.
    loop = _Proto.node("Loop", ["steps", "", "first_id", *(f"first_{name}" for name in state_names), "logits0"],
                       [*finals, "tokens"], body=body)
    outer_inputs = [("steps", INT64, []), ("first_id", INT64, ["N"]),
                    *((f"first_{n}", FLOAT, ["N", units]) for n in state_names), ("logits0", FLOAT, ["N", vocab_size]),
                    ("uniforms", FLOAT, ["T", "N"]), ("forced", INT64, ["T", "N"]), ("settings", FLOAT, ["F", "N"]),
                    *draw.inputs]
    outer_outputs = [("next_id", INT64, ["N"]), *((f"{n}_final", FLOAT, ["N", units]) for n in state_names),
                     ("last_logits", FLOAT, ["N", vocab_size]), ("tokens", INT64, ["S", "N"])]
    outer = (_Parts(draw.outer.message(), _Proto.field(1, loop)) + _Proto.string(2, "draw-chunk")
             + b"".join(_Proto.field(11, _Proto.value(*v)) for v in outer_inputs)
             + b"".join(_Proto.field(12, _Proto.value(*v)) for v in outer_outputs))
    return model_fields.join(_Proto.field(7, outer))


class _Nodes:
    """Nodes and constants of one graph, under names no step graph uses."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.constants = prefix, [], {}

    def const(self, name: str, value) -> str:
        self.constants[name] = np.asarray(value)
        return name

    def op(self, kind: str, inputs: list[str], outputs: int = 1, name: str | None = None, **attributes) -> str:
        out = name or f"{self.prefix}{len(self.nodes)}_{kind.lower()}"
        names = [out, *(f"{out}_{k}" for k in range(1, outputs))]
        self.nodes.append(_Proto.node(kind, inputs, names, **attributes))
        return out

    def message(self) -> bytes:
        return (b"".join(_Proto.field(1, n) for n in self.nodes)
                + b"".join(_Proto.field(5, _Proto.tensor(name, value)) for name, value in self.constants.items()))


class _Draw:
    """`sampling.loop.make_chunk_fn`'s `choose`, op for op, then the forced character: what depends only on
    the chunk's inputs (each filter's setting as a column, the uniforms' floor, top-k's k - 1) once, in
    the outer graph; the rest in the body, once a step. Fewer nodes a step is most of what one stream costs."""

    def __init__(self, filter_kinds: tuple, greedy: bool, vocab_size: int):
        outer, body = self.outer, self.body = _Nodes("chunk_"), _Nodes("draw_")
        self.inputs: list = []  # the filters' own inputs (`filter_feeds`)
        minus_inf = body.const("draw_minus_inf", np.array(-np.inf, np.float32))
        column = outer.const("chunk_axis1", np.array([1], np.int64))
        x = "logits"
        for i, kind in enumerate(filter_kinds):
            if kind == "Temperature":  # logits / setting[:, None]
                setting = outer.op("Gather", ["settings", outer.const(f"chunk_row{i}", np.array(i, np.int64))], axis=0)
                x = body.op("Div", [x, outer.op("Unsqueeze", [setting, column])])
            elif kind == "TopK":  # logits below the k-th largest are -inf; k is an input (`filter_feeds`)
                values = body.op("TopK", [x, f"top_k{i}"], outputs=2, axis=-1, largest=1, sorted=1)
                before_kth = outer.op("Sub", [f"top_k{i}", outer.const("chunk_one", np.array([1], np.int64))])
                kth = body.op("Slice", [values, before_kth, f"top_k{i}", column])
                x = body.op("Where", [body.op("Less", [x, kth]), minus_inf, x])
                self.inputs.append((f"top_k{i}", INT64, [1]))
            elif kind == "TokenMask":  # the allowed characters are an input too
                x = body.op("Where", [f"allowed{i}", x, minus_inf])
                self.inputs.append((f"allowed{i}", BOOL, [1, vocab_size]))
        forced = body.op("Gather", ["forced", "iteration"], axis=0)
        if greedy:
            chosen = body.op("ArgMax", [x], axis=-1, keepdims=0)
            body.op("Identity", [body.const("draw_true", np.array(True))], name="clear_out")
        else:
            weights = body.op("Exp", [body.op("Sub", [x, body.op("ReduceMax", [x], axes=[-1], keepdims=1)])])
            cdf = body.op("CumSum", [weights, body.const("draw_axis1_scalar", np.array(1, np.int64))])
            total = body.op("Slice", [cdf, body.const("draw_last", np.array([-1], np.int64)),
                                      body.const("draw_end", np.array([vocab_size], np.int64)), column])
            # (T, N, 1): each step's uniform, floored as `choose` does.
            floored = outer.op("Unsqueeze", [outer.op("Max", ["uniforms", outer.const("chunk_floor", np.array(1e-7, np.float32))]),
                                             outer.const("chunk_axis2", np.array([2], np.int64))])
            target = body.op("Mul", [body.op("Gather", [floored, "iteration"], axis=0), total])
            # cdf - target < 0 exactly where cdf < target (a difference of floats is 0 only where they are equal).
            below = body.op("Sub", [cdf, target])
            zero_float = body.const("draw_zero_float", np.array(0, np.float32))
            chosen = body.op("ReduceSum", [body.op("Cast", [body.op("Less", [below, zero_float])], to=INT64), column], keepdims=0)
            # Too close to call: some stream's target within the margin of a boundary (gap - margin < 0). A forced
            # step may stop the loop too: its character is the forced one either way.
            margin = body.op("Mul", [total, body.const("draw_margin", np.array(draw_margin(vocab_size), np.float32))])
            closest = body.op("ReduceMin", [body.op("Sub", [body.op("Abs", [below]), margin])], keepdims=0)
            body.op("GreaterOrEqual", [closest, zero_float], name="clear_out")
        is_forced_now = body.op("GreaterOrEqual", [forced, body.const("draw_zero", np.array(0, np.int64))])
        body.op("Where", [is_forced_now, forced, chosen], name="draw_next")
        body.op("Identity", ["draw_next"], name="draw_token")


def _split_model(model: bytes) -> tuple[_Parts, memoryview]:
    """A ModelProto's fields other than its graph, and its graph."""
    rest, graph = [], b""
    for number, raw, payload in _Proto.fields(model):
        if number == 7:
            graph = payload
        else:
            rest.append(raw)
    return _Parts(*rest), graph


class _Parts:
    """Bytes kept as pieces until the end: the step graph's weights are copied once, not at each nesting."""

    def __init__(self, *pieces):
        self.pieces = [p for piece in pieces for p in (piece.pieces if isinstance(piece, _Parts) else [piece])]

    def __len__(self) -> int:
        return sum(len(p) for p in self.pieces)

    def __add__(self, other) -> _Parts:
        return _Parts(self, other)

    def join(self, *more) -> bytes:
        return b"".join(_Parts(self, *more).pieces)


class _Proto:
    """The protobuf wire format, for the ONNX messages a chunk graph needs (onnx.proto's field numbers)."""

    @staticmethod
    def varint(value: int) -> bytes:
        value &= (1 << 64) - 1  # negative int64s as ten bytes, as protobuf writes them
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    @classmethod
    def field(cls, number: int, payload):
        """A length-delimited field; `_Parts` stay pieces (`_Parts`), bytes stay bytes."""
        head = cls.varint(number << 3 | 2) + cls.varint(len(payload))
        return _Parts(head, payload) if isinstance(payload, _Parts) else head + payload

    @classmethod
    def integer(cls, number: int, value: int) -> bytes:
        return cls.varint(number << 3) + cls.varint(value)

    @classmethod
    def string(cls, number: int, text: str) -> bytes:
        return cls.field(number, text.encode())

    @classmethod
    def fields(cls, message: bytes):
        """(field number, its raw bytes, its payload) for each top-level field of `message`, as views (no copies)."""
        message, position = memoryview(message), 0
        while position < len(message):
            start = position
            key, position = cls._read_varint(message, position)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, position = cls._read_varint(message, position)
                payload = value
            elif wire == 2:
                length, position = cls._read_varint(message, position)
                payload, position = message[position : position + length], position + length
            elif wire in (1, 5):
                width = 8 if wire == 1 else 4
                payload, position = message[position : position + width], position + width
            else:
                raise ValueError(f"protobuf wire type {wire} at byte {start}")
            yield number, message[start:position], payload

    @staticmethod
    def _read_varint(data: bytes, position: int) -> tuple[int, int]:
        value, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, position

    @classmethod
    def graph_without_signature(cls, graph) -> _Parts:
        """A GraphProto's nodes, weights and the rest, without its inputs (11) and outputs (12)."""
        return _Parts(*(raw for number, raw, _ in cls.fields(graph) if number not in (11, 12)))

    @classmethod
    def value(cls, name: str, kind: int, shape: list) -> bytes:
        """A ValueInfoProto: a tensor of element type `kind`; each dimension a size or a name."""
        dims = b"".join(cls.field(1, cls.integer(1, d) if isinstance(d, int) else cls.string(2, d)) for d in shape)
        tensor_type = cls.integer(1, kind) + cls.field(2, dims)
        return cls.string(1, name) + cls.field(2, cls.field(1, tensor_type))

    @classmethod
    def tensor(cls, name: str, value: np.ndarray) -> bytes:
        kinds = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64, np.dtype(np.bool_): BOOL}
        value = np.asarray(value)  # not ascontiguousarray, which makes a scalar a vector
        dims = b"".join(cls.integer(1, d) for d in value.shape)
        return dims + cls.integer(2, kinds[value.dtype]) + cls.string(8, name) + cls.field(9, value.astype(value.dtype.newbyteorder("<")).tobytes(order="C"))

    @classmethod
    def node(cls, kind: str, inputs: list[str], outputs: list[str], **attributes):
        message = _Parts(b"".join(cls.string(1, i) for i in inputs) + b"".join(cls.string(2, o) for o in outputs)
                         + cls.string(4, kind))
        for name, value in attributes.items():
            message += cls.field(5, cls._attribute(name, value))
        return message if isinstance(attributes.get("body"), _Parts) else message.join()

    @classmethod
    def _attribute(cls, name: str, value) -> bytes:
        message = cls.string(1, name)
        if isinstance(value, bool) or isinstance(value, int):
            message += cls.integer(3, int(value)) + cls.integer(20, 2)
        elif isinstance(value, float):
            message += cls.varint(2 << 3 | 5) + struct.pack("<f", value) + cls.integer(20, 1)
        elif isinstance(value, _Parts):  # a graph (a Loop's body)
            return _Parts(message, cls.field(6, value), cls.integer(20, 5))
        elif isinstance(value, list):
            message += b"".join(cls.integer(8, v) for v in value) + cls.integer(20, 7)
        else:
            raise TypeError(f"attribute {name}: {type(value).__name__}")
        return message
