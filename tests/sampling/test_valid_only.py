"""--valid-only: code that parses, music that decodes, each kept sample reproducible from its recorded seed."""

import ast
import json
import re

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.pipeline.loaded import LoadedModel
from generate.sampling import novelty
from generate.sampling.generator import is_valid
from generate.sampling.options import SampleOptions

from ..helpers import VERSE, train_code_run

LINES = ["a = 1\n", "b = a + 2\n", "c = (a, b)\n", "def f(x):\n    return x * 2\n", "print(f(c))\n"]


@pytest.fixture(scope="module")
def code_run(tmp_path_factory):
    modules = ["".join(LINES[(i + k) % len(LINES)] for k in range(6)) for i in range(12)]
    return train_code_run(tmp_path_factory.mktemp("code"), modules, 6)


def test_kept_samples_parse_and_reproduce_from_their_sidecars(code_run):
    model = LoadedModel(code_run)
    options = SampleOptions(length=60, num_samples=8, temperature=1.3, seed=7, prime="a = ", valid_only=True)
    result = model.run(model.prepare(options))
    assert result.tried >= len(result.outputs) and result.tried % 8 == 0
    assert result.outputs and all(is_valid(model.facts, out.text) for out in result.outputs)
    assert sum(result.rejected.values()) == result.tried - len(result.outputs) or len(result.outputs) == 8
    for out in result.outputs:  # each kept sample comes back from its record's seed and row, unfiltered
        again = model.samples(prime="a = ", length=60, num_samples=8, temperature=1.3, seed=out.record["seed"])
        assert again[out.record["sample_index"]].text == out.text
    assert not is_valid(model.facts, "def f(:\n") and is_valid(model.facts, "    x = 1\n    y = 2\n")  # indented snippets parse


def test_valid_only_cli(code_run, trained_run):
    runner = CliRunner()
    result = runner.invoke(cli, ["sample", str(code_run), "--prime", "a = ", "-N", "4", "-n", "60", "--seed", "3",
                                 "--stop", "\\n", "--temperature", "1.3", "--valid-only", "--json"])
    valid = re.search(r"--valid-only: (\d+) of (\d+) samples parse as Python: a pass rate of (\d+)%", result.stderr)
    assert valid, result.stderr
    assert int(valid.group(3)) == round(100 * int(valid.group(1)) / int(valid.group(2)))
    lines = result.stdout.splitlines()
    assert len(lines) == min(4, int(valid.group(1))) and lines, (lines, result.stderr)
    assert result.exit_code == (0 if len(lines) == 4 else 1), result.stderr  # fewer than asked for is a failure
    for line in lines:
        ast.parse(json.loads(line)["text"].replace("\x1c", ""))
    text = runner.invoke(cli, ["sample", str(trained_run), "--valid-only"])
    assert text.exit_code == 2 and "--valid-only: expected a code or music run" in text.stderr


def test_min_length_redraws_short_samples_reproducibly(trained_run, tmp_path):
    runner = CliRunner()
    base = ["sample", str(trained_run), "--stop", "\\n", "-n", "120", "--seed", "5", "-N", "4", "--drop-prime", "--no-warmup"]
    plain = runner.invoke(cli, [*base, "--json"])
    lengths = [len(json.loads(line)["text"]) for line in plain.stdout.splitlines()]
    threshold = sorted(lengths)[1] + 1  # at least two of these four are too short
    result = runner.invoke(cli, [*base, "--min-length", str(threshold), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert re.search(rf"--min-length: \d+ of \d+ samples have at least {threshold} characters", result.stderr)
    for path in sorted((tmp_path / "out").glob("*.txt")):
        record = json.loads(path.with_name(path.name + ".json").read_text())
        assert len(path.read_text()) >= threshold
        again = runner.invoke(cli, ["sample", str(trained_run), "--stop", "\\n", "-n", "120", "--seed", str(record["seed"]),
                                    "-N", "4", "--drop-prime", "--no-warmup", "--json"])
        assert json.loads(again.stdout.splitlines()[record["sample_index"]])["text"] == path.read_text()
    none_kept = runner.invoke(cli, [*base[:-2], "--min-length", "120", "-N", "2"])  # a line of 120 never comes
    assert none_kept.exit_code == 1 and none_kept.stdout == ""
    assert "kept 0 of the 2 sample(s) asked for" in none_kept.stderr.strip().splitlines()[-1]
    too_long = runner.invoke(cli, ["sample", str(trained_run), "-n", "50", "--min-length", "51"])
    assert too_long.exit_code == 2 and "--min-length: expected at most --length (50), received 51" in too_long.stderr


def brute_longest_copy(corpus: str, text: str) -> int:
    best = 0
    for start in range(len(text)):
        while start + best < len(text) and text[start : start + best + 1] in corpus:
            best += 1
    return best


def test_max_copy_redraws_copies_and_sidecars_record_the_longest(trained_run, tmp_path):
    runner = CliRunner()
    base = ["sample", str(trained_run), "-n", "80", "--seed", "2", "-N", "6", "--temperature", "0.7"]
    plain = runner.invoke(cli, [*base, "--json"])
    assert plain.exit_code == 0, plain.stderr
    records = [json.loads(line) for line in plain.stdout.splitlines()]
    copies = [brute_longest_copy(VERSE, r["text"]) for r in records]
    assert [r["longest_copy"] for r in records] == copies  # --json records it too: the corpus is at hand
    threshold = sorted(copies)[2]  # at least three of these six copy more than this
    assert sum(c > threshold for c in copies) >= 1, copies
    result = runner.invoke(cli, [*base, "--max-copy", str(threshold), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert re.search(rf"--max-copy: \d+ of \d+ samples copy at most {threshold} characters in a row", result.stderr)
    outputs = sorted((tmp_path / "out").glob("*.txt"))
    assert outputs
    for path in outputs:
        record = json.loads(path.with_name(path.name + ".json").read_text())
        assert record["longest_copy"] == brute_longest_copy(VERSE, path.read_text()) <= threshold
        again = runner.invoke(cli, ["sample", str(trained_run), "-n", "80", "--seed", str(record["seed"]), "-N", "6",
                                    "--temperature", "0.7", "--json"])
        assert json.loads(again.stdout.splitlines()[record["sample_index"]])["text"] == path.read_text()
    bad = runner.invoke(cli, ["sample", str(trained_run), "--max-copy", "0"])
    assert bad.exit_code == 2 and "--max-copy: expected an integer >= 1, received 0" in bad.stderr


def test_max_copy_needs_the_corpus_and_says_why(trained_run, tmp_path, monkeypatch):
    moved = tmp_path / "run"
    import shutil

    shutil.copytree(trained_run, moved)
    config = json.loads((moved / "config.json").read_text())
    config["corpus"]["sources"] = [str(tmp_path / "gone.txt")]
    (moved / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path / "empty-cache"))  # nor the ids training cached
    monkeypatch.setattr(novelty, "_indexes", {})  # nor an index this process built
    result = CliRunner().invoke(cli, ["sample", str(moved), "--max-copy", "5", "-n", "20"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--max-copy: needs the run's training corpus" in result.stderr and "gone.txt" in result.stderr
    plain = CliRunner().invoke(cli, ["sample", str(moved), "-n", "20", "--seed", "1", "--json"])
    record = json.loads(plain.stdout)
    assert record["longest_copy"] is None and "gone.txt" in record["longest_copy_unavailable"]
