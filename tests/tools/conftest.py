"""Fixtures of the tests/tools tests, which run tools/train.py and tools/validate.py as real subprocesses.

Every run shares one shapes cache (``$VSSM_DATA`` in a session temp folder), so a data set is drawn once per
session and ``~/.cache`` is never touched.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from toolrun import LEARN, TRAIN, run_tool


@pytest.fixture(scope="session")
def tool_env(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env["VSSM_DATA"] = str(tmp_path_factory.mktemp("shapes-cache"))
    env["PYTHONUNBUFFERED"] = "1"
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="session")
def trained_run(tool_env, tmp_path_factory) -> Path:
    """One finished shortened default run, shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("runs")
    proc = run_tool(TRAIN, [*LEARN, "--output", str(out), "--experiment", "base"], tool_env, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out / "base" / "stdout.txt").write_text(proc.stdout)
    return out / "base"
