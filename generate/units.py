"""Units of loss: nats, as Keras computes them, and bits per character, as people quote them."""

from __future__ import annotations

import math

LN2 = math.log(2.0)  # nats per bit


def bits(nats: float) -> float:
    """A loss in nats per character as bits per character."""
    return nats / LN2
