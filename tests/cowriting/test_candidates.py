"""Candidates from a real (tiny) run: cut at boundaries, constrained, exact from cached states; save and replay."""

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner

from generate.cli import cli
from generate.cowriting.candidates import CandidateMaker, boundary, describe, statement_end
from generate.cowriting.session import WriteSession
from generate.cowriting.write import WriteOptions, save_session
from generate.sampling.generator import load_generator
from generate.sampling.options import SampleOptions

from ..helpers import one_line_error


def test_statement_end_skips_brackets_strings_and_comments():
    assert statement_end("x = 1\ny = 2\n") == len("x = 1\n")
    assert statement_end("f(a,\n  b)\nz") == len("f(a,\n  b)\n")
    assert statement_end("s = '''a\nb'''\nt") == len("s = '''a\nb'''\n")
    assert statement_end("s = 'a(' # (\nt") == len("s = 'a(' # (\n")
    assert statement_end("x = 1 + \\\n 2\n") == len("x = 1 + \\\n 2\n")
    assert statement_end("f(a,\n b") is None
    assert boundary(") + 1\nnext", "code", before="x = f(") == len(") + 1\n")  # the bracket the text so far opened
    assert boundary("b)\nc\n", "code", before="x = (\na,\n") == len("b)\n")
    assert boundary("y = 2\n", "code", before="x = (1\n\x1c") == len("y = 2\n")  # a new file starts afresh
    assert boundary("M:4/4 K:0|O4P4|Q4", "music") == len("M:4/4 K:0|")
    assert boundary("no end", "text") is None and boundary("a line\nmore", "text") == len("a line\n")


def test_music_candidates_read_as_note_names():
    assert describe("M:4/4 K:0|", "O4P4|", "melody") == "D4 Eb4 |"  # O and P are MIDI 62 and 63
    assert describe("", "M:6/8 K:2|", "melody") == "6/8, D major or B minor (2 sharps)  (header)"  # a header in words
    assert describe("M:4/4 K:0|O4|", "\n", "melody") == "(end of the piece)"


@pytest.fixture(scope="module")
def maker(trained_run):
    return CandidateMaker(load_generator(trained_run, num_samples=4), SampleOptions(), length=60)


def test_candidates_end_at_a_line_and_cached_states_change_nothing(maker, trained_run):
    first = maker("Thou art", 4, 0.9, seed=5)
    assert len(first) == 4
    for candidate in first:
        assert "\n" not in candidate[:-1] and (candidate.endswith("\n") or len(candidate) == 60)
    text = "Thou art" + first[0]
    after_take = maker(text, 4, 0.9, seed=6)  # fed from the cached state of "Thou art"
    fresh = CandidateMaker(load_generator(trained_run, num_samples=4), SampleOptions(), length=60)
    assert fresh(text, 4, 0.9, seed=6) == after_take  # fed at once from a zero state: the same draw
    assert maker(text, 4, 0.9, seed=6) == after_take and maker(text, 4, 0.9, seed=7) != after_take


def test_candidates_honour_an_acrostic(trained_run):
    acrostic = CandidateMaker(load_generator(trained_run, num_samples=4), SampleOptions(acrostic="TAS"), length=60)
    text = ""
    for line in range(3):
        candidates = acrostic(text, 4, 1.0, seed=line)
        assert all(c.startswith("TAS"[line]) for c in candidates), candidates
        text += next((c for c in candidates if c.endswith("\n")), candidates[0].rstrip("\n") + "\n")
    assert acrostic.poem_done(text) and acrostic(text, 4, 1.0, seed=9) == ()


def test_saved_session_replays_from_its_sidecar_alone(maker, trained_run, tmp_path):
    options = WriteOptions(candidates=3, temperature=0.7, length=60, seed=4, text="Rough ")
    session = WriteSession(maker, 4, 0.7, 3, "Rough ")
    session.take(1)
    session.reroll()
    session.take(2)
    session.undo()
    session.edit(session.page.text + "winds ")
    session.take(0)
    out = tmp_path / "speech.txt"
    save_session(out, session, maker.gen, str(trained_run), options)
    assert out.read_text() == session.page.text
    runner = CliRunner()
    again = runner.invoke(cli, ["write", "--replay", str(out) + ".json"])
    assert again.exit_code == 0, again.stderr
    assert again.stdout == session.page.text
    record = json.loads((tmp_path / "speech.txt.json").read_text())
    record["session"]["draws"][1]["candidates"][0] = "tampered"
    (tmp_path / "tampered.json").write_text(json.dumps(record))
    one_line_error(runner.invoke(cli, ["write", "--replay", str(tmp_path / "tampered.json")]), 1,
                   "gave other candidates than recorded")
    one_line_error(runner.invoke(cli, ["write", "--replay", str(out)]), 2, "--replay:", "speech.txt")


def test_write_bad_input(trained_run, tmp_path):
    runner = CliRunner()
    one_line_error(runner.invoke(cli, ["write", str(trained_run), "-N", "12"]), 2, "--candidates: expected an integer in [1, 9]")
    one_line_error(runner.invoke(cli, ["write", str(trained_run), "--form", "5x4"]), 2, "--form")
    (tmp_path / "taken.txt").write_text("mine")
    one_line_error(runner.invoke(cli, ["write", str(trained_run), "-o", str(tmp_path / "taken.txt")]), 2, "taken.txt")
    assert (tmp_path / "taken.txt").read_text() == "mine"
    one_line_error(runner.invoke(cli, ["write", str(trained_run)]), 2, "expected a terminal")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_real_program_in_tmux(trained_run, tmp_path):
    """Drives `generate write` in a real terminal: take, reroll, undo, save, quit; then replays the save."""
    session = f"generate-write-{os.getpid()}"
    out = tmp_path / "verse.txt"
    command = f"{sys.executable} -m generate write {trained_run} -o {out} --seed 3 -N 3 --prime Rough"

    def pane() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def wait_for(needle: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = pane()
            if needle in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared:\n{pane()}")

    env = {**os.environ, "GENERATE_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", f"{command}; sleep 60"],
                   check=True, env=env)
    try:
        wait_for(" 3  ")
        for key, shows in (("2", "took candidate 2"), ("r", "rerolled"), ("1", "took candidate 1"), ("u", "undone"),
                           ("T", "temperature 0.9"), ("s", "saved")):
            subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
            wait_for(shows, timeout=30)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 30
        while "generate write ·" in pane() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    record = json.loads((tmp_path / "verse.txt.json").read_text())
    actions = [e["action"] for e in record["session"]["events"]]
    assert actions == ["take", "reroll", "take", "undo", "temperature"]
    text = out.read_text()
    assert text.startswith("Rough") and text == record["session"]["text"]
    replayed = CliRunner().invoke(cli, ["write", "--replay", str(tmp_path / "verse.txt.json")])
    assert replayed.exit_code == 0 and replayed.stdout == text + ("" if text.endswith("\n") else "\n")
    rebuilt = CliRunner().invoke(cli, ["write", "--replay", str(tmp_path / "verse.txt.json"), "-o", str(tmp_path / "again.txt")])
    assert rebuilt.exit_code == 0 and (tmp_path / "again.txt").read_text() == text


def test_a_writer_changing_temperature_and_count_reuses_one_compiled_loop(trained_run, capfd):
    maker = CandidateMaker(load_generator(trained_run, num_samples=4), SampleOptions(), length=20)
    session = WriteSession(maker, 3, 0.8, 4, "Thou ")
    for step in range(6):
        session.set_temperature(session.temperature + (0.1 if step % 2 else -0.3))
        session.set_count(3 if step % 2 else 4)
    assert len(maker.gen.sampler.compiled) == 1  # the temperature is fed to the loop, not built into it
    (run,) = maker.gen.sampler.compiled.values()
    if hasattr(run, "experimental_get_tracing_count"):  # TensorFlow: a new count may trace once more, then never
        assert run.experimental_get_tracing_count() <= 2
    assert "retracing" not in capfd.readouterr().err


def test_the_starting_temperature_is_the_writers_else_the_models_else_0_8(trained_run):
    from generate.model.rundir import RunDir
    from generate.sampling.resolve import RunFacts

    facts = RunFacts.of(RunDir(trained_run))
    assert WriteOptions().starting_temperature(facts) == 0.8
    assert WriteOptions().starting_temperature(replace(facts, sampling_defaults=(("temperature", 0.6),))) == 0.6
    assert WriteOptions(temperature=1.1).starting_temperature(replace(facts, sampling_defaults=(("temperature", 0.6),))) == 1.1


def test_candidates_are_never_empty_or_repeated_and_a_line_has_something_on_it(maker):
    assert boundary("\nROMEO: hi\nmore", "text") == len("\nROMEO: hi\n")  # a speaker's newline belongs to the line
    assert boundary("\n\nx = 1\ny", "code", before="a = 2\n") == len("\n\nx = 1\n")
    for seed in range(4):  # nearly greedy: four streams from one state would mostly agree
        candidates = maker("Thou art\n", 4, 0.1, seed=seed)
        assert len(set(candidates)) == len(candidates) and all(c.strip() for c in candidates), candidates


def test_music_text_so_far_reads_as_notes_like_the_candidates():
    from generate.cowriting.candidates import describe_piece

    assert describe_piece("M:4/4 K:0|O4P4|Q4|\nM:6/8 K:2|O2", "melody") == (
        "4/4, C major or A minor (no sharps or flats) D4 Eb4 | E4 |\n6/8, D major or B minor (2 sharps) D4")
