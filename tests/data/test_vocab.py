import pytest

from generate.data.vocab import UNK_CHAR, Vocab
from generate.errors import CheckpointError, UsageError


def test_round_trip_keeps_cjk_and_emoji_as_single_characters(tmp_path):
    text = "春眠不覺曉 🎵 héllo\n"
    vocab = Vocab.from_counts({c: text.count(c) for c in set(text)})
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text
    vocab.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == vocab


def test_min_count_maps_rare_characters_to_unknown():
    vocab = Vocab.from_counts({"a": 5, "b": 5, "z": 1}, min_count=2)
    assert "z" not in vocab.chars and vocab.unk_id is not None
    assert vocab.chars[vocab.unk_id] == UNK_CHAR
    assert vocab.decode(vocab.encode("abz", oov="unk")) == "ab" + UNK_CHAR


def test_out_of_vocabulary_prime_lists_the_characters():
    vocab = Vocab.from_counts({"a": 1, "b": 1})
    with pytest.raises(UsageError, match=r"2 character\(s\).*'x', 'y'"):
        vocab.encode("axyb", what="--prime")
    assert vocab.encode("axyb", oov="drop") == vocab.encode("ab")
    with pytest.raises(UsageError, match="--oov drop"):
        vocab.encode("x", oov="unk")  # no unknown token in this vocab


def test_damaged_vocab_file_is_a_clear_error(tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="vocab.json"):
        Vocab.load(path)
