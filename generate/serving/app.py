"""The HTTP API: Starlette routes over the loaded models, versioned under /v1.

    GET  /v1/models        {"models": [{"name": ..., "kind": ..., ...}, ...]}
    POST /v1/samples       a job file's sample keys plus "model" -> {"samples": [RECORD, ...]}
                           with "stream": true, text/event-stream: {"index", "text"} events, then {"index", "record"}
    WS   /v1/write         co-writing: `generate write`'s actions, one JSON message each (`cowrite.py`)
    GET  /v1/samples/ID.F  a sample made here, by the id its record carries: txt, json, mid, wav, png, musicxml, score.png
    POST /v1/completions   OpenAI's completions API over the same engine (`openai_api.py`)
    GET  /healthz          200 once every model is loaded (no token needed)
    GET  /livez, /readyz   probes for an orchestrator: the process runs; it takes requests (503 while draining)
    GET  /                 the studio: a page over this API (`studio/`)
    GET  /metrics          Prometheus text: requests by outcome, streams, queue, characters per second
    GET  /openapi.json     the API's OpenAPI description

A request's options are checked by the same code as the command line's
(`request.prepare`), and an error is 4xx `{"error": {"field": ..., "message": ...}}`.
The model runs only on its engine's thread (`engine.py`); a request's
pipeline waits for it in a worker thread, and the event loop only relays.
No request names a path: only the models the server was started with exist.
Without a token, only loopback Hosts and same-origin (or no) Origins are
answered, so a web page cannot drive a local server (`AccessGate`).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hmac
import itertools
import json
import logging
import mimetypes
import shlex
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
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
from .checks import (
    Refused,
    as_request_keys,
    background_tasks,
    error_response,
    parse_json,
    prepare_within_bounds,
    public_record,
    read_json_object,
    until_disconnect,
)
from .cowrite import CoWriting
from .engine import Busy, Cancelled, Engine, Ticket
from .openai_api import OpenAiCompletions
from .openapi import openapi_document
from .options import ServeOptions
from .renders import MissingTool, SampleStore, render

log = logging.getLogger(__name__)
API_VERSION = "v1"
SERVER_KEYS = ("model", "stream")  # a request's keys that are not sample options
STUDIO = Path(__file__).resolve().parent / "studio"
# The studio's in-browser runtime is a JavaScript module and WebAssembly: a browser refuses either under another type.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
PUBLIC = ("/healthz", "/livez", "/readyz", "/")  # routes without a token: probes, and the studio's page and assets hold no data
PROBES = ("/healthz", "/livez", "/readyz", "/metrics")  # answered while draining
ACCESS = logging.getLogger("generate.serving.access")


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


class ServingApi:
    """The routes' handlers over the served models, with what they share: bounds, metrics, threads, the relay."""

    def __init__(self, models: dict[str, ServedModel], options: ServeOptions, metrics: Metrics):
        self.models, self.options, self.metrics = models, options, metrics
        self.threads = anyio.CapacityLimiter(len(models) * (options.max_streams + options.max_queued) + 8)
        self.relay = Relay()
        self.store = SampleStore()
        self.draining = threading.Event()  # set at SIGTERM: new requests are refused with 503
        self.in_flight = 0  # requests and sockets being answered (counted on the event loop)
        self.started = int(time.time())
        for served in models.values():
            served.engine.on_tick = self.relay.flush_soon

    async def list_models(self, request: Request) -> Response:
        """Each model's card under "models", and the same models in OpenAI's list shape under "data"."""
        self.metrics.count("models", "ok")
        listed = [{"id": name, "object": "model", "created": self.started, "owned_by": "generate"} for name in self.models]
        return JSONResponse({"object": "list", "data": listed, "models": [served.card for served in self.models.values()]})

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

    async def livez(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self.draining.is_set():
            return error_response(503, "the server is stopping", headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "models": list(self.models)})

    async def metrics_text(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.text(self.models), media_type="text/plain; version=0.0.4")

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(list(self.models), self.options))

    async def samples(self, request: Request) -> Response:
        try:
            served, prepared, stream = await _checked(request, self.models, self.options, self.threads, _SAMPLES_BODY)
        except Refused as refusal:
            self.metrics.count("samples", str(refusal.response.status_code))
            return refusal.response
        ticket = Ticket(deadline=time.monotonic() + self.options.request_seconds)
        runner = served.engine.bind(ticket)
        keep = lambda output: self._keep(served, prepared, output)  # noqa: E731 - each answered sample, kept by its id
        if stream:
            self.relay.loop = asyncio.get_running_loop()
            return _event_stream(served, prepared, ticket, runner, self.metrics, self.threads, self.relay, keep)
        try:
            result = await until_disconnect(request, ticket, lambda: served.model.run(prepared, runner=runner), self.threads)
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
        command = shlex.join(command_words(served.name, again))
        return {"id": sample_id, **public_record(served, output.record), "text": output.text, "command": command}

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
        """Co-writing (`cowrite.py`): one JSON message per action, the state (or an error) in answer to each.

        Whatever a message holds, the answer is a state or an error and the session goes on.
        """
        await websocket.accept()
        self.metrics.count("write", "opened")
        cowriting: CoWriting | None = None
        ticket = Ticket()
        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                try:
                    if received.get("text") is None:
                        raise OptionError("message", "expected a text frame holding a JSON object, received a binary frame")
                    message = parse_json(received["text"])
                    cowriting = self._cowriting(message, cowriting, ticket)
                    reply = await anyio.to_thread.run_sync(cowriting.act, message, limiter=self.threads)
                except ValueError as exc:  # not JSON
                    reply = {"type": "error", "error": {"field": None, "message": f"expected a JSON object ({exc})"}}
                except OptionError as exc:
                    reply = {"type": "error", "error": {"field": exc.option, "message": as_request_keys(exc.problem)}}
                except Cancelled as exc:
                    reply = {"type": "error", "error": {"field": None, "message": str(exc)}}
                except GenerateError as exc:
                    reply = {"type": "error", "error": {"field": None, "message": as_request_keys(str(exc))}}
                except Exception as exc:  # a bug: logged, answered, and the session goes on
                    log.exception("a co-writing action failed")
                    reply = {"type": "error", "error": {"field": None, "message": f"the server failed: {type(exc).__name__}"}}
                await websocket.send_text(json.dumps(reply, ensure_ascii=False))
        except WebSocketDisconnect:
            pass
        finally:
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
            return CoWriting(self.models[name], self.models[name].engine.bind(ticket), self.options)
        if current is None:
            raise OptionError("action", "expected a start action first, naming the model")
        return current


def build_app(models: dict[str, ServedModel], options: ServeOptions, metrics: Metrics | None = None,
              api: ServingApi | None = None) -> Starlette:
    """The ASGI application serving `models` under `options` (its token, CORS origins and bounds)."""
    api = api or ServingApi(models, options, metrics or Metrics())
    completions = OpenAiCompletions(api)
    middleware = [Middleware(AccessLog), Middleware(Draining, api=api), Middleware(AccessGate, options=options)]
    if options.cors_origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=list(options.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]))
    routes = [
        Route(f"/{API_VERSION}/models", api.list_models, methods=["GET"]),
        Route(f"/{API_VERSION}/models/{{name}}/model.onnx", api.step_graph, methods=["GET"]),
        Route(f"/{API_VERSION}/samples", api.samples, methods=["POST"]),
        Route(f"/{API_VERSION}/samples/{{name}}", api.rendered, methods=["GET"]),
        Route(f"/{API_VERSION}/completions", completions.create, methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/livez", api.livez, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/metrics", api.metrics_text, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        WebSocketRoute(f"/{API_VERSION}/write", api.write_socket),
        Route("/", api.studio_page, methods=["GET"]),
        Mount("/studio", StudioFiles(directory=STUDIO)),
    ]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(f"/{API_VERSION}/completions"):
            return completions.error(exc.status_code, exc.detail, None)
        return error_response(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}", None,
                              dict(exc.headers or {}))

    return Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})


_SAMPLES_BODY = "samples"


async def _checked(request: Request, models: dict[str, ServedModel], options: ServeOptions, threads, kind: str = _SAMPLES_BODY):
    """(model, prepared request, stream?) for a POST /v1/samples body, checked as the command line checks options.

    Raises:
        Refused: the body is not a JSON object, names no served model, or has a bad or out-of-bounds field.
    """
    keys = await read_json_object(request, options.max_body_bytes)
    name = keys.get("model")
    if not isinstance(name, str) or name not in models:
        raise Refused(400, f"expected one of the models this server runs: {', '.join(models)}; received {name!r}", "model")
    stream = keys.get("stream", False)
    if not isinstance(stream, bool):
        raise Refused(400, f"expected true or false, received {stream!r}", "stream")
    served = models[name]
    try:
        sample_options = options_from({k: v for k, v in keys.items() if k not in SERVER_KEYS})
        prepared = await prepare_within_bounds(served, sample_options, options, threads)
    except OptionError as exc:
        raise Refused(400, exc.problem, exc.option) from None
    except (UsageError, TypeError, ValueError) as exc:
        raise Refused(400, str(exc)) from None
    return served, prepared, stream


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
        background_tasks.add(worker)  # it ends within a tick of the ticket's cancelling; nothing waits for it
        worker.add_done_callback(background_tasks.discard)
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
    if isinstance(exc, UnicodeError):
        return "400", error_response(400, f"expected valid Unicode text ({exc})")
    if isinstance(exc, UsageError):
        return "400", error_response(400, str(exc))
    if isinstance(exc, GenerateError):
        return "500", error_response(500, str(exc))
    log.exception("a request failed", exc_info=exc)
    return "500", error_response(500, f"the server failed: {type(exc).__name__}")


class AccessGate:
    """Who may call: with a token, `Authorization: Bearer TOKEN` on every route but the probes and the studio's page,
    compared in constant time; without one, only loopback Hosts and same-origin (or no) Origins, or the origins
    given to `--cors`, as local development servers do. So a web page on another site can neither post to a
    local server (a `text/plain` POST needs no preflight) nor read it by DNS rebinding, nor open its socket.

    A browser cannot set the header on a WebSocket, a link or an image, so those (GETs and sockets) may
    carry `?token=TOKEN` instead.
    """

    def __init__(self, app, options: ServeOptions):
        self.app, self.token, self.cors = app, options.token, set(options.cors_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        refusal = self._refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, field = refusal
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4000 + status})
            return
        extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await error_response(status, message, field, extra)(scope, receive, send)

    def _refusal(self, scope, headers: dict) -> tuple[int, str, str] | None:
        path = scope.get("path", "")
        if self.token is None:
            host = headers.get(b"host", b"").decode("latin-1")
            if not _is_loopback_host(host):
                return 403, f"Host {host[:80]!r}: expected a loopback host (127.0.0.1, localhost, [::1]); a server " \
                            "without a token answers this machine only", "host"
            origin = headers.get(b"origin", b"").decode("latin-1")
            if origin and origin not in self.cors and _origin_authority(origin) != host.lower():
                return 403, f"Origin {origin[:80]!r}: expected this server's own pages, or an origin given to --cors", "origin"
            return None
        if path in PUBLIC or path.startswith("/studio/"):
            return None
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, value = given.partition(" ")
        if not given and (scope["type"] == "websocket" or scope.get("method") == "GET"):  # a browser's socket, link, image: ?token=
            scheme, value = "bearer", parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if not (scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), self.token.encode())):
            return 401, "expected the header Authorization: Bearer TOKEN", "authorization"
        return None


def _is_loopback_host(host: str) -> bool:
    name = host.lower()
    if name.startswith("["):
        name = name[1:name.find("]")] if "]" in name else name
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    if name in ("localhost", "::1") or name.endswith(".localhost"):
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)


def _origin_authority(origin: str) -> str:
    """`http://127.0.0.1:8000` -> `127.0.0.1:8000`; what a same-origin page's Host header says."""
    scheme, _, rest = origin.partition("://")
    authority = rest.split("/", 1)[0].lower()
    default = {"http": ":80", "https": ":443"}.get(scheme.lower())
    return authority[: -len(default)] if default and authority.endswith(default) else authority


class Draining:
    """While the server stops (SIGTERM), every new request but the probes gets 503 with the JSON error; and it counts
    the requests in flight, so a stop can wait for their last events to be sent."""

    def __init__(self, app, api: ServingApi):
        self.app, self.api = app, api

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        self.api.in_flight += 1
        try:
            await self._answer(scope, receive, send)
        finally:
            self.api.in_flight -= 1

    async def _answer(self, scope, receive, send):
        if self.api.draining.is_set() and scope.get("path") not in PROBES:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4503})
                return
            await error_response(503, "the server is stopping; expected a request to another replica or later",
                                 headers={"Retry-After": "5", "Connection": "close"})(scope, receive, send)
            return
        await self.app(scope, receive, send)


class AccessLog:
    """One line per request on the `generate.serving.access` logger, with an id the response carries (X-Request-Id)."""

    _ids = itertools.count(1)

    def __init__(self, app):
        self.app = app
        self.prefix = f"{int(time.time()) % 100000:05d}"

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = f"{self.prefix}-{next(self._ids)}"
        started, status = time.monotonic(), [0]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            elif message["type"] == "websocket.accept":
                status[0] = 101
            await send(message)

        scope.setdefault("state", {})["request_id"] = request_id
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            client = scope.get("client") or ("-", 0)
            ACCESS.info("%s %s %s %s %d %.3fs", request_id, client[0], scope.get("method", "WS"), scope.get("path", ""),
                        status[0], time.monotonic() - started)
