"""What many tests share: a tiny corpus, tiny model options, and the one-line-error check."""

from __future__ import annotations

import numpy as np

# A few kilobytes of verse: enough for batches of 4 x 16 and a validation tail.
VERSE = (
    "Shall I compare thee to a summer's day?\n"
    "Thou art more lovely and more temperate:\n"
    "Rough winds do shake the darling buds of May,\n"
    "And summer's lease hath all too short a date.\n\n"
) * 40

TINY_MODEL = ["--layers", "2", "--units", "16", "--embedding-dim", "8", "--batch-size", "4", "--seq-len", "16"]


def train_code_run(base, modules: list[str], epochs: int, *options: str):
    """Trains a 1 x 32 code run on `modules` (written as src/m0.py, ...) into base/run; returns the run's path."""
    from click.testing import CliRunner

    from generate.cli import cli

    tree = base / "src"
    tree.mkdir()
    for i, text in enumerate(modules):
        (tree / f"m{i}.py").write_text(text)
    result = CliRunner().invoke(cli, ["train", str(base / "run"), str(tree), "--kind", "code", "--layers", "1",
                                      "--units", "32", "--batch-size", "4", "--seq-len", "32", "--epochs", str(epochs),
                                      *options])
    assert result.exit_code == 0, result.stderr
    return base / "run"


def one_line_error(result, code: int, *needles: str) -> str:
    """Asserts a CLI result failed with exit `code` and one `Error: ` line holding every needle, and nothing on stdout.

    Returns:
        The error line.
    """
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def perturbed_model(cfg, batch: int, seed: int = 0):
    """A model from the builder with every weight moved off its initial value, so comparisons mean something."""
    from generate.model.backend import import_keras
    from generate.model.builder import build_model

    import_keras().utils.set_random_seed(seed)
    model = build_model(cfg, batch)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # non-zero biases make the comparisons meaningful
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + rng.normal(0, 0.2, w.shape).astype(w.dtype) for w in weights])
    return model
