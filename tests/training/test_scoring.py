"""`generate score`: validation loss reproduced exactly, and text scored as one stream."""

import json

import numpy as np
from click.testing import CliRunner

from generate.cli import cli
from generate.model.backend import import_keras
from generate.model.checkpoint import read_training_state
from generate.model.rundir import RunDir
from generate.sampling.generator import load_generator
from generate.training.scoring import TextScorer, score_validation

from ..helpers import VERSE


def test_validation_score_reproduces_the_training_number(trained_run):
    run = RunDir(trained_run)
    recorded = read_training_state(run.best)["best_val_loss"]
    assert abs(score_validation(run).nats - recorded) < 1e-5


def test_text_score_matches_the_step_network(trained_run):
    """Two independent paths: the Keras model over 256-step chunks, and the fused sampling step one char at a time."""
    text = VERSE[:300]
    scored = TextScorer(RunDir(trained_run)).score(text)
    gen = load_generator(trained_run)
    ops = import_keras().ops
    net, ids = gen.sampler.net, gen.vocab.encode(text)
    states, total = [ops.convert_to_tensor(s) for s in net.initial_states(1)], 0.0
    for current, following in zip(ids[:-1], ids[1:]):
        logits, states = net.step(ops.convert_to_tensor(np.array([current], np.int32)), states)
        logits = np.asarray(ops.convert_to_numpy(logits), np.float64)[0]
        total += np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[following]
    assert scored.chars == len(text) - 1
    assert abs(scored.nats - total / (len(text) - 1)) < 1e-4


def test_score_cli(trained_run, tmp_path):
    runner = CliRunner()
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text(VERSE[:400], encoding="utf-8")
    bad.write_text("Shall I zzqx", encoding="utf-8")
    result = runner.invoke(cli, ["score", str(trained_run), str(good), "--split", "val", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["validation", str(good)] and rows[1]["chars"] == 399
    assert abs(rows[1]["bpc"] - rows[1]["nats"] / np.log(2)) < 1e-5
    oov = runner.invoke(cli, ["score", str(trained_run), str(bad)])
    assert oov.exit_code == 2 and "not in the model's vocabulary" in oov.stderr
    nothing = runner.invoke(cli, ["score", str(trained_run)])
    assert nothing.exit_code == 2 and "expected FILES" in nothing.stderr
    moved = runner.invoke(cli, ["score", str(trained_run), "--split", "val", "--corpus", str(good)])
    assert moved.exit_code == 2 and "--corpus: expected the corpus run" in moved.stderr
