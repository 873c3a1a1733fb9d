import numpy as np
import pytest

from generate.data.config import CorpusConfig
from generate.data.corpus import FILE_SEPARATOR, load_corpus
from generate.data.vocab import Vocab
from generate.errors import CorpusError, UsageError


def read_all(cfg):
    corpus = load_corpus(cfg, show_progress=False)
    vocab = Vocab.from_counts(corpus.counts)
    return corpus, vocab, vocab.decode(corpus.ids(vocab))


def test_bom_stripped_and_crlf_normalised(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffline one\r\nline two\r\n".encode("utf-8"))
    _, _, text = read_all(CorpusConfig(sources=[str(path)]))
    assert text == "line one\nline two\n"


def test_invalid_utf8_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello \xff world")
    with pytest.raises(CorpusError, match=r"bad.txt: invalid UTF-8 at byte 6"):
        load_corpus(CorpusConfig(sources=[str(path)]), show_progress=False)
    _, _, text = read_all(CorpusConfig(sources=[str(path)], encoding_errors="replace"))
    assert text == "hello \ufffd world\n"


def test_skip_drops_only_the_bad_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe junk")
    (tmp_path / "good.txt").write_text("good text\n", encoding="utf-8")
    corpus, _, text = read_all(CorpusConfig(sources=[str(tmp_path)], encoding_errors="skip"))
    assert text == "good text\n"
    assert [p.endswith("bad.txt") for p in corpus.skipped] == [True]


def test_code_kind_walks_tree_skips_vendored_and_binary_and_marks_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("y = 2\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "dep.py").write_text("vendored = True\n")
    (tmp_path / "pkg" / "blob.py").write_bytes(b"\x00\x01binary")
    (tmp_path / "pkg" / "notes.txt").write_text("not code\n")
    _, _, text = read_all(CorpusConfig(sources=[str(tmp_path)], kind="code", include=["*.py"]))
    assert text == f"{FILE_SEPARATOR}x = 1\n{FILE_SEPARATOR}y = 2\n"


def test_glob_sources_and_missing_sources(tmp_path):
    (tmp_path / "one.md").write_text("one\n")
    (tmp_path / "two.md").write_text("two\n")
    _, _, text = read_all(CorpusConfig(sources=[str(tmp_path / "*.md")]))
    assert text == "one\ntwo\n"
    with pytest.raises(UsageError, match="matches no files"):
        load_corpus(CorpusConfig(sources=[str(tmp_path / "*.rst")]), show_progress=False)
    with pytest.raises(UsageError, match="no such file or directory"):
        load_corpus(CorpusConfig(sources=[str(tmp_path / "missing.txt")]), show_progress=False)


def test_empty_corpus_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="corpus is empty"):
        load_corpus(CorpusConfig(sources=[str(tmp_path / "empty.txt")]), show_progress=False)


def test_cache_is_keyed_by_content_and_stale_cache_is_rebuilt(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abcabc\n")
    corpus, vocab, _ = read_all(CorpusConfig(sources=[str(path)]))
    ids_file = next(corpus.cache_dir.glob("ids-*.npy"))
    assert isinstance(np.load(ids_file, mmap_mode="r"), np.memmap)
    ids_file.write_bytes(b"truncated")  # a damaged cache entry
    again = load_corpus(CorpusConfig(sources=[str(path)]), show_progress=False)
    assert vocab.decode(again.ids(vocab)) == "abcabc\n"
    path.write_text("abcabd\n")  # new content, new key
    changed = load_corpus(CorpusConfig(sources=[str(path)]), show_progress=False)
    assert changed.sha256 != corpus.sha256 and "d" in changed.counts


def test_ids_are_compact_integers(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello world\n")
    corpus = load_corpus(CorpusConfig(sources=[str(path)]), show_progress=False)
    assert corpus.ids(Vocab.from_counts(corpus.counts)).dtype == np.uint8


def test_large_vocabularies_get_wider_ids(tmp_path):
    path = tmp_path / "han.txt"
    path.write_text("".join(chr(0x4E00 + i) for i in range(300)) + "\n", encoding="utf-8")
    corpus = load_corpus(CorpusConfig(sources=[str(path)]), show_progress=False)
    vocab = Vocab.from_counts(corpus.counts)
    ids = corpus.ids(vocab)
    assert ids.dtype == np.uint16 and vocab.decode(ids) == path.read_text(encoding="utf-8")


def test_ascii_fast_path_matches_decoding_across_block_boundaries(tmp_path, monkeypatch):
    """Blocks alternate between raw ASCII and decoded text; CRLF, BOM and multi-byte characters straddle blocks."""
    import generate.data.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 7)
    rng = np.random.default_rng(0)
    pieces = ["ab\r\n", "\r\n", "caf\u00e9", "\u4e2d\u6587", "plain ascii words ", "x\r", "\ny", "\r", "z"]
    text = "".join(pieces[i] for i in rng.integers(0, len(pieces), 400))
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    expected = text.replace("\r\n", "\n")
    expected += "" if expected.endswith("\n") else "\n"
    corpus, vocab, decoded = read_all(CorpusConfig(sources=[str(path)]))
    assert decoded == expected
    assert corpus.n_chars == len(expected)
    assert corpus.counts == {c: expected.count(c) for c in set(expected)}
