"""The `generate` command line: one module per command group, each a thin layer over the library.

Each command parses its options, builds the library's options, calls one
library function and echoes the result. Heavy modules (NumPy, Keras,
TensorFlow) are imported inside commands, so `generate --help` stays instant.
"""

from __future__ import annotations

from .base import cli, logging_options
from .corpus import corpus_group
from .evaluate import evaluate
from .jobs import run_command, runs_group
from .sample import render, sample
from .score import score
from .serve import serve
from .train import export, info, list_runs, train
from .write import write


def _with_logging_options(command):
    for sub in getattr(command, "commands", {}).values():
        _with_logging_options(sub)
    return logging_options(command)


for command in (train, sample, write, render, score, evaluate, info, list_runs, export, serve, corpus_group, run_command, runs_group):
    cli.add_command(_with_logging_options(command))


def main() -> None:
    cli(prog_name="generate")


__all__ = ["cli", "main"]
