"""Co-writing over a WebSocket: the session machine of `generate write`, one message per action.

The client opens `/v1/write`, starts a session, then sends actions; after
each the server answers the whole state (text, candidates, settings, what
undo and redo can do), so a page can draw itself from any message. Drawing
feeds the text and samples the candidates as draws among the engine's other
streams (`EngineRunner.prefill` and `generate`), so no session holds the
model for anyone else; each action has the server's request time.

    -> {"action": "start", "model": "tang", "options": {"form": "5x4", "seed": 3}}
    <- {"type": "state", "text": "", "candidates": [...], "seed": 3, ...}
    -> {"action": "take", "index": 0}       (and reroll, undo, redo, edit {"text"},
                                             temperature {"value"}, count {"value"}, save)
    <- {"type": "saved", "record": {...}}  (save: the sidecar `generate write --replay` rebuilds it from)
    <- {"type": "error", "error": {"field": ..., "message": ...}}  (the session goes on)

`options` are `generate write`'s (candidates, temperature, length, seed,
text, lines, acrostic, form, key, in_key, bpm, instrument, velocity).
"""

from __future__ import annotations

import dataclasses
import math
import time

from ..cowriting.candidates import CandidateMaker, describe
from ..cowriting.session import WriteSession
from ..cowriting.write import WriteOptions, session_record, verify
from ..errors import GenerateError, OptionError, UsageError
from ..sampling.resolve import resolve_seed
from ..typed_values import check_value_types, has_lone_surrogate
from .checks import public_record

ACTIONS = ("start", "take", "reroll", "undo", "redo", "edit", "temperature", "count", "save")


class CoWriting:
    """One WebSocket's session on one served model; every method runs in a worker thread, never the event loop."""

    def __init__(self, served, runner, options):
        """`runner` draws on the served model's engine under one ticket; `options` are the server's bounds."""
        self.served, self.runner, self.bounds = served, runner, options
        self.max_text = options.max_prime_chars
        self.session: WriteSession | None = None
        self.maker: CandidateMaker | None = None
        self.options: WriteOptions | None = None

    def start(self, options: dict) -> dict:
        """A new session with `generate write`'s options (checked as the command line checks them)."""
        if not isinstance(options, dict):
            raise OptionError("options", f"expected an object of generate write's options, received {options!r}")
        known = {f.name for f in dataclasses.fields(WriteOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise OptionError(unknown[0], f"unknown option; expected one of {', '.join(sorted(known))}")
        check_value_types(WriteOptions, options)
        try:
            write_options = WriteOptions(**options)
        except TypeError as exc:
            raise UsageError(str(exc)) from None
        self._check_text(write_options.text, "text")
        if write_options.length > self.bounds.max_length:
            raise OptionError("length", f"expected at most {self.bounds.max_length} on this server, received {write_options.length}")
        model = self.served.model
        shared = verify(write_options, model.facts)
        maker = CandidateMaker(model.generator, shared, write_options.length, runner=self.runner)
        seed = resolve_seed(write_options.seed)
        self.session = WriteSession(maker, seed, write_options.starting_temperature(model.facts), write_options.candidates,
                                    write_options.text)
        self.maker, self.options = maker, write_options
        return self.state()

    def act(self, message: dict) -> dict:
        """Applies one action within the server's request time; returns the new state (or, for save, the sidecar)."""
        self.runner.ticket.deadline = time.monotonic() + self.bounds.request_seconds
        action = message.get("action")
        if action not in ACTIONS:
            raise OptionError("action", f"expected one of {', '.join(ACTIONS)}, received {action!r}")
        if action == "start":
            return self.start(message.get("options", {}))
        if self.session is None:
            raise OptionError("action", "expected a start action first")
        session = self.session
        if action == "take":
            index = message.get("index")
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(session.candidates):
                raise OptionError("index", f"expected 0 to {len(session.candidates) - 1}, received {index!r}")
            session.take(index)
        elif action == "edit":
            text = message.get("text")
            self._check_text(text, "text")
            session.edit(text)
        elif action == "temperature":
            value = message.get("value")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise OptionError("value", f"expected a finite number, received {value!r}")
            session.set_temperature(value)
        elif action == "count":
            value = message.get("value")
            if isinstance(value, bool) or not isinstance(value, int):
                raise OptionError("value", f"expected a whole number of candidates, received {value!r}")
            session.set_count(value)
        elif action == "reroll":
            session.reroll()
        elif action in ("undo", "redo"):
            (session.undo if action == "undo" else session.redo)()
        else:
            model = self.served.model
            record = session_record(session, model.generator, model.name, self.options)
            return {"type": "saved", "record": public_record(self.served, record)}  # the model by name, no server path
        return self.state()

    def state(self) -> dict:
        session, facts = self.session, self.served.model.facts
        candidates = list(session.candidates)
        return {
            "type": "state", "model": self.served.name, "text": session.page.text, "candidates": candidates,
            "described": [describe(session.page.text, c, facts.encoding) for c in candidates] if facts.music else None,
            "seed": session.seed, "draw": session.page.draw.number, "temperature": session.temperature,
            "count": session.count, "can_undo": bool(session.past), "can_redo": bool(session.future),
            "done": self.maker.poem_done(session.page.text),
        }

    def _check_text(self, text, field: str) -> None:
        if not isinstance(text, str) or has_lone_surrogate(text):
            raise OptionError(field, f"expected a string of valid Unicode, received {text!r}")
        if len(text) > self.max_text:
            raise OptionError(field, f"expected at most {self.max_text} characters, received {len(text)}")
        if self.maker is not None and text and not self.maker.poem_done(text):
            try:
                self.maker.check(text)
            except GenerateError as exc:
                raise OptionError(field, getattr(exc, "problem", str(exc)).split(" (use --oov")[0]) from None
