"""Shared fixtures: an isolated corpus cache, tiny corpora, and one tiny trained run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from .helpers import VERSE


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """The session's cache directory. Under pytest-xdist its automata tables are shared by every worker:
    the library's lock lets the first worker that needs a table build it and the others read it."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    cache.mkdir(exist_ok=True)
    if os.environ.get("PYTEST_XDIST_WORKER") and not (cache / "automata").exists():
        shared = tmp_path_factory.getbasetemp().parent / "automata"
        shared.mkdir(exist_ok=True)
        (cache / "automata").symlink_to(shared, target_is_directory=True)
    return cache


@pytest.fixture(autouse=True)
def isolated_cache(session_cache, monkeypatch):
    monkeypatch.setenv("GENERATE_CACHE_DIR", str(session_cache))


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
