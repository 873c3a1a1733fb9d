"""The two candidate engines' all-reduce, side by side: tf.distribute against jax.distributed, 2 processes on loopback.

Each engine sums one float32 buffer the size of a model's gradients across
two processes on 127.0.0.1, the collective every training step makes, and
reports the median time of `--repeats` all-reduces after warm-up.

    python benchmarks/allreduce.py --engine tensorflow [--params 3300000]
    ~/venvs/jaxprobe/bin/python benchmarks/allreduce.py --engine jax   # a venv with jax (CPU) installed

JAX's CPU collectives across processes need its gloo implementation
(`jax_cpu_collectives_implementation`); this script turns it on.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tensorflow_worker(index: int, ports: list[int], params: int, repeats: int) -> list[float]:
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                          "task": {"type": "worker", "index": index}})
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    buffer = tf.ones([params], tf.float32)

    @tf.function
    def all_reduce():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("sum", tf.identity(buffer)))

    assert float(all_reduce().numpy()[0]) == strategy.num_replicas_in_sync  # a real sum across processes
    times = []
    for _ in range(repeats + 3):
        start = time.perf_counter()
        all_reduce().numpy()
        times.append(time.perf_counter() - start)
    return times[3:]


def jax_worker(index: int, ports: list[int], params: int, repeats: int) -> list[float]:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{ports[0]}", num_processes=len(ports), process_id=index)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()), ("replica",))
    sharding = NamedSharding(mesh, PartitionSpec("replica"))
    local = [jax.device_put(np.ones((1, params), np.float32), d) for d in jax.local_devices()]
    stacked = jax.make_array_from_single_device_arrays((len(jax.devices()), params), sharding, local)
    summed = jax.jit(lambda x: jnp.sum(x, axis=0), out_shardings=NamedSharding(mesh, PartitionSpec()))
    total = summed(stacked)
    assert float(np.asarray(total.addressable_shards[0].data)[0]) == len(jax.devices())  # a real sum across processes
    times = []
    for _ in range(repeats + 3):
        start = time.perf_counter()
        summed(stacked).block_until_ready()
        times.append(time.perf_counter() - start)
    return times[3:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("tensorflow", "jax"), required=True)
    parser.add_argument("--params", type=int, default=3_300_000, help="float32 values per all-reduce (a 2x512 LSTM: 3.3 M)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ports", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        ports = [int(p) for p in args.ports.split(",")]
        run = tensorflow_worker if args.engine == "tensorflow" else jax_worker
        print(json.dumps(run(args.worker, ports, args.params, args.repeats)))
        return
    ports = free_ports(2)
    command = [sys.executable, __file__, "--engine", args.engine, "--params", str(args.params), "--repeats", str(args.repeats),
               "--ports", ",".join(map(str, ports))]
    workers = [subprocess.Popen([*command, "--worker", str(i)], stdout=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    times = json.loads(outputs[0].strip().splitlines()[-1])
    median = statistics.median(times)
    megabytes = args.params * 4 / 1e6
    print(f"{args.engine}: all-reduce of {megabytes:.1f} MB over 2 processes on loopback: median {median * 1e3:.1f} ms "
          f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}, {len(times)} repeats), {megabytes / median:.0f} MB/s")


if __name__ == "__main__":
    main()
