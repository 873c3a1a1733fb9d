"""Bundles: a model exported to run anywhere, read and verified without TensorFlow or Keras.

`generate export RUN DEST --format onnx` writes a bundle (`export.py`):

    model.onnx     one step of the network (`onnx_step`): ids and states in, logits and new states out
    meta.json      the format and its version, architecture, graph, source checkpoint, and a sha256 per file
    config.json    the run's config, so options are checked as for the run itself
    vocab.json     the vocabulary
    sampling.json  the run's sampling defaults, pieces.json its pieces' lengths (when it has them)

A bundle is a model everywhere a run is (`rundir.RunDir.is_bundle`): it
samples, scores and writes on onnxruntime. `--format savedmodel` and
`litert` write the same step for TensorFlow's runtimes (`saved_model.pb` or
`model.tflite` in place of `model.onnx`), described and verified alike. Every file is checked against
`meta.json` before a bundle is used; loading runs nothing from it but the
graph's standard ONNX operators.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, UsageError
from ..fileio import sha256_file
from .backend.onnxruntime_step import OnnxStepNetwork

BUNDLE_FORMAT = "generate-step-onnx"  # what `generate` samples; the others are for other runtimes
BUNDLE_FORMATS = {"onnx": BUNDLE_FORMAT, "savedmodel": "generate-step-savedmodel", "litert": "generate-step-litert"}
BUNDLE_VERSION = 1
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"


def read_meta(directory: Path) -> dict:
    """The bundle's `meta.json`, checked to be ours and of a version this package reads.

    Raises:
        CheckpointError: unreadable, not a generate bundle, or from a newer format version.
    """
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the bundle's description ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") not in BUNDLE_FORMATS.values():
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: expected a bundle written by `generate export` (format {BUNDLE_FORMAT!r}), "
                              f"received format {found!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: expected a whole format_version, received {version!r}")
    if version > BUNDLE_VERSION:
        raise CheckpointError(f"{path}: bundle format version {version} is newer than this generate reads "
                              f"({BUNDLE_VERSION}); upgrade generate to use it")
    files = meta.get("files")
    required = (str(meta.get("model_file", MODEL_FILE)), "config.json", "vocab.json")
    if not isinstance(files, dict) or any(name not in files for name in required):
        raise CheckpointError(f"{path}: expected a sha256 for each of {', '.join(required)} under \"files\"")
    return meta


def require_onnx(directory: Path, meta: dict) -> None:
    """Checks that a verified bundle is one `generate` samples: ONNX, not a SavedModel or LiteRT export.

    Raises:
        CheckpointError: another format, named, with what to export instead.
    """
    if meta["format"] != BUNDLE_FORMAT:
        kind = next(k for k, v in BUNDLE_FORMATS.items() if v == meta["format"])
        raise CheckpointError(f"run {str(directory)!r}: a --format {kind} export, for TensorFlow's runtimes; generate "
                              "samples runs and ONNX bundles (generate export RUN DEST)")


_verified: dict[tuple, dict] = {}  # (bundle, each file's size and time) -> its meta: a file hashed once per process


def verify_bundle(directory: Path) -> dict:
    """Checks every file a bundle's `meta.json` lists against its sha256; returns the meta.

    Raises:
        CheckpointError: naming the first file that is missing, damaged or edited.
    """
    directory = Path(directory).resolve()
    key = (directory, *sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir() if p.is_file()))
    if key not in _verified:
        _verified[key] = _verify(directory)
    return _verified[key]


def _verify(directory: Path) -> dict:
    meta = read_meta(directory)
    for name, expected in meta["files"].items():
        path = directory / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise CheckpointError(f"{directory / META_FILE}: lists {name!r}, expected a file inside the bundle")
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from the bundle (meta.json lists it)")
        if sha256_file(path) != expected:
            raise CheckpointError(f"{path}: damaged or edited, its sha256 differs from the one meta.json records")
    return meta


def step_network(directory: Path):
    """The bundle's graph on onnxruntime, ready for the sampler (`backend.onnxruntime_step.OnnxStepNetwork`).

    Its files are verified first (once per process while they are unchanged: `verify_bundle`).

    Raises:
        CheckpointError: a damaged bundle, a graph onnxruntime cannot load, or a meta that does not describe it.
        UsageError: onnxruntime is not installed.
    """
    meta = verify_bundle(directory)
    path = Path(directory) / MODEL_FILE
    try:
        architecture, graph = meta["architecture"], meta["graph"]
        shape = (architecture["cell"], int(graph["state_units"]), int(architecture["layers"]),
                 [name for name in graph["inputs"][1:] if name != "label"], int(architecture["vocab_size"]),
                 int(architecture.get("label_count", 0)))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{Path(directory) / META_FILE}: expected the architecture and graph of the model ({exc})") from None
    try:
        return OnnxStepNetwork(path, *shape)
    except ImportError:
        raise UsageError(f"{path}: a bundle runs on onnxruntime, which is not installed (pip install onnxruntime)") from None
    except Exception as exc:  # onnxruntime's own exception types are not importable without it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: onnxruntime cannot load it ({first})") from None
