"""Where one stream's step goes on onnxruntime: the products, the cell's operators, the draw, and Python.

    python benchmarks/step_costs.py [--model shakespeare] [--repeats 5] [--streams 1]

Microseconds a step, median of repeats (0.2 s idle between measurements), one process:
- the step graph called from Python, its states fed back (what the NumPy loop calls each step);
- the same with IOBinding: states in preallocated arrays bound in and out, two bindings that alternate;
- the in-graph loop (`onnxruntime_chunk`), 256 steps a call, drawing at temperature 1, and greedy;
- the graph's products alone as onnxruntime MatMuls (`sampling_bound.graph_products`).

Then what building the in-graph loop costs, and how far onnxruntime's `Exp` is from NumPy's (the bound the
loop's close-call margin rests on).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import generate
from generate.model.backend import onnxruntime_chunk

CHUNK = 256


def python_steps(net, streams: int, steps: int) -> float:
    feeds = {"ids": np.zeros(streams, np.int64), **{n: np.zeros((streams, net.units), np.float32) for n in net.state_names}}
    start = time.perf_counter()
    for _ in range(steps):
        _, *states = net.session.run(None, feeds)
        feeds.update(zip(net.state_names, states))
    return (time.perf_counter() - start) / steps * 1e6


def io_bound_steps(net, streams: int, steps: int) -> float:
    ids = np.zeros(streams, np.int64)
    logits = np.zeros((streams, net.vocab_size), np.float32)
    buffers = [[np.zeros((streams, net.units), np.float32) for _ in net.state_names] for _ in range(2)]
    bindings = []
    for source, target in ((buffers[0], buffers[1]), (buffers[1], buffers[0])):
        binding = net.session.io_binding()
        binding.bind_cpu_input("ids", ids)
        for name, a, b in zip(net.state_names, source, target):
            binding.bind_input(name, "cpu", 0, np.float32, list(a.shape), a.ctypes.data)
            binding.bind_output(f"{name}_out", "cpu", 0, np.float32, list(b.shape), b.ctypes.data)
        binding.bind_output("logits", "cpu", 0, np.float32, list(logits.shape), logits.ctypes.data)
        bindings.append(binding)
    start = time.perf_counter()
    for step in range(steps):
        net.session.run_with_iobinding(bindings[step & 1])
    return (time.perf_counter() - start) / steps * 1e6


def in_graph_steps(session, net, streams: int, calls: int, greedy: bool) -> float:
    feeds = {"steps": np.array(CHUNK, np.int64), "first_id": np.zeros(streams, np.int64),
             **{f"first_{n}": np.zeros((streams, net.units), np.float32) for n in net.state_names},
             "logits0": np.zeros((streams, net.vocab_size), np.float32),
             "uniforms": np.random.default_rng(0).random((CHUNK, streams), dtype=np.float32),
             "forced": np.full((CHUNK, streams), -1, np.int64), "settings": np.ones((1, streams), np.float32)}
    start, steps = time.perf_counter(), 0
    for _ in range(calls):
        steps += len(session.run(None, feeds)[-1])  # a close call ends a call early: count the steps run
    return (time.perf_counter() - start) / steps * 1e6


def main() -> int:
    from sampling_bound import graph_products, onnxruntime_products

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shakespeare")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--streams", type=int, default=1)
    args = parser.parse_args()
    model = generate.load(args.model)
    net = model.generator.sampler.net
    sessions = {greedy: net._session(onnxruntime_chunk.chunk_graph(net.graph_bytes(), () if greedy else ("Temperature",),
                                                                  greedy, net.state_names, net.units, net.vocab_size))
                for greedy in (False, True)}
    products = onnxruntime_products(graph_products(model.run_dir.model_onnx))
    steps = max(200, 2000 // args.streams)
    paths = {
        "step graph from Python": lambda: python_steps(net, args.streams, steps),
        "step graph, IOBinding": lambda: io_bound_steps(net, args.streams, steps),
        "in-graph loop, drawing": lambda: in_graph_steps(sessions[False], net, args.streams, max(1, steps // CHUNK), False),
        "in-graph loop, greedy": lambda: in_graph_steps(sessions[True], net, args.streams, max(1, steps // CHUNK), True),
        "products alone, onnxruntime MatMul": lambda: args.streams / products(args.streams, steps) * 1e6,
    }
    for measure in paths.values():  # warm
        measure()
    times = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, measure in paths.items():
            time.sleep(0.2)
            times[name].append(measure())
    print(f"{args.model}, {args.streams} stream(s): microseconds a step, median of {args.repeats} (min-max)\n")
    print("| path | us a step |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) |")
    builds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        net._session(onnxruntime_chunk.chunk_graph(net.graph_bytes(), ("Temperature",), False, net.state_names,
                                                   net.units, net.vocab_size))
        builds.append(time.perf_counter() - started)
    print(f"\nbuilding the in-graph loop (graph and session): median {1000 * statistics.median(builds):.0f} ms "
          f"({1000 * min(builds):.0f}-{1000 * max(builds):.0f})")
    differ, worst = exp_differences()
    print(f"onnxruntime's Exp against NumPy's over 10 M values in [-104, 0]: {differ:.0%} differ, by at most "
          f"{worst} units in the last place (draw_margin assumes 3)")
    return 0


def exp_differences() -> tuple[float, int]:
    """The share of float32 values whose `Exp` differs between onnxruntime and NumPy, and the largest difference in
    units in the last place (normal results only): what `onnxruntime_chunk.draw_margin` is built on."""
    import onnxruntime
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Exp", ["x"], ["y"])], "exp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.linspace(-104, 0, 10_000_000, dtype=np.float32).reshape(-1, 100)
    theirs, ours = session.run(None, {"x": x})[0], np.exp(x)
    normal = ours > np.float32(1e-37)
    units = np.abs(theirs.view(np.int32).astype(np.int64) - ours.view(np.int32).astype(np.int64))
    return float((theirs != ours).mean()), int(units[normal].max())


if __name__ == "__main__":
    raise SystemExit(main())
