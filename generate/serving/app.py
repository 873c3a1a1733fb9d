"""The HTTP API: Starlette routes over the loaded models, versioned under /v1.

    GET  /v1/models        {"models": [{"name": ..., "kind": ..., ...}, ...]}
    POST /v1/samples       a job file's sample keys plus "model" -> {"samples": [RECORD, ...]}
                           with "stream": true, text/event-stream: {"index", "text"} events, then {"index", "record"}
    WS   /v1/write         co-writing: `generate write`'s actions, one JSON message each (`cowrite.py`)
    GET  /v1/samples/ID.F  a sample made here, by the id its record carries: txt, json, mid, wav, png, musicxml, score.png
    GET  /healthz          200 once every model is loaded (no token needed)
    GET  /                 the studio: a page over this API (`studio/`)
    GET  /metrics          Prometheus text: requests by outcome, streams, queue, characters per second
    GET  /openapi.json     the API's OpenAPI description

A request's options are checked by the same code as the command line's
(`request.prepare`), and an error is 4xx `{"error": {"field": ..., "message": ...}}`.
The model runs only on its engine's thread (`engine.py`); a request's
pipeline waits for it in a worker thread, and the event loop only relays.
No request names a path: only the models the server was started with exist.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hmac
import json
import logging
import mimetypes
import shlex
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import GenerateError, OptionError, UsageError
from ..pipeline.loaded import LoadedModel
from ..sampling.options import command_words, options_from
from .cowrite import CoWriting
from .engine import Busy, Cancelled, Engine, Ticket
from .openapi import openapi_document
from .options import ServeOptions
from .renders import MissingTool, SampleStore, render

log = logging.getLogger(__name__)
API_VERSION = "v1"
SERVER_KEYS = ("model", "stream")  # a request's keys that are not sample options
_background: set = set()  # streamed requests' worker tasks, kept referenced until they end
STUDIO = Path(__file__).resolve().parent / "studio"
# The studio's in-browser runtime is a JavaScript module and WebAssembly: a browser refuses either under another type.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
PUBLIC = ("/healthz", "/")  # routes without a token: the studio's page and assets hold no data


@dataclass
class ServedModel:
    """One model the server was started with: loaded once, with its engine and its card."""

    name: str
    model: LoadedModel
    engine: Engine
    card: dict
    source: str = ""  # the model as the server was started with it (a shipped name or a path): what commands name
    graph: bytes | None = None  # its step graph, read when a browser first asks for it


class Metrics:
    """Counters for /metrics, in Prometheus's text format."""

    def __init__(self):
        self.requests: Counter = Counter()  # (route, outcome) -> count
        self.started = time.time()

    def count(self, route: str, outcome: str) -> None:
        self.requests[(route, outcome)] += 1

    def text(self, models: dict[str, ServedModel]) -> str:
        lines = ["# HELP generate_requests_total Requests answered, by route and outcome.",
                 "# TYPE generate_requests_total counter"]
        lines += [f'generate_requests_total{{route="{route}",outcome="{outcome}"}} {n}'
                  for (route, outcome), n in sorted(self.requests.items())]
        gauges = (("generate_active_streams", "Streams being sampled now.", lambda s: s.active_streams),
                  ("generate_queue_depth", "Requests waiting for room in the batch.", lambda s: s.queued),
                  ("generate_chars_per_second", "Characters sampled per second over the last ticks.",
                   lambda s: round(s.chars_per_second(), 1)),
                  ("generate_chars_total", "Characters sampled since the server started.", lambda s: s.chars))
        for name, about, read in gauges:
            kind = "counter" if name.endswith("_total") else "gauge"
            lines += [f"# HELP {name} {about}", f"# TYPE {name} {kind}"]
            lines += [f'{name}{{model="{served.name}"}} {read(served.engine.stats)}' for served in models.values()]
        return "\n".join(lines) + "\n"


class Relay:
    """Hands streamed text from the engine threads to the event loop: one wake-up per tick, not one per stream.

    Events are queued in order; a request's result, put straight on its queue by its worker thread after
    its draw ended (a later tick), always follows its text.
    """

    def __init__(self):
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque = collections.deque()
        self._scheduled = threading.Lock()

    def put(self, queue: asyncio.Queue, event: dict) -> None:
        self._pending.append((queue, event))

    def flush_soon(self) -> None:
        """From an engine thread, after its tick: deliver what was put, in the loop's own time."""
        if self._pending and self.loop is not None and self._scheduled.acquire(blocking=False):
            self.loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        self._scheduled.release()
        while self._pending:
            queue, event = self._pending.popleft()
            queue.put_nowait(event)


class StudioFiles(StaticFiles):
    """The studio's files. One kept gzipped (the WebAssembly runtime, 14 MB as it is) goes out as it is stored,
    with `Content-Encoding: gzip`: the browser inflates it, and the wheel and the wire carry a quarter of it."""

    async def get_response(self, path: str, scope) -> Response:
        compressed = (STUDIO / f"{path}.gz").resolve()
        if compressed.is_relative_to(STUDIO) and compressed.is_file() and not (STUDIO / path).exists():
            media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return FileResponse(compressed, media_type=media_type, headers={"Content-Encoding": "gzip"})
        return await super().get_response(path, scope)


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=status, headers=headers)


class _Refused(Exception):
    """A request answered with a 4xx error before anything ran."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.response = error_response(status, message, field, headers)


class ServingApi:
    """The routes' handlers over the served models, with what they share: bounds, metrics, threads, the relay."""

    def __init__(self, models: dict[str, ServedModel], options: ServeOptions, metrics: Metrics):
        self.models, self.options, self.metrics = models, options, metrics
        self.threads = anyio.CapacityLimiter(len(models) * (options.max_streams + options.max_queued) + 8)
        self.relay = Relay()
        self.store = SampleStore()
        for served in models.values():
            served.engine.on_tick = self.relay.flush_soon

    async def list_models(self, request: Request) -> Response:
        self.metrics.count("models", "ok")
        return JSONResponse({"models": [served.card for served in self.models.values()]})

    async def step_graph(self, request: Request) -> Response:
        """A model's step graph (`model.onnx`), for a browser that steps the model itself."""
        served = self.models.get(request.path_params["name"])
        if served is None:
            return error_response(404, f"no model {request.path_params['name']!r}: expected one of {', '.join(self.models)}",
                                  "model")
        if served.graph is None:
            served.graph = await anyio.to_thread.run_sync(served.model.generator.sampler.net.graph_bytes)
        self.metrics.count("graph", "ok")
        return Response(served.graph, media_type="application/octet-stream",
                        headers={"Cache-Control": "no-cache", "Content-Disposition": f'attachment; filename="{served.name}.onnx"'})

    async def studio_page(self, request: Request) -> Response:
        """The studio (`studio/`): a page over this API, with every asset served from here, no CDN."""
        return FileResponse(STUDIO / "index.html", media_type="text/html; charset=utf-8")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "models": list(self.models)})

    async def metrics_text(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.text(self.models), media_type="text/plain; version=0.0.4")

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(list(self.models), self.options))

    async def samples(self, request: Request) -> Response:
        try:
            served, prepared, stream = await _checked(request, self.models, self.options, self.threads)
        except _Refused as refusal:
            self.metrics.count("samples", str(refusal.response.status_code))
            return refusal.response
        ticket = Ticket(deadline=time.monotonic() + self.options.request_seconds)
        runner = served.engine.bind(ticket)
        keep = lambda output: self._keep(served, prepared, output)  # noqa: E731 - each answered sample, kept by its id
        if stream:
            self.relay.loop = asyncio.get_running_loop()
            return _event_stream(served, prepared, ticket, runner, self.metrics, self.threads, self.relay, keep)
        try:
            result = await _until_disconnect(request, ticket, lambda: served.model.run(prepared, runner=runner), self.threads)
        except Exception as exc:  # every failure is answered as JSON, and counted
            status, response = _failure(exc)
            self.metrics.count("samples", status)
            return response
        self.metrics.count("samples", "ok")
        return JSONResponse({"samples": [keep(output) for output in result.outputs]})

    def _keep(self, served: ServedModel, prepared, output) -> dict:
        """The record a client gets for one sample: its sidecar, its text, and the id its renders are fetched by."""
        sample_id = self.store.keep(output.text, output.record, prepared.settings, served.model.facts.music)
        again = dataclasses.replace(prepared.options, seed=prepared.cfg.seed if not prepared.options.beam else None)
        command = shlex.join(command_words(served.source or served.name, again))
        return {"id": sample_id, **output.record, "text": output.text, "command": command}

    async def rendered(self, request: Request) -> Response:
        """GET /v1/samples/{id}.{format}: a sample this server made, as text, its record, MIDI, WAV, PNG or a score."""
        sample_id, _, fmt = request.path_params["name"].partition(".")
        kept = self.store.get(sample_id)
        if kept is None:
            self.metrics.count("renders", "404")
            return error_response(404, f"no sample {sample_id!r} here: ids are kept for the server's last "
                                       f"{self.store.capacity} samples", "id")
        try:
            body, media_type = await anyio.to_thread.run_sync(render, kept, fmt, limiter=self.threads)
        except OptionError as exc:
            self.metrics.count("renders", "400")
            return error_response(400, exc.problem, exc.option)
        except MissingTool as exc:
            self.metrics.count("renders", "501")
            return error_response(501, str(exc), "format")
        self.metrics.count("renders", "ok")
        return Response(body, media_type=media_type,
                        headers={"Content-Disposition": f'inline; filename="{sample_id}.{fmt}"'})

    async def write_socket(self, websocket: WebSocket) -> None:
        """Co-writing (`cowrite.py`): one JSON message per action, the state (or an error) in answer to each."""
        await websocket.accept()
        self.metrics.count("write", "opened")
        cowriting: CoWriting | None = None
        ticket = Ticket()
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    message = json.loads(text)
                    cowriting = self._cowriting(message, cowriting, ticket)
                    reply = await anyio.to_thread.run_sync(cowriting.act, message, limiter=self.threads)
                except ValueError as exc:  # not JSON
                    reply = {"type": "error", "error": {"field": None, "message": f"expected a JSON object ({exc})"}}
                except OptionError as exc:
                    reply = {"type": "error", "error": {"field": exc.option, "message": exc.problem}}
                except GenerateError as exc:
                    reply = {"type": "error", "error": {"field": None, "message": str(exc)}}
                await websocket.send_text(json.dumps(reply, ensure_ascii=False))
        except WebSocketDisconnect:
            ticket.cancel("the client went away")
            self.metrics.count("write", "closed")

    def _cowriting(self, message, current: CoWriting | None, ticket: Ticket) -> CoWriting:
        """The session a message acts on: a new one for `start` (on the model it names), else the current one."""
        if not isinstance(message, dict):
            raise OptionError("action", f"expected a JSON object, received {message!r}")
        if message.get("action") == "start":
            name = message.get("model")
            if not isinstance(name, str) or name not in self.models:
                raise OptionError("model", f"expected one of the models this server runs: {', '.join(self.models)}; "
                                           f"received {name!r}")
            return CoWriting(self.models[name], self.models[name].engine.bind(ticket), self.options.max_prime_chars)
        if current is None:
            raise OptionError("action", "expected a start action first, naming the model")
        return current


def build_app(models: dict[str, ServedModel], options: ServeOptions, metrics: Metrics | None = None) -> Starlette:
    """The ASGI application serving `models` under `options` (its token, CORS origins and bounds)."""
    api = ServingApi(models, options, metrics or Metrics())
    middleware = [Middleware(TokenGate, token=options.token)]
    if options.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(options.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]))
    routes = [
        Route(f"/{API_VERSION}/models", api.list_models, methods=["GET"]),
        Route(f"/{API_VERSION}/models/{{name}}/model.onnx", api.step_graph, methods=["GET"]),
        Route(f"/{API_VERSION}/samples", api.samples, methods=["POST"]),
        Route(f"/{API_VERSION}/samples/{{name}}", api.rendered, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", api.metrics_text, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        WebSocketRoute(f"/{API_VERSION}/write", api.write_socket),
        Route("/", api.studio_page, methods=["GET"]),
        Mount("/studio", StudioFiles(directory=STUDIO)),
    ]
    return Starlette(routes=routes, middleware=middleware)


async def _checked(request: Request, models: dict[str, ServedModel], options: ServeOptions, threads):
    """(model, prepared request, stream?) for a POST /v1/samples body, checked as the command line checks options.

    Raises:
        _Refused: the body is not a JSON object, names no served model, or has a bad or out-of-bounds field.
    """
    body = await request.body()
    if len(body) > options.max_body_bytes:
        raise _Refused(413, f"the request body is {len(body)} bytes; expected at most {options.max_body_bytes}")
    try:
        keys = json.loads(body or b"null")
    except ValueError as exc:
        raise _Refused(400, f"expected a JSON object ({exc})") from None
    if not isinstance(keys, dict):
        raise _Refused(400, f"expected a JSON object, received {type(keys).__name__}")
    name = keys.get("model")
    if not isinstance(name, str) or name not in models:
        raise _Refused(400, f"expected one of the models this server runs: {', '.join(models)}; received {name!r}", "model")
    stream = keys.get("stream", False)
    if not isinstance(stream, bool):
        raise _Refused(400, f"expected true or false, received {stream!r}", "stream")
    served = models[name]
    try:
        sample_options = options_from({k: v for k, v in keys.items() if k not in SERVER_KEYS})
        _within_bounds(sample_options, options)
        prepared = await anyio.to_thread.run_sync(lambda: served.model.prepare(sample_options), limiter=threads)
    except OptionError as exc:
        raise _Refused(400, exc.problem, exc.option) from None
    except (UsageError, TypeError, ValueError) as exc:
        raise _Refused(400, str(exc)) from None
    return served, prepared, stream


def _within_bounds(sample_options, options: ServeOptions) -> None:
    """Raises OptionError for a request beyond the server's bounds (the option checks bound nothing so large)."""
    if sample_options.renders:
        raise OptionError(sample_options.renders[0], "expected no render: a server returns the text and its record")
    prime = sample_options.prime
    if isinstance(prime, str) and len(prime) > options.max_prime_chars:
        raise OptionError("prime", f"expected at most {options.max_prime_chars} characters, received {len(prime)}")
    length = sample_options.length
    if isinstance(length, int) and length > options.max_length:
        raise OptionError("length", f"expected at most {options.max_length} on this server, received {length}")
    count = sample_options.num_samples
    if isinstance(count, int) and count > options.max_samples:
        raise OptionError("num_samples", f"expected at most {options.max_samples} on this server, received {count}")
    if sample_options.prime_file is not None:
        raise OptionError("prime_file", "expected \"prime\": a server reads no file a request names")


async def _until_disconnect(request: Request, ticket: Ticket, work, threads):
    """Runs `work` in a worker thread; a client that leaves first cancels its ticket (its streams end within a tick)."""
    result: list[Any] = []
    failure: list[BaseException] = []

    async def run_work(scope):
        try:
            result.append(await anyio.to_thread.run_sync(work, limiter=threads))
        except Exception as exc:  # raised below, outside the task group
            failure.append(exc)
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(run_work, group.cancel_scope)
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                ticket.cancel("the client went away")
                break
    if failure:
        raise failure[0]
    if not result:
        raise Cancelled("the client went away")
    return result[0]


def _event_stream(served: ServedModel, prepared, ticket: Ticket, runner, metrics: Metrics, threads,
                  relay: Relay, keep) -> StreamingResponse:
    """Server-Sent Events: each stream's text as it is sampled, then each sample's record; the client leaving ends it."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def on_text(index: int, text: str) -> None:  # from the engine's thread (the prime: the worker's, before its first tick)
        relay.put(events, {"index": index, "text": text})

    def work():
        try:
            result = served.model.run(prepared, runner=runner, on_sample_text=on_text)
        except Exception as exc:  # relayed to the client as the last event
            loop.call_soon_threadsafe(events.put_nowait, {"failure": exc})
            return
        loop.call_soon_threadsafe(events.put_nowait, {"result": result})

    async def sse():
        outcome = "cancelled"
        worker = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=threads))
        _background.add(worker)  # it ends within a tick of the ticket's cancelling; nothing waits for it
        worker.add_done_callback(_background.discard)
        try:
            while True:
                event = await events.get()
                if "failure" in event:
                    outcome, response = _failure(event["failure"])
                    yield _sse(json.loads(response.body))
                    return
                if "result" in event:
                    result = event["result"]
                    for index, output in enumerate(result.outputs):
                        if not result.streamed:
                            yield _sse({"index": index, "text": output.text})
                        yield _sse({"index": index, "record": keep(output)})
                    outcome = "ok"
                    return
                yield _sse(event)
        finally:
            ticket.cancel("the client went away")
            metrics.count("samples_stream", outcome)

    return StreamingResponse(sse(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _failure(exc: BaseException) -> tuple[str, JSONResponse]:
    """The outcome to count and the JSON answer for a request that failed while it ran."""
    if isinstance(exc, Busy):
        return "429", error_response(429, str(exc), headers={"Retry-After": "1"})
    if isinstance(exc, Cancelled):
        return "cancelled", error_response(503, str(exc), headers={"Retry-After": "5"})
    if isinstance(exc, OptionError):
        return "400", error_response(400, exc.problem, exc.option)
    if isinstance(exc, UsageError):
        return "400", error_response(400, str(exc))
    if isinstance(exc, GenerateError):
        return "500", error_response(500, str(exc))
    log.exception("a request failed", exc_info=exc)
    return "500", error_response(500, f"the server failed: {type(exc).__name__}")


class TokenGate:
    """Requires `Authorization: Bearer TOKEN` on every route but /healthz and the studio's page, in constant time.

    A browser cannot set the header on a WebSocket, a link or an image, so those (GETs and sockets) may
    carry `?token=TOKEN` instead.
    """

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if self.token is None or scope["type"] not in ("http", "websocket") or path in PUBLIC or path.startswith("/studio/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, value = given.partition(" ")
        if not given and (scope["type"] == "websocket" or scope.get("method") == "GET"):  # a browser's socket, link, image: ?token=
            scheme, value = "bearer", parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if not (scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), self.token.encode())):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401})
                return
            response = error_response(401, "expected the header Authorization: Bearer TOKEN", "authorization",
                                      {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
