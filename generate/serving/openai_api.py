"""OpenAI's completions API over the served models, so the tools people already use work unchanged.

    GET  /v1/models        also in OpenAI's list shape: {"object": "list", "data": [{"id", "object": "model", ...}]}
    POST /v1/completions   {"model", "prompt", "max_tokens", "temperature", "top_p", "seed", "n", "stop", "stream",
                            "stream_options": {"include_usage"}, "echo", "logprobs"} plus "top_k" and this
                            project's own sample keys ("form", "acrostic", "label", "beam", ...)

A token is a character, and `usage` counts characters. A completion is
`generate sample --prime PROMPT --length MAX_TOKENS --seed SEED` (with the
same temperature, top-p and stop strings): it runs through the same request
checks and the same engine as `/v1/samples`, so its text is the command's,
whatever else shares the batch. Log-probabilities are the model's own
(temperature 1, no filters), teacher-forced over the prompt and the
completion on the engine like any other job: with `echo`, `max_tokens: 0`
and `logprobs`, a prompt's log-probabilities agree with `generate score`
(what lm-eval's `local-completions` asks for). Errors come in OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, with its status codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import GenerateError, OptionError, UsageError
from ..sampling.options import options_from
from .checks import Refused, as_request_keys, background_tasks, prepare_within_bounds, read_json_object, until_disconnect
from .engine import Busy, Cancelled, Ticket

log = logging.getLogger(__name__)
MAX_LOGPROBS = 5  # alternatives per position, as OpenAI allows
MAX_STOPS = 4
OPENAI_KEYS = ("model", "prompt", "max_tokens", "temperature", "top_p", "seed", "n", "stop", "stream", "stream_options",
               "echo", "logprobs", "user", "suffix", "best_of", "logit_bias", "presence_penalty", "frequency_penalty")
# This project's own keys that OpenAI's would contradict: a completion has one way to ask for each.
OWN_KEYS_REFUSED = {"prime": "prompt", "length": "max_tokens", "num_samples": "n", "drop_prime": "echo"}
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         413: "invalid_request_error", 429: "rate_limit_error", 503: "service_unavailable"}


class OpenAiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


class LogprobJob:
    """The model's log-probability of every character of `ids` after the first, and the `top` likeliest
    alternatives at each, teacher-forced as `generate score` steps a bundle: a job the engine runs a few
    steps per tick (`Engine.run_job`)."""

    rows = 1

    def __init__(self, net, ids: list[int], top: int):
        from ..model.label_schedule import fixed_labels  # a labelled model is scored with <none>, as `generate score` does

        self.net, self.ids, self.top = net, ids, top
        self.states = net.initial_states(1)
        self.labels = fixed_labels(np.zeros(1, np.int64)) if getattr(net, "labels", 0) else None
        self.position, self.logprobs, self.alternatives = 0, [], []

    @property
    def done(self) -> bool:
        return self.position >= len(self.ids) - 1

    def advance(self, steps: int) -> None:
        for _ in range(steps):
            if self.done:
                return
            token = np.asarray([self.ids[self.position]], np.int32)
            if self.labels is not None:
                logits, self.states = self.net.step(token, [*self.states[:-1], self.labels], guided=False)
            else:
                logits, self.states = self.net.step(token, self.states)
            row = np.asarray(logits, np.float64)[0]
            peak = row.max()
            logprobs = row - (peak + np.log(np.exp(row - peak).sum()))
            self.position += 1
            self.logprobs.append(float(logprobs[self.ids[self.position]]))
            if self.top:
                best = np.argsort(-logprobs, kind="stable")[: self.top]
                self.alternatives.append([(int(i), float(logprobs[i])) for i in best])

    def result(self):
        return self.logprobs, self.alternatives


class OpenAiCompletions:
    """`/v1/completions` over a `ServingApi`'s models, engines, bounds and metrics."""

    def __init__(self, api):
        self.api = api

    def error(self, status: int, message: str, param: str | None, code: str | None = None,
              headers: dict | None = None) -> JSONResponse:
        body = {"error": {"message": as_request_keys(str(message)), "type": TYPES.get(status, "server_error"), "param": param,
                          "code": code}}
        if status in (429, 503):
            headers = {"Retry-After": "1" if status == 429 else "5", **(headers or {})}
        return JSONResponse(body, status_code=status, headers=headers)

    async def create(self, request: Request) -> Response:
        try:
            keys = await self._body(request)
            served, requests, shape = await self._prepare(keys)
        except OpenAiError as exc:
            self.api.metrics.count("completions", str(exc.status))
            return self.error(exc.status, exc.message, exc.param, exc.code)
        ticket = Ticket(deadline=time.monotonic() + self.api.options.request_seconds)
        if shape["stream"]:
            self.api.relay.loop = asyncio.get_running_loop()
            return self._stream(served, requests, shape, ticket)
        try:
            choices = await until_disconnect(request, ticket, lambda: self._complete(served, requests, shape, ticket),
                                              self.api.threads)
        except Exception as exc:  # every failure in OpenAI's shape, and counted
            status, response = self._failure(exc)
            self.api.metrics.count("completions", status)
            return response
        self.api.metrics.count("completions", "ok")
        return JSONResponse(self._completion(shape, choices, usage=True))

    # ------------------------------------------------------------ checking

    async def _body(self, request: Request) -> dict:
        """The request's JSON object (`checks.read_json_object`), its refusals in OpenAI's terms."""
        try:
            return await read_json_object(request, self.api.options.max_body_bytes)
        except Refused as refusal:
            payload = json.loads(refusal.response.body)["error"]
            raise OpenAiError(refusal.response.status_code, payload["message"], payload["field"]) from None

    async def _prepare(self, keys: dict):
        """(served model, one prepared request per prompt, the response's shape), or OpenAiError naming the key."""
        served = self._model(keys)
        shape = self._shape(keys, served.name)
        max_tokens, sample_keys = self._sample_keys(keys, shape)
        requests = []
        try:
            base = options_from(sample_keys)
            for prompt in shape["prompts"]:
                length = None if max_tokens is None else max(max_tokens, 1)
                request_options = dataclasses.replace(base, prime=prompt or None, length=length)
                requests.append((prompt, max_tokens, await prepare_within_bounds(served, request_options, self.api.options,
                                                                                 self.api.threads)))
        except OptionError as exc:
            raise OpenAiError(400, exc.problem, _openai_key(exc.option)) from None
        except (UsageError, TypeError, ValueError) as exc:
            raise OpenAiError(400, str(exc)) from None
        return served, requests, shape

    def _model(self, keys: dict):
        models = self.api.models
        name = keys.get("model")
        if not isinstance(name, str):
            raise OpenAiError(400, f"expected a model name, one of {', '.join(models)}; received {name!r}", "model")
        if name not in models:
            raise OpenAiError(404, f"The model '{name}' does not exist; expected one of {', '.join(models)}", "model",
                              "model_not_found")
        return models[name]

    def _shape(self, keys: dict, name: str) -> dict:
        """What the response holds and how it is sent: its prompts, n, echo, logprobs, streaming and usage."""
        prompts = keys.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise OpenAiError(400, "expected a string or a list of strings (a token is a character: token ids are "
                                   f"not taken); received {_shown(keys.get('prompt'))}", "prompt")
        most = self.api.options.max_samples
        if len(prompts) > most:
            raise OpenAiError(400, f"expected at most {most} prompts on this server, received {len(prompts)}", "prompt")
        shape = {
            "model": name, "id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()),
            "stream": _typed(keys, "stream", bool, False), "echo": _typed(keys, "echo", bool, False),
            "logprobs": _typed(keys, "logprobs", int, None), "n": _typed(keys, "n", int, 1),
            "include_usage": False, "prompts": prompts,
        }
        options = keys.get("stream_options")
        if options is not None:
            if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
                raise OpenAiError(400, f"expected {{\"include_usage\": true or false}}, received {_shown(options)}", "stream_options")
            shape["include_usage"] = options.get("include_usage", False)
        if shape["logprobs"] is not None and not 0 <= shape["logprobs"] <= MAX_LOGPROBS:
            raise OpenAiError(400, f"expected 0 to {MAX_LOGPROBS}, received {shape['logprobs']}", "logprobs")
        if not 1 <= shape["n"] <= most:
            raise OpenAiError(400, f"expected 1 to {most}, received {shape['n']}", "n")
        return shape

    @staticmethod
    def _sample_keys(keys: dict, shape: dict) -> tuple[int | None, dict]:
        """(max_tokens, the sample options' keys) for a completion: OpenAI's keys as `generate sample`'s, and the rest."""
        for key, harmless in (("suffix", ("",)), ("best_of", (1,)), ("logit_bias", ({},))):
            if keys.get(key) is not None and keys[key] not in harmless:
                raise OpenAiError(400, "not supported by this server; expected it left out", key)
        # OpenAI's default of 16 characters, unless a poem's own keys set its length (lines, a form, an acrostic).
        poem = any(keys.get(k) for k in ("lines", "form", "acrostic"))
        max_tokens = _typed(keys, "max_tokens", int, None if poem else 16)
        if max_tokens is not None and max_tokens < 0:
            raise OpenAiError(400, f"expected a whole number >= 0, received {max_tokens}", "max_tokens")
        stop = keys.get("stop")
        stop = [stop] if isinstance(stop, str) else (stop or [])
        if not isinstance(stop, list) or len(stop) > MAX_STOPS or not all(isinstance(s, str) and s for s in stop):
            raise OpenAiError(400, f"expected a string or up to {MAX_STOPS} non-empty strings, received {_shown(keys.get('stop'))}",
                              "stop")
        own = {k: v for k, v in keys.items() if k not in OPENAI_KEYS}
        for key, instead in OWN_KEYS_REFUSED.items():
            if key in own:
                raise OpenAiError(400, f"a completion asks for this with \"{instead}\"; expected \"{key}\" left out", key)
        sample_keys = {**own, "num_samples": shape["n"], "drop_prime": True, "stop": stop}
        sample_keys.update({key: keys[key] for key in ("temperature", "top_p", "seed") if keys.get(key) is not None})
        return max_tokens, sample_keys

    # ------------------------------------------------------------ running

    def _complete(self, served, requests, shape, ticket: Ticket, on_text=None) -> list[dict]:
        """Every choice, in OpenAI's order (prompt by prompt, n each), run on the engine; in a worker thread."""
        runner = served.engine.bind(ticket)
        choices = []
        for prompt_index, (prompt, max_tokens, prepared) in enumerate(requests):
            if max_tokens == 0:
                outputs = [("", False)] * shape["n"]
            else:
                def stream_text(index, text, base=prompt_index * shape["n"]):
                    if on_text is not None:
                        on_text(base + index, text)

                result = served.model.run(prepared, runner=runner, on_sample_text=stream_text if on_text else None)
                outputs = [(output.text, bool(output.record.get("stopped"))) for output in result.outputs]
            for index, (text, stopped) in enumerate(outputs):
                choice = {"index": prompt_index * shape["n"] + index, "text": (prompt if shape["echo"] else "") + text,
                          "logprobs": None, "finish_reason": "stop" if stopped else "length",
                          "prompt_chars": len(prompt), "completion_chars": len(text)}
                if shape["logprobs"] is not None:
                    choice["logprobs"] = self._logprobs(served, runner, prompt, text, shape)
                choices.append(choice)
        return choices

    def _logprobs(self, served, runner, prompt: str, text: str, shape) -> dict:
        """OpenAI's logprobs object for the choice's text: the prompt's characters too with `echo` (the first has none)."""
        vocab = served.model.facts.vocab
        whole = prompt + text
        if not whole:
            return {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        try:
            ids = vocab.encode(whole, oov="error", option="prompt")
        except OptionError as exc:
            raise OptionError("prompt", exc.problem) from None
        logprobs, alternatives = runner.run_job(LogprobJob(served.model.generator.sampler.net, ids, shape["logprobs"]))
        logprobs, alternatives = [None, *logprobs], [None, *alternatives]
        start = 0 if shape["echo"] else len(prompt)
        chars = list(whole)
        tops = [None if a is None else {vocab.chars[i]: lp for i, lp in a} for a in alternatives]
        return {"tokens": chars[start:], "token_logprobs": logprobs[start:],
                "top_logprobs": tops[start:] if shape["logprobs"] else None,
                "text_offset": list(range(start, len(chars)))}

    def _completion(self, shape, choices: list[dict], usage: bool) -> dict:
        prompt_chars = sum(len(p) for p in shape["prompts"])
        completion_chars = sum(c["completion_chars"] for c in choices)
        return {
            "id": shape["id"], "object": "text_completion", "created": shape["created"], "model": shape["model"],
            "system_fingerprint": None,
            "choices": [{k: v for k, v in c.items() if k not in ("prompt_chars", "completion_chars")} for c in choices],
            "usage": {"prompt_tokens": prompt_chars, "completion_tokens": completion_chars,
                      "total_tokens": prompt_chars + completion_chars} if usage else None,
        }

    def _stream(self, served, requests, shape, ticket: Ticket) -> StreamingResponse:
        """Server-Sent Events: `text_completion` chunks as each choice is written, its finish, usage if asked, [DONE].

        Text is released only once no stop string can still take it back, so a stop split across chunks never leaks.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        relay = self.api.relay

        def on_text(index: int, text: str) -> None:
            relay.put(events, {"index": index, "text": text})

        def work():
            self._stream_work(served, requests, shape, ticket, on_text,
                              lambda event: loop.call_soon_threadsafe(events.put_nowait, event))

        def chunk(choices: list[dict], usage=None) -> str:
            body = {"id": shape["id"], "object": "text_completion", "created": shape["created"], "model": shape["model"],
                    "choices": choices, "usage": usage}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        async def sse():
            outcome = "cancelled"
            worker = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=self.api.threads))
            background_tasks.add(worker)
            worker.add_done_callback(background_tasks.discard)
            sent: dict[int, int] = {}
            try:
                while True:
                    event = await events.get()
                    if "failure" in event:
                        status, response = self._failure(event["failure"])
                        outcome = status
                        yield f"data: {response.body.decode()}\n\n"
                        yield "data: [DONE]\n\n"
                        return
                    if "choices" in event:
                        completion = self._completion(shape, event["choices"], usage=True)
                        for choice in completion["choices"]:
                            # Whatever was not streamed (a beam, a filtered redraw) goes out whole before its finish.
                            rest = choice["text"][sent.get(choice["index"], 0):]
                            yield chunk([{**choice, "text": rest}])
                        if shape["include_usage"]:
                            yield chunk([], completion["usage"])
                        yield "data: [DONE]\n\n"
                        outcome = "ok"
                        return
                    sent[event["index"]] = sent.get(event["index"], 0) + len(event["text"])
                    yield chunk([{"index": event["index"], "text": event["text"], "logprobs": None, "finish_reason": None}])
            finally:
                ticket.cancel("the client went away")
                self.api.metrics.count("completions_stream", outcome)

        return StreamingResponse(sse(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _stream_work(self, served, requests, shape, ticket: Ticket, on_text, put) -> None:
        """A streamed completion's work, in a worker thread: echoed prompts first, then the choices, or the failure."""
        try:
            if shape["echo"]:
                for prompt_index, (prompt, _, _) in enumerate(requests):
                    for j in range(shape["n"]):
                        if prompt:
                            put({"index": prompt_index * shape["n"] + j, "text": prompt})
            choices = self._complete(served, requests, shape, ticket, on_text)
        except Exception as exc:  # relayed to the client as the last event
            put({"failure": exc})
            return
        put({"choices": choices})

    def _failure(self, exc: BaseException) -> tuple[str, JSONResponse]:
        if isinstance(exc, Busy):
            return "429", self.error(429, str(exc), None, "queue_full")
        if isinstance(exc, Cancelled):
            return "cancelled", self.error(503, str(exc), None, "cancelled")
        if isinstance(exc, OptionError):
            return "400", self.error(400, exc.problem, _openai_key(exc.option))
        if isinstance(exc, (UsageError, UnicodeError)):
            return "400", self.error(400, str(exc), None)
        if isinstance(exc, GenerateError):
            return "500", self.error(500, str(exc), None)
        log.exception("a completion failed", exc_info=exc)
        return "500", self.error(500, f"the server failed: {type(exc).__name__}", None)


def _typed(keys: dict, name: str, kind: type, default):
    value = keys.get(name)
    if value is None:
        return default
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        expected = {bool: "true or false", int: "a whole number"}[kind]
        raise OpenAiError(400, f"expected {expected}, received {_shown(value)}", name)
    return value


def _openai_key(option: str | None) -> str | None:
    return {"prime": "prompt", "length": "max_tokens", "num_samples": "n"}.get(option, option)


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
