"""Where one stream's step goes on onnxruntime: the products, the cell's operators, the draw, and Python.

    python benchmarks/step_costs.py [--model shakespeare] [--repeats 5] [--streams 1]

Microseconds a step, median of repeats (0.2 s idle between measurements), one process:
- the step graph called from Python, its states fed back (what the NumPy loop calls each step);
- the same with IOBinding: states in preallocated arrays bound in and out, two bindings that alternate;
- the in-graph loop (`onnxruntime_chunk`), 256 steps a call, drawing at temperature 1, and greedy;
- the graph's products alone as onnxruntime MatMuls (`sampling_bound.graph_products`).

Then what building the in-graph loop costs, and how far onnxruntime's `Exp` is from NumPy's (the bound the
loop's close-call margin rests on).

    python benchmarks/step_costs.py --what-else [--repeats 7]

What else was tried on the in-graph loop, against the shipped session: onnxruntime's session options
(threads, spinning, memory arena and patterns, optimisation levels, prepacked weights, parallel execution),
and the step graph unrolled 2 and 4 times a `Loop` iteration (greedy, built with the `onnx` package), which
would show what the `Loop`'s own iterations cost. Last, where a user's call goes: `samples(length=1000)` on
one stream, timed whole and under cProfile, against the time spent inside onnxruntime's `run`.
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
    parser.add_argument("--what-else", action="store_true", help="session options and unrolled loops instead")
    args = parser.parse_args()
    model = generate.load(args.model)
    net = model.generator.sampler.net
    if args.what_else:
        return what_else(model, net, args.streams, args.repeats)
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
    print(f"{args.model}, {args.streams} stream(s): microseconds a step, median of {args.repeats} (min-max)\n")
    print_table("path", paths, args.repeats)
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


def print_table(heading: str, paths: dict, repeats: int) -> None:
    """Each path's microseconds a step, median (min-max) of `repeats` turns taken in rotation, 0.2 s apart."""
    for measure in paths.values():  # warm
        measure()
    times = {name: [] for name in paths}
    for _ in range(repeats):
        for name, measure in paths.items():
            time.sleep(0.2)
            times[name].append(measure())
    print(f"| {heading} | us a step |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) |")


def what_else(model, net, streams: int, repeats: int) -> int:
    """Microseconds a step of the in-graph loop under other session options, and unrolled; the table to stdout."""
    import onnxruntime
    from sampling_bound import graph_products, onnxruntime_products

    drawing = onnxruntime_chunk.chunk_graph(net.graph_bytes(), ("Temperature",), False, net.state_names, net.units,
                                            net.vocab_size)

    def session(graph=drawing, threads=0, arena=True, pattern=True, level=None, parallel=False, **entries):
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.enable_cpu_mem_arena, options.enable_mem_pattern = arena, pattern
        if level is not None:
            options.graph_optimization_level = level
        if parallel:
            options.execution_mode = onnxruntime.ExecutionMode.ORT_PARALLEL
        for key, value in entries.items():
            options.add_session_config_entry(key.replace("__", "."), value)
        return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    levels = onnxruntime.GraphOptimizationLevel
    drawn = {
        "as shipped (default options)": session(),
        "one intra-op thread": session(threads=1),
        "no spinning": session(session__intra_op__allow_spinning="0"),
        "no memory arena": session(arena=False),
        "no memory patterns": session(pattern=False),
        "extended optimisations only": session(level=levels.ORT_ENABLE_EXTENDED),
        "basic optimisations only": session(level=levels.ORT_ENABLE_BASIC),
        "weights not prepacked": session(session__disable_prepacking="1"),
        "parallel execution": session(parallel=True),
    }
    unrolled = {times: session(unrolled_greedy_loop(model.run_dir.model_onnx, times)) for times in (1, 2, 4)}
    products = onnxruntime_products(graph_products(model.run_dir.model_onnx))
    paths = {f"drawing: {name}": (lambda s=s: in_graph_steps(s, net, streams, 8, False)) for name, s in drawn.items()}
    paths.update({f"greedy, {n} step{'s' if n > 1 else ''} an iteration": (lambda n=n: unrolled_steps(unrolled[n], net, streams, n))
                  for n in unrolled})
    paths["products alone, onnxruntime MatMul"] = lambda: streams / products(streams, 2000) * 1e6
    print(f"{model.run_dir.path.name}, {streams} stream(s), in-graph loop: microseconds a step, median of {repeats} (min-max)\n")
    print_table("variant", paths, repeats)
    calls = [call_seconds(model, seed) for seed in range(1, 11)]
    inside, whole = onnxruntime_share(model)
    print(f"\nsamples(prime='ROMEO:', length=1000), one stream: median {1000 * statistics.median(calls):.1f} ms a call "
          f"({1000 * min(calls):.1f}-{1000 * max(calls):.1f}); under cProfile, {inside / whole:.1%} of it inside "
          f"onnxruntime's run ({1000 * inside / 10:.1f} of {1000 * whole / 10:.1f} ms a call)")
    return 0


def call_seconds(model, seed: int) -> float:
    start = time.perf_counter()
    model.samples(prime="ROMEO:", length=1000, seed=seed, num_samples=1)
    return time.perf_counter() - start


def onnxruntime_share(model) -> tuple[float, float]:
    """(seconds inside onnxruntime's `run`, seconds in all) over ten one-stream calls, by cProfile."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for seed in range(11, 21):
        model.samples(prime="ROMEO:", length=1000, seed=seed, num_samples=1)
    profile.disable()
    stats = pstats.Stats(profile).stats
    inside = sum(row[2] for (_, _, name), row in stats.items() if name == "<built-in method onnxruntime.capi.onnxruntime_pybind11_state.run>")
    return inside, pstats.Stats(profile).total_tt


def unrolled_greedy_loop(model_file, times: int) -> bytes:
    """A greedy `Loop` whose body is the step graph `times` over (each copy's values renamed, the weights shared)."""
    import copy

    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_file))
    graph = model.graph
    states = [i.name for i in graph.input if i.name != "ids"]
    units = graph.input[1].type.tensor_type.shape.dim[-1].dim_value
    weights = {t.name for t in graph.initializer}
    nodes, ids, carried = [], "ids_in", [f"{s}_in" for s in states]
    for copy_index in range(times):
        names = {"ids": ids, **dict(zip(states, carried))}

        def renamed(name, names=names, copy_index=copy_index):
            return name if name in weights or not name else names.get(name, f"copy{copy_index}_{name}")

        for node in graph.node:
            twin = copy.deepcopy(node)
            twin.name = f"copy{copy_index}_{node.name or node.output[0]}"
            twin.input[:] = [renamed(n) for n in node.input]
            twin.output[:] = [renamed(n) for n in node.output]
            nodes.append(twin)
        ids = f"copy{copy_index}_next"
        nodes.append(helper.make_node("ArgMax", [renamed("logits")], [ids], axis=-1, keepdims=0))
        carried = [renamed(f"{s}_out") for s in states]
    nodes += [helper.make_node("Identity", [ids], ["ids_next"]), helper.make_node("Identity", ["going"], ["going_next"]),
              *(helper.make_node("Identity", [c], [f"{s}_next"]) for s, c in zip(states, carried))]

    def tensors(names, kind=TensorProto.FLOAT, shape=("N", units)):
        return [helper.make_tensor_value_info(n, kind, list(shape)) for n in names]

    body = helper.make_graph(
        nodes, "body",
        [*tensors(["iteration"], TensorProto.INT64, []), *tensors(["going"], TensorProto.BOOL, []),
         *tensors(["ids_in"], TensorProto.INT64, ["N"]), *tensors([f"{s}_in" for s in states])],
        [*tensors(["going_next"], TensorProto.BOOL, []), *tensors(["ids_next"], TensorProto.INT64, ["N"]),
         *tensors([f"{s}_next" for s in states])], list(graph.initializer))
    loop = helper.make_node("Loop", ["trips", "", "ids0", *(f"{s}0" for s in states)],
                            ["ids_last", *(f"{s}_last" for s in states)], body=body)
    outer = helper.make_graph(
        [loop], "unrolled", [*tensors(["trips"], TensorProto.INT64, []), *tensors(["ids0"], TensorProto.INT64, ["N"]),
                             *tensors([f"{s}0" for s in states])],
        [*tensors(["ids_last"], TensorProto.INT64, ["N"]), *tensors([f"{s}_last" for s in states])])
    unrolled = helper.make_model(outer, opset_imports=model.opset_import)
    unrolled.ir_version = model.ir_version
    return unrolled.SerializeToString()


def unrolled_steps(session, net, streams: int, times: int) -> float:
    feeds = {"trips": np.array(CHUNK // times, np.int64), "ids0": np.zeros(streams, np.int64),
             **{f"{n}0": np.zeros((streams, net.units), np.float32) for n in net.state_names}}
    start = time.perf_counter()
    for _ in range(8):
        session.run(None, feeds)
    return (time.perf_counter() - start) / (8 * CHUNK) * 1e6


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
