"""Beam search: exact on a small search space, consistent with `generate score`, constrained, deterministic."""

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.sampling.beam import finish_automaton
from generate.sampling.generator import load_generator
from generate.sampling.options import SampleOptions
from generate.sampling.streams import StreamText

from ..helpers import one_line_error


@pytest.mark.parametrize("stops, limit", [(("ab", "bab", "b\n"), None), ((), ("\n", 3, False, "")),
                                          (("aa",), ("|", 2, True, "|")), (("\n",), ("ab", 4, False, "|"))])
def test_finish_automaton_ends_where_stream_text_cuts(stops, limit):
    chars = ("a", "b", "|", "\n", "c")
    finish = finish_automaton(chars, stops, limit)
    rng = random.Random(0)
    for _ in range(300):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 14)))
        stream = StreamText(stops, limit)
        stream.append(text, last=True)
        state, ended_at = 0, None
        for position, c in enumerate(text):
            state = int(finish.transitions[state, chars.index(c)])
            if finish.accepting[state]:
                ended_at = position + 1
                break
        assert (ended_at is not None) == stream.stopped, (text, stops, limit)
        if ended_at is not None:  # the text is cut inside the characters that ended it
            assert text[:ended_at].startswith(stream.text) and ended_at - len(stream.text) <= max(map(len, stops), default=1)


def test_beam_is_exact_over_two_characters(trained_run):
    """With as many beams as characters, two steps of beam search are an exhaustive search."""
    gen = load_generator(trained_run)
    vocab = len(gen.vocab)
    cfg = gen.resolve(SampleOptions(beam=vocab, num_samples=3, length=2, prime="Thou "))
    beams = gen.sample(SampleOptions(beam=vocab, num_samples=3, length=2, prime="Thou "))
    # Every two-character continuation, scored by the Keras model itself.
    from generate.model.builder import build_model
    from generate.model.checkpoint import load_weights_into

    prime = gen.vocab.encode(cfg.prime)
    model = build_model(gen.config.model, vocab, seq_len=len(prime) + 1)
    load_weights_into(model, gen.checkpoint)
    inputs = np.array([prime + [a] for a in range(vocab)], np.int32)
    logits = np.asarray(model.predict_on_batch(inputs), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    totals = logp[:, -2, :][0][:, None] + logp[:, -1, :]  # (first, second)
    order = np.argsort(-totals.reshape(-1), kind="stable")[:3]
    expected = ["".join(gen.vocab.chars[i] for i in divmod(int(k), vocab)) for k in order]
    assert [b.text for b in beams] == expected
    assert np.allclose([b.logprob for b in beams], np.sort(totals.reshape(-1))[::-1][:3], atol=1e-4)
    assert [b.beam_score for b in beams] == sorted((b.beam_score for b in beams), reverse=True)


def test_beam_one_is_greedy_and_scores_agree_with_score(trained_run, tmp_path):
    runner = CliRunner()
    base = ["sample", str(trained_run), "--prime", "Rough winds", "-n", "60"]
    greedy = runner.invoke(cli, [*base, "--greedy", "--seed", "1"])
    one = runner.invoke(cli, [*base, "--beam", "1"])
    assert one.exit_code == 0 and one.stdout == greedy.stdout and "seed:" not in one.stderr
    result = runner.invoke(cli, [*base, "--beam", "5", "-N", "3", "--stop", "\\n", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert "the 3 likeliest beams" in result.stderr and "sample with -N and no --beam" in result.stderr
    again = runner.invoke(cli, [*base, "--beam", "5", "-N", "3", "--stop", "\\n", "--json"])
    records = [json.loads(line) for line in again.stdout.splitlines()]
    for path, record in zip(sorted((tmp_path / "out").glob("*.txt")), records):
        assert path.read_text() == record["text"]  # deterministic
        assert "\n" not in record["text"] and record["beam"] == 5
        scored = runner.invoke(cli, ["score", str(trained_run), str(path), "--json"])
        assert abs(json.loads(scored.stdout)["nats"] - record["fed_nats"]) < 1e-4
    assert [r["beam_score"] for r in records] == sorted((r["beam_score"] for r in records), reverse=True)


def test_beams_honour_constraints(trained_run):
    runner = CliRunner()
    result = runner.invoke(cli, ["sample", str(trained_run), "--beam", "6", "-N", "6", "--acrostic", "TAR", "--json"])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6 and len({r["text"] for r in records}) == 6
    for record in records:
        lines = record["text"].split("\n")
        assert [line[0] for line in lines] == list("TAR")[: len(lines)], record["text"]
        assert len(lines) == 3 or not record["stopped"]  # a finished beam is the whole poem


def test_beam_bad_options(trained_run):
    runner = CliRunner()
    one_line_error(runner.invoke(cli, ["sample", str(trained_run), "--beam", "3", "-t", "0.5"]), 2,
                   "--temperature: expected no sampling setting with --beam")
    one_line_error(runner.invoke(cli, ["sample", str(trained_run), "--beam", "2", "-N", "3"]), 2,
                   "--num-samples: expected at most --beam (2)")
    one_line_error(runner.invoke(cli, ["sample", str(trained_run), "--beam", "-1"]), 2, "--beam: expected an integer in [0, 256]")
