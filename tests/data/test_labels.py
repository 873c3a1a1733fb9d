"""Labelled corpora: where labels come from, which characters carry them, and how batches carry them."""

from __future__ import annotations

import numpy as np
import pytest

from generate.data.batching import Labels, StreamBatches
from generate.data.config import CorpusConfig
from generate.data.corpus import load_corpus
from generate.data.labels import MIN_HEADER_PIECES, NONE, LabelSpans, label_corpus, label_dropout
from generate.errors import CorpusError, OptionError, UsageError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def labels_per_char(corpus, labelling) -> str:
    """The label name of every character of the corpus stream, one letter each (its first)."""
    ids = labelling.spans.at(np.arange(corpus.n_chars))
    return "".join(labelling.names[i][0] for i in ids)


def test_folder_labels_name_each_file_by_its_folder_under_the_source(tmp_path):
    root = tmp_path / "styles"
    write(root / "poems" / "a.txt", "roses\n")
    write(root / "poems" / "deeper" / "b.txt", "violets\n")  # still under poems
    write(root / "code" / "c.txt", "x = 1")  # the corpus adds its final newline
    write(root / "loose.txt", "none\n")  # directly in the source: no folder, no label
    corpus = load_corpus(CorpusConfig(sources=[str(root)]), show_progress=False)
    labelling = corpus.labelling("folder")
    assert labelling.names == (NONE, "code", "poems")
    assert labelling.units == {NONE: 1, "code": 1, "poems": 2}
    def label_letter(path):
        return "p" if "/poems/" in str(path) else "c" if "/code/" in str(path) else "<"

    def stream_length(path):  # a text file without a final newline gets one in the stream
        return len(path.read_text()) + (not path.read_text().endswith("\n"))

    expected = "".join(label_letter(path) * stream_length(path) for path in corpus.files)
    assert labels_per_char(corpus, labelling) == expected
    summary = labelling.summary(corpus.n_chars)
    assert summary["counts"]["poems"] == {"files": 2, "chars": len("roses\nviolets\n")}


def test_a_tsv_maps_files_to_labels_and_its_mistakes_are_named_by_line(tmp_path):
    write(tmp_path / "a.txt", "one\n")
    write(tmp_path / "b.txt", "two\n")
    write(tmp_path / "c.txt", "three\n")
    tsv = write(tmp_path / "labels.tsv", "# file\tlabel\na.txt\tcheerful\nb.txt\tgloomy\n")
    corpus = load_corpus(CorpusConfig(sources=[str(tmp_path / "*.txt")]), show_progress=False)
    labelling = corpus.labelling(f"tsv:{tsv}")
    assert labelling.names == (NONE, "cheerful", "gloomy")
    assert labels_per_char(corpus, labelling) == "cccc" + "gggg" + "<<<<<<"
    write(tsv, "a.txt\tcheerful\nb.txt\n")
    with pytest.raises(UsageError, match=r"labels.tsv: line 2: expected a file and a label"):
        corpus.labelling(f"tsv:{tsv}")
    with pytest.raises(UsageError, match="missing.tsv: cannot read"):
        corpus.labelling(f"tsv:{tmp_path / 'missing.tsv'}")


def test_no_label_at_all_and_unknown_sources_are_refused(tmp_path):
    write(tmp_path / "only.txt", "text\n")
    corpus = load_corpus(CorpusConfig(sources=[str(tmp_path)]), show_progress=False)
    with pytest.raises(CorpusError, match="none of the corpus's 1 files has a label"):
        corpus.labelling("folder")
    with pytest.raises(UsageError, match="--labels rhythm: a music header field, expected a music corpus"):
        corpus.labelling("rhythm")
    with pytest.raises(OptionError, match="--labels: expected one of folder, tsv:FILE, rhythm, mode"):
        CorpusConfig(sources=["x"], labels="genre").validate()


ABC = """X:1
T:First
R:Double Jig
M:6/8
K:G
GAB|
X:2
T:Second
R: reel
M:4/4
K:Ador
ABcd|
X:3
T:Third
M:3/4
K:Dmix
DEF|
"""


def test_rhythm_and_mode_come_from_each_abc_tune_s_header(tmp_path):
    abc = write(tmp_path / "tunes.abc", ABC)
    index = [(str(abc), 1, 1), (str(abc), 2, 2), (str(abc), 3, 1)]  # the second tune was written twice (two keys)
    lengths = [5, 7, 7, 4]
    many = MIN_HEADER_PIECES  # each label on enough pieces to be kept
    rhythm = label_corpus("rhythm", "music", [str(abc)], [abc], lengths * many, index * many)
    assert rhythm.names == (NONE, "jig", "reel")
    positions = np.cumsum([0, *lengths[:-1]])
    assert [rhythm.names[i] for i in rhythm.spans.at(positions)] == ["jig", "reel", "reel", NONE]
    mode = label_corpus("mode", "music", [str(abc)], [abc], lengths * many, index * many)
    assert [mode.names[i] for i in mode.spans.at(positions)] == ["major", "dorian", "dorian", "mixolydian"]
    rare = label_corpus("rhythm", "music", [str(abc)], [abc], [5] * many + [7, 7], [(str(abc), 1, 1)] * many + [(str(abc), 2, 1)] * 2)
    assert "reel" not in rare.names and "jig" in rare.names  # a rhythm on too few pieces counts as <none>


def test_label_dropout_drops_whole_rows_from_the_seed_alone():
    first = label_dropout(1000, 0.15, seed=3, epoch=2, step=7)
    assert np.array_equal(first, label_dropout(1000, 0.15, seed=3, epoch=2, step=7))
    assert not np.array_equal(first, label_dropout(1000, 0.15, seed=3, epoch=2, step=8))
    assert 0.1 < first.mean() < 0.2
    assert not label_dropout(64, 0.0, 0, 0, 0).any()


def test_batches_carry_the_label_of_the_character_each_input_predicts():
    ids = np.arange(41) % 5  # vocabulary of 5
    spans = LabelSpans(np.array([0, 10, 25]), np.array([1, 2, 1], np.int32))
    batches = StreamBatches(ids, 2, 4, Labels(spans, 5))
    inputs, targets = batches.batch(2)
    chars, labels = inputs % 5, inputs // 5
    assert np.array_equal(chars, batches.batch(2)[0] % 5) and np.array_equal(targets, StreamBatches(ids, 2, 4).batch(2)[1])
    stream_len = batches.stream_len
    target_positions = np.array([[r * stream_len + 8 + t + 1 for t in range(4)] for r in range(2)])
    assert np.array_equal(labels, spans.at(target_positions))
    assert labels[0].tolist() == [1, 2, 2, 2]  # positions 9..12: the label changes where the target's file starts
    dropped = StreamBatches(ids, 2, 4, Labels(spans, 5, dropout=0.999, seed=1)).batch(2, epoch=0)[0]
    assert np.array_equal(dropped, StreamBatches(ids, 2, 4).batch(2)[0])  # every row at <none>: plain ids


JINGYESI = "床前明月光，\n疑是地上霜。\n舉頭望明月，\n低頭思故鄉。\n"  # rhymes in 陽
DENG_GUANQUE = "白日依山盡，\n黃河入海流。\n欲窮千里目，\n更上一層樓。\n"  # rhymes in 尤
CHUNXIAO = "春眠不覺曉，\n處處聞啼鳥。\n夜來風雨聲，\n花落知多少。\n"  # an oblique rhyme: no level group


def test_rhyme_labels_name_each_poem_by_its_pingshui_group(tmp_path):
    from generate.data.labels import rhyme_group

    poems = [JINGYESI] * MIN_HEADER_PIECES + [CHUNXIAO] + [DENG_GUANQUE] * MIN_HEADER_PIECES
    write(tmp_path / "a.txt", "\n".join(poems[:40]))
    write(tmp_path / "b.txt", "\n".join(poems[40:]))  # no final blank line: the stream's newline ends it
    corpus = load_corpus(CorpusConfig(sources=[str(tmp_path / "*.txt")]), show_progress=False)
    labelling = corpus.labelling("rhyme")
    assert labelling.names == (NONE, "尤", "陽") and labelling.unit == "pieces"
    assert labelling.units == {NONE: 1, "尤": MIN_HEADER_PIECES, "陽": MIN_HEADER_PIECES}
    letters = {JINGYESI: "陽", DENG_GUANQUE: "尤", CHUNXIAO: "<"}
    expected = "".join(letters[poem] * (len(poem) + 1) for poem in poems[:40])[:-1]  # the file's last has no blank line
    expected += "".join(letters[poem] * (len(poem) + 1) for poem in poems[40:])[:-1]
    assert labels_per_char(corpus, labelling) == expected
    # Too few poems in a group to learn it from: the group folds into <none>.
    write(tmp_path / "b.txt", DENG_GUANQUE)
    small = load_corpus(CorpusConfig(sources=[str(tmp_path / "*.txt")]), show_progress=False).labelling("rhyme")
    assert small.names == (NONE, "陽") and small.units[NONE] == 1 + 10  # 春曉 and ten poems in 尤
    assert rhyme_group("床前明月光，\n疑是地上") is None  # the second line is not written yet
    assert (rhyme_group(JINGYESI), rhyme_group(CHUNXIAO)) == ("陽", NONE)


def test_rhyme_labels_are_for_verse_in_text_corpora(tmp_path):
    write(tmp_path / "a.py", "x = 1\n")
    corpus = load_corpus(CorpusConfig(sources=[str(tmp_path)], kind="code"), show_progress=False)
    with pytest.raises(UsageError, match="--labels rhyme: Chinese verse, expected a text corpus"):
        corpus.labelling("rhyme")
    write(tmp_path / "t" / "a.txt", "no verse here\n\nnor here\n")
    corpus = load_corpus(CorpusConfig(sources=[str(tmp_path / "t")]), show_progress=False)
    with pytest.raises(CorpusError, match="none of the corpus's 2 pieces has a label"):
        corpus.labelling("rhyme")


def test_a_corpus_s_lines_are_kept_as_hashes_and_a_copied_line_is_found(tmp_path):
    from generate.data.corpus_lines import copied_lines, read_lines, verse_lines, write_lines
    from generate.errors import CheckpointError

    assert verse_lines(JINGYESI) == ["床前明月光", "疑是地上霜", "舉頭望明月", "低頭思故鄉"]
    assert verse_lines("登鸛雀樓:白日依山盡，黃河入海流。") == ["白日依山盡", "黃河入海流"]  # the title is no line of 5 or 7
    path = tmp_path / "lines.json"
    assert write_lines(path, [JINGYESI, DENG_GUANQUE + JINGYESI], "two poems") == 8
    hashes = read_lines(path)
    assert len(hashes) == 8 and list(hashes) == sorted(hashes)
    assert copied_lines("春眠不覺曉，\n疑是地上霜。\n", hashes) == ["疑是地上霜"]
    assert copied_lines("春眠不覺曉，\n處處聞啼鳥。\n", hashes) == []
    assert read_lines(tmp_path / "none.json") is None
    path.write_text('{"lines": 3, "hashes": "AAAAAA=="}')  # one hash, not three
    with pytest.raises(CheckpointError, match="lines.json: expected 3 sorted hashes"):
        read_lines(path)
