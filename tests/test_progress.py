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
