"""Where the package finds its files: shipped models, the corpus registry and the cache.

Shipped models (`checkpoints/`) and the corpus registry (`corpora/`) sit at
the top of the repository. A wheel carries them inside the package
(setup.cfg maps both directories there), so an installed `generate` finds
them beside this file; a source checkout or an editable install finds them
one level up. Nothing here imports NumPy or Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    """`name` inside the installed package, else at the top of the source tree."""
    installed = _PACKAGE / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def shipped_checkpoints_dir() -> Path:
    """The directory of shipped models, one run directory per model name."""
    return _bundled("checkpoints")


def corpora_dir() -> Path:
    """The directory holding `registry.toml` and the corpus texts that ship with the package."""
    return _bundled("corpora")


def cache_root() -> Path:
    """The cache for corpora, ids and indexes: $GENERATE_CACHE_DIR, else $XDG_CACHE_HOME/generate."""
    if os.environ.get("GENERATE_CACHE_DIR"):
        return Path(os.environ["GENERATE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "generate"
