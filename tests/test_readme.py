"""The README is a front door that works: its set-up is what CI runs, and the docs it points to build.

Its tour (the shipped models, and a run trained, sampled and resumed) runs in
`test_shipped_models.py`, beside the other test that needs the Python tables of
the shipped `python` model, so one worker builds them once and none waits.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared"


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


def test_the_docs_build_strictly_and_every_readme_link_lands(tmp_path):
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", README.read_text(encoding="utf-8")):
        assert (REPO / target).exists(), target
    if not (REPO / "mkdocs.yml").exists():
        pytest.skip("the docs are not in this copy")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
