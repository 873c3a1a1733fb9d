"""Sampling constraints as automata: the key follower, and automata inside the compiled loop."""

import numpy as np
import pytest

from generate.constraints import FORBID, Automaton, _Builder, key_automaton
from generate.errors import UsageError
from generate.generation import load_generator
from generate.music import chorale, melody
from generate.music.keys import out_of_key_chars
from generate.sampling import SamplingConfig

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
    with pytest.raises(UsageError, match="--key: expected a key signature"):
        key_automaton(MELODY_CHARS, "melody", 0.0, key=7)


def test_an_automaton_that_forbids_everything_is_rejected():
    with pytest.raises(ValueError, match="forbids every character"):
        Automaton("bad", np.zeros((1, 3), np.int32), np.full((1, 3), FORBID, np.float32))


def test_automata_bias_the_compiled_loop_independently_of_chunking(trained_run):
    """A hand-made automaton: never an 'e' straight after a space. Output is the same for any chunk size."""
    gen = load_generator(trained_run, num_samples=6)
    chars = gen.vocab.chars
    builder = _Builder(chars)
    builder.default("other", "other")
    builder.move("other", " ", "after space")
    builder.default("after space", "other")
    builder.move("after space", " ", "after space")
    builder.allow_only("after space", "".join(c for c in chars if c != "e"))
    no_e = builder.build("no e after space", "other", {})
    cfg = SamplingConfig(length=300, num_samples=6, temperature=1.5, seed=5)
    prime = gen.vocab.encode("Shall")

    def texts(chunk):
        samples = gen.sampler.generate(prime, cfg, np.random.default_rng(5), chunk_steps=chunk, automata=(no_e,))
        return [s.text for s in samples]

    constrained = texts(256)
    assert all(" e" not in t for t in constrained) and sum(t.count(" ") for t in constrained) > 20
    assert texts(37) == constrained
    free = [s.text for s in gen.sampler.generate(prime, cfg, np.random.default_rng(5))]
    assert any(" e" in t for t in free)  # the constraint did something
