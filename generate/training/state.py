"""`TrainingState`: where a run stands, as a checkpoint records it and `--resume` continues from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields


@dataclass
class TrainingState:
    """What `training_state.json` inside a checkpoint holds; `generate info` reads the same keys as JSON."""

    epoch: int = 0  # epochs finished
    step: int = 0  # steps done in the epoch under way
    global_step: int = 0  # steps done in all
    best_val_loss: float | None = None  # the lowest validation loss (the training loss for a run with no validation split)
    val_loss: float | None = None  # the last validation loss; None before the first, and always without a validation split
    bad_validations: int = 0  # validations in a row without a new best, for --patience
    train_loss_sum: float = 0.0  # the epoch's training losses so far, summed...
    train_loss_count: int = 0  # ...over this many steps
    elapsed_s: float = 0.0  # training time, across pauses
    seed: int = 0
    finished: bool = False  # every epoch done, or stopped early
    replicas: int = 1  # devices the last steps ran on
    others: dict = field(default_factory=dict)  # keys this version does not use (an export's), kept as written

    @classmethod
    def from_record(cls, record: dict) -> TrainingState:
        known = {f.name for f in fields(cls)} - {"others"}
        return cls(**{k: v for k, v in record.items() if k in known},
                   others={k: v for k, v in record.items() if k not in known and k != "saved_at"})

    def record(self) -> dict:
        """The JSON a checkpoint stores, stamped with the time."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "others"}
        return {**self.others, **data, "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    @property
    def train_loss(self) -> float:
        """The mean training loss of the epoch so far."""
        return self.train_loss_sum / max(self.train_loss_count, 1)

    def start_epoch(self) -> None:
        self.train_loss_sum, self.train_loss_count = 0.0, 0

    def count_step(self, loss: float, elapsed_s: float) -> None:
        self.step += 1
        self.global_step += 1
        self.train_loss_sum += loss
        self.train_loss_count += 1
        self.elapsed_s = elapsed_s

    def end_epoch(self) -> None:
        self.epoch += 1
        self.step = 0
