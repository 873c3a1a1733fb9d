"""Dataclass configs for a run, and their JSON form in `config.json`.

A run directory's `config.json` holds the resolved `RunConfig`: everything
needed to rebuild the model and continue training, plus the corpus hash and
library versions, so `generate info` can describe a run without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckpointError, UsageError

CELLS = ("lstm", "gru", "rnn")
KINDS = ("text", "code", "music")
OOV_POLICIES = ("error", "drop", "unk")  # characters outside a vocabulary: fail, drop them, or map to unknown
ENCODING_ERRORS = ("strict", "replace", "ignore", "skip")
# Training arithmetic: float32, or Keras mixed precision (float32 weights, 16-bit math).
# "mixed" picks float16 on a GPU (cuDNN's fast path, with loss scaling) and bfloat16 on a CPU.
PRECISIONS = ("float32", "mixed", "mixed-float16", "mixed-bfloat16")


@dataclass
class ModelConfig:
    cell: str = "lstm"  # recurrent cell: lstm, gru or rnn (Keras SimpleRNN)
    layers: int = 2  # number of stacked recurrent layers
    units: int = 256  # hidden units in every recurrent layer
    embedding_dim: int = 64  # size of the learned character embedding
    dropout: float = 0.0  # dropout on each recurrent layer's input and on the last output
    recurrent_dropout: float = 0.0  # dropout on the recurrent state; disables cuDNN on GPUs
    residual: bool = False  # add a layer's input to its output where the widths match
    vocab_size: int = 0  # set from the vocabulary when the run is created

    def validate(self) -> None:
        _expect(self.cell in CELLS, "cell", f"one of {', '.join(CELLS)}", self.cell)
        _expect(self.layers >= 1, "layers", "an integer >= 1", self.layers)
        _expect(self.units >= 1, "units", "an integer >= 1", self.units)
        _expect(self.embedding_dim >= 1, "embedding-dim", "an integer >= 1", self.embedding_dim)
        _expect(0.0 <= self.dropout < 1.0, "dropout", "a number in [0, 1)", self.dropout)
        _expect(
            0.0 <= self.recurrent_dropout < 1.0,
            "recurrent-dropout",
            "a number in [0, 1)",
            self.recurrent_dropout,
        )


@dataclass
class TrainConfig:
    batch_size: int = 64  # B: parallel contiguous streams per batch
    seq_len: int = 100  # T: time steps per batch (truncated BPTT length)
    epochs: int = 10  # maximum passes over the training split
    learning_rate: float = 4e-3  # Adam's initial rate; beat 2e-3 and 6e-3 on 3-minute CPU runs
    lr_decay: float = 0.95  # learning rate multiplier applied after every epoch
    clip_norm: float = 5.0  # global gradient norm clip; 0 disables clipping
    val_fraction: float = 0.1  # held-out tail of the corpus used for validation
    patience: int = 3  # epochs without val improvement before stopping early; 0 disables
    seed: int = 0  # seeds weights, dropout and previews; recorded for repeatability
    checkpoint_every: int = 200  # steps between periodic `latest.keras` saves
    checkpoint_seconds: float = 120.0  # also save `latest.keras` when this much time passed
    preview_every: int = 0  # steps between sample previews on stderr; 0 disables
    max_minutes: float = 0.0  # stop (resumably) after this much training time; 0 = no limit
    precision: str = "float32"  # training arithmetic, one of PRECISIONS; validation always runs in float32

    def validate(self) -> None:
        _expect(self.batch_size >= 1, "batch-size", "an integer >= 1", self.batch_size)
        _expect(self.seq_len >= 1, "seq-len", "an integer >= 1", self.seq_len)
        _expect(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _expect(self.learning_rate > 0, "learning-rate", "a number > 0", self.learning_rate)
        _expect(0 < self.lr_decay <= 1, "lr-decay", "a number in (0, 1]", self.lr_decay)
        _expect(self.clip_norm >= 0, "clip-norm", "a number >= 0", self.clip_norm)
        _expect(0 <= self.val_fraction < 1, "val-fraction", "a number in [0, 1)", self.val_fraction)
        _expect(self.patience >= 0, "patience", "an integer >= 0", self.patience)
        _expect(self.checkpoint_every >= 1, "checkpoint-every", "an integer >= 1", self.checkpoint_every)
        _expect(self.preview_every >= 0, "preview-every", "an integer >= 0", self.preview_every)
        _expect(self.max_minutes >= 0, "max-minutes", "a number >= 0", self.max_minutes)
        _expect(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)


@dataclass
class CorpusConfig:
    sources: list[str] = field(default_factory=list)  # files, directories or glob patterns
    kind: str = "text"  # text, code (walks trees, marks file boundaries) or music (parsed by music21)
    encoding: str = "melody"  # how music is written as text (music only)
    transpose: str = "none"  # music augmentation: none, common (to C/Am) or all (every key in range)
    include: list[str] = field(default_factory=list)  # glob patterns a file name must match (code)
    exclude: list[str] = field(default_factory=list)  # extra glob patterns to skip
    encoding_errors: str = "strict"  # strict, replace, ignore or skip (the whole file)
    min_count: int = 1  # characters seen fewer times map to the unknown token

    def validate(self) -> None:
        _expect(self.kind in KINDS, "kind", f"one of {', '.join(KINDS)}", self.kind)
        _expect(
            self.encoding_errors in ENCODING_ERRORS,
            "encoding-errors",
            f"one of {', '.join(ENCODING_ERRORS)}",
            self.encoding_errors,
        )
        _expect(self.min_count >= 1, "min-count", "an integer >= 1", self.min_count)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    corpus_sha256: str = ""  # content hash of the raw sources; resume refuses another corpus
    vocab_sha256: str = ""  # hash of vocab.json; resume refuses another vocabulary
    corpus_chars: int = 0  # characters after normalisation
    train_chars: int = 0  # characters in the training split
    val_chars: int = 0  # characters in the validation tail
    versions: dict[str, str] = field(default_factory=dict)  # library versions that trained it
    created: str = ""  # ISO time the run was created

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        try:
            top = {k: v for k, v in data.items() if k not in ("model", "train", "corpus")}
            return cls(
                model=ModelConfig(**data.get("model", {})),
                train=TrainConfig(**data.get("train", {})),
                corpus=CorpusConfig(**data.get("corpus", {})),
                **top,
            )
        except TypeError as exc:
            raise CheckpointError(f"config.json: unexpected field ({exc})") from None

    def save(self, path: Path) -> None:
        from .fileio import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; expected a run directory made by 'generate train'") from None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable config ({exc})") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object, received {type(data).__name__}")
        return cls.from_dict(data)


def _expect(ok: bool, option: str, expected: str, received: Any) -> None:
    if not ok:
        raise UsageError(f"--{option}: expected {expected}, received {received!r}")
