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


def test_train_takes_the_commands_options_as_keywords(tmp_path, verse_file):
    import generate
    from generate.errors import OptionError

    with pytest.raises(OptionError, match=r"^epoch: not an option of generate.train; did you mean 'epochs'\?"):
        generate.train(tmp_path / "run", [verse_file], epoch=1)
    with pytest.raises(OptionError, match=r"^epochs: expected an integer >= 1"):
        generate.train(tmp_path / "run", [verse_file], epochs=0)
    assert not (tmp_path / "run").exists()
    result = generate.train(tmp_path / "run", [verse_file], epochs=1, layers=1, units=16, batch_size=4, seq_len=16)
    assert result.finished and result.epochs_done == 1 and result.best_val_loss > 0
    more = generate.train(tmp_path / "run", resume=True, epochs=2)
    assert more.epochs_done == 2 and more.global_step == 2 * result.global_step


def test_stream_yields_the_sample_as_it_is_written(trained_run):
    import generate

    model = generate.load(trained_run)
    pieces = list(model.stream(prime="The ", length=600, seed=5))
    assert len(pieces) >= 3 and pieces[0] == "The "  # the prime first, then chunk after chunk
    assert "".join(pieces) == model.sample(prime="The ", length=600, seed=5)
    for index, _ in enumerate(model.stream(length=20_000, seed=5)):
        if index == 2:
            break  # leaving early stops the sampling (the test would take minutes otherwise)
