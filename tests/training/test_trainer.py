import numpy as np
import pytest

from generate.data.config import CorpusConfig
from generate.errors import UsageError
from generate.model.checkpoint import RunDir, load_trainable_model, read_training_state
from generate.model.config import ModelConfig, TrainConfig
from generate.training.trainer import create_run, resume_run

MODEL = dict(layers=2, units=16, embedding_dim=8, dropout=0.1)


def train_cfg(**kw):
    return TrainConfig(**{"batch_size": 4, "seq_len": 16, "epochs": 2, "checkpoint_every": 5, **kw})


def weights(run):
    return load_trainable_model(RunDir(run).latest).get_weights()


def test_resume_mid_epoch_continues_exactly(tmp_path, verse_file, monkeypatch):
    corpus = CorpusConfig(sources=[str(verse_file)])
    straight = create_run(tmp_path / "straight", corpus, ModelConfig(**MODEL), train_cfg(), show_progress=False)

    # Stop the second run mid-epoch through the max-minutes limit, then resume it.
    import generate.training.trainer as train_module

    clock = iter(range(0, 10_000))
    monkeypatch.setattr(train_module.time, "monotonic", lambda: float(next(clock)))
    paused = create_run(tmp_path / "paused", CorpusConfig(sources=[str(verse_file)]), ModelConfig(**MODEL),
                        train_cfg(max_minutes=0.5), show_progress=False)
    monkeypatch.undo()
    state = read_training_state(RunDir(tmp_path / "paused").latest)
    assert not paused.finished and state["epoch"] == 0 and 0 < state["step"]
    resumed = resume_run(tmp_path / "paused", overrides={"max_minutes": 0.0}, show_progress=False)
    assert resumed.finished and resumed.global_step == straight.global_step
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "paused")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    rows = RunDir(tmp_path / "paused").read_history()
    assert [r["epoch"] for r in rows][-2:] == ["1", "2"]
    assert float(rows[-1]["val_bpc"]) == pytest.approx(float(rows[-1]["val_loss"]) / np.log(2), rel=1e-4)


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
