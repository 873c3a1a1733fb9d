"""Checkpoint files: atomic, verified saves, the checksum ledger, and loading.

A `.keras` file is a zip. Besides what Keras writes, ours carry
`training_state.json` (epoch, step, early-stopping counters, RNG state) and
`runtime_state.npz` (RNN hidden states and dropout seeds, which Keras does not
save), so resuming continues exactly. Both are plain JSON and NumPy arrays,
never pickle, and `generate info` reads them with the standard library alone.

Every checkpoint is verified (each zip member's CRC, the training state)
before it replaces the old file, and its sha256 goes into `checksums.json`,
so a file damaged later, by a disk error or a bad copy, is recognised:
`--resume` then falls back to the newest intact checkpoint (`rundir.resume_point`).
The ledger is updated in two phases (accept the new hash, replace the file, drop
the old hash), so a kill at any moment leaves every file matching a recorded hash.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, UsageError
from ..fileio import atomic_path, atomic_write_text, sha256_file
from .backend import get_runtime_state, import_keras, set_runtime_state
from .builder import LABEL_LAYER, build_model, label_layer, logit_bias_layer, recurrent_layer_name
from .config import ModelConfig

WEIGHTS_MEMBER = "model.weights.h5"  # where Keras keeps the weights inside a .keras zip
TRAINING_STATE = "training_state.json"
RUNTIME_STATE = "runtime_state.npz"
CHECKSUMS = "checksums.json"
PREVIOUS = "previous.keras"  # the checkpoint `latest.keras` replaced, kept in case the new one is damaged
# A kill mid-update leaves at most the old hash and the new one per file; a few more is slack.
MAX_ACCEPTED_HASHES = 4


def recorded_checksums(directory: Path) -> dict[str, list[str]]:
    """The accepted sha256 hashes per checkpoint name in `directory`; empty for runs older than the ledger."""
    try:
        files = json.loads((Path(directory) / CHECKSUMS).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {name: list(hashes) for name, hashes in files.items() if isinstance(hashes, list)} if isinstance(files, dict) else {}


def record_checksum(directory: Path, name: str, sha256: str, replacing: bool) -> None:
    """Records `sha256` for the file `name`: beside its current hashes while `replacing`, else alone."""
    files = recorded_checksums(directory)
    hashes = [*files.get(name, []), sha256] if replacing else [sha256]
    files[name] = list(dict.fromkeys(hashes))[-MAX_ACCEPTED_HASHES:]
    atomic_write_text(Path(directory) / CHECKSUMS, json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")


def check_keras_file(path: Path) -> None:
    """Refuses anything but an existing `.keras` zip.

    Raises:
        UsageError: a `.h5`/`.hdf5` full model (unsafe legacy format) or a missing file.
        CheckpointError: a file that is not a readable `.keras` zip.
    """
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise UsageError(f"checkpoint {str(path)!r}: legacy .h5 models are refused; expected a .keras file")
    if path.suffix.lower() != ".keras":
        raise UsageError(f"checkpoint {str(path)!r}: expected a .keras file, received {path.suffix or 'no extension'}")
    if not path.is_file():
        raise UsageError(f"checkpoint {str(path)!r}: no such file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {str(path)!r}: damaged, expected a .keras zip archive")


def save_checkpoint(model, path: Path, training_state: dict, keep_previous: bool = False) -> None:
    """Saves model, optimizer, runtime state and trainer state atomically, verified and recorded.

    The new file is read back and checked before it replaces `path`; its
    sha256 goes into the run's `checksums.json`.

    Args:
        keep_previous: first keep the file being replaced as `previous.keras`,
            if it is intact, for `--resume` to fall back on.

    Raises:
        WriteError: the disk refused a write; `path` and the ledger are as they were.
        CheckpointError: the new file failed verification; `path` is as it was.
    """
    path = Path(path)
    arrays = io.BytesIO()
    np.savez(arrays, *get_runtime_state(model))
    written: list[str] = []

    def verify_then_accept(tmp: Path) -> None:
        problem = _archive_problem(tmp)
        if problem:
            raise CheckpointError(f"checkpoint {str(path)!r}: the new file failed verification ({problem}); the old one is kept")
        if keep_previous and path.exists():
            old_sha256 = _sha256_if_intact(path)
            if old_sha256:
                _keep_as_previous(path, old_sha256)
        written.append(sha256_file(tmp))
        record_checksum(path.parent, path.name, written[0], replacing=True)

    with atomic_path(path, suffix=".keras", verify=verify_then_accept) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(TRAINING_STATE, json.dumps(training_state, indent=1))
            archive.writestr(RUNTIME_STATE, arrays.getvalue())
    record_checksum(path.parent, path.name, written[0], replacing=False)
    _remember_written(path, written[0])


# Checkpoints this process wrote: path -> (inode, size, mtime, sha256). Hashing a file
# again before keeping it as previous.keras would double the cost of every save.
_written_by_us: dict[Path, tuple[int, int, int, str]] = {}


def _remember_written(path: Path, sha256: str) -> None:
    stat = path.stat()
    _written_by_us[path.absolute()] = (stat.st_ino, stat.st_size, stat.st_mtime_ns, sha256)


def _sha256_if_intact(path: Path) -> str | None:
    """The sha256 of an intact checkpoint, from this process's own record while the file is unchanged; else None."""
    stat = path.stat()
    known = _written_by_us.get(path.absolute())
    if known and known[:3] == (stat.st_ino, stat.st_size, stat.st_mtime_ns) and known[3] in recorded_checksums(path.parent).get(path.name, []):
        return known[3]
    problem, sha256 = _inspect(path)
    return None if problem else sha256 or sha256_file(path)


def _keep_as_previous(latest: Path, sha256: str) -> None:
    """Makes `previous.keras` beside it a copy of `latest` (a hard link where the filesystem allows)."""
    previous = latest.with_name(PREVIOUS)
    with atomic_path(previous, suffix=".keras",
                     verify=lambda _: record_checksum(latest.parent, PREVIOUS, sha256, replacing=True)) as tmp:
        try:
            tmp.unlink()
            os.link(latest, tmp)
        except OSError:
            shutil.copyfile(latest, tmp)
    record_checksum(latest.parent, PREVIOUS, sha256, replacing=False)


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint cannot be trusted, or None when it is intact.

    A file with a recorded sha256 must match it; one without (runs older than
    `checksums.json`) must pass the zip's own CRC checks. Reads no Keras.
    """
    return _inspect(Path(path))[0]


def _inspect(path: Path) -> tuple[str | None, str | None]:
    """(why `path` cannot be trusted or None, its sha256 where checking it needed one)."""
    if not path.is_file():
        return "the file is missing", None
    recorded = recorded_checksums(path.parent).get(path.name)
    if not recorded:
        return _archive_problem(path), None
    try:
        actual = sha256_file(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})", None
    if actual not in recorded:
        return f"its sha256 {actual[:12]}... differs from the one recorded in {CHECKSUMS} when it was written", actual
    return None, actual


def _archive_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f"zip member {bad} fails its CRC check"
            json.loads(archive.read(TRAINING_STATE))
    except KeyError:
        return f"no {TRAINING_STATE} inside"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        return f"not a readable .keras zip ({exc})"
    return None


def read_training_state(path: Path) -> dict:
    """Reads the trainer state from a checkpoint without importing Keras."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(TRAINING_STATE))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: no readable training state ({exc})") from None


def read_runtime_state(path: Path) -> list[np.ndarray]:
    try:
        with zipfile.ZipFile(path) as archive:
            data = np.load(io.BytesIO(archive.read(RUNTIME_STATE)), allow_pickle=False)
            return [data[f"arr_{i}"] for i in range(len(data.files))]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: no readable runtime state ({exc})") from None


def load_trainable_model(path: Path):
    """Loads a checkpoint with its optimizer for resuming, in safe mode."""
    check_keras_file(path)
    keras = import_keras()
    logit_bias_layer()  # registers the tied output layer's class before Keras looks it up
    label_layer()  # and the label layer's
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise CheckpointError(f"checkpoint {str(path)!r}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    set_runtime_state(model, read_runtime_state(path))
    return model


def load_weights_into(model, path: Path, source_cfg: ModelConfig | None = None) -> None:
    """Loads a checkpoint's weights into a model built at another batch size.

    With `source_cfg` (the checkpoint's model, when it may differ from `model`'s in labels alone), a
    model without labels starts a labelled one: the first layer's kernel gains zero rows for the label
    embedding, so the labelled model starts as the same function and learns what the labels add.
    """
    check_keras_file(path)
    try:
        if source_cfg is None or source_cfg.label_count or not _has_label_layer(model):
            model.load_weights(path)
            return
        source = build_model(source_cfg, 1)
        source.load_weights(path)
        for layer in source.layers:
            weights = layer.get_weights()
            if not weights:
                continue
            target = model.get_layer(layer.name)
            if layer.name == recurrent_layer_name(source_cfg, 0):
                kernel = weights[0]
                extra = target.get_weights()[0].shape[0] - kernel.shape[0]
                weights = [np.concatenate([kernel, np.zeros((extra, kernel.shape[1]), kernel.dtype)]), *weights[1:]]
            target.set_weights(weights)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: weights do not load ({type(exc).__name__}: {exc})") from None


def _has_label_layer(model) -> bool:
    return any(layer.name == LABEL_LAYER for layer in model.layers)
