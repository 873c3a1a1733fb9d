"""Dataclass configs for a run (model, training, corpus), and their JSON form in `config.json`.

Configs are frozen: once checked, a change makes a new one (`dataclasses.replace`).

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

from ..data.config import CorpusConfig
from ..errors import CheckpointError, expect
from ..fileio import atomic_write_text

CELLS = ("lstm", "gru", "rnn")
# Training arithmetic: float32, or Keras mixed precision (float32 weights, 16-bit math).
# "mixed" picks float16 on a GPU (cuDNN's fast path, with loss scaling) and bfloat16 on a CPU.
PRECISIONS = ("float32", "mixed", "mixed-float16", "mixed-bfloat16")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # recurrent cell: lstm, gru or rnn (Keras SimpleRNN)
    layers: int = 2  # number of stacked recurrent layers
    units: int = 256  # hidden units in every recurrent layer
    embedding_dim: int = 64  # size of the learned character embedding
    dropout: float = 0.0  # dropout on each recurrent layer's input and on the last output
    recurrent_dropout: float = 0.0  # dropout on the recurrent state; disables cuDNN on GPUs
    residual: bool = True  # add a layer's input to its output where the widths match; beat plain stacking at equal time
    layer_norm: bool = False  # normalise each recurrent layer's output (after its skip connection) before the next layer and the logits
    tie_embeddings: bool = False  # the output layer reuses the embedding matrix, after a units -> embedding_dim projection
    vocab_size: int = 0  # set from the vocabulary when the run is created
    label_count: int = 0  # style labels, `<none>` included (`data/labels.py`); 0: a model without labels
    label_dim: int = 16  # size of the label embedding joined to each character's, in a labelled model

    def validate(self) -> None:
        expect(self.cell in CELLS, "cell", f"one of {', '.join(CELLS)}", self.cell)
        expect(self.layers >= 1, "layers", "an integer >= 1", self.layers)
        expect(self.units >= 1, "units", "an integer >= 1", self.units)
        expect(self.embedding_dim >= 1, "embedding_dim", "an integer >= 1", self.embedding_dim)
        expect(0.0 <= self.dropout < 1.0, "dropout", "a number in [0, 1)", self.dropout)
        expect(0.0 <= self.recurrent_dropout < 1.0, "recurrent_dropout", "a number in [0, 1)", self.recurrent_dropout)
        expect(self.label_dim >= 1, "label_dim", "an integer >= 1", self.label_dim)

    @property
    def input_width(self) -> int:
        """The first layer's input: the character's embedding, joined by the label's in a labelled model."""
        return self.embedding_dim + (self.label_dim if self.label_count else 0)


# What shapes the weights: a run started from another's weights (--init-from) takes these from it.
ARCHITECTURE_FIELDS = ("cell", "layers", "units", "embedding_dim", "residual", "layer_norm", "tie_embeddings")

AUTO_BATCH_MAX = 64  # B when the corpus is large enough
AUTO_BATCH_STEPS = 150  # steps an epoch should take at least, where a smaller B allows it


def auto_batch_size(train_chars: int, seq_len: int) -> int:
    """The B that `batch_size = 0` stands for: 64 streams, fewer for a small corpus.

    One epoch of a 100 KB corpus at B=64 and T=100 is 14 steps: too few to
    learn anything in the first epoch. Below about 1 MB, B shrinks so that an
    epoch still takes AUTO_BATCH_STEPS steps; from 8 up it stays a multiple of 8,
    which splits evenly over 2, 4 or 8 replicas.
    """
    fit = max(1, min(AUTO_BATCH_MAX, train_chars // (seq_len * AUTO_BATCH_STEPS)))
    return fit // 8 * 8 if fit >= 8 else fit


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 0  # B: parallel contiguous streams per batch; 0 picks B from the corpus (auto_batch_size)
    seq_len: int = 100  # T: time steps per batch (truncated BPTT length)
    epochs: int = 10  # maximum passes over the training split
    learning_rate: float = 4e-3  # Adam's initial rate; beat 2e-3 and 6e-3 on 3-minute CPU runs
    lr_decay: float = 0.95  # learning rate multiplier applied after every epoch
    clip_norm: float = 5.0  # global gradient norm clip; 0 disables clipping
    val_fraction: float = 0.1  # held-out tail of the corpus used for validation
    patience: int = 3  # validations without improvement before stopping early; 0 disables
    val_every: int = 0  # also validate every this many steps, mid-epoch (nanoGPT's eval_interval); 0: at epoch ends only
    seed: int = 0  # seeds weights, dropout and previews; recorded for repeatability
    checkpoint_every: int = 200  # steps between periodic `latest.keras` saves
    checkpoint_seconds: float = 120.0  # also save `latest.keras` when this much time passed
    preview_every: int = 0  # steps between sample previews on stderr; 0 disables
    # A labelled run holds out the same share of every label (new runs); False: the corpus's tail (runs made before).
    val_by_label: bool = False
    preview_chars: int = 120  # a preview of this many characters at each validation (stderr and logs/previews.txt); 0: none
    max_minutes: float = 0.0  # stop (resumably) after this much training time; 0 = no limit
    precision: str = "float32"  # training arithmetic, one of PRECISIONS; validation always runs in float32
    init_from: str = ""  # a run or shipped model whose best weights a new run starts from; "" starts from the seed
    label_dropout: float = 0.15  # labelled runs: the share of batch rows whose labels drop to <none>, so one model also writes without one

    def validate(self) -> None:
        expect(self.batch_size >= 0, "batch_size", "an integer >= 1, or 0 for one picked from the corpus", self.batch_size)
        expect(self.seq_len >= 1, "seq_len", "an integer >= 1", self.seq_len)
        expect(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        expect(self.learning_rate > 0, "learning_rate", "a number > 0", self.learning_rate)
        expect(0 < self.lr_decay <= 1, "lr_decay", "a number in (0, 1]", self.lr_decay)
        expect(self.clip_norm >= 0, "clip_norm", "a number >= 0", self.clip_norm)
        expect(0 <= self.val_fraction < 1, "val_fraction", "a number in [0, 1)", self.val_fraction)
        expect(self.patience >= 0, "patience", "an integer >= 0", self.patience)
        expect(self.checkpoint_every >= 1, "checkpoint_every", "an integer >= 1", self.checkpoint_every)
        expect(self.preview_every >= 0, "preview_every", "an integer >= 0", self.preview_every)
        expect(0 <= self.preview_chars <= 10_000, "preview_chars", "an integer from 0 to 10000", self.preview_chars)
        expect(self.val_every >= 0, "val_every", "an integer >= 0", self.val_every)
        expect(self.max_minutes >= 0, "max_minutes", "a number >= 0", self.max_minutes)
        expect(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        expect(0 <= self.label_dropout < 1, "label_dropout", "a number in [0, 1)", self.label_dropout)


@dataclass(frozen=True)
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
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
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
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; expected a run directory made by 'generate train'") from None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable config ({exc})") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: expected a JSON object, received {type(data).__name__}")
        return cls.from_dict(data)

