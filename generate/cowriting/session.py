"""A co-writing session as a state machine: no terminal, no model, only text, candidates and choices.

A session holds the text so far and the candidates on offer (one `Page`).
Every action a writer takes (take a candidate, reroll, edit, change the
temperature or the number of candidates, undo, redo) is appended to `events`
and moves to a new page; undo and redo walk back and forth between pages
without drawing anything new. Each draw of candidates has a seed derived from
the session's one seed and the draw's number, so `replay` runs the same events
through a new session, draws the same candidates, checks them against the
recorded ones, and ends with the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import GenerateError

# (text so far, how many, temperature, seed) -> candidate continuations
Proposer = Callable[[str, int, float, int], tuple[str, ...]]

MIN_TEMPERATURE, MAX_TEMPERATURE, TEMPERATURE_STEP = 0.1, 2.0, 0.1
MAX_CANDIDATES = 9  # one digit key each


@dataclass(frozen=True)
class Draw:
    """One batch of candidates and everything that made it."""

    number: int  # draws so far in the session; the seed derives from it
    seed: int
    temperature: float
    count: int
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    text: str  # the text so far
    draw: Draw  # the candidates on offer after it


@dataclass
class WriteSession:
    """What a writer sees and does; `propose` draws the candidates (a `candidates.CandidateMaker`)."""

    propose: Proposer
    seed: int  # the session's one seed: every draw's seed derives from it
    temperature: float = 0.8
    count: int = 4
    text: str = ""  # the text to start from
    events: list[dict] = field(default_factory=list)  # every action, in order: what replay repeats
    draws: list[Draw] = field(default_factory=list)  # every draw, in order: what replay checks
    past: list[Page] = field(default_factory=list)  # pages undo returns to
    future: list[Page] = field(default_factory=list)  # pages redo returns to

    def __post_init__(self):
        self.temperature = _clamp(self.temperature)
        self.count = min(max(self.count, 1), MAX_CANDIDATES)
        self.start = {"temperature": self.temperature, "candidates": self.count, "start_text": self.text}
        self.page = Page(self.text, self._draw(self.text))

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.page.draw.candidates

    def take(self, index: int) -> None:
        """Appends candidate `index` (from 0) to the text and draws new candidates.

        Raises:
            IndexError: no such candidate.
        """
        if not 0 <= index < len(self.candidates):
            raise IndexError(f"candidate {index + 1}: expected 1 to {len(self.candidates)}")
        self._record({"action": "take", "index": index})
        self._move(self.page.text + self.candidates[index])

    def reroll(self) -> None:
        self._record({"action": "reroll"})
        self._move(self.page.text)

    def edit(self, text: str) -> None:
        """Replaces the text with the writer's own."""
        self._record({"action": "edit", "text": text})
        self._move(text)

    def set_temperature(self, temperature: float) -> bool:
        """Redraws at `temperature` (clamped); False, and nothing drawn, when that changes nothing."""
        if _clamp(temperature) == self.temperature:
            return False
        self._record({"action": "temperature", "value": temperature})
        self.temperature = _clamp(temperature)
        self._move(self.page.text)
        return True

    def set_count(self, count: int) -> bool:
        """Redraws `count` candidates (1 to 9); False, and nothing drawn, when that changes nothing."""
        if min(max(count, 1), MAX_CANDIDATES) == self.count:
            return False
        self._record({"action": "candidates", "value": count})
        self.count = min(max(count, 1), MAX_CANDIDATES)
        self._move(self.page.text)
        return True

    def undo(self) -> bool:
        """Back to the page before the last action; False when there is none."""
        return self._walk("undo", self.past, self.future)

    def redo(self) -> bool:
        """Forward to the page undo left; False when there is none."""
        return self._walk("redo", self.future, self.past)

    def record(self) -> dict:
        """The session for a sidecar: enough for `replay` to rebuild the same text."""
        return {"seed": self.seed, **self.start, "events": list(self.events),
                "draws": [asdict(d) | {"candidates": list(d.candidates)} for d in self.draws], "text": self.page.text}

    def _walk(self, action: str, source: list[Page], target: list[Page]) -> bool:
        """Moves to the last page of `source`, leaving this one on `target`; a page brings back its own settings."""
        if not source:
            return False
        self._record({"action": action})
        target.append(self.page)
        self.page = source.pop()
        self.temperature, self.count = self.page.draw.temperature, self.page.draw.count
        return True

    def _record(self, event: dict) -> None:
        self.events.append(event)

    def _move(self, text: str) -> None:
        self.past.append(self.page)
        self.future.clear()
        self.page = Page(text, self._draw(text))

    def _draw(self, text: str) -> Draw:
        number = len(self.draws)
        seed = derive_seed(self.seed, number)
        draw = Draw(number, seed, self.temperature, self.count, tuple(self.propose(text, self.count, self.temperature, seed)))
        self.draws.append(draw)
        return draw


def derive_seed(seed: int, number: int) -> int:
    """The seed of draw `number` of a session seeded with `seed`."""
    return (seed + number * 0x9E3779B97F4A7C15) % 2**63


def replay(record: dict, propose: Proposer) -> WriteSession:
    """Runs a recorded session again and checks every draw against the record.

    Raises:
        GenerateError: a draw or the final text differs (another model or checkpoint), or a malformed record.
    """
    try:
        session = WriteSession(propose, int(record["seed"]), float(record["temperature"]), int(record["candidates"]),
                               str(record.get("start_text", "")))
        for event in record["events"]:
            _apply(session, event)
        recorded = record["draws"]
        final_text = record["text"]
    except (KeyError, TypeError, ValueError) as exc:
        raise GenerateError(f"not a co-writing record: {exc.__class__.__name__} {exc}") from None
    for draw, expected in zip(session.draws, recorded):
        if list(draw.candidates) != list(expected.get("candidates", [])):
            raise GenerateError(f"draw {draw.number} (seed {draw.seed}) gave other candidates than recorded: "
                                "expected the same model, checkpoint and settings")
    if len(session.draws) != len(recorded) or session.page.text != final_text:
        raise GenerateError("the replayed text differs from the recorded one: expected the same model and settings")
    return session


def _apply(session: WriteSession, event: dict) -> None:
    action = event["action"]
    if action == "take":
        session.take(int(event["index"]))
    elif action == "reroll":
        session.reroll()
    elif action == "edit":
        session.edit(str(event["text"]))
    elif action == "temperature":
        session.set_temperature(float(event["value"]))
    elif action == "candidates":
        session.set_count(int(event["value"]))
    elif action == "undo":
        session.undo()
    elif action == "redo":
        session.redo()
    else:
        raise ValueError(f"unknown action {action!r}")


def _clamp(temperature: float) -> float:
    return round(min(max(temperature, MIN_TEMPERATURE), MAX_TEMPERATURE), 2)
