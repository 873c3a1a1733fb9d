import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from generate.cli import cli

from ..helpers import TINY_MODEL, one_line_error


@pytest.fixture
def runner():
    return CliRunner()


def run(runner, *args):
    return runner.invoke(cli, [str(a) for a in args])




@pytest.mark.parametrize(
    "args,code,needles",
    [
        (["sample", "{run}", "--temperature", "-1"], 2, ["--temperature", "-1"]),
        (["sample", "{run}", "--top-p", "1.5"], 2, ["--top-p"]),
        (["sample", "{run}", "-t", "1e6"], 2, ["--temperature", "[0, 3]"]),
        (["sample", "{run}", "--lines", "14", "-n", "100"], 2, ["--length", "its lines set its length"]),
        (["sample", "{run}", "-n", "10", "-o", "/proc/generate-test/out.txt"], 2, ["-o", "cannot write in '/proc'"]),
        (["sample", "{run}", "--top-k", "100000", "--seed", "1"], 2, ["--top-k", "vocab size"]),
        (["sample", "{run}", "--prime", "§", "--seed", "1"], 2, ["--prime", "'§'"]),
        (["sample", "{run}", "--checkpoint", "model.h5"], 2, ["legacy .h5"]),
        (["sample", "{tmp}", "--seed", "1"], 2, ["expected a run directory"]),
        (["sample", "{tmp}/nope"], 2, ["no such directory"]),
        (["train", "{tmp}/new", "{tmp}/missing.txt"], 2, ["missing.txt", "no such file"]),
        (["train", "{tmp}/new"], 2, ["missing SOURCES"]),
        (["train", "{tmp}/new", "{tmp}/bad.txt"], 1, ["bad.txt", "invalid UTF-8 at byte 3"]),
        (["train", "{tmp}/new", "{tmp}/short.txt", *TINY_MODEL], 1, ["too short", "4 x 16 + 1 = 65"]),
        (["train", "{tmp}/new", "{tmp}/short.txt", "--units", "0"], 2, ["--units"]),
        (["train", "{run}", "{tmp}/short.txt"], 2, ["already exists", "--resume"]),
        (["info", "{tmp}"], 2, ["expected a run directory"]),
        (["sample", "{run}", "-n", "10", "-o", "{tmp}/afile/out.txt"], 2, ["-o", "is a file"]),
        (["sample", "{run}", "-N", "2", "-o", "{tmp}/afile"], 2, ["expected a directory for 2 samples"]),
        (["sample", "{run}", "--stop", ""], 2, ["--stop", "non-empty"]),
        (["train", "{tmp}/afile/run", "{tmp}/short.txt"], 2, ["run", "is a file"]),
        (["train", "{tmp}/new", "{tmp}/binaries"], 1, ["binaries", "no matching files"]),
        (["nonsense"], 2, ["No such command"]),
    ],
)
def test_bad_input_gets_a_one_line_error_and_exit_code(runner, trained_run, tmp_path, args, code, needles):
    (tmp_path / "bad.txt").write_bytes(b"abc\xffdef")
    (tmp_path / "short.txt").write_text("too short\n")
    (tmp_path / "afile").write_text("a file where a directory is expected\n")
    (tmp_path / "binaries").mkdir()
    (tmp_path / "binaries" / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    args = [a.format(run=trained_run, tmp=tmp_path) for a in args]
    one_line_error(run(runner, *args), code, *needles)
    assert not (tmp_path / "new").exists()  # nothing half-created
    assert (tmp_path / "afile").read_text().startswith("a file")  # nothing clobbered


def test_sample_to_files_writes_sidecars_and_never_clobbers(runner, trained_run, tmp_path):
    out = tmp_path / "out"
    result = run(runner, "sample", trained_run, "-N", "3", "-n", "50", "--seed", "4", "-o", out, "--prime", "Shall")
    assert result.exit_code == 0, result.stderr
    paths = result.stdout.split()
    assert [p.split("/")[-1] for p in paths] == ["sample-01.txt", "sample-02.txt", "sample-03.txt"]
    record = json.loads((out / "sample-02.txt.json").read_text())
    assert record["seed"] == 4 and record["sample_index"] == 1 and record["prime"] == "Shall"
    assert len(record["checkpoint_sha256"]) == 64
    before = (out / "sample-01.txt").read_bytes()
    assert before.startswith(b"Shall") and len(before.decode()) == 55
    again = run(runner, "sample", trained_run, "-N", "3", "-n", "50", "--seed", "9", "-o", out)
    one_line_error(again, 2, "already exists", "--overwrite")
    assert (out / "sample-01.txt").read_bytes() == before


def test_seed_reproduces_stdout_and_drawn_seed_is_reported(runner, trained_run):
    a = run(runner, "sample", trained_run, "-n", "80", "--seed", "7")
    b = run(runner, "sample", trained_run, "-n", "80", "--seed", "7")
    assert a.exit_code == 0 and a.stdout == b.stdout and len(a.stdout) > 0
    drawn = run(runner, "sample", trained_run, "-n", "20")
    seed = int(drawn.stderr.split("seed: ")[1].split()[0])
    assert run(runner, "sample", trained_run, "-n", "20", "--seed", seed).stdout == drawn.stdout


def test_envvars_configure_options(runner, trained_run):
    a = runner.invoke(cli, ["sample", str(trained_run), "-n", "40"], env={"GENERATE_SAMPLE_SEED": "3"})
    b = run(runner, "sample", trained_run, "-n", "40", "--seed", "3")
    assert a.exit_code == 0 and a.stdout == b.stdout


def test_info_and_list(runner, trained_run):
    result = run(runner, "info", trained_run)
    assert result.exit_code == 0 and "lstm 2x16" in result.stdout and "best:" in result.stdout
    assert "end of epoch 1/1 (global step" in result.stdout
    from generate.cli.train import _position

    assert _position(1, 200, 3) == "epoch 2/3, step 200"  # as the progress bar says "epoch 2/3 200/421"
    summary = json.loads(run(runner, "info", trained_run, "--json").stdout)
    assert summary["checkpoints"]["latest"]["finished"] is True
    listed = run(runner, "list", trained_run.parent)
    assert str(trained_run) in listed.stdout and "1/1 epochs done" in listed.stdout


def test_train_then_resume_through_the_cli(runner, verse_file, tmp_path):
    target = tmp_path / "cli_run"
    result = run(runner, "-q", "train", target, verse_file, *TINY_MODEL, "--epochs", "1", "--tie-embeddings", "--layer-norm")
    assert result.exit_code == 0, result.stderr
    assert "epochs 1" in result.stdout and "finished" in result.stdout
    for name in ("config.json", "vocab.json", "latest.keras", "best.keras", "history.csv"):
        assert (target / name).is_file()
    described = run(runner, "info", target).stdout
    assert "layer norm True" in described and "tied embeddings True" in described
    again = run(runner, "-q", "train", target, "--resume", "--epochs", "2")
    assert again.exit_code == 0 and "epochs 2" in again.stdout
    sampled = run(runner, "sample", target, "-n", "30", "--seed", "1")
    assert sampled.exit_code == 0 and len(sampled.stdout) >= 30, sampled.stderr
    refused = run(runner, "train", target, "--resume", "--cell", "gru")
    one_line_error(refused, 2, "--cell", "cannot change on --resume")


def _modules_after(*args):
    code = (
        "import sys; from generate.cli import cli\n"
        f"try:\n    cli({list(args)!r}, prog_name='generate')\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return done.stderr.strip().splitlines()[-1]


def test_help_version_and_info_never_import_tensorflow(trained_run, tmp_path):
    assert _modules_after("--help") == "False False"
    assert _modules_after("--version") == "False False"
    curve = tmp_path / "curve.png"  # info --plot draws the loss curve, still without TensorFlow
    assert _modules_after("info", str(trained_run), "--plot", str(curve)) == "False False"
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_code_kind_trains_and_samples_whole_files(runner, tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    body = "def add(a, b):\n    return a + b\n\n\nclass Point:\n    x: int = 0\n    y: int = 0\n"
    for i in range(12):
        (src / "pkg" / f"mod{i}.py").write_text(f"# module {i}\n" + body * 3)
    (src / "pkg" / "README.txt").write_text("not python\n")
    result = run(runner, "-q", "train", tmp_path / "run", f"{src}/**/*.py", "--kind", "code", "--cell", "gru",
                 "--layers", "1", "--units", "16", "--batch-size", "4", "--seq-len", "16", "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(run(runner, "info", tmp_path / "run", "--json").stdout)
    assert summary["corpus"]["kind"] == "code" and summary["model"]["cell"] == "gru"
    out = run(runner, "sample", tmp_path / "run", "-N", "2", "-n", "300", "--seed", "1", "-o", tmp_path / "out")
    assert out.exit_code == 0, out.stderr
    for path in out.stdout.split():
        text = open(path, encoding="utf-8").read()
        assert "\x1c" not in text and len(text) <= 300


def test_init_from_starts_a_new_run_at_another_runs_weights(runner, trained_run, verse_file, tmp_path):
    import numpy as np

    from generate.model.rundir import RunDir
    from generate.sampling.generator import load_generator

    source = load_generator(trained_run)
    fresh_options = ["--batch-size", "4", "--seq-len", "16", "--epochs", "1", "--learning-rate", "1e-9"]
    result = run(runner, "-q", "train", tmp_path / "continued", verse_file, "--init-from", trained_run, *fresh_options)
    assert result.exit_code == 0, result.stderr
    config = RunDir(tmp_path / "continued").load_config()
    assert (config.model.layers, config.model.units, config.model.embedding_dim) == (2, 16, 8)  # taken from the source
    assert config.train.init_from == str(trained_run)
    continued = load_generator(tmp_path / "continued")
    # At a learning rate of 1e-9 the weights are still the source's.
    for name in ("first_table", "out_kernel", "out_bias"):
        np.testing.assert_allclose(getattr(continued.sampler.net, name), getattr(source.sampler.net, name), atol=1e-5)
    one_line_error(run(runner, "train", tmp_path / "wider", verse_file, "--init-from", trained_run, "--units", "32"), 2,
                   "--units", "has 16, received 32")
    (tmp_path / "other.txt").write_text("xyz" * 500, encoding="utf-8")
    one_line_error(run(runner, "train", tmp_path / "other", tmp_path / "other.txt", "--init-from", trained_run), 2,
                   "--init-from", "vocabulary")
    assert not (tmp_path / "wider").exists() and not (tmp_path / "other").exists()


def test_ctrl_c_with_stdout_in_a_file_keeps_what_was_written(trained_run, tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "w") as handle:
        # A test worker may ignore SIGINT, and a child inherits that: give it the default a terminal's shell gives.
        child = subprocess.Popen([sys.executable, "-m", "generate", "sample", str(trained_run), "-n", "100000000",
                                  "--seed", "1"], stdout=handle, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 60
            while out.stat().st_size < 300 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.2)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=60)
        finally:
            child.kill()
    assert child.returncode == 130, err
    assert out.stat().st_size >= 300  # streamed as it was written, not lost with the process


@pytest.mark.parametrize("kind, says", [("keras", "is an export"), ("onnx", "is a bundle")])
def test_an_export_refuses_to_resume_and_is_left_as_it_was(runner, trained_run, tmp_path, kind, says):
    export = tmp_path / "export"
    assert run(runner, "export", trained_run, export, "--format", kind).exit_code == 0
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    for extra in ([], ["--epochs", "3"]):
        message = one_line_error(run(runner, "train", export, "--resume", *extra), 2, says, "--init-from")
        assert str(export) in message
        assert {p.name: p.read_bytes() for p in export.iterdir()} == before  # no config, history or logs/ touched


def test_quiet_and_verbose_work_after_the_command_and_the_command_list_keeps_whole_sentences(runner, trained_run):
    after = run(runner, "sample", trained_run, "-n", "5", "-q")
    before = run(runner, "-q", "sample", trained_run, "-n", "5")
    assert after.exit_code == before.exit_code == 0 and "seed:" not in after.stderr + before.stderr
    assert "seed:" in run(runner, "sample", trained_run, "-n", "5").stderr
    bad = run(runner, "sample", trained_run, "--top-k", "99999", "-v")
    assert bad.exit_code == 2 and "Traceback" in bad.stderr
    listing = run(runner, "--help").output
    assert "..." not in listing.split("Commands:")[1] and "Generate text from RUN: a run directory, or a shipped model's name." in listing


def test_info_plots_the_loss_curve_once_and_never_over_a_file(runner, trained_run, tmp_path):
    curve = tmp_path / "curve.png"
    first = run(runner, "info", trained_run, "--plot", curve)
    assert first.exit_code == 0 and "loss curve over 1 validation" in first.stderr
    one_line_error(run(runner, "info", trained_run, "--plot", curve), 2, "--plot", "already exists")
    one_line_error(run(runner, "info", trained_run, "--plot", tmp_path / "curve.jpg"), 2, "--plot", "expected a .png")


def test_shell_completion_completes_commands_as_the_docs_say():
    import os

    env = {**os.environ, "_GENERATE_COMPLETE": "bash_complete", "COMP_WORDS": "generate sa", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "generate"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "plain,sample" in done.stdout.splitlines()
    docs = (Path(__file__).parents[2] / "docs" / "commands.md").read_text()
    assert 'eval "$(_GENERATE_COMPLETE=bash_source generate)"' in docs


def test_a_runs_sampling_defaults_apply_unless_told_and_are_checked(runner, trained_run, tmp_path):
    import shutil

    run_copy = tmp_path / "run"
    shutil.copytree(trained_run, run_copy)
    (run_copy / "sampling.json").write_text('{"temperature": 0.5}')
    record = json.loads(run(runner, "sample", run_copy, "-n", "10", "--seed", "1", "--json").stdout)
    assert record["temperature"] == 0.5
    assert json.loads(run(runner, "sample", run_copy, "-n", "10", "--seed", "1", "-t", "1", "--json").stdout)["temperature"] == 1.0
    assert run(runner, "export", run_copy, tmp_path / "export").exit_code == 0
    assert json.loads((tmp_path / "export" / "sampling.json").read_text()) == {"temperature": 0.5}  # it travels
    (run_copy / "sampling.json").write_text('{"temprature": 0.5}')
    one_line_error(run(runner, "sample", run_copy, "-n", "10"), 2, "sampling.json", "'temprature'", "temperature")
    (run_copy / "sampling.json").write_text('{"temperature": 9}')
    one_line_error(run(runner, "sample", run_copy, "-n", "10"), 2, "sampling.json", "temperature: expected a number in [0, 3]")


def test_a_trailing_slash_means_a_directory_even_for_one_sample(trained_run, tmp_path):
    import generate

    target = tmp_path / "out"
    result = CliRunner().invoke(cli, ["sample", str(trained_run), "-n", "20", "--seed", "1", "-o", f"{target}/"])
    assert result.exit_code == 0, result.stderr
    assert target.is_dir() and (target / "sample-01.txt").is_file() and (target / "sample-01.txt.json").is_file()
    outputs = generate.load(trained_run).samples(output=f"{tmp_path / 'api'}/", num_samples=1, length=20, seed=1)
    assert outputs[0].path == tmp_path / "api" / "sample-01.txt"
    plain = CliRunner().invoke(cli, ["sample", str(trained_run), "-n", "20", "--seed", "1", "-o", str(tmp_path / "one.txt")])
    assert plain.exit_code == 0 and (tmp_path / "one.txt").is_file()  # a file stays a file


def test_a_json_output_is_its_own_record(trained_run, tmp_path):
    out = tmp_path / "sample.json"
    result = CliRunner().invoke(cli, ["sample", str(trained_run), "-n", "20", "--seed", "3", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.json"]  # no sample.json.json beside it
    record = json.loads(out.read_text())
    assert record["seed"] == 3 and len(record["text"]) == 20


def test_a_mistyped_label_gets_a_did_you_mean():
    result = CliRunner().invoke(cli, ["sample", "folk", "--label", "Jig"])
    assert one_line_error(result, 2, "--label", "received 'Jig'", "did you mean 'jig'?")
    far = CliRunner().invoke(cli, ["sample", "folk", "--label", "tango"])
    assert one_line_error(far, 2, "--label", "received 'tango'") and "did you mean" not in far.stderr


def test_train_on_a_light_install_says_so_before_anything_else(tmp_path, verse_file):
    # Keras hidden from the import system, as on an install without [train].
    hide = ("import sys, importlib.abc, importlib.util\n"
            "class Hide(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('keras', 'tensorflow'): raise ModuleNotFoundError(name)\n"
            "found = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, package=None: None if name == 'keras' else found(name, package)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "from generate.cli import main\n"
            f"sys.argv = ['generate', 'train', {str(tmp_path / 'run')!r}, {str(verse_file)!r}]\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr  # one line, and nothing before it
    assert "generate[train]" in done.stderr and not (tmp_path / "run").exists()


def test_a_long_sample_to_a_file_shows_its_progress(trained_run, tmp_path, capsys):
    from generate.pipeline.loaded import sample_run
    from generate.sampling.options import SampleOptions

    out = tmp_path / "long.txt"
    sample_run(trained_run, SampleOptions(length=600, seed=4), output=out, show_progress=True)  # a terminal's stderr
    assert "sampling" in capsys.readouterr().err and len(out.read_text()) == 600
    quiet = CliRunner().invoke(cli, ["sample", str(trained_run), "-n", "600", "--seed", "4", "-o", str(tmp_path / "q.txt")])
    assert "sampling" not in quiet.stderr and (tmp_path / "q.txt").read_text() == out.read_text()  # not a terminal: none


def test_sample_help_lists_its_options_in_groups():
    from generate.cli.options import OPTION_GROUPS

    shown = CliRunner().invoke(cli, ["sample", "--help"]).stdout
    titles = [line[:-1] for line in shown.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert titles == [*OPTION_GROUPS, "Other options"]
    section = shown.split("Poems:")[1].split("Music:")[0]
    assert "--acrostic" in section and "--regulated" in section and "--temperature" not in section
    assert "--help" in shown.split("Other options:")[1]


def test_export_takes_a_shipped_name_and_overwrites_only_an_earlier_export(trained_run, tmp_path):
    runner = CliRunner()
    named = runner.invoke(cli, ["export", "tang", str(tmp_path / "tang"), "--format", "keras"])
    assert named.exit_code == 0, named.stderr
    assert (tmp_path / "tang" / "best.keras").is_file()
    dest = tmp_path / "bundle"
    assert runner.invoke(cli, ["export", str(trained_run), str(dest)]).exit_code == 0
    again = runner.invoke(cli, ["export", str(trained_run), str(dest)])
    assert one_line_error(again, 2, "expected a new or empty directory", "--overwrite")
    before = (dest / "meta.json").stat().st_mtime_ns
    replaced = runner.invoke(cli, ["export", str(trained_run), str(dest), "--overwrite"])
    assert replaced.exit_code == 0 and (dest / "meta.json").stat().st_mtime_ns != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left aside
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = runner.invoke(cli, ["export", str(trained_run), str(mine), "--overwrite"])
    assert one_line_error(refused, 2, "files no export wrote") and (mine / "notes.txt").read_text() == "keep me"
    itself = runner.invoke(cli, ["export", str(trained_run), str(trained_run), "--overwrite"])
    assert one_line_error(itself, 2, "another directory than the run")


def test_sampling_a_run_that_never_validated_names_its_checkpoint(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "best.keras").unlink()
    result = CliRunner().invoke(cli, ["sample", str(run), "-n", "20", "--seed", "1"])
    assert result.exit_code == 0, result.stderr
    assert "has not validated yet" in result.stderr and "latest.keras" in result.stderr


def test_ctrl_c_inside_a_c_function_is_an_interruption_not_a_bug(runner, monkeypatch, tmp_path):
    # A KeyboardInterrupt raised while a C function runs (NumPy's __array__, a TensorFlow call) reaches Python
    # as a SystemError caused by it: still Ctrl-C, exit 130, not "unexpected SystemError".
    import generate.model.rundir

    def interrupted(directory, depth=3):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as cause:
            raise SystemError("<built-in method __array__> returned a result with an exception set") from cause

    monkeypatch.setattr(generate.model.rundir, "list_runs", interrupted)
    result = runner.invoke(cli, ["list", str(tmp_path)])
    assert result.exit_code == 130 and result.stderr.strip() == "Interrupted."
