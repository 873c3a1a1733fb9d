"""A server's settings, verified once: where it listens, who may call it, and the bounds on every request."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import OptionError

TOKEN_VARIABLE = "GENERATE_SERVE_TOKEN"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeOptions:
    """How `generate serve` runs; `verify` checks it before anything loads.

    Every bound is per request unless it says otherwise.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required on every route but /healthz; needed to bind beyond loopback
    cors_origins: tuple[str, ...] = ()  # browsers on these origins may call the API; none by default
    max_streams: int = 64  # streams stepped at once, per model
    max_queued: int = 256  # requests waiting beyond those, per model; then 429
    max_prime_chars: int = 4000
    max_length: int = 10_000  # characters per sample
    max_samples: int = 16  # samples per request
    request_seconds: float = 300.0  # a request still running then is ended
    grace_seconds: float = 10.0  # on SIGTERM: streams in flight may finish for this long
    max_body_bytes: int = 64 * 1024

    def verify(self) -> ServeOptions:
        """Raises OptionError naming the first setting that is out of range or unsafe."""
        if not 0 <= self.port <= 65535:
            raise OptionError("port", f"expected 0 to 65535, received {self.port}")
        if not self.token and not is_loopback(self.host):
            raise OptionError("host", f"{self.host} is reachable from other machines; expected --token (or "
                                      f"${TOKEN_VARIABLE}) to bind there, or 127.0.0.1")
        if self.token is not None and len(self.token) < 16:
            raise OptionError("token", f"expected at least 16 characters, received {len(self.token)}")
        for name in ("max_streams", "max_queued", "max_prime_chars", "max_length", "max_samples", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise OptionError(name, f"expected an integer >= 1, received {getattr(self, name)}")
        for name in ("request_seconds", "grace_seconds"):
            if not getattr(self, name) > 0:
                raise OptionError(name, f"expected seconds > 0, received {getattr(self, name)}")
        return self


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
