"""The Python API: the README's example runs as written, and a loaded model gives what the CLI gives."""

import contextlib
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import generate
from generate.cli import cli
from generate.errors import OptionError, UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    section = README.read_text(encoding="utf-8").split("## Python: `generate.load`", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


def test_the_readme_example_prints_what_the_command_line_prints():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python_example(), "README.md", "exec"), {})
    command = CliRunner().invoke(cli, ["sample", "shakespeare", "--prime", "ROMEO:", "-n", "400", "--seed", "7"])
    assert command.exit_code == 0, command.stderr
    assert printed.getvalue().startswith(command.stdout) and len(command.stdout) > 400
    rows = printed.getvalue()[len(command.stdout):].splitlines()
    assert [row.split()[:2] for row in rows[:3]] == [["1", "0"], ["1", "1"], ["1", "2"]]
    assert re.fullmatch(r"\d\.\d\d bits per character", rows[3])


def test_one_loaded_model_serves_requests_with_their_own_options(trained_run, tmp_path):
    model = generate.load(trained_run)
    first = model.sample(prime="Shall", length=60, seed=3)
    other = model.samples(prime="Thou", length=30, seed=4, num_samples=2, top_k=5, output=tmp_path / "out")
    assert model.sample(prime="Shall", length=60, seed=3) == first and first.startswith("Shall")
    assert [o.path.name for o in other] == ["sample-01.txt", "sample-02.txt"]
    assert all(o.path.read_text() == o.text and o.record["top_k"] == 5 for o in other)
    command = CliRunner().invoke(cli, ["sample", str(trained_run), "--prime", "Shall", "-n", "60", "--seed", "3"])
    assert command.stdout == first + "\n"
    with pytest.raises(OptionError, match="^top_p: expected a number in \\(0, 1\\], received 2"):  # keywords, not flags
        model.sample(top_p=2)
    with pytest.raises(OptionError, match="^numsamples: unknown option.*did you mean 'num_samples'"):
        model.sample(numsamples=2)
    with pytest.raises(OptionError, match="^prime: .* not in the model's vocabulary.*\"oov\" drop"):
        model.sample(prime="\u00a7", length=5)
    with pytest.raises(OptionError, match="^num_samples: expected 1 for sample"):
        model.sample(num_samples=2)
    with pytest.raises(UsageError, match="already exists"):
        model.samples(prime="Thou", length=30, seed=4, num_samples=2, output=tmp_path / "out")
    assert model.score("Shall I compare thee").chars == 19


def test_import_generate_loads_no_tensorflow():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import sys, generate; print('tensorflow' in sys.modules, callable(generate.load))"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr
