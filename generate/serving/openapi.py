"""The API's OpenAPI description, served at /openapi.json: the contract clients outside the project rely on."""

from __future__ import annotations

from .. import __version__
from ..sampling.options import declarations

_ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "field": {"type": ["string", "null"], "description": "the request key that is wrong, when one is"},
    "message": {"type": "string"}}}}}


def openapi_document(model_names: list[str], options) -> dict:
    """OpenAPI 3.1 for this server: its models, its bounds, and every sample option with its help."""
    sample_keys = {name: {"description": declared.help} for name, declared in declarations().items()}
    request = {"type": "object", "required": ["model"], "additionalProperties": False, "properties": {
        "model": {"type": "string", "enum": model_names},
        "stream": {"type": "boolean", "default": False, "description": "answer text/event-stream as it is written"},
        **sample_keys}}
    errors = {str(code): {"description": about, "content": {"application/json": {"schema": _ERROR}}}
              for code, about in ((400, "a bad field, named"), (401, "a missing or wrong token"),
                                  (413, f"a body over {options.max_body_bytes} bytes"),
                                  (429, "the model's queue is full: try again after Retry-After seconds"),
                                  (503, "the server is stopping"))}
    return {
        "openapi": "3.1.0",
        "info": {"title": "generate", "version": __version__,
                 "description": "Character-level models for text, code and music. Every route but /healthz needs "
                                "`Authorization: Bearer TOKEN` when the server was started with one."},
        "paths": {
            "/v1/models": {"get": {"summary": "The models this server runs, with their cards", "responses": {
                "200": {"description": '{"models": [{"name": ..., "kind": ..., ...}]}'}}}},
            "/v1/samples": {"post": {
                "summary": "Samples: the keys of a job file's sample (`generate sample`'s options) plus model",
                "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                "responses": {"200": {"description": '{"samples": [RECORD, ...]}: each RECORD is what a sidecar holds, '
                                                     'with its "text". With "stream": true, text/event-stream: events '
                                                     '{"index", "text"} as the text is written, then {"index", "record"} '
                                                     'for each sample.'}, **errors}}},
            "/v1/samples/{name}": {"get": {
                "summary": "A sample this server made, as ID.FORMAT: txt, json, and for music mid, png, wav, musicxml, "
                           "score.png", "parameters": [{"name": "name", "in": "path", "required": True,
                                                        "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the file"}, "404": {"description": "no such id (kept: the last 512)"},
                              "501": {"description": "the render's tool (fluidsynth, LilyPond) is not installed"}}}},
            "/healthz": {"get": {"summary": "200 once every model is loaded", "security": [],
                                 "responses": {"200": {"description": '{"status": "ok"}'}}}},
            "/metrics": {"get": {"summary": "Prometheus text: requests by outcome, active streams, queue depth, "
                                            "characters per second", "responses": {"200": {"description": "text"}}}},
        },
        "x-limits": {"max_prime_chars": options.max_prime_chars, "max_length": options.max_length,
                     "max_samples": options.max_samples, "request_seconds": options.request_seconds,
                     "max_streams_per_model": options.max_streams, "max_queued_per_model": options.max_queued},
    }
