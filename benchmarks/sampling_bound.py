"""Sampling against what the machine allows: each path as a fraction of the model's own products alone.

    python benchmarks/sampling_bound.py [--model shakespeare] [--repeats 9] [--length 1000] [--also shakespeare-int8]

One process, one model, every figure in the same run, repeats interleaved so
that the machine's noise falls on every path alike:

- the bound: the model's own matrix products (the weights of every MatMul
  and Gemm in its bundle's step graph), one step after another, timed with
  NumPy/BLAS into preallocated arrays: no gates, no sampling, no Python
  around them beyond the calls;
- the same products as onnxruntime MatMuls alone, in one graph;
- one onnxruntime call of the bundle's step graph, states carried;
- the light path as a user calls it: `generate.load(MODEL).samples(...)`,
  the bundle on onnxruntime with the NumPy loop, records and all;
- the compiled TensorFlow loop on the same model's `best.keras`, called the
  same way (its first, compiling, call not timed), where TensorFlow is installed,
  in a child process: a light install's process has no TensorFlow threads.

Each is reported in chars/s (median of repeats, min-max) and as a fraction of
the bound at 1 and 64 streams: the median of each repeat's own ratio, so that a
slow spell of the machine falls on both sides of it. The light path's ratio to
the compiled loop is reported the same way. Issue #42 asks the light path for at least 0.8
of the bound at 1 stream (and the compiled loop's rate), 0.9 at 64.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

import generate

PRIME = "ROMEO:"
# Idle time before each measurement: OpenBLAS's threads spin for a while after the bound's products and
# slowed the next onnxruntime step by half (0.05 s idle) to a tenth (0.2 s); after 0.5 s, nothing.
SETTLE_SECONDS = 0.5


def graph_products(model_file) -> list[np.ndarray]:
    """The weight matrix of every MatMul and Gemm in a step graph, as float32 (K, M), in graph order."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_file)).graph
    arrays = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
    for node in graph.node:  # weights stored as float16 reach the products through a Cast
        if node.op_type == "Cast" and node.input[0] in arrays:
            arrays[node.output[0]] = arrays[node.input[0]]
    matrices = []
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm") and node.input[1] in arrays:
            weight = arrays[node.input[1]]
            transposed = any(a.name == "transB" and a.i for a in node.attribute)
            matrices.append(np.ascontiguousarray(weight.T if transposed else weight))
    return matrices


def numpy_products(matrices: list[np.ndarray], streams: int, steps: int) -> float:
    """chars/s of `steps` steps of the products alone in NumPy: (streams, K) @ (K, M) for each matrix."""
    inputs = [np.random.default_rng(0).standard_normal((streams, w.shape[0]), dtype=np.float32) for w in matrices]
    outputs = [np.empty((streams, w.shape[1]), np.float32) for w in matrices]
    pairs = list(zip(inputs, matrices, outputs))
    start = time.perf_counter()
    for _ in range(steps):
        for x, w, out in pairs:
            np.matmul(x, w, out=out)
    return steps * streams / (time.perf_counter() - start)


def onnxruntime_products(matrices: list[np.ndarray]):
    """A session of the same products as onnxruntime MatMuls alone, and its feeds for `streams` streams."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"y{i}"]) for i in range(len(matrices))]
    graph = helper.make_graph(
        nodes, "products",
        [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, ["batch", w.shape[0]]) for i, w in enumerate(matrices)],
        [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["batch", w.shape[1]]) for i, w in enumerate(matrices)],
        [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(matrices)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def rate(streams: int, steps: int) -> float:
        feeds = {f"x{i}": np.ones((streams, w.shape[0]), np.float32) for i, w in enumerate(matrices)}
        start = time.perf_counter()
        for _ in range(steps):
            session.run(None, feeds)
        return steps * streams / (time.perf_counter() - start)

    return rate


def onnxruntime_step(net):
    """chars/s of the bundle's own step graph alone, its states fed back each step."""
    def rate(streams: int, steps: int) -> float:
        states = net.initial_states(streams)
        tokens = np.zeros(streams, np.int32)
        start = time.perf_counter()
        for _ in range(steps):
            _, states = net.step(tokens, states)
        return steps * streams / (time.perf_counter() - start)

    return rate


def user_samples(model, length: int):
    """chars/s of `model.samples(...)`, as a user calls it: prime, seed, records and all."""
    def rate(streams: int, seed: int) -> float:
        start = time.perf_counter()
        outputs = model.samples(prime=PRIME, length=length, seed=seed, num_samples=streams)
        elapsed = time.perf_counter() - start
        written = sum(len(o.text) - len(PRIME) for o in outputs)
        if written != streams * length:
            raise SystemExit(f"expected {streams * length} characters, received {written}: a stream stopped early")
        return written / elapsed

    return rate


def compiled_in_child(model: str, length: int):
    """The compiled loop's `rate(streams, seed)`, measured in a child process that stays up between calls.

    Apart because TensorFlow's own threads would share this process with the light path, which a light
    install never has; the parent waits while the child samples, so the two never run at once.
    """
    child = subprocess.Popen([sys.executable, __file__, "--compiled-child", model, "--length", str(length)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def rate(streams: int, seed: int) -> float:
        child.stdin.write(f"{streams} {seed}\n")
        child.stdin.flush()
        answer = child.stdout.readline()
        if not answer:
            raise SystemExit("the compiled loop's process ended early (is TensorFlow installed? --no-tensorflow)")
        return float(answer)

    return rate


def serve_compiled(model: str, length: int) -> int:
    """The child's side: `streams seed` lines in, the compiled loop's chars/s out, one line each."""
    rate = user_samples(generate.load(model, checkpoint="best.keras"), length)
    for line in sys.stdin:
        streams, seed = map(int, line.split())
        print(rate(streams, seed), flush=True)
    return 0


def summary(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shakespeare", help="a shipped model's name or a bundle's directory")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--length", type=int, default=1000, help="characters per stream of each sampling call")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--no-tensorflow", action="store_true", help="leave out the compiled loop")
    parser.add_argument("--also", nargs="*", default=[], metavar="MODEL",
                        help="more light paths, against the same bound (e.g. shakespeare-int8)")
    parser.add_argument("--compiled-child", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compiled_child:
        return serve_compiled(args.compiled_child, args.length)

    light = generate.load(args.model)
    net = light.generator.sampler.net
    matrices = graph_products(light.run_dir.model_onnx)
    paths = {
        "products alone, NumPy (the bound)": lambda n, r: numpy_products(matrices, n, steps(n)),
        "products alone, onnxruntime MatMul": (lambda rate: lambda n, r: rate(n, steps(n)))(onnxruntime_products(matrices)),
        "one onnxruntime step alone": (lambda rate: lambda n, r: rate(n, steps(n)))(onnxruntime_step(net)),
        "light: bundle, onnxruntime + NumPy loop": (lambda rate: lambda n, r: rate(n, r))(user_samples(light, args.length)),
    }
    for other in args.also:
        paths[f"light: {other}"] = (lambda rate: lambda n, r: rate(n, r))(user_samples(generate.load(other), args.length))
    if not args.no_tensorflow:
        paths["compiled TensorFlow loop, best.keras"] = compiled_in_child(args.model, args.length)

    def steps(streams: int) -> int:  # about as long as a sampling call, so each figure is as steady
        return max(200, args.length * 2 // max(1, streams // 16))

    for streams in args.streams:  # warm every path: sessions, caches, the compiled loop's tracing
        for measure in paths.values():
            measure(streams, 0)
    rates = {(name, n): [] for name in paths for n in args.streams}
    for repeat in range(args.repeats):
        for streams in args.streams:
            for name, measure in paths.items():
                time.sleep(SETTLE_SECONDS)
                rates[name, streams].append(measure(streams, repeat + 1))

    config = light.generator.config.model
    print(f"{args.model}: {config.layers} x {config.units} {config.cell}, {len(matrices)} products a step "
          f"({sum(w.size for w in matrices) * 4 / 1e6:.1f} MB of float32 weights); {args.length} characters a stream "
          f"after {PRIME!r}; median of {args.repeats} (min-max), chars/s; fraction of the bound beside each\n")
    print("| path | " + " | ".join(f"{n} stream{'s' if n > 1 else ''}" for n in args.streams) + " |")
    print("|---|" + "---|" * len(args.streams))
    bound_name = next(iter(paths))
    for name in paths:
        cells = [f"{summary(rates[name, n])}: **{ratio(rates[name, n], rates[bound_name, n]):.2f}**" for n in args.streams]
        print(f"| {name} | " + " | ".join(cells) + " |")
    compiled, light_name = "compiled TensorFlow loop, best.keras", "light: bundle, onnxruntime + NumPy loop"
    if compiled in paths:
        print("\nlight / compiled loop: " + ", ".join(
            f"{ratio(rates[light_name, n], rates[compiled, n]):.2f} at {n} stream{'s' if n > 1 else ''}" for n in args.streams))
    return 0


def ratio(rates: list[float], baseline: list[float]) -> float:
    """The median of the repeats' own ratios: each repeat's pair ran a few seconds apart, so a slow spell of the
    machine falls on both sides of a ratio instead of on one side of a ratio of medians."""
    return statistics.median(a / b for a, b in zip(rates, baseline))


if __name__ == "__main__":
    raise SystemExit(main())
