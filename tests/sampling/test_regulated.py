"""Regulated verse by construction: tones, rhymes and unrepeated rhymes in all four forms, checked against the tables."""

import json

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.data.pingshui import pingshui

from ..helpers import one_line_error


def lines_of(poem: str) -> list[str]:
    return [line.rstrip("，。") for line in poem.strip().split("\n") if line.strip()]


def tone(char: str) -> set[int]:
    """The readings a character has: 1 level, 0 oblique."""
    table = pingshui()
    return {t for t, has in ((1, table.is_level(char)), (0, table.is_oblique(char))) if has}


def check(poem: str, columns: int, count: int) -> None:
    lines = lines_of(poem)
    assert len(lines) == count and all(len(line) == columns for line in lines), poem
    table = pingshui()
    opening = tone(lines[0][1])
    assert len(opening) == 1, poem  # the pattern's first tone is unambiguous
    (first,) = opening
    for index, line in enumerate(lines):
        second = first if index % 4 in (0, 3) else 1 - first  # 對 within a couplet, 粘 between couplets
        for place in range(1, columns - 1, 2):
            wanted = second if place % 4 == 1 else 1 - second
            assert wanted in tone(line[place]), (poem, index, place)
        end = tone(line[-1])
        if index % 2 == 1:
            assert end == {1} and table.rhyme(line[-1], lines[1][-1]), (poem, index)  # level, in line 2's group
        elif index > 0:
            assert end == {0}, (poem, index)
        elif end == {1}:
            assert table.rhyme(line[-1], lines[1][-1]), poem  # a level first line rhymes
    rhymes = [line[-1] for i, line in enumerate(lines) if i % 2 == 1 or tone(line[-1]) == {1}]
    assert len(rhymes) == len(set(rhymes)), poem  # no rhyme character twice


@pytest.mark.parametrize("form", ["5x4", "7x4", "5x8", "7x8"])
def test_regulated_poems_keep_their_tones_and_rhymes(form):
    columns, count = map(int, form.split("x"))
    result = CliRunner().invoke(cli, ["sample", "tang", "--form", form, "--regulated", "-N", "6", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    poems = [json.loads(line)["text"] for line in result.stdout.splitlines()]
    assert len(poems) == 6
    for poem in poems:
        check(poem, columns, count)


def test_a_regulated_acrostic_keeps_its_heads_and_its_rules():
    result = CliRunner().invoke(cli, ["sample", "tang", "--acrostic", "春夏秋冬", "--regulated", "-N", "8", "--seed", "2",
                                      "--json"])
    assert result.exit_code == 0, result.stderr
    for line in result.stdout.splitlines():
        poem = json.loads(line)["text"]
        assert [row[0] for row in lines_of(poem)] == list("春夏秋冬")
        check(poem, 5, 4)


def test_regulated_verse_on_a_model_or_form_it_cannot_serve_is_one_line(trained_run):
    runner = CliRunner()
    english = runner.invoke(cli, ["sample", str(trained_run), "--regulated", "--form", "5x4"])
    assert one_line_error(english, 2, "--regulated", "Chinese")
    shape = runner.invoke(cli, ["sample", "tang", "--regulated", "--form", "6x4"])
    assert one_line_error(shape, 2, "--regulated", "5x4, 7x4, 5x8 or 7x8", "6x4")
    bare = runner.invoke(cli, ["sample", "tang", "--regulated"])
    assert one_line_error(bare, 2, "--regulated", "no form")


def test_the_verse_critic_reads_rhyme_tones_and_copies():
    from generate.critics.verse import ChineseVerseCritic, follows_tones, poem_lines

    jing_ye_si = "床前明月光，\n疑是地上霜。\n舉頭望明月，\n低頭思故鄉。\n"  # rhymes 霜/鄉 (七陽); 拗 in its tones
    deng_guan_que = "白日依山盡，\n黃河入海流。\n欲窮千里目，\n更上一層樓。\n"  # regulated, 流/樓 (十一尤)
    critic = ChineseVerseCritic()
    critic.with_corpus([jing_ye_si])
    judged = critic.judge(critic.pieces(jing_ye_si + "\n" + deng_guan_que + "\n" + "春風\n"))
    assert judged.count == 3 and judged.values["regulated_shape"] == pytest.approx(2 / 3)
    assert judged.values["rhyme"] == 1.0 and judged.values["copied_line"] == pytest.approx(1 / 3)
    assert follows_tones(poem_lines(deng_guan_que)) and not follows_tones(poem_lines(jing_ye_si))


def test_eval_judges_regulated_verse():
    result = CliRunner().invoke(cli, ["eval", "tang", "-N", "6", "--seed", "4", "--form", "7x4", "--regulated", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["critic"] == "chinese verse" and report["samples"]["pieces"] == 6
    assert report["samples"]["measures"]["rhyme"] == 1.0 and report["samples"]["measures"]["tones"] == 1.0


def test_the_english_verse_critic_pairs_lines_by_the_scheme():
    from generate.critics.english import EnglishVerseCritic, rhyme, syllables

    assert rhyme("night", "light") and not rhyme("night", "day") and rhyme("night", "zzxq") is None
    assert syllables("The curfew tolls the knell of parting day") == 10
    poem = "ROMEO:\nThe curfew tolls the knell of parting day,\nThe lowing herd wind slowly o'er the lea,\n" \
           "The ploughman homeward plods his weary way,\nAnd leaves the world to darkness and to me.\n"
    judged = EnglishVerseCritic(rhyme="ABAB").judge([poem])
    assert judged.values["judged_pairs"] == 2 and judged.values["rhymed_pairs"] == 1.0  # day/way, lea/me
    assert judged.values["scanning_lines"] == 1.0  # ROMEO: is a speaker, not a line
    assert EnglishVerseCritic(rhyme="AABB").judge([poem]).values["rhymed_pairs"] == 0.0


def test_eval_refuses_a_setting_its_critic_does_not_take():
    result = CliRunner().invoke(cli, ["eval", "folk", "-N", "2", "--rhyme", "ABAB"])
    assert one_line_error(result, 2, "--rhyme", "melody critic")


def test_a_model_labelled_by_rhyme_draws_a_group_unless_the_poem_has_chosen_one():
    from generate.data.labels import NONE
    from generate.data.vocab import Vocab
    from generate.sampling.options import SampleOptions
    from generate.sampling.resolve import RunFacts, resolve_options

    chars = sorted(set("\n，。床前明月光疑是地上霜舉頭望低思故鄉春眠不覺曉處聞啼鳥白日依山盡"))
    facts = RunFacts("text", "melody", Vocab(chars), labels=(NONE, "尤", "陽"), label_source="rhyme",
                     label_shares=(("尤", 40.0), ("陽", 60.0)))

    def label(**options):
        cfg = resolve_options(SampleOptions(**options), facts)
        return cfg.label, cfg.label_shares

    assert label() == ("any", (("尤", 40.0), ("陽", 60.0)))  # no label asked: each poem draws its group
    assert label(prime="床前明月光，\n疑是地上") == ("any", (("尤", 40.0), ("陽", 60.0)))  # line 2 not yet written
    assert label(prime="床前明月光，\n疑是地上霜。\n") == ("陽", ())  # line 2 chose 陽: the poem keeps it
    assert label(prime="春眠不覺曉，\n處處聞啼鳥。", label="any") == ("", ())  # an oblique rhyme: no group steers
    assert label(label="尤") == ("尤", ())
    assert label(label="none") == ("", ())
    plain = RunFacts("text", "melody", Vocab(chars), labels=(NONE, "尤", "陽"), label_source="folder",
                     label_shares=(("尤", 1.0), ("陽", 1.0)))
    assert resolve_options(SampleOptions(), plain).label == ""  # other labelled models write unlabelled unless asked


def test_a_poem_that_copies_a_line_of_the_corpus_is_drawn_again(tmp_path):
    import shutil

    from generate.data.corpus_lines import copied_lines, read_lines, write_lines
    from generate.fileio import sha256_file
    from generate.model.rundir import resolve_run

    shipped = resolve_run("tang")
    assert len(read_lines(shipped.lines)) > 250_000  # both corpora's lines travel with the model
    folder = tmp_path / "tang"  # a copy of the bundle whose "corpus" is the poem its seed writes
    shutil.copytree(shipped.path, folder, ignore=shutil.ignore_patterns("best.keras", "*.md"))
    runner = CliRunner()
    args = ["sample", str(folder), "--form", "5x4", "--seed", "1", "--json"]
    free = json.loads(runner.invoke(cli, [*args, "--no-new-lines"]).stdout)
    write_lines(folder / "lines.json", [free["text"]], "its own poem")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))  # the bundle lists its new lines
    meta["files"]["lines.json"] = sha256_file(folder / "lines.json")
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    kept = runner.invoke(cli, args)
    assert kept.exit_code == 0, kept.stderr
    record = json.loads(kept.stdout)
    assert record["text"] != free["text"] and record["attempt"] >= 1 and record["copied_lines"] == 0
    assert not copied_lines(record["text"], read_lines(folder / "lines.json"))
    assert "--new-lines" in kept.stderr  # the redraws are said
