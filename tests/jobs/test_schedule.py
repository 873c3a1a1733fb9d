"""Scheduled runs: job-file validation, idempotent reruns, sidecars that regenerate, locks, filters, retention."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.jobs.manifest import read_manifest
from generate.jobs.schedule import job_file_lock

from ..helpers import VERSE, one_line_error


def write_jobs(path, body, model):
    path.write_text(body.replace("MODEL", str(model)), encoding="utf-8")
    return path


POEMS = '''
[defaults]
out = "OUT/{date}/{job}-{n:02}"
[[job]]
name = "poem"
model = "MODEL"
count = 3
prime = ["Shall ", "Thou "]
temperature = [0.7, 1.2]
length = 80
formats = ["txt", "md", "json"]
'''


@pytest.fixture
def jobs(tmp_path, trained_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return write_jobs(tmp_path / "nightly.toml", POEMS.replace("OUT", "out"), trained_run)




@pytest.mark.parametrize("change, needles", [
    (('count = 3', 'cuont = 3'), ["job 'poem'", "unknown key 'cuont' (did you mean 'count'?)"]),
    (('temperature = [0.7, 1.2]', 'temprature = 0.7'), ["unknown key 'temprature' (did you mean 'temperature'?)"]),
    (('count = 3', 'count = "three"'), ["job 'poem'", "count: expected int, received str"]),
    (('count = 3', 'count = 0'), ["job 'poem'", "count: expected an integer >= 1"]),
    (('model = "', 'model = "/no/such/run'), ["job 'poem'", "model:"]),
    (('formats = ["txt", "md", "json"]', 'formats = ["mid"]'), ["job 'poem'", "formats: a text model writes"]),
    (('{n:02}', '{nn}'), ["job 'poem'", "out: expected fields from"]),
    (('{n:02}', 'x'), ["job 'poem'", "a template with {n} when count > 1"]),
    (('name = "poem"', 'name = "poem of the day"'), ["name: expected letters"]),
    (('[[job]]', '[[jobs]]'), ["unknown table 'jobs'"]),
    (('temperature = [0.7, 1.2]', 'temperature = [0.7, "hot"]'), ["temperature: expected a number"]),
    (('length = 80', 'length = 80\nkeep = "30 days"'), ["keep: expected"]),
    (('[defaults]', '[defaults'), ["not valid TOML"]),
    (('length = 80', 'length = 80\ncheckpoint = "model.h5"'), ["job 'poem': checkpoint:", "legacy .h5"]),
    # Sampling settings are checked by the command line's own rules, and named as job-file keys.
    (('length = 80', 'length = 80\ninstrument = "kazoo"'), ["job 'poem': instrument: expected a General MIDI number"]),
    (('length = 80', 'lines = 3\nacrostic = "AB"'), ["job 'poem': acrostic: expected 3 characters"]),
    (('length = 80', 'form = "5x4"'), ["job 'poem': form: this model's vocabulary has no '，'"]),
    (('length = 80', 'length = 80\nlines = 3'), ["job 'poem': length: expected none for a poem (lines is given)"]),
    (('length = 80', 'length = 80\ntop_k = 100000'), ["job 'poem': top_k: expected an integer in [0, "]),
    (('length = 80', 'length = 80\nvalid_only = true'), ["job 'poem': valid_only: expected a code or music run"]),
    (('prime = ["Shall ", "Thou "]', 'prime = ["Shall ", "§"]'), ["job 'poem': prime: 1 character(s) not in"]),
])
def test_malformed_job_files_fail_before_anything_runs(jobs, change, needles):
    jobs.write_text(jobs.read_text().replace(*change))
    result = CliRunner().invoke(cli, ["run", str(jobs)])
    one_line_error(result, 2, str(jobs), *needles)
    assert not (jobs.parent / "out").exists()


def test_unwritable_output_and_unknown_job(jobs, tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    jobs.write_text(jobs.read_text().replace('out = "out/', 'out = "blocker/'))
    one_line_error(CliRunner().invoke(cli, ["run", str(jobs)]), 2, "job 'poem'", "out:", "is a file")
    one_line_error(CliRunner().invoke(cli, ["run", str(jobs), "--job", "nope"]), 2, "--job 'nope': expected one of poem")


def test_run_writes_outputs_sidecars_and_manifest_and_reruns_idempotently(jobs, tmp_path, trained_run):
    runner = CliRunner()
    dry = runner.invoke(cli, ["run", str(jobs), "--run-id", "2026-11-22", "--dry-run"])
    assert dry.exit_code == 0 and dry.stdout.count("would write") == 9 and not (tmp_path / "out").exists()
    first = runner.invoke(cli, ["run", str(jobs), "--run-id", "2026-11-22"])
    assert first.exit_code == 0, first.stderr
    made = first.stdout.split()
    assert len(made) == 9 and "job poem: made 9 file(s)" in first.stderr
    folder = tmp_path / "out" / "2026-11-22"
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(snapshot) == 15  # nine outputs; six sidecars (a .json output is its own record)
    record = json.loads((folder / "poem-02.txt.json").read_text())
    assert record["prime"] == "Thou " and record["temperature"] == 1.2 and record["job"] == "poem" and record["n"] == 2
    assert (folder / "poem-02.txt").read_text() == record["text"] and record["text"].startswith("Thou ")
    sampled = record["text"][len("Thou "):]
    assert record["longest_copy"] == max((k for k in range(len(sampled) + 1) for i in range(len(sampled) - k + 1)
                                          if sampled[i : i + k] in VERSE), default=0)  # no max_copy: still measured
    assert json.loads((folder / "poem-01.json").read_text())["text"] == (folder / "poem-01.txt").read_text()
    # Rerunning the id makes nothing and changes nothing.
    again = runner.invoke(cli, ["run", str(jobs), "--run-id", "2026-11-22"])
    assert again.exit_code == 0 and again.stdout == "" and "3 output(s) already there" in again.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot
    # A lost output is remade byte for byte.
    for name in ("poem-02.txt", "poem-02.txt.json", "poem-02.md"):
        (folder / name).unlink()
    remade = runner.invoke(cli, ["run", str(jobs), "--run-id", "2026-11-22"])
    assert remade.exit_code == 0 and {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot
    manifest = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [r["n"] for r in manifest if r["event"] == "made"] == [1, 2, 3, 2]
    # The sidecar alone regenerates the output with `generate sample`.
    args = ["sample", record["run"], "--prime", record["prime"], "--seed", str(record["seed"]), "-t", str(record["temperature"]),
            "-n", str(record["length"])]
    assert runner.invoke(cli, args).stdout == record["text"] + "\n"
    shown = runner.invoke(cli, ["runs", "show", str(folder), "--json"])
    assert sum(json.loads(line)["seed"] == record["seed"] for line in shown.stdout.splitlines()) == 3  # txt, md, json


def test_existing_files_are_never_clobbered(jobs, tmp_path):
    folder = tmp_path / "out" / "2026-11-22"
    folder.mkdir(parents=True)
    (folder / "poem-01.txt").write_text("mine, not generated")
    result = CliRunner().invoke(cli, ["run", str(jobs), "--run-id", "2026-11-22"])
    assert result.exit_code == 1 and "poem-01.txt already exists" in result.stderr
    assert (folder / "poem-01.txt").read_text() == "mine, not generated"
    assert (folder / "poem-02.txt").exists()  # the other outputs were still made
    forced = CliRunner().invoke(cli, ["run", str(jobs), "--run-id", "2026-11-22", "--overwrite"])
    assert forced.exit_code == 0 and (folder / "poem-01.txt").read_text() != "mine, not generated"


def test_a_failed_job_does_not_stop_the_others(jobs, tmp_path, trained_run):
    jobs.write_text(jobs.read_text() + f'''
[[job]]
name = "picky"
model = "{trained_run}"
out = "out/picky-{{n}}"
count = 2
min_length = 100000
max_attempts = 2
[[job]]
name = "unique"
model = "{trained_run}"
out = "out/unique-{{n}}"
count = 2
prime = "Shall I"
length = 3
temperature = 0
dedupe = true
max_attempts = 2
''')
    result = CliRunner().invoke(cli, ["run", str(jobs), "--run-id", "r1"])
    assert result.exit_code == 1
    summaries = [line for line in result.stderr.splitlines() if line.startswith("job ")]
    assert len(summaries) == 3 and "job poem: made 9" in summaries[0]
    assert "rejected min_length 4" in summaries[1] and "FAILED" in summaries[1]
    assert "rejected dedupe 2" in summaries[2]  # greedy: the second output can only repeat the first
    assert "2 of 3 job(s) failed: picky, unique" in result.stderr.splitlines()[-1]


def test_retention_prunes_only_this_jobs_old_outputs(jobs, tmp_path):
    jobs.write_text(jobs.read_text().replace("count = 3", "count = 1\nkeep = 2").replace("{n:02}", "{run_id}"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    for run_id in ("2026-11-20", "2026-11-21", "2026-11-22"):
        assert CliRunner().invoke(cli, ["run", str(jobs), "--run-id", run_id]).exit_code == 0
    left = sorted(p.name for p in (tmp_path / "out").rglob("*.txt"))
    assert left == ["notes.txt", "poem-2026-11-21.txt", "poem-2026-11-22.txt"]
    assert not list((tmp_path / "out").rglob("poem-2026-11-20*"))


def test_lock_refuses_a_second_run_without_wait(jobs):
    with job_file_lock(jobs, wait=False):
        result = CliRunner().invoke(cli, ["run", str(jobs), "--no-wait"])
    one_line_error(result, 1, "another run", "is running this job file")


def generate_command(*args):
    return [sys.executable, "-c", "from generate.cli import main; main()", *args]


def test_concurrent_runs_and_kill_9_leave_only_whole_files(tmp_path, trained_run):  # ~20 s: three `generate run` processes, each starting TensorFlow
    jobs = write_jobs(tmp_path / "many.toml", POEMS.replace("OUT", str(tmp_path / "out")).replace("count = 3", "count = 16"),
                      trained_run)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    victim = subprocess.Popen(generate_command("run", str(jobs), "--run-id", "k"), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    victim.stdout.readline()  # it has written at least one file
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    folder = tmp_path / "out" / time.strftime("%Y-%m-%d")
    folder = next((tmp_path / "out").iterdir()) if not folder.exists() else folder
    # Two runs of the same id at once: the lock serialises them, and nothing is made twice.
    both = [subprocess.Popen(generate_command("run", str(jobs), "--run-id", "k"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    assert all(p.returncode == 0 for p in both), outputs
    assert len(outputs[0][0].split()) + len(outputs[1][0].split()) <= 48
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".")]  # no temp files left behind
    assert len(names) == 80  # 16 outputs x (txt, md, json); a sidecar beside each txt and md (a json is its own)
    for path in folder.glob("*.txt"):
        record = json.loads((folder / (path.name + ".json")).read_text())
        assert path.read_text() == record["text"]
    made = [r for r in read_manifest(tmp_path / "out" / "manifest.jsonl") if r.get("event") == "made"]
    assert sorted({r["n"] for r in made}) == list(range(1, 17))


def test_a_dry_run_lists_every_format_of_a_music_job(tmp_path):
    jobs = tmp_path / "tunes.toml"
    jobs.write_text('[[job]]\nname = "tune"\nmodel = "folk"\ncount = 2\nformats = ["mid", "png", "abc"]\n'
                    f'out = "{tmp_path}/out/{{job}}-{{n:02}}"\n')
    dry = CliRunner().invoke(cli, ["run", str(jobs), "--dry-run", "--run-id", "2026-12-07"])
    assert dry.exit_code == 0, dry.stderr
    listed = sorted(line.split()[-1].rsplit("/", 1)[-1] for line in dry.stdout.splitlines() if "would write" in line)
    assert listed == ["tune-01.abc", "tune-01.mid", "tune-01.png", "tune-02.abc", "tune-02.mid", "tune-02.png"], dry.stdout
    assert not (tmp_path / "out").exists()


def test_an_out_ending_with_a_slash_is_a_directory(tmp_path, trained_run):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[[job]]\nname = "poem"\nmodel = "{trained_run}"\ncount = 2\nlength = 20\nout = "{tmp_path}/new/"\n')
    result = CliRunner().invoke(cli, ["run", str(jobs), "--run-id", "2026-12-07"])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["poem-01.txt", "poem-01.txt.json", "poem-02.txt",
                                                                   "poem-02.txt.json"]
