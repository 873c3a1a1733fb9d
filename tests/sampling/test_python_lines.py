"""Python read by Python's parser as it is sampled: a sample is drawn again from the line that breaks it."""

import ast
import json

from click.testing import CliRunner

from generate.cli import cli
from generate.sampling.python.lines import restart_point


def test_the_redraw_starts_at_the_line_that_breaks_the_code_or_after_the_last_whole_one():
    prime = "def f(x):\n"
    assert restart_point(prime, "    return x\n") is None  # it parses
    body = "    y = x + 1\n    z = y if x\n    return z\n"
    assert restart_point(prime, body) == len("    y = x + 1\n")  # `y if x` owes an else: no line after saves it
    open_end = "    y = x + 1\n    s = '''a docstring\n    that goes on"
    assert restart_point(prime, open_end) == len("    y = x + 1\n")  # whole up to there; the string never closes
    assert restart_point("", "try:\n    pass\n") == 0  # a try cut off before its handler: from the start


def test_sampled_functions_parse_and_the_same_seed_writes_the_same_code():
    args = ["sample", "python", "--prime", "def ", "-t", "0.7", "-N", "8", "--seed", "4", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    texts = [json.loads(line)["text"] for line in result.stdout.splitlines()]
    assert len(texts) == 8
    for text in texts:
        ast.parse(text.replace("\x1c", ""))
    again = CliRunner().invoke(cli, args)
    assert [json.loads(line)["text"] for line in again.stdout.splitlines()] == texts
    unchecked = CliRunner().invoke(cli, [*args[:-1], "--no-syntax", "--json"])
    assert unchecked.exit_code == 0 and unchecked.stdout != result.stdout  # --no-syntax: the model alone


def test_the_code_critic_judges_each_definition_and_eval_adds_bits_per_character():
    from generate.critics import critic_for
    from generate.critics.code import CodeCritic

    assert critic_for("code") is CodeCritic
    critic = CodeCritic()
    text = "import os\n\n\ndef good(x):\n    return x\n\n\n@cache\ndef bad(x:\n    return x\n\n\nclass A:\n    pass\n"
    pieces = critic.pieces(text)
    assert [p.split("\n")[0] for p in pieces] == ["import os", "def good(x):", "@cache", "class A:"]
    judged = critic.judge(pieces)
    assert judged.values["parses"] == 0.75 and judged.values["longest_copy"] is None
    critic.copied = len  # a stand-in for the corpus index: every character copied
    assert critic.judge(pieces[:1]).values["longest_copy"] == len("import os")
    assert critic.reference(pieces).values["longest_copy"] is None  # the corpus copies itself: no measure


def test_eval_gives_any_text_its_bits_per_character_beside_validation(trained_run):
    result = CliRunner().invoke(cli, ["eval", str(trained_run), "-N", "3", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    samples, corpus = report["samples"]["measures"]["bpc"], report["corpus"]["measures"]["bpc"]
    assert 0.5 < samples < 8 and 0.5 < corpus < 8  # the tiny model's samples, and its best validation
    music = CliRunner().invoke(cli, ["eval", "folk", "-N", "2", "--seed", "2", "--json"])
    assert "bpc" not in json.loads(music.stdout)["samples"]["measures"]  # music is judged as music
