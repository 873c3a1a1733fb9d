"""Who trains together: the replica options, the cluster from TF_CONFIG, and the checks made before any worker starts.

Nothing here imports TensorFlow, so a bad cluster or option is a one-line
error in well under a second, before a worker loads anything.

A cluster is the engine's own: TensorFlow's `TF_CONFIG` environment variable,
as `tf.distribute.MultiWorkerMirroredStrategy` reads it. Worker 0 (or the
task of type "chief", when there is one) is the chief: the only process that
writes into the run directory.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass

from ..errors import UsageError

CLUSTER_ENVIRONMENT = "TF_CONFIG"
# Set in the processes `--local-workers` starts, with the worker's index: they
# report a lost peer to their launcher, which names it, instead of each printing it.
LOCAL_WORKER_ENVIRONMENT = "GENERATE_LOCAL_WORKER"
_ADDRESS = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d+)$")


@dataclass(frozen=True)
class ReplicaOptions:
    """How many devices and processes one `generate train` uses; verified once by `verify_replica_options`.

    Neither shapes the model or the data, so a run may resume with other values.
    """

    devices: str = ""  # "" one device; "all" every local GPU; "N" the first N local GPUs, as one process
    local_workers: int = 0  # 0: this process alone (or TF_CONFIG's cluster); N: start N worker processes on 127.0.0.1

    @property
    def device_count(self) -> int | None:
        """The number of local devices asked for: None for all of them, 0 for the default single device."""
        if self.devices == "all":
            return None
        return int(self.devices) if self.devices else 0


def verify_replica_options(options: ReplicaOptions, batch_size: int | None = None) -> ReplicaOptions:
    """Checks the options alone, and the global batch's split where the replica count is already known.

    Raises:
        UsageError: naming `--devices` or `--local-workers` and what was expected.
    """
    if options.devices not in ("", "all") and not (options.devices.isdigit() and int(options.devices) >= 1):
        raise UsageError(f"--devices: expected 'all' or a whole number >= 1, received {options.devices!r}")
    if options.local_workers < 0:
        raise UsageError(f"--local-workers: expected a whole number >= 1, received {options.local_workers}")
    if options.local_workers and os.environ.get(CLUSTER_ENVIRONMENT):
        raise UsageError(
            f"--local-workers {options.local_workers}: {CLUSTER_ENVIRONMENT} is set, so this process is already one worker of a "
            f"cluster; expected either --local-workers or {CLUSTER_ENVIRONMENT}, not both"
        )
    if options.local_workers and batch_size is not None:
        check_batch_split(batch_size, options.local_workers, f"--local-workers {options.local_workers}")
    return options


def check_batch_split(batch_size: int, replicas: int, source: str) -> None:
    """Each replica trains a contiguous block of the B streams, so B must split evenly."""
    if batch_size % replicas:
        raise UsageError(
            f"--batch-size {batch_size}: {source} gives {replicas} replicas, and each trains an equal block of the streams; "
            f"expected a batch size divisible by {replicas} (e.g. {max(replicas, batch_size - batch_size % replicas)})"
        )


@dataclass(frozen=True)
class ClusterSpec:
    """This process's place in a multi-worker cluster, read from TF_CONFIG."""

    addresses: tuple[str, ...]  # every task's host:port, chief first
    index: int  # this process's position in `addresses`
    has_chief: bool = False  # the first address is a task of type "chief", not worker 0

    @property
    def size(self) -> int:
        return len(self.addresses)

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def address(self) -> str:
        return self.addresses[self.index]

    def name(self, index: int) -> str:
        return f"worker {index} ({self.addresses[index]})"

    def to_tf_config(self) -> str:
        """This spec as TF_CONFIG text: how `--local-workers` tells each process its place."""
        chiefs = list(self.addresses[: int(self.has_chief)])
        cluster = {"worker": list(self.addresses[len(chiefs):]), **({"chief": chiefs} if chiefs else {})}
        task = {"type": "chief", "index": 0} if self.has_chief and self.index == 0 else {"type": "worker", "index": self.index - len(chiefs)}
        return json.dumps({"cluster": cluster, "task": task})

    def with_index(self, index: int) -> ClusterSpec:
        return ClusterSpec(self.addresses, index, self.has_chief)


@dataclass(frozen=True)
class Replication:
    """Where one process trains: alone on one device, on several local devices, or as one worker of a cluster."""

    cluster: ClusterSpec | None = None  # None: this process alone
    device_count: int | None = 0  # local devices: 0 the default one, None all GPUs, N the first N
    cpu_threads: int = 0  # TensorFlow's CPU threads in this process; 0 leaves the default

    @property
    def distributed(self) -> bool:
        return self.cluster is not None or self.device_count != 0

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief

    def describe(self, replicas: int) -> str:
        """e.g. `2 replicas (2 workers x 1 device)`, for logs and errors."""
        workers = self.cluster.size if self.cluster else 1
        per_worker = max(replicas // workers, 1)
        return (f"{replicas} replicas ({workers} worker{'s' if workers > 1 else ''} x {per_worker} "
                f"device{'s' if per_worker > 1 else ''})")

    def worker_namer(self, replicas: int):
        """Maps a replica's index to the worker (or device) that runs it, for errors."""
        if self.cluster is None:
            return lambda replica: f"device {replica}"
        per_worker = max(replicas // self.cluster.size, 1)
        return lambda replica: self.cluster.name(replica // per_worker)


def cluster_from_environment(environ: dict | None = None) -> ClusterSpec | None:
    """Reads and checks TF_CONFIG; None when it is unset or names a one-task cluster.

    Raises:
        UsageError: TF_CONFIG is not JSON, names no cluster, gives this task a
            type or index the cluster lacks, lists an address twice or one
            without a port, or uses job types other than chief and worker.
    """
    raw = (os.environ if environ is None else environ).get(CLUSTER_ENVIRONMENT, "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: expected JSON with 'cluster' and 'task', received unparsable text ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict) or not isinstance(spec.get("task"), dict):
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: expected a JSON object with 'cluster' and 'task' objects, received {raw[:80]!r}")
    cluster, task = spec["cluster"], spec["task"]
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: job type {unknown[0]!r} is not used here; expected only 'chief' and 'worker' "
                         "(data-parallel training has no parameter servers or evaluators)")
    jobs = {}
    for job in ("chief", "worker"):
        addresses = cluster.get(job, [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise UsageError(f"{CLUSTER_ENVIRONMENT}: cluster.{job}: expected a list of 'host:port' strings, received {addresses!r}")
        jobs[job] = addresses
    if len(jobs["chief"]) > 1:
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: cluster.chief: expected at most one address, received {len(jobs['chief'])}")
    addresses = tuple(jobs["chief"] + jobs["worker"])
    if not addresses:
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: the cluster lists no workers; expected at least one 'host:port'")
    for address in addresses:
        match = _ADDRESS.match(address)
        if not match or not 0 < int(match["port"]) < 65536:
            raise UsageError(f"{CLUSTER_ENVIRONMENT}: address {address!r}: expected 'host:port' with a port from 1 to 65535")
    duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
    if duplicates:
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: address {duplicates[0]!r} is listed twice; expected one address per task")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in ("chief", "worker") or not jobs[kind]:
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: task.type {kind!r}: expected one of the cluster's job types "
                         f"({', '.join(j for j in ('chief', 'worker') if jobs[j])})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise UsageError(f"{CLUSTER_ENVIRONMENT}: task.index {index!r}: expected 0 to {len(jobs[kind]) - 1} for the "
                         f"{len(jobs[kind])} {kind} address(es)")
    position = index if kind == "chief" else len(jobs["chief"]) + index
    if len(addresses) == 1:
        return None
    return ClusterSpec(addresses, position, bool(jobs["chief"]))


def check_port_free(cluster: ClusterSpec) -> None:
    """This worker's own port must be free before the engine listens on it.

    Raises:
        UsageError: another process holds the port.
    """
    match = _ADDRESS.match(cluster.address)
    port = int(match["port"])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError as exc:
            raise UsageError(
                f"{CLUSTER_ENVIRONMENT}: {cluster.name(cluster.index)}: port {port} is already in use ({exc.strerror}); "
                "expected a free port for this worker (stop the process holding it, or choose another port)"
            ) from None


def free_local_addresses(count: int) -> tuple[str, ...]:
    """`count` loopback addresses on ports the system reports free, for `--local-workers`."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return tuple(f"127.0.0.1:{s.getsockname()[1]}" for s in sockets)
    finally:
        for s in sockets:
            s.close()


_TASK_IN_MESSAGE = re.compile(r"/job:(?P<job>chief|worker)/replica:\d+/task:(?P<task>\d+)")


def lost_worker_in(message: str, cluster: ClusterSpec) -> str:
    """Names the worker an engine error blames, e.g. `worker 1 (10.0.0.2:2222)`, or says it is unknown."""
    for match in _TASK_IN_MESSAGE.finditer(message):
        task = int(match["task"])
        position = task if match["job"] == "chief" else task + cluster.has_chief
        if 0 <= position < cluster.size and position != cluster.index:
            return cluster.name(position)
    return "another worker"

