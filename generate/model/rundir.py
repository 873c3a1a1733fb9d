"""Run directories: their files, finding one by path or shipped name, listing them, and where to resume.

A run directory holds:
    config.json    the resolved RunConfig (model, training, corpus hash, versions)
    vocab.json     the vocabulary, so a run samples without its corpus
    latest.keras   the newest checkpoint, with optimizer state, for --resume
    previous.keras the checkpoint `latest.keras` replaced, kept in case the new one is damaged
    best.keras     the checkpoint with the lowest validation loss so far
    checksums.json the sha256 of each checkpoint as it was written (`checkpoint.py`)
    history.csv    one row per validation: loss in nats and bits per char
    logs/          TensorBoard event files

A bundle (`bundle.py`: `model.onnx`, `meta.json`, config and vocabulary) is
read through the same class: it samples and scores as a run does, on
onnxruntime. A shipped model's directory holds both its `best.keras` and
its bundle.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..data.corpus_lines import read_lines
from ..data.labels import LABEL_FILE, read_labels
from ..data.vocab import Vocab
from ..errors import CheckpointError, CorpusError, GenerateError, UsageError
from ..fileio import atomic_write_text
from ..paths import shipped_checkpoints_dir
from .bundle import META_FILE, MODEL_FILE, read_meta, require_onnx, verify_bundle
from .checkpoint import CHECKSUMS, PREVIOUS, check_keras_file, checkpoint_problem, read_training_state, recorded_checksums
from .config import RunConfig

HISTORY_FIELDS = (
    "epoch", "step", "global_step", "train_loss", "train_bpc",
    "val_loss", "val_bpc", "learning_rate", "elapsed_s", "chars_per_s",
)


class PieceBars(NamedTuple):
    """How many bars a music corpus's pieces run to: its 5th percentile, median and 95th percentile."""

    low: int
    median: int
    high: int


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
        return self.path / PREVIOUS

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

    @property
    def sampling(self) -> Path:
        return self.path / "sampling.json"

    @property
    def pieces(self) -> Path:
        return self.path / "pieces.json"

    @property
    def labels(self) -> Path:
        return self.path / LABEL_FILE

    @property
    def lines(self) -> Path:
        return self.path / "lines.json"

    def corpus_line_hashes(self):
        """Chinese verse: the hashes of the corpus's lines (`data.corpus_lines`), or None when the folder has none.

        Raises:
            CheckpointError: a damaged `lines.json`.
        """
        return read_lines(self.lines)

    @property
    def meta(self) -> Path:
        return self.path / META_FILE

    def label_record(self) -> dict | None:
        """A labelled run's `labels.json` (its labels' names in id order, and what each covers); None without labels.

        Raises:
            CheckpointError: a damaged file, or one that disagrees with the model's label count.
        """
        try:
            record = read_labels(self.labels)
        except CorpusError as exc:
            raise CheckpointError(str(exc)) from None
        expected = self.load_config().model.label_count
        if (record is None and expected) or (record is not None and len(record["names"]) != expected):
            raise CheckpointError(f"{self.labels}: expected the names of the model's {expected} labels, "
                                  f"found {'none' if record is None else len(record['names'])}")
        return record

    def label_names(self) -> tuple[str, ...]:
        """The run's label names in id order (`<none>` first); () for a model without labels."""
        record = self.label_record()
        return tuple(record["names"]) if record else ()

    @property
    def model_onnx(self) -> Path:
        return self.path / MODEL_FILE

    def is_bundle(self) -> bool:
        """Whether this directory holds a bundle (`generate export --format onnx`), verified when it is used."""
        return self.meta.is_file()

    def sampling_model(self, which: str = "best") -> Path:
        """What `generate sample` runs for `which`: a bundle's verified `model.onnx` for `best`, else a checkpoint.

        Raises:
            CheckpointError: a damaged, edited or foreign bundle, named by file.
            UsageError: as `checkpoint`.
        """
        if self.is_bundle() and (which == "best" or Path(which).name == MODEL_FILE):
            require_onnx(self.path, verify_bundle(self.path))
            return self.model_onnx
        return self.checkpoint(which)

    def piece_bars(self) -> PieceBars | None:
        """Music: how many bars the training corpus's pieces run to (`pieces.json`), or None when not recorded.

        Raises:
            UsageError: a file that does not hold `{"bars": [LOW, HIGH], "median": M}` with 1 <= LOW <= M <= HIGH.
        """
        try:
            recorded = json.loads(self.pieces.read_text(encoding="utf-8"))
            (low, high), median = recorded["bars"], recorded["median"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{self.pieces}: expected {{\"bars\": [LOW, HIGH], \"median\": M}} ({exc})") from None
        if not (all(isinstance(n, int) for n in (low, median, high)) and 1 <= low <= median <= high):
            raise UsageError(f"{self.pieces}: expected whole numbers 1 <= LOW <= M <= HIGH, received bars "
                             f"{[low, high]} and median {median}")
        return PieceBars(low, median, high)

    def piece_meters(self) -> dict | None:
        """Music: the meters the training corpus's pieces use, counted (`music.sampling.piece_meters`), or None
        when not recorded (a run trained before meters were).

        Raises:
            UsageError: a `meters` entry that does not hold `{"meters": {METER: PIECES}, "min_pieces": N}`.
        """
        record = self._pieces_entry("meters")
        if record is None:
            return None
        try:
            valid = (all(isinstance(n, int) and n > 0 for n in record["meters"].values()) and record["meters"]
                     and isinstance(record["min_pieces"], int)
                     and all(isinstance(m, dict) for m in record.get("by_label", {}).values()))
        except (KeyError, TypeError, AttributeError):
            valid = False
        if not valid:
            raise UsageError(f"{self.pieces}: meters: expected {{\"meters\": {{METER: PIECES}}, \"min_pieces\": N}}")
        return record

    def _pieces_entry(self, key: str):
        """One entry of `pieces.json`, or None without the file or the entry.

        Raises:
            UsageError: a file that is not a JSON object.
        """
        try:
            return json.loads(self.pieces.read_text(encoding="utf-8")).get(key)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError) as exc:
            raise UsageError(f"{self.pieces}: expected a JSON object ({exc})") from None

    def piece_repeats(self) -> dict | None:
        """Music: how often the training corpus's tunes repeat a part, and how long their parts run
        (`music.sampling.piece_repeats`), or None when not recorded.

        Raises:
            UsageError: a `repeats` entry without shares between 0 and 1.
        """
        record = self._pieces_entry("repeats")
        if record is None:
            return None
        try:
            valid = all(0 <= float(entry[key]) <= 1 and int(entry["pieces"]) >= 0
                        for entry in (record, *record.get("by_label", {}).values()) for key in ("share", "short_share"))
        except (KeyError, TypeError, ValueError, AttributeError):
            valid = False
        if not valid:
            raise UsageError(f"{self.pieces}: repeats: expected {{\"share\": S, \"short_share\": T, \"pieces\": N}} "
                             "with shares between 0 and 1")
        return record

    def sampling_defaults(self) -> dict:
        """The run's own default sampling settings (`sampling.json`, e.g. {"temperature": 0.7}); {} when none.

        Its keys are `generate sample` settings; `resolve.RunFacts.of` checks them against their declarations.

        Raises:
            UsageError: a file that is not a JSON object.
        """
        if not self.sampling.is_file():
            return {}
        try:
            defaults = json.loads(self.sampling.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.sampling}: cannot read the run's sampling defaults ({exc})") from None
        if not isinstance(defaults, dict):
            raise UsageError(f"{self.sampling}: expected a JSON object such as {{\"temperature\": 0.7}}")
        return defaults

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
        if self.path.is_file() and self.path.suffix == ".onnx":
            raise CheckpointError(f"run {str(self.path)!r}: a lone .onnx file; expected a bundle directory that "
                             "`generate export RUN DEST --format onnx` writes (model.onnx, meta.json, config.json, vocab.json)")
        if self.model_onnx.exists() and not self.is_bundle():
            raise CheckpointError(f"run {str(self.path)!r}: holds model.onnx but no meta.json; expected a bundle that "
                                  "`generate export --format onnx` writes")
        if self.is_bundle():
            verify_bundle(self.path)  # before any of its files is read
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
        if not path.exists() and (self.path / which).exists():  # a file named as it sits in the run
            path = self.path / which
        if which == "best" and not path.exists():
            path = self.latest
        if which in ("best", "latest") and not path.exists() and self.is_bundle():
            raise UsageError(f"run {str(self.path)!r}: a bundle, which holds no Keras checkpoint; expected the run it "
                             "was exported from (training, --init-from and export need one)")
        check_keras_file(path)
        problem = checkpoint_problem(path)
        if problem:
            raise CheckpointError(f"checkpoint {str(path)!r}: damaged, {problem}")
        return path

    def recorded_checksums(self) -> dict[str, list[str]]:
        """The accepted sha256 hashes per checkpoint name (`checkpoint.recorded_checksums`)."""
        return recorded_checksums(self.path)

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


def run_summary(run: RunDir) -> dict:
    """Everything `generate info` shows, read without TensorFlow (a bundle's files verified first)."""
    meta = verify_bundle(run.path) if run.is_bundle() else None
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
    summary["sampling_defaults"] = run.sampling_defaults()
    summary["labels"] = run.label_record()
    if meta is not None:
        model_file = str(meta.get("model_file", MODEL_FILE))
        summary["bundle"] = {"format": meta["format"], "format_version": meta["format_version"], "model_file": model_file,
                             "weights_dtype": meta.get("weights_dtype"), "source": meta.get("source"),
                             "version": meta.get("version"), "model_bytes": (run.path / model_file).stat().st_size,
                             "files_verified": sorted(meta["files"]),
                             "self_check": (meta.get("graph") or {}).get("self_check")}
    return summary


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
        return shipped.require()
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
    bundle: str = ""  # an export's format (`onnx`, `savedmodel`, `litert`): a bundle, not a run in training


def list_runs(directory: Path, depth: int = 3) -> list[RunListing]:
    """The shipped models, then the runs up to `depth` levels under `directory`, from JSON and zip metadata."""
    shipped = shipped_runs()
    listings = []
    for run in shipped:
        cfg = run.load_config()
        model = f"{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}"
        if run.best.exists():
            best = read_training_state(run.best).get("best_val_loss")
        else:  # a bundle alone (an int8 model): its validation as its export measured it
            quantization = read_meta(run.path).get("quantization") or {}
            measured = (quantization.get("validation_bpc") or {}).get(quantization.get("weights"))
            best = measured * math.log(2) if isinstance(measured, (int, float)) else None
            model += f" {quantization.get('weights', 'bundle')}"
        listings.append(RunListing(run.path, True, cfg.corpus.kind, model, best_val_loss=best))
    patterns = ["*/" * level + "config.json" for level in range(depth + 1)]
    found = sorted({p.parent for pattern in patterns for p in Path(directory).glob(pattern)} - {r.path for r in shipped})
    for path in found:
        run = RunDir(path)
        try:
            cfg = run.load_config()
            state = read_training_state(run.latest) if run.latest.exists() else {}
            bundle = read_meta(path)["format"].rsplit("-", 1)[-1] if run.is_bundle() else ""
        except GenerateError as exc:
            listings.append(RunListing(path, False, error=str(exc)))
            continue
        if bundle:
            listings.append(RunListing(path, False, cfg.corpus.kind, f"{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}",
                                       bundle=bundle))
            continue
        listings.append(RunListing(path, False, cfg.corpus.kind, f"{cfg.model.cell} {cfg.model.layers}x{cfg.model.units}",
                                   state.get("epoch", 0), cfg.train.epochs, state.get("best_val_loss")))
    return listings
