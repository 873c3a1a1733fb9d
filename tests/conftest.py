"""Shared fixtures: an isolated corpus cache, tiny corpora, and one tiny trained run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from .helpers import VERSE


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def verse_file(tmp_path):
    path = tmp_path / "verse.txt"
    path.write_text(VERSE, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 2x16 LSTM trained for one epoch; shared read-only by sampling and CLI tests."""
    from generate.data.config import CorpusConfig
    from generate.model.config import ModelConfig, TrainConfig
    from generate.training.trainer import create_run

    base = tmp_path_factory.mktemp("trained")
    os.environ["GENERATE_CACHE_DIR"] = str(base / "cache")
    corpus = base / "verse.txt"
    corpus.write_text(VERSE, encoding="utf-8")
    run = base / "run"
    create_run(
        run,
        CorpusConfig(sources=[str(corpus)]),
        ModelConfig(layers=2, units=16, embedding_dim=8),
        TrainConfig(batch_size=4, seq_len=16, epochs=1),
        show_progress=False,
    )
    return run
