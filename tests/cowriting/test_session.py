"""The co-writing state machine: take, reroll, undo, redo, edit, settings and replay, with a stand-in model."""

import random

import pytest

from generate.cowriting.session import MAX_CANDIDATES, WriteSession, derive_seed, replay
from generate.errors import GenerateError


def propose(text: str, count: int, temperature: float, seed: int) -> tuple[str, ...]:
    """A stand-in model: candidates that depend on everything a draw is given."""
    rng = random.Random(f"{text}|{temperature}|{seed}")
    return tuple(f"{rng.choice('abcdefgh')}{rng.randint(0, 99)}{'.' * count} " for _ in range(count))


def test_take_appends_and_draws_anew():
    session = WriteSession(propose, seed=7, temperature=0.8, count=3, text="Once ")
    first = session.candidates
    assert len(first) == 3 and session.page.draw.seed == derive_seed(7, 0)
    session.take(1)
    assert session.page.text == "Once " + first[1]
    assert session.candidates == propose(session.page.text, 3, 0.8, derive_seed(7, 1))
    with pytest.raises(IndexError):
        session.take(3)


def test_reroll_undo_redo_walk_the_pages():
    session = WriteSession(propose, seed=1)
    start = session.page
    session.reroll()
    rerolled = session.page
    assert rerolled.text == start.text and rerolled.draw.seed != start.draw.seed
    assert rerolled.draw.candidates != start.draw.candidates
    session.take(0)
    taken = session.page
    assert session.undo() and session.page == rerolled
    assert session.undo() and session.page == start
    assert not session.undo()  # nothing before the start
    assert session.redo() and session.page == rerolled
    assert session.redo() and session.page == taken
    assert not session.redo()
    session.undo()
    session.edit("my own words ")  # a new action forgets what redo could return to
    assert not session.redo() and session.page.text == "my own words "
    assert session.undo() and session.page == rerolled


def test_settings_are_clamped_and_redraw():
    session = WriteSession(propose, seed=2, temperature=1.95, count=MAX_CANDIDATES)
    assert session.set_temperature(session.temperature + 0.1)
    assert session.temperature == 2.0 and session.page.draw.temperature == 2.0
    draws = len(session.draws)
    assert not session.set_temperature(2.5) and not session.set_count(session.count + 1)  # at the limits: no-ops
    assert session.count == MAX_CANDIDATES and len(session.draws) == draws
    session.set_count(2)
    assert len(session.candidates) == 2
    for _ in range(30):
        session.set_temperature(session.temperature - 0.1)
    assert session.temperature == 0.1
    session.undo()
    assert session.page.draw.temperature == session.temperature == 0.2  # the page brings back its own settings


def test_replay_rebuilds_the_text_and_checks_every_draw():
    session = WriteSession(propose, seed=11, count=4, text="Start: ")
    session.take(2)
    session.reroll()
    session.take(0)
    session.set_temperature(1.2)
    session.undo()
    session.redo()
    session.edit(session.page.text + "by hand ")
    session.take(3)
    session.undo()
    record = session.record()
    again = replay(record, propose)
    assert again.page.text == session.page.text == record["text"]
    assert [d.candidates for d in again.draws] == [d.candidates for d in session.draws]

    def other_model(text, count, temperature, seed):
        return propose(text + "!", count, temperature, seed)

    with pytest.raises(GenerateError, match="gave other candidates than recorded"):
        replay(record, other_model)
    with pytest.raises(GenerateError, match="not a co-writing record"):
        replay({"seed": 1}, propose)
