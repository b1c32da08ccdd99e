"""Shared set-up of the OpenMMLab tests: the real mmdet / mmseg, a shapes data set in a temporary folder."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("mmdet", reason="the OpenMMLab tests need mmdet (pip install -e '.[mm]')")
pytest.importorskip("mmseg", reason="the OpenMMLab tests need mmsegmentation (pip install -e '.[mm]')")


@pytest.fixture(scope="session", autouse=True)
def shapes_root(tmp_path_factory):
    """The smoke configs generate their data set into $VSSM_SHAPES_ROOT: a temporary folder for the whole session."""
    root = tmp_path_factory.mktemp("shapes") / "scenes"
    old = os.environ.get("VSSM_SHAPES_ROOT")
    os.environ["VSSM_SHAPES_ROOT"] = str(root)
    yield root
    if old is None:
        os.environ.pop("VSSM_SHAPES_ROOT", None)
    else:
        os.environ["VSSM_SHAPES_ROOT"] = old
