"""Writes each shipped model's bundle (`model.onnx` and `meta.json`) beside its `best.keras`.

    python checkpoints/make_bundles.py checkpoints/*/

The light install (no TensorFlow) samples the shipped models from these
bundles, and so does every install by default. Each is exported as
`generate export NAME DEST --format onnx --float16` exports it (the shipped
weights are float16 already, so nothing is rounded), checked against Keras
on the way; the config, vocabulary and sampling files the bundle's
`meta.json` lists are the folder's own. Run it again after retraining a
shipped model.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from generate.model.bundle import META_FILE, MODEL_FILE, verify_bundle
from generate.model.export import export_bundle
from generate.model.rundir import RunDir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="shipped models' folders, e.g. checkpoints/tang")
    args = parser.parse_args()
    for folder in args.runs:
        run = RunDir(folder)
        if not run.best.is_file():
            continue
        with tempfile.TemporaryDirectory() as scratch:
            exported = Path(scratch) / "bundle"
            export_bundle(run, exported, "best", "onnx", float16=True)
            for name in (MODEL_FILE, META_FILE):
                shutil.copyfile(exported / name, run.path / name)
        verify_bundle(run.path)  # the folder's own config and vocabulary are the ones the bundle lists
        print(run.path / MODEL_FILE, f"{(run.path / MODEL_FILE).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
