"""`generate serve`: load each model once, give it an engine, and run the API on uvicorn until stopped.

SIGTERM stops admitting requests at once (503, and /readyz says so); work in
flight runs on for the grace period (less, if it all ends sooner), after which
each stream still running ends with a final event saying so, and the process
exits 0 within the grace period and a second. A model that cannot load stops
the start-up with one line naming it.

Connections are bounded: a client has HEADER_SECONDS to send its request's
headers (and `checks.BODY_SECONDS` its body), idle keep-alive connections close
after KEEP_ALIVE_SECONDS, and at most `connection_limit` are open at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time

from ..data.labels import NONE
from ..data.registry import get_entry
from ..data.vocab import han_chars
from ..errors import CorpusError, GenerateError, UsageError
from ..model.backend.onnxruntime_step import OnnxStepNetwork
from ..model.rundir import run_summary
from ..music.sampling import usual_meters
from ..pipeline.loaded import LoadedModel
from ..sampling.loop import Sampler
from ..units import bits
from .app import Metrics, ServedModel, ServingApi, build_app
from .engine import Engine
from .options import ServeOptions

log = logging.getLogger(__name__)
HEADER_SECONDS = float(os.environ.get("GENERATE_SERVE_HEADER_SECONDS", "10"))  # the environment: tests only
KEEP_ALIVE_SECONDS = 5


def load_models(names: list[str], options: ServeOptions) -> dict[str, ServedModel]:
    """Each named model (a shipped name, a run or a bundle) loaded once, on onnxruntime, with its engine.

    A run's Keras checkpoint is turned into a step graph in memory (`export.onnx_network`): one graph call
    steps any number of streams, where the compiled loop would compile again for each new batch size.

    Raises:
        GenerateError: naming the model that cannot load, or two models with one name.
    """
    served: dict[str, ServedModel] = {}
    for name in names:
        try:
            model = LoadedModel(name)
            if not isinstance(model.generator.sampler.net, OnnxStepNetwork):
                from ..model.export import onnx_network  # builds a Keras model: only a run's checkpoint needs it

                net = onnx_network(model.run_dir, model.generator.checkpoint)
                model.generator.sampler = Sampler(net, model.facts.vocab.chars, model.facts.labels)
        except GenerateError as exc:
            raise type(exc)(f"model {name!r} cannot be served: {exc}") from None
        if model.name in served:
            raise UsageError(f"model {name!r}: a model named {model.name!r} is served already; expected distinct names")
        engine = Engine(model.generator.sampler, model.name, options.max_streams, options.max_queued)
        served[model.name] = ServedModel(model.name, model, engine, model_card(model), name)
    return served


def model_card(model: LoadedModel) -> dict:
    """What /v1/models says of a model: what it writes, its shape, its validation loss and defaults."""
    summary = run_summary(model.run_dir)
    config = model.generator.config.model
    best = summary["checkpoints"].get("best") or summary["checkpoints"].get("latest") or {}
    rows = [row for row in summary["history"] if row.get("val_loss")]
    val_loss = best.get("best_val_loss") or best.get("val_loss") or (float(rows[-1]["val_loss"]) if rows else None)
    card_file = model.run_dir.path / "README.md"
    # Published to every client: only the model's own file, never a link out of its folder.
    if card_file.is_symlink() or not card_file.resolve().is_relative_to(model.run_dir.path.resolve()):
        card_file = model.run_dir.path / ".no-card"
    return {
        "name": model.name,
        "kind": model.facts.kind,
        "encoding": model.facts.encoding if model.facts.music else None,
        "vocab_size": len(model.facts.vocab),
        "architecture": f"{config.cell} {config.layers}x{config.units}",
        "validation": {"nats": round(val_loss, 4), "bpc": round(bits(val_loss), 4)} if val_loss else None,
        "sampling_defaults": summary["sampling_defaults"],
        "bundle": "bundle" in summary,
        "labels": [name for name in model.facts.labels if name != NONE],  # what `label` and `then_label` take; [] without labels
        "label_drawn": model.facts.label_source == "rhyme",  # without a label, each sample draws one (`--label any`)
        "writes": what_it_writes(model),
        "chinese_verse": bool(han_chars(model.facts.vocab.chars)) and model.facts.has("，。"),  # form, acrostic, regulated
        "meters": usual_meters(model.facts.meters) if model.facts.meters else [],  # what a music header may name
        "browser": browser_facts(model),
        "card": card_file.read_text(encoding="utf-8") if card_file.is_file() else None,
    }


def what_it_writes(model: LoadedModel) -> str:
    """A line saying what the model writes: its built-in corpus's description, else its kind and sources."""
    corpus = model.generator.config.corpus
    for source in corpus.sources:
        if source.startswith("corpus:"):
            with contextlib.suppress(UsageError, CorpusError):
                return get_entry(source).description
    names = ", ".join(os.path.basename(s.rstrip("/")) or s for s in corpus.sources[:3])
    return f"{corpus.kind} like {names}" + (" and more" if len(corpus.sources) > 3 else "")


def browser_facts(model: LoadedModel) -> dict:
    """What a browser needs to step the model itself (the studio's in-browser mode): its graph's address, its
    characters in id order, and the graph's state inputs, their width and the label count."""
    net = model.generator.sampler.net
    return {"graph": f"/v1/models/{model.name}/model.onnx", "chars": list(model.facts.vocab.chars),
            "states": list(net.state_names), "state_units": net.units, "label_count": net.labels}


def listening_socket(options: ServeOptions) -> socket.socket:
    """The server's socket, bound before anything else starts so a taken port is one clear line.

    Raises:
        UsageError: the address cannot be bound (in use, not this machine's).
    """
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    try:
        sock = socket.create_server((options.host, options.port), family=family, reuse_port=False)
        # Inherited by each connection: an event is sent as it is written, not held for the last one's
        # acknowledgement (Nagle's algorithm, against the client's delayed ACK, held each ~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except OSError as exc:
        raise UsageError(f"--port {options.port}: cannot listen on {options.host}:{options.port} "
                         f"({exc.strerror or exc})") from None


def graceful_server(config, on_stop):
    """uvicorn's server, with SIGTERM turned into a graceful stop that exits 0 (`on_stop` runs at the first signal
    and decides when the server exits: `server.should_exit`)."""
    import uvicorn  # the server's only import of it: `generate --help` never loads it

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            first = not getattr(self, "stopping", False)
            self.stopping = True
            if first:
                on_stop(self)
            if sig == signal.SIGTERM:  # a managed stop: uvicorn would raise the signal again, exiting 143
                return
            super().handle_exit(sig, frame)

    return Server(config)


def header_timeout_protocol():
    """uvicorn's HTTP/1.1 protocol, closing a connection whose next request has not begun within HEADER_SECONDS of
    its opening or of its last response (a client that trickles its headers holds nothing for long)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # uvicorn loads only when serving: `generate --help` never does

    class Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm_header_timer()

        def _arm_header_timer(self):
            waiting_after = self.cycle
            self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_overdue, waiting_after)

        def _headers_overdue(self, waiting_after):
            if self.cycle is waiting_after and not self.transport.is_closing():
                self.transport.close()

        def on_response_complete(self):
            super().on_response_complete()
            self._header_timer.cancel()
            self._arm_header_timer()

        def connection_lost(self, exc):
            self._header_timer.cancel()
            super().connection_lost(exc)

    return Protocol


def connection_limit(options: ServeOptions, models: int) -> int:
    """Open connections at once: every stream and queued request, with room for probes and pages."""
    return models * (options.max_streams + options.max_queued) + 64


def serve(names: list[str], options: ServeOptions, on_listening=None) -> None:
    """Runs the API over `names` until SIGTERM or Ctrl-C.

    Args:
        on_listening: called with the address (`http://host:port`) once the socket is bound and the models loaded.

    Raises:
        OptionError: an unsafe or out-of-range option.
        UsageError, GenerateError: a model that cannot load, or an address that cannot be bound.
    """
    import uvicorn  # the server's only import of it: `generate --help` never loads it

    options.verify()
    sock = listening_socket(options)
    models = load_models(names, options)
    engines = [served.engine for served in models.values()]
    api = ServingApi(models, options, Metrics())

    def stop_gracefully(server) -> None:
        """Refuses new work at once; ends the engines and the server when the work in flight ends, or at the grace."""
        api.draining.set()
        for engine in engines:
            engine.drain()
        deadline = time.monotonic() + options.grace_seconds

        def watch():
            while time.monotonic() < deadline and not all(engine.idle for engine in engines):
                time.sleep(0.05)
            for engine in engines:
                engine.stop()  # what still runs gets its final "stopping" event within a tick
            flushed = time.monotonic() + 0.6
            while api.in_flight and time.monotonic() < flushed:  # the last events reach their sockets
                time.sleep(0.02)
            server.should_exit = True

        threading.Thread(target=watch, name="drain", daemon=True).start()

    config = uvicorn.Config(build_app(models, options, api=api), log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                            limit_concurrency=connection_limit(options, len(models)), http=header_timeout_protocol(),
                            h11_max_incomplete_event_size=16 * 1024, ws_max_size=options.max_body_bytes)
    host, port = sock.getsockname()[:2]
    if on_listening:
        on_listening(f"http://{'[' + host + ']' if ':' in host else host}:{port}", list(models))
    try:
        graceful_server(config, stop_gracefully).run(sockets=[sock])
    finally:
        for engine in engines:
            engine.stop()
