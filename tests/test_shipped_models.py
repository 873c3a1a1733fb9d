"""Every shipped model still writes, byte for byte, what it wrote before the package was restructured,
and scores its validation split as its model card says (the corpora that build in seconds)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from generate.cli import cli

RECORDED = json.loads((Path(__file__).parent / "shipped_outputs.json").read_text(encoding="utf-8"))
SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the repository


@pytest.mark.parametrize("case", RECORDED["samples"], ids=lambda case: " ".join(case["args"][1:4]))
def test_fixed_seed_samples_are_byte_identical(case, tmp_path):  # the python case ~55 s: it builds the Python tables for the shipped vocabulary
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
    assert scored.stdout.strip() == case["line"]


def test_every_shipped_checkpoint_matches_its_recorded_sha256():
    from generate.model.checkpoint import checkpoint_problem
    from generate.model.rundir import shipped_runs

    runs = shipped_runs()
    assert {run.path.name for run in runs} >= {"shakespeare", "tang", "python", "folk", "bach"}
    for run in runs:
        assert run.recorded_checksums().get("best.keras"), run.path  # verified by hash, not only by the zip's CRCs
        assert checkpoint_problem(run.best) is None, run.path
