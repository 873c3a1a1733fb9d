"""Sampling constraints as automata: the key follower, and automata inside the compiled loop."""

import json

import numpy as np
import pytest

from generate.data.vocab import Vocab
from generate.errors import OptionError
from generate.music import chorale, melody
from generate.music.keys import out_of_key_chars
from generate.sampling.constraints import FORBID, UNREACHABLE, Automaton, AutomatonBuilder, distances_to_end, key_automaton
from generate.sampling.generator import load_generator
from generate.sampling.options import SampleOptions
from generate.sampling.resolve import RunFacts, resolve_options

MELODY_CHARS = tuple(sorted(set(melody.PITCH_CHARS + "".join(melody.DURATIONS) + "M:K-0123456789/ |_\n")))
CHORALE_CHARS = tuple(sorted(set(chorale.PITCH_CHARS + ":_.,M:K-0123456789/ |\n")))


def ids(chars, text):
    return [chars.index(c) for c in text]


def penalized(automaton, state, chars):
    return {chars[i] for i in np.flatnonzero(automaton.bias[state] < 0)}


def test_key_follows_each_header_and_resets_at_newlines():
    auto = key_automaton(MELODY_CHARS, "melody", 3.0)
    assert penalized(auto, auto.start, MELODY_CHARS) == set()  # no key yet: nothing penalized
    state = auto.run(ids(MELODY_CHARS, "M:6/8 KK:-3|"))
    assert penalized(auto, state, MELODY_CHARS) == set(out_of_key_chars("melody", -3))
    assert set(auto.bias[state][auto.bias[state] < 0]) == {-3.0}
    state = auto.run(ids(MELODY_CHARS, "a9b-c|d9"), state)  # ties and bar lines keep the key
    assert penalized(auto, state, MELODY_CHARS) == set(out_of_key_chars("melody", -3))
    state = auto.run(ids(MELODY_CHARS, "\nM:4/4 K:2|"), state)
    assert penalized(auto, state, MELODY_CHARS) == set(out_of_key_chars("melody", 2))
    state = auto.run(ids(MELODY_CHARS, "\nM:4/4 K:x|a"), state)  # unreadable key: no constraint
    assert penalized(auto, state, MELODY_CHARS) == set()


def test_chorale_body_characters_never_change_the_key():
    auto = key_automaton(CHORALE_CHARS, "chorale", float("inf"))
    state = auto.run(ids(CHORALE_CHARS, "M:4/4 K:1|K:2:.::::.|"))  # 'K', ':' and '2' are notes and holds here
    assert penalized(auto, state, CHORALE_CHARS) == set(out_of_key_chars("chorale", 1))
    assert np.isneginf(auto.bias[state][ids(CHORALE_CHARS, out_of_key_chars("chorale", 1))]).all()


def test_a_given_key_is_forced_into_every_header():
    auto = key_automaton(MELODY_CHARS, "melody", 0.0, key=-2)
    state = auto.run(ids(MELODY_CHARS, "M:3/4 K:"))
    assert [MELODY_CHARS[i] for i in np.flatnonzero(np.isfinite(auto.bias[state]))] == ["-"]
    state = auto.run(ids(MELODY_CHARS, "-"), state)
    assert [MELODY_CHARS[i] for i in np.flatnonzero(np.isfinite(auto.bias[state]))] == ["2"]
    melodies = RunFacts("music", "melody", Vocab(MELODY_CHARS))
    with pytest.raises(OptionError, match="--key: expected a key signature"):
        resolve_options(SampleOptions(key=7), melodies)
    assert resolve_options(SampleOptions(key="Bb", seed=1), melodies).key == -2


def test_distances_count_the_fewest_allowed_characters_to_an_end():
    # A chain 0 -a-> 1 -a-> 2 (the end); "b" leads back to 0 and is forbidden in 1; 3 only loops on itself.
    transitions = np.array([[1, 0], [2, 0], [2, 2], [3, 3]], np.int32)
    bias = np.zeros((4, 2), np.float32)
    bias[1, 1] = FORBID
    ends = np.array([False, False, True, False])
    assert distances_to_end(transitions, bias, ends).tolist() == [2, 1, 0, UNREACHABLE]
    bias[1, 0] = FORBID  # from 1 nothing allowed leads on: only "b" was left, and it is forbidden too
    bias[1, 1] = 0
    assert distances_to_end(transitions, bias, ends).tolist() == [UNREACHABLE] * 2 + [0, UNREACHABLE]


def test_automata_with_distances_end_samples_cleanly_at_their_length(trained_run):
    """A sample cut at its length ends where the automaton may end: here, just after a newline."""
    gen = load_generator(trained_run, num_samples=8)
    builder = AutomatonBuilder(gen.vocab.chars)
    builder.default("in a line", "in a line")
    builder.move("in a line", "\n", "line ended")
    builder.default("line ended", "in a line")
    builder.move("line ended", "\n", "line ended")
    free = builder.build("lines", "in a line", {})
    assert free.start == 0
    lines = Automaton("lines", free.transitions, free.bias, free.start, {}, np.array([1, 0], np.int32))
    cfg = gen.resolve(SampleOptions(length=45, num_samples=8, temperature=1.0, seed=3, prime="Shall"))
    prime = gen.vocab.encode("Shall")

    def texts(automaton, chunk=256):
        samples = gen.sampler.generate(prime, cfg, np.random.default_rng(3), chunk_steps=chunk, automata=(automaton,))
        return [s.text for s in samples]

    ended = texts(lines)
    assert all(len(t) == 45 and t.endswith("\n") for t in ended), ended
    assert texts(lines, chunk=7) == ended  # the deadline counts from the start of sampling, not of a chunk
    assert sum(t.endswith("\n") for t in texts(free)) < 4  # without the distances, most end mid-line


def test_an_automaton_that_forbids_everything_is_rejected():
    with pytest.raises(ValueError, match="forbids every character"):
        Automaton("bad", np.zeros((1, 3), np.int32), np.full((1, 3), FORBID, np.float32))


def test_an_automaton_by_class_reads_each_character_through_its_column():
    # Two states, two classes: "a" (class 1) toggles the state, and state 1 forbids "b" and "c" (class 0).
    transitions = np.array([[0, 1], [1, 0]], np.int32)
    bias = np.array([[0.0, 0.0], [FORBID, -1.0]], np.float32)
    auto = Automaton("toggle", transitions, bias, 0, {}, None, np.array([1, 0, 0], np.int32))  # chars "abc"
    assert auto.run([0]) == 1 and auto.run([0, 1, 2]) == 1 and auto.run([0, 0]) == 0
    np.testing.assert_array_equal(auto.char_bias(1), [-1.0, FORBID, FORBID])
    with pytest.raises(ValueError, match="columns: expected one class in"):
        Automaton("toggle", transitions, bias, 0, {}, None, np.array([1, 2, 0], np.int32))


def test_automata_bias_the_compiled_loop_independently_of_chunking(trained_run):
    """A hand-made automaton: never an 'e' straight after a space. Output is the same for any chunk size."""
    gen = load_generator(trained_run, num_samples=6)
    chars = gen.vocab.chars
    builder = AutomatonBuilder(chars)
    builder.default("other", "other")
    builder.move("other", " ", "after space")
    builder.default("after space", "other")
    builder.move("after space", " ", "after space")
    builder.allow_only("after space", "".join(c for c in chars if c != "e"))
    no_e = builder.build("no e after space", "other", {})
    cfg = gen.resolve(SampleOptions(length=300, num_samples=6, temperature=1.5, seed=5, prime="Shall"))
    prime = gen.vocab.encode("Shall")

    def texts(chunk):
        samples = gen.sampler.generate(prime, cfg, np.random.default_rng(5), chunk_steps=chunk, automata=(no_e,))
        return [s.text for s in samples]

    constrained = texts(256)
    assert all(" e" not in t for t in constrained) and sum(t.count(" ") for t in constrained) > 20
    assert texts(37) == constrained
    # The same automaton by class of characters (space, "e", the rest) samples the same texts.
    _, first, columns = np.unique(np.vstack([no_e.transitions, no_e.bias]).T, axis=0, return_index=True, return_inverse=True)
    by_class = Automaton("no e after space", no_e.transitions[:, first], no_e.bias[:, first], no_e.start, {}, None,
                         columns.reshape(-1).astype(np.int32))
    assert by_class.transitions.shape[1] == 3
    assert [s.text for s in gen.sampler.generate(prime, cfg, np.random.default_rng(5), automata=(by_class,))] == constrained
    free = [s.text for s in gen.sampler.generate(prime, cfg, np.random.default_rng(5))]
    assert any(" e" in t for t in free)  # the constraint did something


POEMS = ["春眠不覺曉，\n處處聞啼鳥。\n夜來風雨聲，\n花落知多少。\n\n", "白日依山盡，\n黃河入海流。\n欲窮千里目，\n更上一層樓。\n\n",
         "床前明月光，\n疑是地上霜。\n舉頭望明月，\n低頭思故鄉。\n\n", "千山鳥飛絕，\n萬徑人蹤滅。\n孤舟蓑笠翁，\n獨釣寒江雪。\n\n"]


def test_poem_automaton_walks_a_quatrain_and_forbids_the_rest():
    from generate.sampling.constraints import poem_automaton

    chars = tuple(sorted(set("".join(POEMS)) | set("abc ")))
    auto = poem_automaton(chars, 4, acrostic="春處夜花", columns=5, boundary="\n\n", skip_first=True)
    allowed = lambda state: {chars[i] for i in np.flatnonzero(np.isfinite(auto.bias[state]))}  # noqa: E731
    state = auto.run(ids(chars, "\n" + "ab\n\n"))  # the default prime, then a warm-up paragraph
    assert allowed(state) == {"春"}
    state = auto.run(ids(chars, "春眠不覺曉"), state)
    assert allowed(state) == {"，"}
    state = auto.run(ids(chars, "，\n"), state)
    assert allowed(state) == {"處"}
    state = auto.run(ids(chars, "處處聞啼鳥"), state)
    assert allowed(state) == {"。"}
    state = auto.run(ids(chars, "。\n夜來風雨聲，\n花落知多少。\n"), state)
    assert allowed(state) == {"\n"}  # the blank line that closes the poem
    with pytest.raises(OptionError, match="--acrostic: this model's vocabulary has no '冬'"):
        resolve_options(SampleOptions(acrostic="春夏秋冬"), RunFacts("text", "melody", Vocab(chars)))


def test_form_and_acrostic_are_always_honoured(tmp_path):
    """Even a barely trained model writes exact quatrains: the masks, not the model, guarantee the form."""
    from click.testing import CliRunner

    from generate.cli import cli

    corpus = tmp_path / "poems.txt"
    corpus.write_text("".join(POEMS) * 20, encoding="utf-8")
    runner = CliRunner()
    trained = runner.invoke(cli, ["train", str(tmp_path / "run"), str(corpus), "--layers", "1", "--units", "16",
                                  "--batch-size", "4", "--seq-len", "16", "--epochs", "1"])
    assert trained.exit_code == 0, trained.stderr
    result = runner.invoke(cli, ["sample", str(tmp_path / "run"), "--form", "5x4", "--acrostic", "春白床千",
                                 "-N", "12", "--temperature", "1.5", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    implied = runner.invoke(cli, ["sample", str(tmp_path / "run"), "--acrostic", "春白床千", "-N", "4", "--json"])
    assert implied.exit_code == 0 and "writing the form 5x4" in implied.stderr
    for line in result.stdout.splitlines() + implied.stdout.splitlines():
        verses = json.loads(line)["text"].split("\n")
        assert len(verses) == 4, verses
        for i, verse in enumerate(verses):
            assert len(verse) == 6 and verse[0] == "春白床千"[i] and verse[5] == "，。"[i % 2], verses
            assert all(c not in "，。\n" for c in verse[:5])
    for args, message in ((["--form", "5x4", "--acrostic", "春白"], "expected 4 characters"),
                          (["--form", "five"], "--form: expected COLUMNSxLINES"),
                          (["--acrostic", "春夏"], "vocabulary has no '夏'")):
        bad = runner.invoke(cli, ["sample", str(tmp_path / "run"), *args])
        assert bad.exit_code == 2 and message in bad.stderr, bad.stderr


def test_lines_make_english_poems_of_exactly_n_nonempty_lines(trained_run):
    from click.testing import CliRunner

    from generate.cli import cli

    result = CliRunner().invoke(cli, ["sample", str(trained_run), "--lines", "3", "-N", "6", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.stderr
    for line in result.stdout.splitlines():
        verses = json.loads(line)["text"].split("\n")
        assert len(verses) == 3 and all(v for v in verses), verses
    acrostic = CliRunner().invoke(cli, ["sample", str(trained_run), "--acrostic", "SAT", "-N", "4", "--seed", "2", "--json"])
    assert acrostic.exit_code == 0, acrostic.stderr
    assert len(acrostic.stdout.splitlines()) == 4
    for line in acrostic.stdout.splitlines():
        assert [v[0] for v in json.loads(line)["text"].split("\n")] == ["S", "A", "T"]
