"""A trained network's single step as an ONNX graph: ids and every layer's state in, logits and new states out.

No converter keeps a stateful RNN stateful (onnx/keras-onnx#676; tf2onnx#1152
advises "an additional input and output for the state"), so the graph is
written here, op by op, from the same fused arrays the sampler steps with
(`network.StepNetwork`). It mirrors `StepNetwork.step` line for line: the
embedding folded into the first layer's table, LSTM gates as [i, f, o, c],
GRU with the reset gate applied after the recurrent product (Keras's
`reset_after`), residual sums and layer normalisation. The batch dimension
is free, so one file serves one stream or many.

Inputs: `ids` (int64, [B]), for a labelled model `label` (int64, [B]), and `state{k}` (float32, [B, H]), k over layers
(two per LSTM layer: h then c). Outputs: `logits` ([B, V]) and `state{k}_out`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .network import StepNetwork

OPSET = 17  # LayerNormalization arrived in opset 17
IR_VERSION = 8  # onnx 1.23 writes IR 14 by default, which onnxruntime 1.30 refuses


def state_names(net: StepNetwork) -> list[str]:
    """The graph's state inputs, in `StepNetwork.initial_states` order."""
    per_layer = 2 if net.cell == "lstm" else 1
    return [f"state{k}" for k in range(per_layer * net.num_layers)]


def step_graph(net: StepNetwork, name: str = "generate-step", float16: bool = False):
    """The ONNX `ModelProto` of one step of `net`.

    Where the sampler's fused arrays are larger than the weights they came from (a first-layer table of
    vocabulary x gates, a tied output layer folded through the embedding), the graph keeps the weights
    apart and multiplies them at run time, so a large vocabulary costs its embedding only once.

    Args:
        float16: store the weights as float16 (half the file), cast to float32 once when a runtime loads it.

    Raises:
        ImportError: the `onnx` package is missing.
    """
    import onnx  # only an export writes a graph: sampling never loads the onnx package
    from onnx import TensorProto, helper, numpy_helper  # (the same)

    graph = _GraphWriter(helper, numpy_helper, float16)
    H, V = net.units, net.vocab_size
    states = state_names(net)
    unfused = net.unfused
    embedding_apart = bool(unfused) and unfused["embedding"].size + unfused["first_kernel"].size < net.first_table.size
    x = graph.op("Gather", [graph.constant("embedding", net.embedding), "ids"]) if net.residual[0] else None
    if x is not None and net.labels:
        x = graph.op("Concat", [x, graph.op("Gather", [graph.constant("label_embedding", net.label_embedding), "label"])], axis=1)
    outputs: list[str] = []
    for i in range(net.num_layers):
        h = states[2 * i] if net.cell == "lstm" else states[i]
        projected = _layer_input(graph, net, i, x, h, embedding_apart)
        if net.cell == "lstm":
            h, c = _lstm(graph, net, i, projected, h, states[2 * i + 1])
            outputs += [h, c]
        else:
            h = (_gru if net.cell == "gru" else _rnn)(graph, net, i, projected, h)
            outputs.append(h)
        x = graph.op("Add", [h, x]) if net.residual[i] else h
        if net.norms:
            gamma, beta = net.norms[i]
            x = graph.op("LayerNormalization", [x, graph.constant(f"gamma{i}", gamma), graph.constant(f"beta{i}", beta)],
                         axis=-1, epsilon=net.norm_epsilon)
    graph.rename(_logits(graph, net, x, embedding_apart), "logits")
    for k, value in enumerate(outputs):
        graph.rename(value, f"{states[k]}_out")
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])]
    if net.labels:
        inputs.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]))
    inputs += [helper.make_tensor_value_info(s, TensorProto.FLOAT, ["batch", H]) for s in states]
    result = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", V])]
    result += [helper.make_tensor_value_info(f"{s}_out", TensorProto.FLOAT, ["batch", H]) for s in states]
    model = helper.make_model(helper.make_graph(graph.nodes, name, inputs, result, graph.initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="generate")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def _layer_input(graph: _GraphWriter, net: StepNetwork, i: int, x: str | None, h: str, embedding_apart: bool) -> str:
    """Layer i's input projection: the first layer's from the ids (and label), a deeper LSTM's or RNN's from [x, h] at once."""
    if i == 0 and net.labels:
        chars = _layer_input(graph, dataclasses.replace(net, label_table=None), i, x, h, embedding_apart)
        return graph.op("Add", [chars, graph.op("Gather", [graph.constant("label_table", net.label_table), "label"])])
    if i == 0 and embedding_apart:
        embedded = graph.op("Gather", [graph.constant("embedding", net.unfused["embedding"]), "ids"])
        return graph.affine(embedded, net.unfused["first_kernel"], net.unfused["first_bias"], "first")
    if i == 0:
        return graph.op("Gather", [graph.constant("table", net.first_table), "ids"])
    if net.cell == "gru":
        return graph.affine(x, net.input_kernels[i - 1], net.biases[i - 1], f"in{i}")
    return graph.affine(graph.op("Concat", [x, h], axis=1), net.input_kernels[i - 1], net.biases[i - 1], f"in{i}")


def _with_first_recurrence(graph: _GraphWriter, net: StepNetwork, i: int, projected: str, h: str) -> str:
    """Layer 0's recurrent product is apart from its table; deeper layers have it in `projected` already."""
    if i:
        return projected
    return graph.op("Add", [projected, graph.op("MatMul", [h, graph.constant("rec0", net.recurrent_kernels[0])])])


def _lstm(graph: _GraphWriter, net: StepNetwork, i: int, projected: str, h: str, c: str) -> tuple[str, str]:
    """Gates [i, f, o, c]: one sigmoid over the first three."""
    H = net.units
    gated, candidate = graph.split(_with_first_recurrence(graph, net, i, projected, h), [3 * H, H])
    input_gate, forget_gate, output_gate = graph.split(graph.op("Sigmoid", [gated]), [H, H, H])
    c = graph.op("Add", [graph.op("Mul", [forget_gate, c]), graph.op("Mul", [input_gate, graph.op("Tanh", [candidate])])])
    return graph.op("Mul", [output_gate, graph.op("Tanh", [c])]), c


def _gru(graph: _GraphWriter, net: StepNetwork, i: int, projected: str, h: str) -> str:
    """Keras's `reset_after` GRU: the reset gate scales the recurrent product, bias included."""
    H = net.units
    inner = graph.affine(h, net.recurrent_kernels[i], net.recurrent_biases[i], f"rec{i}")
    projected_zr, projected_candidate = graph.split(projected, [2 * H, H])
    inner_zr, inner_candidate = graph.split(inner, [2 * H, H])
    update, reset = graph.split(graph.op("Sigmoid", [graph.op("Add", [projected_zr, inner_zr])]), [H, H])
    candidate = graph.op("Tanh", [graph.op("Add", [projected_candidate, graph.op("Mul", [reset, inner_candidate])])])
    keep = graph.op("Sub", [graph.constant(f"one{i}", np.ones((1,), np.float32)), update])
    return graph.op("Add", [graph.op("Mul", [update, h]), graph.op("Mul", [keep, candidate])])


def _rnn(graph: _GraphWriter, net: StepNetwork, i: int, projected: str, h: str) -> str:
    return graph.op("Tanh", [_with_first_recurrence(graph, net, i, projected, h)])


def _logits(graph: _GraphWriter, net: StepNetwork, x: str, embedding_apart: bool) -> str:
    """The output layer; a tied one as (x P + p) E^T + b where that is smaller, E shared with the first layer."""
    unfused = net.unfused
    tied_apart = "tie_kernel" in unfused and (unfused["tie_kernel"].size + unfused["embedding"].size
                                               < net.out_kernel.size + (0 if embedding_apart else unfused["embedding"].size))
    if not tied_apart:
        return graph.affine(x, net.out_kernel, net.out_bias, "out")
    projected_out = graph.affine(x, unfused["tie_kernel"], unfused["tie_bias"], "tie")
    return graph.op("Gemm", [projected_out, graph.constant("embedding", unfused["embedding"]),
                             graph.constant("out_bias", unfused["tie_out_bias"])], transB=1)


class _GraphWriter:
    """Collects nodes and weights under fresh names."""

    def __init__(self, helper, numpy_helper, float16: bool = False):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.float16 = float16
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = set()
        self.count = 0

    def constant(self, name: str, value: np.ndarray) -> str:
        """A weight under `name` (stored once, however often it is asked for); float16 ones are cast on loading."""
        value = np.ascontiguousarray(value)
        stored = name
        # Only weights float16 holds exactly: a product of two (a fused table) would be rounded again.
        if self.float16 and value.dtype == np.float32 and np.array_equal(value.astype(np.float16).astype(np.float32), value):
            stored = f"{name}_float16"
        if stored not in self.names:
            self.names.add(stored)
            self.initializers.append(self.numpy_helper.from_array(value.astype(np.float16) if stored != name else value,
                                                                  stored))
            if stored != name:
                self.nodes.append(self.helper.make_node("Cast", [stored], [name], to=1))  # 1: float32
        return name

    def op(self, kind: str, inputs: list[str], outputs: int = 1, **attributes) -> str | list[str]:
        self.count += 1
        names = [f"{kind.lower()}{self.count}_{k}" for k in range(outputs)]
        self.nodes.append(self.helper.make_node(kind, inputs, names, **attributes))
        return names[0] if outputs == 1 else names

    def affine(self, x: str, kernel: np.ndarray, bias: np.ndarray, name: str) -> str:
        product = self.op("MatMul", [x, self.constant(f"{name}_kernel", kernel)])
        return self.op("Add", [product, self.constant(f"{name}_bias", bias)])

    def split(self, x: str, sizes: list[int]) -> list[str]:
        return self.op("Split", [x, self.constant(f"split{self.count}", np.array(sizes, np.int64))], outputs=len(sizes),
                       axis=1)

    def rename(self, value: str, name: str) -> None:
        """Makes the node that writes `value` write `name` instead (a graph output)."""
        for node in self.nodes:
            for k, output in enumerate(node.output):
                if output == value:
                    node.output[k] = name
            for k, used in enumerate(node.input):
                if used == value:
                    node.input[k] = name
