"""The fault suite: full disks, damaged checkpoints, kills before the first checkpoint, signals mid-save.

Faults are injected deterministically through GENERATE_FAULTS (generate/faults.py):
a write that fails with ENOSPC, a SIGKILL in the middle of a write, a save slowed
down so that a signal lands inside it.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from generate import faults
from generate.cli import cli
from generate.errors import WriteError
from generate.jobs.manifest import append_manifest, read_manifest
from generate.model.checkpoint import checkpoint_problem, load_trainable_model, read_training_state
from generate.model.rundir import RunDir

from ..helpers import TINY_MODEL, VERSE, one_line_error

TRAIN = [*TINY_MODEL, "--dropout", "0.1", "--seed", "3", "--checkpoint-every", "20"]


@pytest.fixture(autouse=True)
def fresh_fault_counters(monkeypatch):
    monkeypatch.setattr(faults, "_writes", collections.Counter())
    monkeypatch.delenv(faults.ENV, raising=False)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One epoch of TRAIN, uninterrupted: what every faulty run must end up equal to."""
    base = tmp_path_factory.mktemp("straight")
    (base / "verse.txt").write_text(VERSE, encoding="utf-8")
    result = train(base / "run", str(base / "verse.txt"), *TRAIN, "--epochs", "1")
    assert result.exit_code == 0, result.stderr
    return base / "run"


def train(run, *args):
    return CliRunner().invoke(cli, ["-q", "train", str(run), *args])


def assert_same_training(a, b):
    """Bit-identical weights in `latest.keras`, and the same losses in the history."""
    for wa, wb in zip(load_trainable_model(RunDir(a).latest).get_weights(), load_trainable_model(RunDir(b).latest).get_weights()):
        np.testing.assert_array_equal(wa, wb)

    def losses(run):
        return [(r["epoch"], r["global_step"], r["train_loss"], r["val_loss"]) for r in RunDir(run).read_history()]

    assert losses(a) == losses(b) and losses(a)


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_full_disk_during_a_checkpoint_keeps_the_last_one_and_resume_ends_the_same(straight, tmp_path, verse_file, monkeypatch):
    monkeypatch.setenv(faults.ENV, "enospc:latest.keras:3")  # the third save, at step 60
    failed = train(tmp_path / "run", str(verse_file), *TRAIN, "--epochs", "1")
    one_line_error(failed, 1, "latest.keras", "No space left on device")
    run = RunDir(tmp_path / "run")
    assert checkpoint_problem(run.latest) is None and read_training_state(run.latest)["global_step"] == 40
    assert not leftovers(run.path)
    monkeypatch.delenv(faults.ENV)
    resumed = train(run.path, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert_same_training(straight, run.path)


def test_full_disk_on_the_history_names_it_and_leaves_a_resumable_run(tmp_path, verse_file, monkeypatch):
    monkeypatch.setenv(faults.ENV, "enospc:history.csv")
    one_line_error(train(tmp_path / "run", str(verse_file), *TRAIN, "--epochs", "1"), 1, "history.csv", "No space left")
    assert not RunDir(tmp_path / "run").history.exists()
    monkeypatch.delenv(faults.ENV)
    assert train(tmp_path / "run", "--resume").exit_code == 0
    assert len(RunDir(tmp_path / "run").read_history()) == 1


def test_tensorboard_write_errors_name_the_log_directory(tmp_path):
    from generate.model.backend import TensorBoardLog

    blocked = tmp_path / "logs"
    blocked.write_text("a file where the log directory should be")
    with pytest.raises(WriteError, match="cannot write .*logs"):
        TensorBoardLog(blocked / "run").scalars(1, loss=1.0)


def test_full_disk_on_a_sample_keeps_the_old_file(trained_run, tmp_path, monkeypatch):
    out = tmp_path / "poem.txt"
    out.write_text("mine")
    monkeypatch.setenv(faults.ENV, "enospc:poem.txt")
    result = CliRunner().invoke(cli, ["sample", str(trained_run), "-n", "40", "--seed", "1", "-o", str(out), "--overwrite"])
    one_line_error(result, 1, "poem.txt", "No space left on device")
    assert out.read_text() == "mine" and not leftovers(tmp_path)


def test_manifest_appends_survive_a_full_disk_and_a_torn_line(tmp_path, monkeypatch):
    manifest = tmp_path / "manifest.jsonl"
    append_manifest(manifest, {"n": 1})
    monkeypatch.setenv(faults.ENV, "enospc:manifest.jsonl")
    with pytest.raises(WriteError, match="manifest.jsonl.*No space left"):
        append_manifest(manifest, {"n": 2})
    assert manifest.read_text() == '{"n": 1}\n'
    monkeypatch.delenv(faults.ENV)
    with open(manifest, "a") as handle:  # what a kill mid-append leaves
        handle.write('{"n": 2, "fi')
    append_manifest(manifest, {"n": 3})
    assert [r["n"] for r in read_manifest(manifest)] == [1, 3]


def flip_byte(path, offset=-20_000):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_latest_is_flagged_and_resume_falls_back_exactly(straight, tmp_path):
    intact, run = RunDir(tmp_path / "intact"), RunDir(tmp_path / "run")
    shutil.copytree(straight, intact.path)
    shutil.copytree(straight, run.path)
    flip_byte(run.latest)
    info = CliRunner().invoke(cli, ["info", str(run.path)])
    assert info.exit_code == 0 and any(line.startswith("latest:") and "DAMAGED" in line for line in info.stdout.splitlines())
    assert json.loads(CliRunner().invoke(cli, ["info", str(run.path), "--json"]).stdout)["checkpoints"]["latest"]["intact"] is False
    resumed = train(run.path, "--resume", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.stderr
    assert "passed over latest.keras" in resumed.stderr and "resuming from previous.keras" in resumed.stderr
    assert train(intact.path, "--resume", "--epochs", "2").exit_code == 0
    assert_same_training(intact.path, run.path)


def test_no_intact_checkpoint_is_a_one_line_error_that_touches_nothing(straight, tmp_path):
    shutil.copytree(straight, tmp_path / "run")
    run = RunDir(tmp_path / "run")
    for path in (run.latest, run.previous, run.best):
        flip_byte(path)
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    one_line_error(train(run.path, "--resume", "--epochs", "2"), 1, "no intact checkpoint", "latest.keras", "best.keras", "move the damaged")
    assert {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()} == before
    sampled = CliRunner().invoke(cli, ["sample", str(run.path), "-n", "10"])
    one_line_error(sampled, 1, "best.keras", "damaged", "sha256")
    aside = tmp_path / "damaged"  # what the error says to do
    aside.mkdir()
    for path in (run.latest, run.previous, run.best):
        path.rename(aside / path.name)
    restarted = train(run.path, "--resume")
    assert restarted.exit_code == 0 and "starting it again" in restarted.stderr, restarted.stderr
    assert_same_training(straight, run.path)


def killed_while_writing(name, run, verse_file):
    """Starts `generate train` in a process that SIGKILLs itself during the first write of `name`."""
    env = {**os.environ, faults.ENV: f"kill:{name}:1"}
    args = [sys.executable, "-m", "generate", "-q", "train", str(run), str(verse_file), *TRAIN, "--epochs", "1"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def test_a_run_killed_before_its_first_checkpoint_continues_with_resume(straight, tmp_path, verse_file):
    run = tmp_path / "run"
    assert killed_while_writing("latest.keras", run, verse_file).returncode == -signal.SIGKILL
    assert RunDir(run).is_run() and not RunDir(run).latest.exists()
    assert "none yet" in CliRunner().invoke(cli, ["info", str(run)]).stdout
    again = train(run, str(verse_file), *TRAIN, "--epochs", "1")  # the same command, without --resume
    one_line_error(again, 2, "before its first checkpoint", f"generate train {run} --resume")
    resumed = train(run, str(verse_file), *TRAIN, "--epochs", "1", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "starting it again from its recorded configuration" in resumed.stderr
    assert not leftovers(run)
    assert_same_training(straight, run)


def test_a_run_killed_while_being_created_leaves_nothing_half_made(tmp_path, verse_file):
    run = tmp_path / "run"
    assert killed_while_writing("config.json", run, verse_file).returncode == -signal.SIGKILL
    assert not run.exists() and [p.name.startswith(".run.new-") for p in tmp_path.iterdir()].count(True) == 1
    resumed = train(run, str(verse_file), *TRAIN, "--epochs", "1", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "starting it now" in resumed.stderr and read_training_state(RunDir(run).latest)["finished"]
    assert not leftovers(tmp_path)
    one_line_error(train(tmp_path / "never", "--resume"), 2, "never", "no such directory")


def test_a_second_signal_during_a_save_lets_it_finish(tmp_path, verse_file):
    run = RunDir(tmp_path / "run")
    # Every save of latest.keras waits 3 s before it commits: a window the signals land in.
    env = {**os.environ, faults.ENV: "delay:latest.keras:3"}
    args = [sys.executable, "-m", "generate", "train", str(run.path), str(verse_file), *TRAIN, "--epochs", "50"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not (run.path.exists() and any(p.name.startswith(".latest.keras.") for p in run.path.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "finishing the checkpoint being saved" in err and "Traceback" not in err and out == ""
    assert not leftovers(run.path) and checkpoint_problem(run.latest) is None
    assert read_training_state(run.latest)["global_step"] == 20  # the save that was under way, whole


def test_a_sample_with_no_notes_is_named_in_a_warning_and_valid_only_redraws_it(tmp_path):
    from generate.music.render import render_music
    from generate.sampling.generator import is_valid, load_generator

    silent, tune = "M:3/4 K:-2|_9|", "M:3/4 K:-2|M?M9|-?_9|"  # a bar of rest; two notes and a rest
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("generate.music.render")
    logger.addHandler(handler)
    try:
        facts = render_music(silent, tmp_path / "silent.mid")
        render_music(tune, tmp_path / "tune.mid")
    finally:
        logger.removeHandler(handler)
    assert facts["notes"] == 0
    assert [r.getMessage() for r in records if r.levelno == logging.WARNING] == [
        f"{tmp_path / 'silent.mid'}: the sample decoded to no notes, so the file holds silence (--valid-only redraws such samples)"]
    folk = load_generator("folk")
    assert not is_valid(folk.facts, silent) and is_valid(folk.facts, tune)
