"""A bundle's step network on onnxruntime: what the sampler steps when no Keras is installed.

`OnnxStepNetwork` offers what the sampling loops need of a network
(`step`, `initial_states`, `vocab_size`, its `ops` and `compile`), like
`network.StepNetwork`, but each step is one call of the bundle's graph
(`onnx_step`) and the loops run eagerly on NumPy (`numpy_ops`). Importing
this module imports neither onnxruntime nor Keras; loading a bundle imports
onnxruntime alone.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..label_schedule import guided_initial_states, guided_step
from . import numpy_ops, onnxruntime_chunk

log = logging.getLogger(__name__)
# Rows (streams x steps) stepped from NumPy before the in-graph loop is built: at 1 stream it saves about
# 40 us a step and costs 15-30 ms to build, and `generate sample`'s first character comes after ~430 steps.
ROWS_BEFORE_IN_GRAPH = 512


class OnnxStepNetwork:
    """One step of a bundle's graph: ids (N,) and states in, logits (N, V) and new states out.

    onnxruntime's default threads (one per core) are kept: on two cores, a
    2x512 LSTM stepped one stream 1.5x faster on two threads than on one, and
    64 streams 1.8x faster.

    Args:
        model: the bundle's `model.onnx`, or a graph's bytes.
        cell, units, layers: its architecture, from `meta.json`.
        state_names: the graph's state inputs, in order.
        vocab_size: the logits' width.

    Raises:
        ImportError: onnxruntime is not installed.
        onnxruntime's own errors: a file it cannot load.
    """

    ops = numpy_ops

    def __init__(self, model: Path | bytes, cell: str, units: int, layers: int, state_names: list[str], vocab_size: int,
                 labels: int = 0):
        self.cell, self.units, self.layers, self.labels = cell, units, layers, labels
        self.graph = model
        self.state_names = list(state_names)
        self._vocab_size = vocab_size
        self.session = self._session(model if isinstance(model, bytes) else str(model))
        self._chunk_sessions: dict = {}
        self.rows_stepped = 0  # rows (streams x steps) stepped one graph call a step
        self._chunk_lock = threading.Lock()

    @staticmethod
    def _session(source: str | bytes):
        import onnxruntime  # a bundle's only runtime, loaded when a bundle is

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initializers are not the user's business
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def mismatch(self, meta_inputs: list[str]) -> str:
        """What the graph's own inputs and outputs say against its description (meta.json's), or "" if they agree."""
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = self.session.get_outputs()
        expected = ["ids", *self.state_names, *(["label"] if self.labels else [])]
        if list(meta_inputs) != [name for name in meta_inputs if name in inputs] or sorted(inputs) != sorted(expected):
            return f"the graph's inputs are {', '.join(sorted(inputs))}; meta.json describes {', '.join(expected)}"
        for name in self.state_names:
            width = inputs[name][-1] if inputs[name] else None
            if isinstance(width, int) and width != self.units:
                return f"state {name!r} is {width} wide in the graph; meta.json says state_units {self.units}"
        width = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if isinstance(width, int) and width != self._vocab_size:
            return f"the graph's logits are {width} wide; meta.json says vocab_size {self._vocab_size}"
        if len(outputs) != 1 + len(self.state_names):
            return f"the graph has {len(outputs)} outputs; expected the logits and {len(self.state_names)} states"
        return ""

    def graph_bytes(self) -> bytes:
        """The step graph this network runs, as bytes (what a browser's onnxruntime loads)."""
        return self.graph if isinstance(self.graph, bytes) else Path(self.graph).read_bytes()

    @property
    def num_layers(self) -> int:
        return self.layers

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def prepare(self) -> OnnxStepNetwork:
        return self

    @staticmethod
    def compile(fn):
        """The loops run as written: each step's work is the graph call, so there is nothing to compile."""
        return fn

    def chunk_runner(self, filter_shapes: tuple, greedy: bool):
        """`run(token, states, forced, uniforms, settings)`: up to `len(forced)` steps in one graph call, each
        drawing its character inside the graph (`onnxruntime_chunk`), or None where the graph cannot draw
        as the NumPy loop does (a labelled network, a filter it does not hold).

        `run` returns the characters drawn ((steps run, N) int64), the one to feed next, the states, and
        the last step's logits. The graph stops after a draw too close to call; the caller draws a call's
        last step again from its logits, as the NumPy loop would, whether it was (a few steps' work a chunk).
        `run` returns None, and the caller steps from NumPy as before, until the network has stepped
        `ROWS_BEFORE_IN_GRAPH` rows that way, and for good if onnxruntime refuses the graph. The graph is
        built once per chain of filter kinds (top-k's k and the banned characters are its inputs, so no
        run of requests makes a session per value), in 15-30 ms for a 2x512 LSTM: a short sample, and a
        long one's first character, are done before it would pay for itself.
        """
        if self.labels or not onnxruntime_chunk.supports(filter_shapes):
            return None
        key = (onnxruntime_chunk.filter_kinds(filter_shapes), greedy)
        names, filter_feeds = self.state_names, onnxruntime_chunk.filter_feeds(filter_shapes, self._vocab_size)

        def run(token, states, forced, uniforms, settings):
            with self._chunk_lock:
                if key not in self._chunk_sessions:
                    if self.rows_stepped < ROWS_BEFORE_IN_GRAPH:
                        return None
                    self._chunk_sessions[key] = self._chunk_session(*key)
            session = self._chunk_sessions[key]
            if session is None:
                return None
            rows = len(token)
            feeds = {"steps": np.array(len(forced), np.int64), "first_id": np.asarray(token, np.int64),
                     **{f"first_{name}": np.asarray(s, np.float32) for name, s in zip(names, states)},
                     "logits0": np.zeros((rows, self._vocab_size), np.float32), "uniforms": np.asarray(uniforms, np.float32),
                     "forced": np.asarray(forced, np.int64), "settings": np.asarray(settings, np.float32), **filter_feeds}
            next_id, *rest = session.run(None, feeds)
            states, (logits, tokens) = rest[: len(names)], rest[len(names) :]
            return tokens, next_id, states, logits

        return run

    def _chunk_session(self, filter_kinds: tuple, greedy: bool):
        try:
            return self._session(onnxruntime_chunk.chunk_graph(self.graph_bytes(), filter_kinds, greedy, self.state_names,
                                                               self.units, self._vocab_size))
        except Exception as exc:  # noqa: BLE001 - any refusal leaves the NumPy loop in charge, which is always right
            log.debug("no in-graph sampling loop for this bundle (%s): stepping from NumPy", exc)
            return None

    def initial_states(self, batch: int) -> list[np.ndarray]:
        """As `network.StepNetwork.initial_states`: a labelled graph's are two branches' and the label schedule."""
        states = [np.zeros((batch, self.units), np.float32) for _ in self.state_names]
        return guided_initial_states(states) if self.labels else states

    def step(self, tokens, states, guided: bool = True):
        """One time step: ids (N,) and states -> logits (N, V) and new states (a labelled graph's: `guided_step`)."""
        if self.labels:
            return guided_step(self._core, np.asarray(tokens), [np.asarray(s) for s in states], numpy_ops, guided)
        return self._core(tokens, None, states)

    def _core(self, tokens, labels, states):
        """One call of the graph for plain rows."""
        feeds = {"ids": np.asarray(tokens, np.int64),
                 **{name: np.asarray(s, np.float32) for name, s in zip(self.state_names, states)}}
        if labels is not None:
            feeds["label"] = np.asarray(labels).astype(np.int64)
        logits, *new_states = self.session.run(None, feeds)
        self.rows_stepped += len(feeds["ids"])
        return logits, new_states

