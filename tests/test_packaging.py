"""What a wheel carries: every subpackage, the shipped models and the corpus registry."""

from __future__ import annotations

import configparser
import fnmatch
import os
from pathlib import Path

import generate
from generate.paths import corpora_dir, shipped_checkpoints_dir

REPO = Path(__file__).resolve().parents[1]
SETUP = configparser.ConfigParser()
SETUP.read(REPO / "setup.cfg")
MAPPED = {"generate.checkpoints": "checkpoints", "generate.corpora": "corpora"}  # top-level folders the wheel carries


def test_setup_cfg_lists_every_subpackage_and_maps_the_shipped_folders():
    listed = set(SETUP["options"]["packages"].split())
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "generate").rglob("__init__.py")}
    assert listed == on_disk | set(MAPPED), listed ^ (on_disk | set(MAPPED))
    mapping = dict(line.split(" = ") for line in SETUP["options"]["package_dir"].strip().splitlines())
    assert mapping == MAPPED


def test_package_data_covers_every_shipped_file():
    patterns = {package: [p.strip() for p in value.split(",")] for package, value in SETUP["options.package_data"].items()}
    for package, folder in MAPPED.items():
        files = [p.relative_to(REPO / folder).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()
                 and p.suffix != ".py" and "__pycache__" not in p.parts]
        missed = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns[package])]
        assert files and not missed, (package, missed)


def test_shipped_models_and_registry_are_found_where_the_package_is():
    assert (shipped_checkpoints_dir() / "shakespeare" / "best.keras").is_file()
    assert (corpora_dir() / "registry.toml").is_file()
    if os.environ.get("GENERATE_EXPECT_INSTALLED") == "1":  # set by .ci/run, which tests an installed wheel
        package = Path(generate.__file__).resolve().parent
        assert "site-packages" in package.parts, package
        assert shipped_checkpoints_dir().parent == package and corpora_dir().parent == package
