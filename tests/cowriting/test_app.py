"""The co-writing screen driven by keystrokes through a pipe: nothing reaches the terminal behind it."""

import logging
import os
import sys
from pathlib import Path

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from generate.cowriting.app import WriterApp
from generate.cowriting.session import WriteSession
from generate.errors import GenerateError

from .test_session import propose


def noisy_propose(text, count, temperature, seed):
    """A stand-in model that, like TensorFlow retracing, warns through logging and writes to fd 2 on every draw."""
    logging.getLogger("tensorflow").warning("5 out of the last 5 calls triggered tf.function retracing")
    os.write(2, b"W0000 a C++ notice on file descriptor 2\n")
    return propose(text, count, temperature, seed)


@pytest.fixture(autouse=True)
def tensorflow_logs_to_stderr():
    """TensorFlow's logger has a handler of its own that writes to stderr."""
    class ToStderr(logging.Handler):
        def emit(self, record):
            print(record.getMessage(), file=sys.stderr, flush=True)

    handler = ToStderr()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)


def run_screen(keys: str, tmp_path: Path, save_to: Path | None = None, log_file: Path | None = None):
    session = WriteSession(noisy_propose, seed=3, count=3, text="Once ")  # the first draw, before the screen
    saved: list[Path] = []

    def save(path: Path) -> Path:
        path.write_text(session.page.text, encoding="utf-8")
        saved.append(path)
        return path

    def check_output(path: Path) -> None:
        if path.exists():
            raise GenerateError(f"{path} exists")

    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        app = WriterApp(session, "stand-in", save, lambda text: None, save_to, check_output,
                        log_file=log_file or tmp_path / "write.log", input=pipe, output=DummyOutput())
        interrupted = app.run()
    return app, session, saved, interrupted


def test_logs_and_engine_notices_stay_off_the_screen(tmp_path, capfd):
    app, session, _, interrupted = run_screen("1TTtnN2q", tmp_path)
    captured = capfd.readouterr()
    # The terminal behind the screen got only the first draw's, made before the screen was up.
    assert captured.err.count("retracing") == 1 and captured.err.count("C++ notice") == 1
    log_text = (tmp_path / "write.log").read_text()
    assert log_text.count("retracing") == log_text.count("C++ notice") == len(session.draws) - 1 == 7
    assert app.message.startswith("warning: 5 out of the last 5 calls")  # the message line shows the warning
    assert not interrupted
    os.write(2, b"after\n")  # fd 2 is the terminal's again
    assert capfd.readouterr().err == "after\n"


def test_save_without_output_asks_for_a_name_and_ctrl_c_keeps_the_text(tmp_path, capfd):
    taken = tmp_path / "taken.txt"
    taken.write_text("mine", encoding="utf-8")
    poem = tmp_path / "poem.txt"
    app, session, saved, interrupted = run_screen(f"1s{taken}\r\x03", tmp_path)
    assert taken.read_text() == "mine" and saved == [] and "exists" in app.status  # refused: still asking
    app, session, saved, interrupted = run_screen(f"1s{poem}\r2s\x03", tmp_path)
    assert saved == [poem, poem] and poem.read_text() == session.page.text  # the second s saves to the same name
    assert interrupted and app.output == poem


def test_the_header_shows_the_session_seed(tmp_path):
    app, session, _, _ = run_screen("1q", tmp_path)
    header = app._header()[0][1]
    assert "seed 3 " in header and "draw 1" in header and str(session.page.draw.seed) not in header


def test_an_unwritable_log_still_keeps_the_screen_clean(tmp_path, capfd):
    (tmp_path / "a-file").write_text("not a directory")
    app, session, _, _ = run_screen("1Tq", tmp_path, log_file=tmp_path / "a-file" / "write.log")
    assert capfd.readouterr().err.count("retracing") == 1  # the first draw's only, before the screen was up
    assert len(session.draws) == 3
