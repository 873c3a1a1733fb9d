"""Every shipped model still writes, byte for byte, what it wrote before the package was restructured,
and scores its validation split as its model card says (the corpora that build in seconds)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from generate.cli import cli

RECORDED = json.loads((Path(__file__).parent / "shipped_outputs.json").read_text(encoding="utf-8"))
SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the repository


@pytest.mark.parametrize("case", RECORDED["samples"], ids=lambda case: " ".join(case["args"][1:4]))
def test_fixed_seed_samples_are_byte_identical(case, tmp_path):
    args = [str(tmp_path / "out.mid") if a == "OUT.mid" else a for a in case["args"]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    data = (tmp_path / "out.mid").read_bytes() if "OUT.mid" in case["args"] else result.stdout.encode("utf-8")
    assert hashlib.sha256(data).hexdigest() == case["sha256"], result.stdout


@pytest.mark.parametrize("case", [c for c in RECORDED["scores"] if "slow" not in c], ids=lambda case: case["model"])
def test_validation_scores_match_the_model_cards(case, tmp_path, monkeypatch):
    if not SHARED.is_dir():
        pytest.skip(f"the reference corpora are in {SHARED}, which is missing")
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path / "cache"))  # other tests build stand-ins under these names
    runner = CliRunner()
    built = runner.invoke(cli, [a.replace("SHARED", str(SHARED)) for a in case["build"]])
    assert built.exit_code == 0, built.stderr
    scored = runner.invoke(cli, ["score", case["model"], "--split", "val"])
    assert scored.exit_code == 0, scored.stderr
    assert scored.stdout.splitlines()[0] == case["line"]  # a labelled model's per-label lines follow


def test_every_shipped_checkpoint_matches_its_recorded_sha256():
    from generate.model.bundle import read_meta, verify_bundle
    from generate.model.checkpoint import checkpoint_problem
    from generate.model.rundir import shipped_runs

    runs = shipped_runs()
    assert {run.path.name for run in runs} >= {"shakespeare", "tang", "python", "folk", "bach"}
    for run in runs:
        if run.path.name.endswith("-int8"):  # a bundle alone, made from the model it names
            assert not run.best.exists() and read_meta(run.path)["weights_dtype"] == "int8", run.path
            verify_bundle(run.path)
            continue
        assert run.recorded_checksums().get("best.keras"), run.path  # verified by hash, not only by the zip's CRCs
        assert checkpoint_problem(run.best) is None, run.path


def test_each_shipped_int8_bundle_is_a_quarter_of_float32_and_records_its_checks():
    from generate.model.bundle import read_meta
    from generate.model.rundir import shipped_runs

    int8 = [run for run in shipped_runs() if run.path.name.endswith("-int8")]
    assert {run.path.name for run in int8} >= {"shakespeare-int8", "tang-int8"}
    for run in int8:
        facts = read_meta(run.path)["quantization"]
        assert (run.path / "model.onnx").stat().st_size == facts["model_bytes"] <= 0.3 * facts["float32_model_bytes"]
        assert facts["validation_bpc"]["int8"] <= 1.01 * facts["validation_bpc"]["float32"]
        assert abs(facts["samples_read_by_float32"]["difference"]) <= 0.02
        assert f"{facts['validation_bpc']['int8']:.4f}" in (run.path / "README.md").read_text(encoding="utf-8")


def test_the_shipped_python_model_carries_its_syntax_tables_and_builds_nothing(tmp_path, monkeypatch):
    from generate.model.rundir import resolve_run
    from generate.sampling.python import automata

    chars = resolve_run("python").load_vocab().chars
    shipped = resolve_run("python").path / "automata" / (automata.tables_file_name(chars) + automata.SHIPPED_SUFFIX)
    assert shipped.is_file(), "the Python tables changed: run python checkpoints/make_tables.py checkpoints/python"
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(automata, "_cache", {})  # nothing from an earlier test in this process

    def no_build(chars):
        raise AssertionError("built the tables the package carries")

    monkeypatch.setattr(automata, "_build", no_build)
    assert len(automata.python_automata(chars)) == 4 and not list((tmp_path / "cache").rglob("*.npz"))


README = Path(__file__).resolve().parents[1] / "README.md"
# The tour's runs train for three minutes each; here, for a few seconds: the commands are otherwise as written.
SHORTER = {"--max-minutes 3": "--max-minutes 0.02"}


def readme_shell_blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def commands(block: str) -> list[str]:
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_every_tour_command_runs_as_written(tmp_path, monkeypatch):  # ~25 s: the README's tour, training included
    monkeypatch.chdir(tmp_path)
    tour = [c for block in readme_shell_blocks()[2:] for c in commands(block)]
    assert len(tour) >= 8 and all(c.startswith("generate ") for c in tour)
    runner, ran = CliRunner(), 0
    for command in tour:
        if "../shared" in command and not SHARED.is_dir():
            pytest.skip(f"the reference corpora are in {SHARED}, which is missing")
        for long, short in SHORTER.items():
            command = command.replace(long, short)
        args = shlex.split(command.replace("../shared", str(SHARED)))[1:]
        result = runner.invoke(cli, args)
        if "--wav" in args and result.exit_code == 1 and "fluidsynth" in result.stderr:
            assert (tmp_path / "tune.mid").stat().st_size > 0 and (tmp_path / "tune.png").exists()  # all but the WAV
        else:
            assert result.exit_code == 0, (command, result.stderr)
        ran += 1
    assert ran == len(tour)
    assert "ROMEO:" in runner.invoke(cli, ["sample", "runs/verse", "--prime", "ROMEO:", "-n", "20", "--seed", "1"]).stdout


def test_tang_samples_at_its_own_default_and_takes_simplified_acrostics(caplog):
    from generate.model.rundir import resolve_run
    from generate.sampling.options import SampleOptions
    from generate.sampling.resolve import RunFacts, resolve_options

    tang = RunFacts.of(resolve_run("tang"))  # (-t 1 is the fixed-seed cases above, recorded before tang had a default)
    assert resolve_options(SampleOptions(form="5x4"), tang).temperature == 0.7  # its card: 1.0 reaches for rare characters
    assert resolve_options(SampleOptions(form="5x4", temperature=1.0), tang).temperature == 1.0
    assert "temperature 0.7" in CliRunner().invoke(cli, ["info", "tang"]).stdout
    logger = logging.getLogger("generate")  # the command line's logger does not propagate to the root
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="generate"):
            assert resolve_options(SampleOptions(acrostic="春风"), tang).acrostic == "春風"
    finally:
        logger.removeHandler(caplog.handler)
    assert "written as 春風" in caplog.text
