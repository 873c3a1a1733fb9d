"""Signals, damaged files and repeatability: the promises users rely on unattended."""

import io
import os
import signal
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
from click.testing import CliRunner

from generate.cli import cli
from generate.model.checkpoint import read_training_state
from generate.model.rundir import RunDir

from ..helpers import TINY_MODEL, VERSE


def test_sigterm_saves_a_resumable_checkpoint(tmp_path):
    corpus = tmp_path / "verse.txt"
    corpus.write_text(VERSE)
    run = tmp_path / "run"
    env = {**os.environ, "GENERATE_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "generate", "train", str(run), str(corpus), *TINY_MODEL, "--epochs", "500"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "history.csv").exists() and time.monotonic() < deadline:  # wait for one epoch
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    assert out == ""
    state = read_training_state(RunDir(run).latest)
    assert state["global_step"] > 0 and not state["finished"]
    resumed = CliRunner().invoke(cli, ["-q", "train", str(run), "--resume", "--epochs", str(state["epoch"] + 1)])
    assert resumed.exit_code == 0, resumed.stderr
    assert read_training_state(RunDir(run).latest)["epoch"] == state["epoch"] + 1


def test_damaged_checkpoint_is_a_clean_error_and_is_left_alone(trained_run, tmp_path):
    damaged = tmp_path / "run"
    damaged.mkdir()
    for name in ("config.json", "vocab.json"):
        (damaged / name).write_bytes((trained_run / name).read_bytes())
    (damaged / "best.keras").write_bytes((trained_run / "best.keras").read_bytes()[:5000])
    result = CliRunner().invoke(cli, ["sample", str(damaged), "--seed", "1"])
    assert result.exit_code == 1 and "best.keras" in result.stderr and "damaged" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (damaged / "best.keras").stat().st_size == 5000


def test_preview_and_progress_go_to_stderr_only(tmp_path, verse_file):
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "run"), str(verse_file), *TINY_MODEL, "--epochs", "1", "--preview-every", "50"])
    assert result.exit_code == 0, result.stderr
    assert "preview at step 50" in result.stderr and "epoch 1/1" in result.stderr and "bpc" in result.stderr
    assert result.stdout.count("\n") == 1 and "best val" in result.stdout


def test_export_is_smaller_and_samples_identically(trained_run, tmp_path):
    runner = CliRunner()
    exported = tmp_path / "exported"
    assert runner.invoke(cli, ["export", str(trained_run), str(exported), "--format", "keras"]).exit_code == 0
    assert (exported / "best.keras").stat().st_size < (trained_run / "best.keras").stat().st_size
    from generate.fileio import sha256_file
    from generate.model.checkpoint import checkpoint_problem
    assert RunDir(exported).recorded_checksums()["best.keras"] == [sha256_file(exported / "best.keras")]
    assert checkpoint_problem(exported / "best.keras") is None
    with zipfile.ZipFile(exported / "best.keras") as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        assert "optimizer" not in weights  # weights only: no Adam moments
    a = runner.invoke(cli, ["sample", str(trained_run), "-n", "60", "--seed", "2"]).stdout
    b = runner.invoke(cli, ["sample", str(exported), "-n", "60", "--seed", "2"]).stdout
    assert a == b and len(a) > 0
    again = runner.invoke(cli, ["export", str(trained_run), str(exported), "--format", "keras"])
    assert again.exit_code == 2 and "expected a new or empty directory" in again.stderr


def test_float16_export_halves_the_weights_and_keeps_the_loss(trained_run, tmp_path):
    from generate.model.rundir import RunDir
    from generate.training.scoring import score_validation

    runner = CliRunner()
    full, half = tmp_path / "full", tmp_path / "half"
    assert runner.invoke(cli, ["export", str(trained_run), str(full), "--format", "keras"]).exit_code == 0
    assert runner.invoke(cli, ["export", str(trained_run), str(half), "--float16", "--format", "keras"]).exit_code == 0

    def arrays(run):
        found = {}
        with zipfile.ZipFile(run / "best.keras") as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
            weights.visititems(lambda name, item: found.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
        return found

    full_arrays, half_arrays = arrays(full), arrays(half)
    assert full_arrays.keys() == half_arrays.keys() and {a.dtype for a in half_arrays.values()} == {np.dtype("float16")}
    assert sum(a.nbytes for a in half_arrays.values()) * 2 == sum(a.nbytes for a in full_arrays.values())
    assert abs(score_validation(RunDir(half)).nats - score_validation(RunDir(full)).nats) < 0.01
    sampled = runner.invoke(cli, ["sample", str(half), "-n", "40", "--seed", "1"])
    assert sampled.exit_code == 0 and len(sampled.stdout) > 40


def test_stale_temp_files_are_removed_on_resume(trained_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    (run / ".latest.keras.abc123.keras").write_bytes(b"half a checkpoint")
    result = CliRunner().invoke(cli, ["-q", "train", str(run), "--resume"])
    assert result.exit_code == 0, result.stderr
    assert not (run / ".latest.keras.abc123.keras").exists()
