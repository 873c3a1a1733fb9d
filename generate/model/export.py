"""Exporting a run: what another program or machine needs to sample it, and nothing it does not.

`export_run` writes a sampling-only copy of a run (config, vocabulary, weights
without the optimizer, optionally as float16). The ONNX and SavedModel bundles
of the export issue live here too.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..fileio import atomic_path, atomic_write_text, sha256_file
from .builder import build_model
from .checkpoint import WEIGHTS_MEMBER, load_weights_into, read_training_state, record_checksum, save_checkpoint
from .rundir import RunDir


def export_run(run: RunDir, dest: Path, which: str = "best", float16: bool = False) -> Path:
    """Copies a run into `dest` for sampling only: config, vocab and weights, no optimizer.

    The exported `best.keras` is a third of the training checkpoint's size,
    which is what keeps shipped models small; `float16` halves it again
    (Keras casts the stored weights back to float32 on loading).

    Raises:
        UsageError: `dest` already holds files, or the checkpoint is missing.
    """
    source = run.checkpoint(which)
    target = RunDir(Path(dest))
    if target.path.exists() and any(target.path.iterdir()):
        raise UsageError(f"export target {str(target.path)!r}: expected a new or empty directory, found files")
    config = run.load_config()
    model = build_model(config.model, 1)
    load_weights_into(model, source)
    state = read_training_state(source)
    target.path.mkdir(parents=True, exist_ok=True)
    run.load_vocab().save(target.vocab)
    config.save(target.config)
    save_checkpoint(model, target.best, {**state, "exported_from": str(source), "weights_dtype": "float16" if float16 else "float32"})
    if float16:
        _store_weights_as_float16(target.best)
    if run.history.exists():
        target.write_history(run.read_history())
    for facts in (run.sampling, run.pieces):  # its sampling defaults and its pieces' lengths travel with its weights
        if facts.is_file():
            atomic_write_text(target.path / facts.name, facts.read_text(encoding="utf-8"))
    return target.best


def _store_weights_as_float16(path: Path) -> None:
    """Rewrites the float32 arrays of a `.keras` file's weights as float16, atomically."""
    import h5py  # installed with Keras; only exporting needs it

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    halved = io.BytesIO()
    with h5py.File(io.BytesIO(members[WEIGHTS_MEMBER]), "r") as source, h5py.File(halved, "w") as target:
        def copy(name, item):
            if isinstance(item, h5py.Dataset):
                data = item[()]
                target.create_dataset(name, data=data.astype(np.float16) if data.dtype == np.float32 else data)
            else:
                target.require_group(name)
            target[name].attrs.update(dict(item.attrs))

        source.visititems(copy)
        target.attrs.update(dict(source.attrs))
    members[WEIGHTS_MEMBER] = halved.getvalue()
    written = []

    def accept(tmp: Path) -> None:
        written.append(sha256_file(tmp))
        record_checksum(path.parent, path.name, written[0], replacing=True)

    with atomic_path(path, suffix=".keras", verify=accept) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    record_checksum(path.parent, path.name, written[0], replacing=False)
