"""The README is a front door that works: every shell example in it runs, and the docs it points to build."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from generate.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared"
# The tour's runs train for three minutes each; here, for a few seconds: the commands are otherwise as written.
SHORTER = {"--max-minutes 3": "--max-minutes 0.05"}


def shell_blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def commands(block: str) -> list[str]:
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_is_short_and_its_set_up_commands_are_what_ci_runs():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250
    setup, tests = shell_blocks()[:2]
    assert setup.startswith("python3 -m venv .venv") and "generate sample" in setup
    # The two set-up commands are run by `.ci/run` on a fresh clone, not from inside the suite they start.
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.strip() in ci and "pip install" in ci


def test_every_tour_command_runs_as_written(tmp_path, monkeypatch):  # ~60 s: two minutes of the README, training included
    monkeypatch.chdir(tmp_path)
    tour = [c for block in shell_blocks()[2:] for c in commands(block)]
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


def test_the_docs_build_strictly_and_every_readme_link_lands(tmp_path):
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", README.read_text(encoding="utf-8")):
        assert (REPO / target).exists(), target
    if not (REPO / "mkdocs.yml").exists():
        pytest.skip("the docs are not in this copy")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
