"""A run that is not learning says so once on stderr, measured against its corpus's unigram entropy."""

from __future__ import annotations

import math

import numpy as np
from click.testing import CliRunner

from generate.cli import cli
from generate.training.watch import CHECK_AFTER_STEPS, LearningWatch, unigram_entropy

from ..helpers import TINY_MODEL


def test_unigram_entropy_and_one_warning_for_a_stuck_run():
    ids = np.array([0, 0, 1, 2] * 100, np.uint8)
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert abs(unigram_entropy(ids, 4) - expected) < 1e-12
    stuck = LearningWatch(ids, 4, learning_rate=0.004)
    messages = [stuck.after_step(step, expected + 0.01) for step in range(1, CHECK_AFTER_STEPS + 5)]
    assert [m for m in messages if m] == [messages[CHECK_AFTER_STEPS - 1]]
    assert "not learning" in messages[CHECK_AFTER_STEPS - 1] and f"{expected:.3f} nats" in messages[CHECK_AFTER_STEPS - 1]
    assert "--learning-rate (e.g. 0.001)" in messages[CHECK_AFTER_STEPS - 1]
    assert stuck.after_validation(expected, 1) is None  # once is enough
    learning = LearningWatch(ids, 4, learning_rate=0.004)
    assert all(learning.after_step(step, expected - 0.2) is None for step in range(1, CHECK_AFTER_STEPS + 5))
    assert learning.after_validation(expected + 0.3, 1) is None  # the first epoch is not judged
    assert learning.after_validation(expected - 0.2, 2) is None
    assert "after epoch 3 the validation loss" in learning.after_validation(expected + 0.3, 3)


def test_a_corpus_with_nothing_to_learn_gets_the_warning_and_verse_does_not(tmp_path, verse_file):
    # Characters drawn independently: no model can beat their unigram entropy.
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.txt"
    noise.write_text("".join(rng.choice(list("abcdefgh"), size=8000, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])), encoding="utf-8")
    runner = CliRunner()
    stuck = runner.invoke(cli, ["train", str(tmp_path / "noise"), str(noise), *TINY_MODEL, "--epochs", "3"])
    assert stuck.exit_code == 0, stuck.stderr
    assert stuck.stderr.count("not learning:") == 1 and "unigram entropy" in stuck.stderr
    fine = runner.invoke(cli, ["train", str(tmp_path / "verse"), str(verse_file), *TINY_MODEL, "--epochs", "2"])
    assert fine.exit_code == 0 and "not learning" not in fine.stderr, fine.stderr


def test_the_default_batch_gives_a_small_corpus_enough_steps(tmp_path):
    from generate.data.config import CorpusConfig
    from generate.model.config import ModelConfig, TrainConfig, auto_batch_size
    from generate.training.plan import plan_new_run

    assert auto_batch_size(1_003_855, 100) == 64  # Tiny Shakespeare keeps B = 64
    assert auto_batch_size(440_777, 100) == 24  # 183 steps an epoch, not 68
    assert auto_batch_size(90_000, 100) == 6 and auto_batch_size(500, 100) == 1
    corpus = tmp_path / "small.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 800)  # 35,200 characters
    plan = plan_new_run(tmp_path / "run", CorpusConfig(sources=[str(corpus)]), ModelConfig(), TrainConfig(), show_progress=False)
    assert plan.config.train.batch_size == 2 and not (tmp_path / "run").exists()  # decided, recorded, nothing written yet
    given = plan_new_run(tmp_path / "run2", CorpusConfig(sources=[str(corpus)]), ModelConfig(), TrainConfig(batch_size=5),
                         show_progress=False)
    assert given.config.train.batch_size == 5
