"""`generate serve`: the models behind an HTTP API, many writers batched together."""

from __future__ import annotations

import os

import click

from .sample import DEFAULT_MODEL


@click.command("serve")
@click.argument("models", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; beyond loopback it needs --token.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on (0: any free port, printed).")
@click.option("--token", default=None, help="Require `Authorization: Bearer TOKEN` on every route but /healthz "
                                            "[default: $GENERATE_SERVE_TOKEN].")
@click.option("--cors-origin", "cors_origins", multiple=True, help="Let browsers on this origin call the API (repeatable); none by default.")
@click.option("--max-streams", type=int, default=64, show_default=True, help="Streams sampled at once, per model.")
@click.option("--max-queued", type=int, default=256, show_default=True, help="Requests waiting beyond those, per model; more get 429.")
@click.option("--max-length", type=int, default=10_000, show_default=True, help="Characters per sample a request may ask for.")
@click.option("--max-samples", type=int, default=16, show_default=True, help="Samples per request.")
@click.option("--request-seconds", type=float, default=300.0, show_default=True, help="A request still running after this long is ended.")
@click.option("--grace", "grace_seconds", type=float, default=10.0, show_default=True,
              help="On SIGTERM, how long streams in flight may run on before they are ended.")
def serve(models: tuple[str, ...], **settings) -> None:
    """Serve MODELS (shipped names, runs or bundles; default shakespeare) over HTTP until stopped.

    Open the address it prints in a browser for the studio, a page to write
    with the models (at /). Each model loads once; requests to it are sampled
    together, a few characters at a time, and streamed as they are written. The API is
    under /v1 (GET /v1/models, POST /v1/samples) and described at
    /openapi.json; /healthz and /metrics are beside it. SIGTERM stops
    admitting requests, lets those in flight finish within --grace, and exits 0.
    """
    from ..serving.options import TOKEN_VARIABLE, ServeOptions  # nothing heavy
    from ..serving.server import serve as run_server  # Starlette and the models load here, not for --help

    token = settings.pop("token") or os.environ.get(TOKEN_VARIABLE) or None
    options = ServeOptions(token=token, cors_origins=tuple(settings.pop("cors_origins")), **settings)

    def announce(address: str, names: list[str]) -> None:
        click.echo(f"serving {', '.join(names)} at {address} (the studio at {address}/, the API under /v1, "
                   f"described at {address}/openapi.json)", err=True)

    run_server(list(models) or [DEFAULT_MODEL], options, announce)
