"""The scheduled-runs page's crontab line and systemd service run as written, and its job-file table is complete."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from generate.jobs.schema import SCHEMA

REPO = Path(__file__).resolve().parents[2]  # the repository: its README and examples
README = REPO / "docs" / "jobs.md"  # the scheduled-runs page
PLACEHOLDER = "/home/me/poems"


def block(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def project(tmp_path, trained_run):
    """A project directory laid out as the README assumes: .venv/bin/generate and jobs/nightly.toml."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "generate").symlink_to(Path(sys.executable).parent / "generate")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "nightly.toml").write_text(
        f'[[job]]\nname = "poem"\nmodel = "{trained_run}"\nout = "out/{{date}}/{{job}}-{{n}}"\ncount = 2\nlength = 40\n')
    return tmp_path


def check_ran(project: Path, done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    made = list((project / "out").rglob("poem-*.txt"))
    assert len(made) == 2 and all(Path(line).exists() or (project / line).exists() for line in done.stdout.split())
    assert "job poem: made 2 file(s)" in (project / "logs" / "generate.log").read_text()
    assert "job poem: made 2 file(s)" in done.stderr and "seed" not in done.stderr  # quiet otherwise


def test_crontab_line_runs_as_written(project):
    line = next(line for text in block("crontab") for line in text.splitlines() if line and not line.startswith("#"))
    command = line.split(None, 5)[5].replace(PLACEHOLDER, str(project))
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=os.environ, timeout=300)
    check_ran(project, done)


def test_systemd_service_runs_as_written(project):
    service = next(text for text in block("ini") if "ExecStart=" in text).replace(PLACEHOLDER, str(project))
    settings = dict(line.split("=", 1) for line in service.splitlines() if "=" in line and not line.startswith("#"))
    done = subprocess.run(shlex.split(settings["ExecStart"]), cwd=settings["WorkingDirectory"], capture_output=True,
                          text=True, env=os.environ, timeout=300)
    check_ran(project, done)
    timer = next(text for text in block("ini") if "[Timer]" in text)
    assert "OnCalendar=" in timer and "WantedBy=timers.target" in timer


def test_readme_lists_every_job_key_and_the_example_validates(monkeypatch):
    text = README.read_text(encoding="utf-8")
    assert all(f"| `{key}` |" in text for key in SCHEMA)
    from click.testing import CliRunner

    from generate.cli import cli

    example = REPO / "examples" / "jobs" / "nightly.toml"
    assert example.read_text().split("\n", 1)[1].strip() in text
    result = CliRunner().invoke(cli, ["run", str(example), "--dry-run", "--run-id", "2026-11-22"])
    assert result.exit_code == 0, result.stderr
    assert "would write\tout/2026-11-22/poem-of-the-day-01.txt" in result.stdout
