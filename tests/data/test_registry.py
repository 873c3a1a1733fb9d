"""Built-in corpora: the registry, checked builds from local copies, clean-up steps, `corpus:NAME` sources."""

import hashlib
import json

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.data import registry as corpora
from generate.data.registry import build, get_entry, load_registry, quatrains_5x4, stdlib_modules
from generate.errors import CorpusError, UsageError
from generate.paths import corpora_dir

from ..helpers import TINY_MODEL

POEM = "春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。"


def test_registry_entries_are_complete():
    registry = load_registry()
    assert {"shakespeare", "wujue", "python", "folk", "bach", "nursery"} <= set(registry)
    for entry in registry.values():
        assert entry.kind in ("text", "code", "music") and entry.license and entry.description
        if entry.source in ("url", "file"):
            assert len(entry.sha256) == 64
    assert registry["shakespeare"].sha256.startswith("86c4e6aa") and registry["shakespeare"].bytes == 1115394
    shipped = corpora_dir() / registry["nursery"].path
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == registry["nursery"].sha256


def test_malformed_registry_is_a_clear_error(tmp_path):
    bad = tmp_path / "registry.toml"
    bad.write_text('[x]\nkind = "text"\nsource = "ftp"\n')
    with pytest.raises(CorpusError, match=r"\[x\] source: expected one of"):
        load_registry(bad)
    bad.write_text('[x]\nkind = "text"\nsource = "file"\ncolour = 1\n')
    with pytest.raises(CorpusError, match="unknown key 'colour'"):
        load_registry(bad)


def test_quatrain_cleanup_keeps_exact_five_by_four_poems():
    text = f"題一:{POEM}\n題二:{POEM[:-1]}\n題三:春眠不□曉，處處聞啼鳥。夜來風雨聲，花落知多少。\n"
    cleaned = quatrains_5x4(corpora.drop_titles(text))
    assert cleaned == "春眠不覺曉，\n處處聞啼鳥。\n夜來風雨聲，\n花落知多少。\n\n"


def test_build_from_a_local_copy_checks_the_hash(tmp_path, monkeypatch):
    source = tmp_path / "wujue.txt"
    source.write_text(f"題:{POEM}\r\n題:{POEM}\r\n", encoding="utf-8")
    entry = get_entry("wujue")
    monkeypatch.setattr(entry, "sha256", hashlib.sha256(source.read_bytes()).hexdigest())
    monkeypatch.setattr(corpora, "get_entry", lambda name: entry)
    built = build("wujue", source)
    assert built.read_text(encoding="utf-8").count("\n\n") == 2 and "\r" not in built.read_text(encoding="utf-8")
    info = json.loads((built.parent / "build.json").read_text())
    assert info["source_sha256"] == entry.sha256 and info["chars"] == 2 * (4 * 7 + 1)
    source.write_text("something else", encoding="utf-8")
    with pytest.raises(CorpusError, match="sha256 mismatch for corpus 'wujue': expected"):
        build("wujue", source, force=True)
    assert built.read_text(encoding="utf-8").startswith("春眠")  # the failed rebuild destroyed nothing


def test_stdlib_corpus_skips_tests_and_generated_tables():
    modules = stdlib_modules()
    names = {p.name for p in modules}
    assert {"argparse.py", "json/__init__.py".split("/")[1]} <= names
    assert not any(part in ("test", "tests", "encodings", "idle_test") for p in modules for part in p.parts)
    assert not any(p.name.startswith("test_") for p in modules)


def test_corpus_cli_list_show_build_and_training_on_a_builtin(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(cli, ["corpus", "list"])
    assert listed.exit_code == 0 and listed.stdout.splitlines()[0].startswith("shakespeare\ttext\turl")
    shown = runner.invoke(cli, ["corpus", "show", "wujue", "--json"])
    assert json.loads(shown.stdout)["clean"][2]["step"] == "quatrains-5x4"
    missing = runner.invoke(cli, ["corpus", "show", "nope"])
    assert missing.exit_code == 2 and "expected one of shakespeare" in missing.stderr
    unbuilt = runner.invoke(cli, ["train", str(tmp_path / "r0"), "corpus:shakespeare"])
    assert unbuilt.exit_code == 2 and "generate corpus build shakespeare" in unbuilt.stderr
    assert not (tmp_path / "r0").exists()
    wrong = runner.invoke(cli, ["corpus", "build", "shakespeare", "--from", str(corpora_dir() / "registry.toml")])
    assert wrong.exit_code == 1 and "sha256 mismatch" in wrong.stderr
    built = runner.invoke(cli, ["corpus", "build", "nursery"])
    assert built.exit_code == 0 and built.stdout.strip().endswith("corpus.txt")
    trained = runner.invoke(cli, ["train", str(tmp_path / "r1"), "corpus:nursery", *TINY_MODEL, "--epochs", "1"])
    assert trained.exit_code == 0, trained.stderr
    config = json.loads((tmp_path / "r1" / "config.json").read_text())
    assert config["corpus"]["sources"] == ["corpus:nursery"] and config["corpus"]["kind"] == "text"
    code = runner.invoke(cli, ["train", str(tmp_path / "r2"), "corpus:nursery", "--kind", "code"])
    assert code.exit_code == 2 and "a text corpus, expected --kind text" in code.stderr


def test_from_is_refused_for_sources_without_a_download():
    with pytest.raises(UsageError, match="expected no --from"):
        build("nursery", corpora_dir() / "registry.toml")
