"""English verse by choice, not by cutting: rhymes by the CMU dictionary and lines that scan, on the shipped model."""

import json

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.data.prosody import SONNET, estimated_syllables, last_word, rhyme, syllables, verse_lines

from ..helpers import one_line_error


def poems(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["sample", "shakespeare", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def pairs(lines: list[str], scheme: str) -> list[tuple[str, str]]:
    """(first word of a letter, a later word of it) for each stanza of `scheme`."""
    found = []
    for start in range(0, len(lines), len(scheme)):
        first: dict[str, str] = {}
        for letter, line in zip(scheme, lines[start:start + len(scheme)]):
            if letter in first:
                found.append((first[letter], last_word(line)))
            else:
                first[letter] = last_word(line)
    return found


def test_a_sonnet_rhymes_abab_cdcd_efef_gg_in_pentameter():
    written = poems("--form", "sonnet", "--seed", "5")
    assert len(written) == 1
    for record in written:
        lines = record["text"].split("\n")
        assert len(lines) == 14 and verse_lines(record["text"]) == [line.strip() for line in lines], record["text"]
        assert all(rhyme(a, b) for a, b in pairs(lines, SONNET)), record["text"]
        assert all(9 <= estimated_syllables(line) <= 11 for line in lines), record["text"]
        assert (record["rhyme"], record["meter"], record["verse_lines"]) == (SONNET, "pentameter", 14)


def test_a_scheme_repeats_stanza_by_stanza_with_new_rhymes():
    (record,) = poems("--rhyme", "aabb", "--lines", "8", "--seed", "2")
    lines = record["text"].split("\n")
    assert len(lines) == 8 and len(pairs(lines, "AABB")) == 4
    assert all(rhyme(a, b) for a, b in pairs(lines, "AABB")), record["text"]
    assert len({last_word(line).lower() for line in lines}) == 8  # no rhyme word twice
    (ballad,) = poems("--rhyme", "ABCB", "--meter", "tetrameter", "--seed", "3")
    lines = ballad["text"].split("\n")
    assert len(lines) == 4 and rhyme(last_word(lines[1]), last_word(lines[3])), ballad["text"]
    counted = [n for n in map(syllables, lines) if n is not None]
    assert counted and all(7 <= n <= 9 for n in counted), ballad["text"]


def test_the_same_seed_writes_the_same_poem():
    first = poems("--rhyme", "AA", "--seed", "9")[0]["text"]
    assert poems("--rhyme", "AA", "--seed", "9")[0]["text"] == first
    assert poems("--rhyme", "AA", "--seed", "10")[0]["text"] != first


@pytest.mark.parametrize("model, option, needles", [
    ("tang", ["--rhyme", "AABB"], ("--rhyme", "no English words")),
    ("python", ["--form", "sonnet"], ("--form", "writes code")),
    ("folk", ["--meter", "pentameter"], ("--meter", "writes music")),
    ("shakespeare", ["--rhyme", "AB1B"], ("--rhyme", "a scheme of letters")),
    ("shakespeare", ["--meter", "heroic"], ("--meter", "trimeter, tetrameter, pentameter, hexameter")),
    ("shakespeare", ["--form", "sonnet", "--rhyme", "AABB"], ("--rhyme", "its scheme is ABABCDCDEFEFGG")),
    ("shakespeare", ["--form", "sonnet", "--lines", "12"], ("--lines", "expected 14 to match form sonnet")),
])
def test_verse_options_a_model_cannot_serve_are_one_line(model, option, needles):
    assert one_line_error(CliRunner().invoke(cli, ["sample", model, *option]), 2, *needles)
