import numpy as np
import pytest

from generate.data.config import CorpusConfig
from generate.errors import UsageError
from generate.model.checkpoint import load_trainable_model, read_training_state
from generate.model.config import ModelConfig, TrainConfig
from generate.model.rundir import RunDir
from generate.training.trainer import create_run, resume_run

MODEL = dict(layers=2, units=16, embedding_dim=8, dropout=0.1)


def train_cfg(**kw):
    return TrainConfig(**{"batch_size": 4, "seq_len": 16, "epochs": 2, "checkpoint_every": 5, **kw})


def weights(run):
    return load_trainable_model(RunDir(run).latest).get_weights()


def _train_straight_and_paused(tmp_path, verse_file, monkeypatch, **options):
    """The same run twice: uninterrupted, and paused by a 4-minute limit on a clock that ticks 1 s a reading, then resumed.

    Returns:
        (straight, paused, pauses, first): the two results, how many times the second ran, and what the
        first pause left: (its checkpoint's training state, whether a history file existed).
    """
    import generate.training.trainer as train_module

    straight = create_run(tmp_path / "straight", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL),
                          train_cfg(**options), show_progress=False)

    def fresh_clock():  # a 4-minute limit pauses every 240 readings (about 80 steps)
        ticks = iter(range(0, 10_000))
        monkeypatch.setattr(train_module.time, "monotonic", lambda: float(next(ticks)))

    fresh_clock()
    paused = create_run(tmp_path / "paused", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL),
                        train_cfg(max_minutes=4.0, **options), show_progress=False)
    first = (read_training_state(RunDir(tmp_path / "paused").latest), RunDir(tmp_path / "paused").history.exists())
    pauses = 1
    while not paused.finished:
        fresh_clock()
        paused = resume_run(tmp_path / "paused", overrides={"max_minutes": 4.0}, show_progress=False)
        pauses += 1
    monkeypatch.undo()
    return straight, paused, pauses, first


def test_pauses_change_nothing(tmp_path, verse_file, monkeypatch):
    """A run paused by --max-minutes and resumed many times ends bit for bit like an uninterrupted one.

    A pause before the run has ever validated validates once (a history row and a provisional best.keras),
    which the first regular validation replaces: weights, best and early stopping are as if never paused.
    """
    straight, paused, pauses, (state, had_history) = _train_straight_and_paused(tmp_path, verse_file, monkeypatch)
    assert state["epoch"] == 0 and 0 < state["step"]
    assert had_history  # the first pause came before any validation: it validated
    assert pauses >= 3 and paused.global_step == straight.global_step
    for name in ("latest", "best"):
        for a, b in zip(load_trainable_model(tmp_path / "straight" / f"{name}.keras").get_weights(),
                        load_trainable_model(tmp_path / "paused" / f"{name}.keras").get_weights()):
            np.testing.assert_array_equal(a, b)
    columns = ("epoch", "step", "global_step", "train_loss", "val_loss", "learning_rate")
    rows = [[{k: r[k] for k in columns} for r in RunDir(tmp_path / run).read_history()] for run in ("straight", "paused")]
    at_pauses = [r for r in rows[1] if r["step"] != "0"]  # mid-epoch rows: the pauses' own, before epoch 1 ended
    assert at_pauses and all(r["epoch"] == "1" and r["val_loss"] for r in at_pauses)
    regular = [r for r in rows[1] if r["step"] == "0"]
    assert rows[0] == regular and [r["epoch"] for r in regular] == ["1", "2"]
    assert float(rows[1][-1]["val_loss"]) > 0


def test_resume_refuses_a_changed_corpus_and_model_options(tmp_path, verse_file):
    create_run(tmp_path / "run", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL), train_cfg(epochs=1), show_progress=False)
    with pytest.raises(UsageError, match="cannot change on --resume"):
        resume_run(tmp_path / "run", overrides={"units": 32, "epochs": 2})
    verse_file.write_text(verse_file.read_text() + "a new line\n")
    with pytest.raises(UsageError, match="corpus changed"):
        resume_run(tmp_path / "run", overrides={"epochs": 2})


def test_existing_run_is_never_overwritten(tmp_path, verse_file):
    create_run(tmp_path / "run", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL), train_cfg(epochs=1), show_progress=False)
    before = (tmp_path / "run" / "latest.keras").read_bytes()
    with pytest.raises(UsageError, match="already exists"):
        create_run(tmp_path / "run", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL), train_cfg(epochs=1))
    assert (tmp_path / "run" / "latest.keras").read_bytes() == before


def test_validation_every_n_steps_is_exact_under_pauses(tmp_path, verse_file, monkeypatch):
    """--val-every validates mid-epoch (history rows, best.keras, patience); pauses and resumes change none of it."""
    straight, paused, pauses, _ = _train_straight_and_paused(tmp_path, verse_file, monkeypatch, val_every=30, patience=0)
    assert pauses >= 3 and paused.global_step == straight.global_step
    columns = ("epoch", "step", "global_step", "train_loss", "val_loss", "learning_rate")
    rows = [[{k: r[k] for k in columns} for r in RunDir(tmp_path / run).read_history()] for run in ("straight", "paused")]
    assert rows[0] == rows[1]
    mid_epoch = [r for r in rows[0] if r["step"] != "0"]
    assert len(mid_epoch) >= 4 and all(int(r["global_step"]) % 30 == 0 and r["val_loss"] for r in mid_epoch)
    assert len(rows[0]) == len(mid_epoch) + 2  # and one row at each epoch's end
    best = min(float(r["val_loss"]) for r in rows[0])
    assert read_training_state(RunDir(tmp_path / "paused").best)["best_val_loss"] == pytest.approx(best, abs=1e-5)
    for a, b in zip(load_trainable_model(tmp_path / "straight" / "best.keras").get_weights(),
                    load_trainable_model(tmp_path / "paused" / "best.keras").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_recorded_val_loss_is_never_a_training_loss(tmp_path, verse_file):
    corpus = CorpusConfig(sources=[str(verse_file)])
    create_run(tmp_path / "none", corpus, ModelConfig(**MODEL), train_cfg(epochs=1, val_fraction=0), show_progress=False)
    state = read_training_state(RunDir(tmp_path / "none").best)
    assert state["val_loss"] is None and state["best_val_loss"] > 0  # without a split, "best" ranks training losses
    create_run(tmp_path / "split", corpus, ModelConfig(**MODEL), train_cfg(epochs=1), show_progress=False)
    state = read_training_state(RunDir(tmp_path / "split").latest)
    assert state["val_loss"] == pytest.approx(float(RunDir(tmp_path / "split").read_history()[-1]["val_loss"]), abs=1e-5)


def test_checked_configs_are_frozen():
    import dataclasses

    cfg = train_cfg()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3
    assert dataclasses.replace(cfg, epochs=3).epochs == 3 and cfg.epochs == 2


def test_a_resume_without_a_time_limit_trains_to_the_end(tmp_path, verse_file, monkeypatch):
    import generate.training.trainer as train_module

    ticks = iter(range(0, 100_000))
    monkeypatch.setattr(train_module.time, "monotonic", lambda: float(next(ticks)))
    corpus = CorpusConfig(sources=[str(verse_file)])
    paused = create_run(tmp_path / "run", corpus, ModelConfig(**MODEL), train_cfg(epochs=1, max_minutes=4.0),
                        show_progress=False)
    assert not paused.finished
    ticks = iter(range(0, 100_000))  # the same clock: the recorded 4 minutes would pause again
    assert resume_run(tmp_path / "run", show_progress=False).finished


def test_each_validation_shows_a_short_preview_and_keeps_it_in_the_log(tmp_path, verse_file, caplog, monkeypatch):
    import logging

    import generate.training.trainer as trainer

    monkeypatch.setattr(trainer, "PREVIEW_GAP_S", 0.0)  # a run of seconds: a preview at every validation all the same
    with caplog.at_level(logging.INFO, logger="generate.training.trainer"):
        create_run(tmp_path / "run", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL), train_cfg(epochs=2),
                   show_progress=False)
    kept = (tmp_path / "run" / "logs" / "previews.txt").read_text(encoding="utf-8")
    headings = [line for line in kept.splitlines() if line.startswith("--- ")]
    assert len(headings) == 2 and headings[0].startswith("--- epoch 1, step ") and "validation" in headings[0]
    assert sum("preview at step" in r.getMessage() for r in caplog.records) == 2
    quiet = create_run(tmp_path / "quiet", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL),
                       train_cfg(epochs=1, preview_chars=0), show_progress=False)
    assert quiet.finished and not (tmp_path / "quiet" / "logs" / "previews.txt").exists()
