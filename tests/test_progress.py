import io

from generate.progress import ProgressBar


def test_plain_lines_off_a_terminal_at_start_and_each_tenth():
    out = io.StringIO()
    bar = ProgressBar(100, desc="epoch 1/1", unit="char", stream=out)
    for done in range(1, 101):
        bar.update(done)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in out.getvalue()  # a first line, then one per tenth
    assert lines[0].startswith("epoch 1/1 1/100")
    assert lines[-1].startswith("epoch 1/1 100/100 100%")


def test_resumed_bar_reports_rate_and_eta_only_for_new_work():
    out = io.StringIO()
    bar = ProgressBar(100, unit="char", stream=out, initial=90)
    bar.update(90, rate_units=0)
    assert " 0.0 char/s" in out.getvalue() and "eta --:--" in out.getvalue()


def test_quiet_bar_writes_nothing():
    out = io.StringIO()
    bar = ProgressBar(10, stream=out, enabled=False)
    bar.update(10)
    bar.close()
    assert out.getvalue() == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_line_during_a_terminal_bar_starts_on_a_line_of_its_own(monkeypatch):
    import logging

    from generate.cli.base import _StderrHandler

    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    bar = ProgressBar(100, desc="epoch 2/3", stream=screen)
    bar.update(40)
    _StderrHandler().emit(logging.LogRecord("generate", logging.INFO, "", 0, "preview at step 40: ...", None, None))
    bar.update(41)
    bar.close()
    shown = screen.getvalue()
    before_preview = shown.split("preview at step 40")[0]
    assert before_preview.endswith("\r\x1b[K")  # the bar's line was cleared first: the preview starts at column 0
    assert shown.rsplit("preview at step 40: ...\n", 1)[1].startswith("\repoch 2/3")  # the bar redraws below it
