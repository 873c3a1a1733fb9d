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

A bundle reads only its own listed files: a listed file that is a symbolic
link, or resolves outside the folder, is refused whatever its content, and
onnxruntime is handed the graph's verified bytes (never its path), so no
external data that `meta.json` does not list can load, on any onnxruntime
version. The graph's inputs and outputs are checked against `meta.json`
before anything is allocated from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, UsageError
from ..fileio import sha256_bytes, sha256_file
from .backend.onnxruntime_step import OnnxStepNetwork

BUNDLE_FORMAT = "generate-step-onnx"  # what `generate` samples; the others are for other runtimes
BUNDLE_FORMATS = {"onnx": BUNDLE_FORMAT, "savedmodel": "generate-step-savedmodel", "litert": "generate-step-litert"}
BUNDLE_VERSION = 1
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
MAX_STATE_UNITS = 16_384  # far beyond any model this package trains: a larger claim is a damaged or forged meta.json
MAX_VOCAB_SIZE = 131_072
MAX_LAYERS = 64


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
    if (directory / META_FILE).is_symlink():
        raise CheckpointError(f"{directory / META_FILE}: a symbolic link; expected the bundle's own file")
    for name, expected in meta["files"].items():
        path = directory / name
        if not isinstance(name, str) or not isinstance(expected, str) or Path(name).is_absolute() or ".." in Path(name).parts:
            raise CheckpointError(f"{directory / META_FILE}: lists {name!r}, expected a file inside the bundle")
        if path.is_symlink() or (path.exists() and not path.resolve().is_relative_to(directory)):
            raise CheckpointError(f"{path}: a symbolic link or a file outside the bundle; expected the bundle's own file")
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
    meta_path = Path(directory) / META_FILE
    try:
        architecture, graph = meta["architecture"], meta["graph"]
        inputs = list(graph["inputs"])
        shape = (str(architecture["cell"]), int(graph["state_units"]), int(architecture["layers"]),
                 [str(name) for name in inputs[1:] if name != "label"], int(architecture["vocab_size"]),
                 int(architecture.get("label_count", 0)))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{meta_path}: expected the architecture and graph of the model ({exc})") from None
    _, units, layers, state_names, vocab_size, labels = shape
    for name, value, most in (("graph.state_units", units, MAX_STATE_UNITS), ("architecture.vocab_size", vocab_size, MAX_VOCAB_SIZE),
                              ("architecture.layers", layers, MAX_LAYERS)):
        if not 1 <= value <= most:
            raise CheckpointError(f"{meta_path}: {name} is {value}; expected 1 to {most}")
    if not 0 <= labels <= MAX_VOCAB_SIZE:
        raise CheckpointError(f"{meta_path}: architecture.label_count is {labels}; expected 0 to {MAX_VOCAB_SIZE}")
    # The bytes that were hashed are the bytes that load: onnxruntime gets no path to resolve anything beside them.
    graph_bytes = path.read_bytes()
    if sha256_bytes(graph_bytes) != meta["files"][str(meta.get("model_file", MODEL_FILE))]:
        raise CheckpointError(f"{path}: changed while it was read; its sha256 differs from the one meta.json records")
    try:
        network = OnnxStepNetwork(graph_bytes, *shape)
    except ImportError:
        raise UsageError(f"{path}: a bundle runs on onnxruntime, which is not installed (pip install onnxruntime)") from None
    except Exception as exc:  # onnxruntime's own exception types are not importable without it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: onnxruntime cannot load it ({first})") from None
    problem = network.mismatch(inputs)
    if problem:
        raise CheckpointError(f"{meta_path}: does not describe {path.name}: {problem}")
    return network
