"""Data-parallel training: two workers over loopback train as one device does, survive a killed worker,
resume on any number of workers, write nothing but through the chief, and refuse bad clusters and
mismatched workers before anything is written.

The workers are real processes on 127.0.0.1 (`--local-workers`, or TF_CONFIG
set by hand as on two hosts); the equivalence tolerance is the README's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from generate import faults
from generate.cli import cli
from generate.model.checkpoint import checkpoint_problem, load_trainable_model, read_training_state
from generate.model.rundir import RunDir
from generate.training.cluster import free_local_addresses

from ..helpers import TINY_MODEL, VERSE, one_line_error

TRAIN = [*TINY_MODEL, "--seed", "3", "--checkpoint-every", "20"]
LOSS_TOLERANCE = 2e-5  # nats: one and two replicas sum the same gradients in another order
WEIGHT_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Two epochs of TRAIN on one device, uninterrupted: what every distributed run must match."""
    base = tmp_path_factory.mktemp("straight")
    (base / "verse.txt").write_text(VERSE, encoding="utf-8")
    saved = os.environ.get("GENERATE_CACHE_DIR")
    os.environ["GENERATE_CACHE_DIR"] = str(base / "cache")
    try:
        result = CliRunner().invoke(cli, ["-q", "train", str(base / "run"), str(base / "verse.txt"), *TRAIN, "--epochs", "2"])
    finally:
        os.environ.pop("GENERATE_CACHE_DIR") if saved is None else os.environ.__setitem__("GENERATE_CACHE_DIR", saved)
    assert result.exit_code == 0, result.stderr
    return RunDir(base / "run")


def generate(*args, cwd=None, env=None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "generate", "-q", *map(str, args)], cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def assert_same_curve(run: RunDir, straight: RunDir, epochs: int) -> None:
    rows, reference = run.read_history(), straight.read_history()[:epochs]
    assert [r["global_step"] for r in rows] == [r["global_step"] for r in reference]
    for row, expected in zip(rows, reference):
        for column in ("train_loss", "val_loss"):
            assert abs(float(row[column]) - float(expected[column])) <= LOSS_TOLERANCE, (column, row, expected)


def tf_config(addresses: tuple[str, ...], index: int) -> dict:
    return {"TF_CONFIG": json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})}


def test_two_workers_train_as_one_device_survive_a_kill_and_resume_on_any_count(straight, tmp_path, verse_file):  # ~45 s: five worker processes
    run = RunDir(tmp_path / "run")
    # Every save of latest.keras takes 2 s more: worker 1 is killed while the chief saves.
    proc = generate("train", run.path, verse_file, *TRAIN, "--epochs", "2", "--local-workers", "2", env={faults.ENV: "delay:latest.keras:2"})
    deadline = time.monotonic() + 120
    while not (run.path.exists() and any(p.name.startswith(".latest.keras.") for p in run.path.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    workers = children(proc.pid)
    assert len(workers) == 2
    os.kill(workers[1], signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60  # the survivors notice within seconds; the launcher kills stragglers at 30 s
    assert proc.returncode == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: worker 1 ") and "SIGKILL" in lines[0] and "--resume" in lines[0], err
    assert checkpoint_problem(run.latest) is None and read_training_state(run.latest)["global_step"] == 20
    assert not any(p.name.startswith(".") for p in run.path.iterdir())

    # The rest of epoch 1 on one device, then epoch 2 on two workers started by hand, as on two hosts:
    # each in its own working directory, the run on a path both can read.
    resumed = CliRunner().invoke(cli, ["-q", "train", str(run.path), "--resume", "--epochs", "1"])
    assert resumed.exit_code == 0, resumed.stderr
    hosts = [tmp_path / "host0", tmp_path / "host1"]
    addresses = free_local_addresses(2)
    procs = []
    for index, host in enumerate(hosts):
        host.mkdir()
        procs.append(generate("train", run.path, "--resume", "--epochs", "2", cwd=host, env=tf_config(addresses, index)))
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert outputs[0][0].startswith(f"{run.path}\tepochs 2\tsteps 194\t") and outputs[0][1] == ""
    assert outputs[1][1] == "" and not any(hosts[1].iterdir())
    assert_same_curve(run, straight, 2)
    for got, expected in zip(load_trainable_model(run.latest).get_weights(), load_trainable_model(straight.latest).get_weights()):
        np.testing.assert_allclose(got, expected, atol=WEIGHT_TOLERANCE)
    # Only the chief logged: one TensorBoard file per launch that trained (two with workers, one alone).
    assert len(list(run.logs.glob("events.out.tfevents.*"))) == 3


def thread_count(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def thread_counts_while_training(proc: subprocess.Popen, run: RunDir, pids) -> dict[int, list[int]]:
    """Each training process's thread count, read every 50 ms from the first checkpoint (training under way) to its end."""
    deadline = time.monotonic() + 240
    while not run.latest.exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    counts: dict[int, list[int]] = {pid: [] for pid in pids()}
    while proc.poll() is None:
        for pid, seen in counts.items():
            if (count := thread_count(pid)) is not None:
                seen.append(count)
        time.sleep(0.05)
    return counts


@pytest.mark.parametrize("workers", [2, 1])
def test_long_runs_start_no_threads_per_step(tmp_path, verse_file, workers):  # ~15 s
    # A collective with the engine's own timeout started a thread per step that slept out the timeout: two
    # workers grew by ~260 threads a second until one aborted. Here 194 steps, several seconds of them watched
    # (hundreds of threads at that rate); a handful of threads may start late.
    run = RunDir(tmp_path / "run")
    flags = ["--local-workers", "2"] if workers == 2 else []
    proc = generate("train", run.path, verse_file, *TRAIN, "--epochs", "2", "--val-every", "50", *flags)
    counts = thread_counts_while_training(proc, run, (lambda: children(proc.pid)) if workers == 2 else (lambda: [proc.pid]))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "steps 194" in out, err
    assert len(counts) == workers
    for pid, seen in counts.items():
        assert len(seen) > 20, (pid, seen)  # the run was watched for most of its steps
        assert max(seen) - seen[0] <= 6, (pid, seen[0], max(seen))


def test_workers_started_with_other_options_refuse_before_writing(tmp_path, verse_file):
    hosts = [tmp_path / "host0", tmp_path / "host1"]  # each worker's own working directory, as on two machines
    addresses = free_local_addresses(2)
    procs = []
    for index, host in enumerate(hosts):
        host.mkdir()
        seed = ["--seed", "4"] if index else []
        procs.append(generate("train", "run", verse_file, *TRAIN, *seed, "--epochs", "1", cwd=host, env=tf_config(addresses, index)))
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 2 and out == "", err
        assert err.count("\n") == 1 and "worker 1 (127.0.0.1:" in err and "training options" in err, err
    assert not any(any(host.iterdir()) for host in hosts)


@pytest.mark.parametrize("env, args, needles", [
    ({"TF_CONFIG": "{not json"}, [], ["TF_CONFIG", "expected JSON"]),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}'}, [], ["'a:1' is listed twice"]),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}'}, [], ["task.index 2", "0 to 1"]),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}'}, [], ["'b'", "host:port"]),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}'}, [], ["'ps'"]),
    ({"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}'}, ["--local-workers", "2"],
     ["not both"]),
    ({}, ["--batch-size", "5", "--local-workers", "2"], ["--batch-size 5", "divisible by 2"]),
    ({}, ["--devices", "two"], ["--devices", "'two'"]),
    ({}, ["--devices", "2", "--local-workers", "2"], ["not both"]),
])
def test_bad_clusters_and_replica_options_are_one_line_before_anything_runs(tmp_path, verse_file, monkeypatch, env, args, needles):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "run"), str(verse_file), *TINY_MODEL, *args])
    one_line_error(result, 2, *needles)
    assert not (tmp_path / "run").exists()


def test_a_port_in_use_is_named(tmp_path, verse_file, monkeypatch):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": [taken, "127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}))
        result = CliRunner().invoke(cli, ["train", str(tmp_path / "run"), str(verse_file), *TINY_MODEL])
    one_line_error(result, 2, f"worker 0 ({taken})", "already in use")
    assert not (tmp_path / "run").exists()
