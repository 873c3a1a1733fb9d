"""What the serving tests share: the tiny trained run exported as a bundle named `verse`, once per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bundle(trained_run, tmp_path_factory):
    from generate.model.export import export_bundle
    from generate.model.rundir import RunDir

    dest = tmp_path_factory.mktemp("served") / "verse"
    export_bundle(RunDir(trained_run), dest)
    return dest
