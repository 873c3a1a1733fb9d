"""A run's loss curve as a PNG: training and validation bits per character against steps.

Read from `history.csv` alone, so plotting never imports TensorFlow; a
training run that is still going can be plotted as it goes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..fileio import atomic_path, check_writable_location
from ..model.rundir import RunDir

TRAIN_COLOUR, VAL_COLOUR = "#1f6fb2", "#c2410c"


def plot_history(run: RunDir, path: Path, overwrite: bool = False) -> int:
    """Draws `run`'s training and validation curves into `path`; returns how many history rows it drew.

    Raises:
        UsageError: `path` is not a `.png`, exists (without `overwrite`) or cannot be written, or the
            run has no history yet (nothing was validated).
    """
    if Path(path).suffix.lower() != ".png":
        raise UsageError(f"--plot: expected a .png path, received {str(path)!r}")
    check_writable_location(path, "--plot")
    if path.exists() and not overwrite:
        raise UsageError(f"--plot {str(path)!r} already exists: expected a new path (use --overwrite to replace)")
    rows = run.read_history() if run.history.exists() else []
    if not rows:
        raise UsageError(f"--plot: run {str(run.path)!r} has no history yet: it records a row at each validation "
                         "(each epoch's end, or every --val-every steps)")
    import matplotlib  # seconds to import: only the plot needs it

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # (the same)

    steps = [int(r["global_step"]) for r in rows]
    train = [float(r["train_bpc"]) for r in rows]
    validated = [(int(r["global_step"]), float(r["val_bpc"])) for r in rows if r.get("val_bpc")]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot(steps, train, marker="o", markersize=3, color=TRAIN_COLOUR, label="training")
    if validated:
        best = min(bpc for _, bpc in validated)
        axes.plot(*zip(*validated), marker="o", markersize=3, color=VAL_COLOUR, label=f"validation (best {best:.3f})")
    for row in rows:
        if row.get("step") in ("0", 0):  # an epoch's end
            axes.axvline(int(row["global_step"]), color="#dddddd", linewidth=0.8, zorder=0)
    axes.set_xlabel("training steps (grey lines: epoch ends)")
    axes.set_ylabel("bits per character")
    axes.set_title(f"{run.path.name}: loss by step", fontsize=10)
    axes.legend(frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return len(rows)
