"""What every HTTP route shares: bodies read within bounds, JSON parsed as a request may send it, errors in
one shape, requests held to the server's bounds, and work that ends when its client leaves."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import OptionError, flags_as_keys
from ..sampling.options import verify_declared
from .engine import Cancelled, Ticket
from .options import ServeOptions

BODY_SECONDS = 30.0  # a body still arriving then is refused (a stalled client holds no worker)
background_tasks: set = set()  # streamed requests' worker tasks, kept referenced until they end


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": as_request_keys(message)}}, status_code=status, headers=headers)


def as_request_keys(message: str) -> str:
    """A message written for the command line, with its flags named as a request's keys (`--oov` is "oov")."""
    return flags_as_keys(message)


def parse_json(body: bytes | str):
    """JSON as a request may send it: no NaN or Infinity, nesting bounded. Raises ValueError saying what is wrong."""
    def refuse(constant):
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(body, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason})") from None

class Refused(Exception):
    """A request answered with a 4xx error before anything ran."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.response = error_response(status, message, field, headers)

async def read_json_object(request: Request, limit: int) -> dict:
    """The body as a JSON object, read within `limit` (`read_body`).

    Raises:
        Refused: too large or too slow (413, 408), not JSON, or not an object (400).
    """
    body = await read_body(request, limit)
    try:
        keys = parse_json(body or b"null")
    except ValueError as exc:
        raise Refused(400, f"expected a JSON object ({exc})") from None
    if not isinstance(keys, dict):
        raise Refused(400, f"expected a JSON object, received {type(keys).__name__}")
    return keys


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 before it is read when its declared length is over `limit`, and stopped at it.

    Raises:
        Refused: too large, or a Content-Length that is not a number.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, f"Content-Length: expected a number of bytes, received {declared[:40]!r}", "content-length")
        if int(declared) > limit:
            raise Refused(413, f"the request body is {declared} bytes; expected at most {limit}")
    chunks, size = [], 0
    with anyio.move_on_after(BODY_SECONDS) as waited:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"the request body is over {limit} bytes; expected at most {limit}")
            chunks.append(chunk)
    if waited.cancelled_caught:
        raise Refused(408, f"the request body took over {BODY_SECONDS:g} s to arrive")
    return b"".join(chunks)

async def prepare_within_bounds(served, sample_options, options: ServeOptions, threads):
    """The request prepared as the command line prepares it, then held to the server's bounds on what it costs.

    A poem's lines, an acrostic or a form ask for characters as a length does: the resolved length per
    sample is what is bounded, naming the key that asked for it. A request that asked for no length gets
    at most the server's.
    """
    within_bounds(sample_options, options)
    prepared = await anyio.to_thread.run_sync(lambda: served.model.prepare(sample_options), limiter=threads)
    if prepared.cfg.length <= options.max_length:
        return prepared
    asked = next((key for key in ("length", "lines", "acrostic", "form", "bars", "notes") if getattr(sample_options, key)), None)
    if asked is None:
        capped = dataclasses.replace(sample_options, length=options.max_length)
        return await anyio.to_thread.run_sync(lambda: served.model.prepare(capped), limiter=threads)
    raise OptionError(asked, f"asks for up to {prepared.cfg.length} characters per sample; expected at most "
                             f"{options.max_length} on this server")

def within_bounds(sample_options, options: ServeOptions) -> None:
    """Raises OptionError for a value of the wrong type, or a request beyond the server's bounds (the option checks
    bound nothing so large)."""
    verify_declared(sample_options)
    if sample_options.renders:
        raise OptionError("renders", "expected no render: a server returns the text and its record, and renders by its id "
                                     "(GET /v1/samples/ID.FORMAT)")
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
    if sample_options.beam > options.max_streams:
        raise OptionError("beam", f"expected at most {options.max_streams} beams on this server, received {sample_options.beam}")

async def until_disconnect(request: Request, ticket: Ticket, work, threads):
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


def public_record(served, record: dict) -> dict:
    """A sample's record as a client sees it: the model by its name, never the server's paths."""
    shown = dict(record)
    if "run" in shown:
        shown["run"] = served.name
    if "checkpoint" in shown:
        shown["checkpoint"] = Path(str(shown["checkpoint"])).name
    return shown
