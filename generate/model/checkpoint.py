"""Run directories and checkpoint files.

A run directory holds:
    config.json    the resolved RunConfig (model, training, corpus hash, versions)
    vocab.json     the vocabulary, so a run samples without its corpus
    latest.keras   the newest checkpoint, with optimizer state, for --resume
    previous.keras the checkpoint `latest.keras` replaced, kept in case the new one is damaged
    best.keras     the checkpoint with the lowest validation loss so far
    checksums.json the sha256 of each checkpoint as it was written
    history.csv    one row per validation: loss in nats and bits per char
    logs/          TensorBoard event files

A `.keras` file is a zip. Besides what Keras writes, ours carry
`training_state.json` (epoch, step, early-stopping counters, RNG state) and
`runtime_state.npz` (RNN hidden states and dropout seeds, which Keras does not
save), so resuming continues exactly. Both are plain JSON and NumPy arrays,
never pickle, and `generate info` reads them with the standard library alone.

Every checkpoint is verified (each zip member's CRC, the training state)
before it replaces the old file, and its sha256 goes into `checksums.json`,
so a file damaged later, by a disk error or a bad copy, is recognised:
`--resume` then falls back to the newest intact checkpoint. The ledger is
updated in two phases (accept the new hash, replace the file, drop the old
hash), so a kill at any moment leaves every file matching a recorded hash.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.vocab import Vocab
from ..errors import CheckpointError, GenerateError, UsageError
from ..fileio import atomic_path, atomic_write_text, sha256_file
from ..paths import shipped_checkpoints_dir
from .backend import get_runtime_state, import_keras, set_runtime_state
from .builder import build_model, logit_bias_layer
from .config import RunConfig

log = logging.getLogger(__name__)

WEIGHTS_MEMBER = "model.weights.h5"  # where Keras keeps the weights inside a .keras zip
TRAINING_STATE = "training_state.json"
RUNTIME_STATE = "runtime_state.npz"
CHECKSUMS = "checksums.json"
# A kill mid-update leaves at most the old hash and the new one per file; a few more is slack.
MAX_ACCEPTED_HASHES = 4
HISTORY_FIELDS = (
    "epoch", "step", "global_step", "train_loss", "train_bpc",
    "val_loss", "val_bpc", "learning_rate", "elapsed_s", "chars_per_s",
)


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def vocab(self) -> Path:
        return self.path / "vocab.json"

    @property
    def latest(self) -> Path:
        return self.path / "latest.keras"

    @property
    def previous(self) -> Path:
        return self.path / "previous.keras"

    @property
    def best(self) -> Path:
        return self.path / "best.keras"

    @property
    def checksums(self) -> Path:
        return self.path / CHECKSUMS

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def remove_stale_temp_files(self) -> None:
        """Deletes temp files that a killed writer left (`.latest.keras.XXXX.keras` and such)."""
        for name in ("config.json", "vocab.json", "latest.keras", "previous.keras", "best.keras", "history.csv", CHECKSUMS):
            for stale in self.path.glob(f".{name}.*"):
                stale.unlink(missing_ok=True)

    def is_run(self) -> bool:
        return self.config.is_file()

    def require(self) -> RunDir:
        """Checks that this is a run directory.

        Raises:
            UsageError: the path is missing or is not a run directory.
        """
        if not self.path.exists():
            raise UsageError(f"run {str(self.path)!r}: no such directory")
        if not self.is_run():
            raise UsageError(f"run {str(self.path)!r}: expected a run directory with config.json, found none")
        return self

    def load_config(self) -> RunConfig:
        return RunConfig.load(self.config)

    def load_vocab(self) -> Vocab:
        return Vocab.load(self.vocab)

    def checkpoint(self, which: str = "best") -> Path:
        """Resolves `best`, `latest` or an explicit file to a checkpoint path.

        Raises:
            UsageError: a legacy `.h5` file, or no such checkpoint.
        """
        path = {"best": self.best, "latest": self.latest}.get(which, Path(which))
        if which == "best" and not path.exists():
            path = self.latest
        check_keras_file(path)
        problem = checkpoint_problem(path)
        if problem:
            raise CheckpointError(f"checkpoint {str(path)!r}: damaged, {problem}")
        return path

    def recorded_checksums(self) -> dict[str, list[str]]:
        """The accepted sha256 hashes per checkpoint name; empty for runs older than the ledger."""
        try:
            files = json.loads(self.checksums.read_text(encoding="utf-8")).get("files", {})
        except (OSError, ValueError, AttributeError):
            return {}
        return {name: list(hashes) for name, hashes in files.items() if isinstance(hashes, list)} if isinstance(files, dict) else {}

    def record_checksum(self, name: str, sha256: str, replacing: bool) -> None:
        """Records `sha256` for the file `name`: beside its current hashes while `replacing`, else alone."""
        files = self.recorded_checksums()
        hashes = [*files.get(name, []), sha256] if replacing else [sha256]
        files[name] = list(dict.fromkeys(hashes))[-MAX_ACCEPTED_HASHES:]
        atomic_write_text(self.checksums, json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")

    def read_history(self) -> list[dict]:
        if not self.history.exists():
            return []
        with open(self.history, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def write_history(self, rows: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.history, buffer.getvalue())


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
    run = RunDir(path.parent)
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
                _keep_as_previous(run, path, old_sha256)
        written.append(sha256_file(tmp))
        run.record_checksum(path.name, written[0], replacing=True)

    with atomic_path(path, suffix=".keras", verify=verify_then_accept) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(TRAINING_STATE, json.dumps(training_state, indent=1))
            archive.writestr(RUNTIME_STATE, arrays.getvalue())
    run.record_checksum(path.name, written[0], replacing=False)
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
    if known and known[:3] == (stat.st_ino, stat.st_size, stat.st_mtime_ns) and known[3] in RunDir(path.parent).recorded_checksums().get(path.name, []):
        return known[3]
    problem, sha256 = _inspect(path)
    return None if problem else sha256 or sha256_file(path)


def _keep_as_previous(run: RunDir, latest: Path, sha256: str) -> None:
    """Makes `previous.keras` a copy of `latest` (a hard link where the filesystem allows)."""
    with atomic_path(run.previous, suffix=".keras",
                     verify=lambda _: run.record_checksum(run.previous.name, sha256, replacing=True)) as tmp:
        try:
            tmp.unlink()
            os.link(latest, tmp)
        except OSError:
            shutil.copyfile(latest, tmp)
    run.record_checksum(run.previous.name, sha256, replacing=False)


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
    recorded = RunDir(path.parent).recorded_checksums().get(path.name)
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


def resume_point(run: RunDir) -> tuple[Path | None, list[str]]:
    """The newest intact checkpoint of `run` to resume from, and why each damaged one was passed over.

    Returns:
        (path, skipped): `path` is None when no checkpoint exists or none is intact;
        `skipped` names each damaged file with its problem.
    """
    skipped, intact = [], []
    for rank, path in enumerate((run.latest, run.previous, run.best)):
        if not path.exists():
            continue
        problem = checkpoint_problem(path)
        if problem:
            skipped.append(f"{path.name} ({problem})")
            continue
        with contextlib.suppress(CheckpointError):
            intact.append((-int(read_training_state(path).get("global_step", 0)), rank, path))
    return (min(intact)[2] if intact else None), skipped


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
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise CheckpointError(f"checkpoint {str(path)!r}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    set_runtime_state(model, read_runtime_state(path))
    return model


def load_weights_into(model, path: Path) -> None:
    """Loads a checkpoint's weights into a model built at another batch size."""
    check_keras_file(path)
    try:
        model.load_weights(path)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: weights do not load ({type(exc).__name__}: {exc})") from None


def run_summary(run: RunDir) -> dict:
    """Everything `generate info` shows, read without TensorFlow."""
    cfg = run.load_config()
    vocab = run.load_vocab()
    summary = {
        "run": str(run.path),
        "model": cfg.model.__dict__,
        "train": cfg.train.__dict__,
        "corpus": {**cfg.corpus.__dict__, "sha256": cfg.corpus_sha256, "chars": cfg.corpus_chars,
                   "train_chars": cfg.train_chars, "val_chars": cfg.val_chars},
        "vocab_size": len(vocab),
        "versions": cfg.versions,
        "created": cfg.created,
        "checkpoints": {},
    }
    for name, path in (("latest", run.latest), ("previous", run.previous), ("best", run.best)):
        if path.exists():
            entry = {"path": str(path), "bytes": path.stat().st_size, "intact": True}
            problem = checkpoint_problem(path)
            if problem:
                entry.update(intact=False, error=f"DAMAGED: {problem}")
            else:
                state = read_training_state(path)
                entry.update({k: state.get(k) for k in ("epoch", "step", "global_step", "val_loss", "best_val_loss", "finished", "saved_at")})
            summary["checkpoints"][name] = entry
    history = run.read_history()
    summary["history"] = history[-5:]
    return summary


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
    run, written = RunDir(path.parent), []

    def accept(tmp: Path) -> None:
        written.append(sha256_file(tmp))
        run.record_checksum(path.name, written[0], replacing=True)

    with atomic_path(path, suffix=".keras", verify=accept) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    run.record_checksum(path.name, written[0], replacing=False)


def resolve_run(name_or_path: str | Path) -> RunDir:
    """A run directory by path, or a shipped model by name (e.g. `shakespeare`).

    Raises:
        UsageError: neither a run directory nor a shipped model name.
    """
    path = Path(name_or_path)
    if path.exists() or "/" in str(name_or_path) or str(name_or_path).startswith("."):
        return RunDir(path).require()
    shipped = RunDir(shipped_checkpoints_dir() / str(name_or_path))
    if shipped.is_run():
        return shipped
    names = [run.path.name for run in shipped_runs()]
    raise UsageError(
        f"run {str(name_or_path)!r}: no such directory or shipped model; expected a run path"
        + (f" or one of: {', '.join(names)}" if names else "")
    )


def shipped_runs() -> list[RunDir]:
    """The shipped models, by name."""
    return [RunDir(p.parent) for p in sorted(shipped_checkpoints_dir().glob("*/config.json"))]


@dataclass(frozen=True)
class RunListing:
    """One line of `generate list`."""

    path: Path
    shipped: bool
    kind: str = ""
    model: str = ""  # e.g. "lstm 2x256"
    epoch: int = 0  # epochs done (latest checkpoint)
    epochs: int = 0  # epochs asked for
    best_val_loss: float | None = None
    error: str = ""  # why the run could not be read


def list_runs(directory: Path, depth: int = 3) -> list[RunListing]:
    """The shipped models, then the runs up to `depth` levels under `directory`, from JSON and zip metadata."""
    shipped = shipped_runs()
    listings = []
    for run in shipped:
        cfg = run.load_config()
        state = read_training_state(run.best)
        listings.append(RunListing(run.path, True, cfg.corpus.kind, f"{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}",
                                   best_val_loss=state.get("best_val_loss")))
    patterns = ["*/" * level + "config.json" for level in range(depth + 1)]
    found = sorted({p.parent for pattern in patterns for p in Path(directory).glob(pattern)} - {r.path for r in shipped})
    for path in found:
        run = RunDir(path)
        try:
            cfg = run.load_config()
            state = read_training_state(run.latest) if run.latest.exists() else {}
        except GenerateError as exc:
            listings.append(RunListing(path, False, error=str(exc)))
            continue
        listings.append(RunListing(path, False, cfg.corpus.kind, f"{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}",
                                   state.get("epoch", 0), cfg.train.epochs, state.get("best_val_loss")))
    return listings
