"""The reliability suite: bad inputs at every public entry point, checkpoint safety, kill -9 / resume, autocast.

Its figures (cases per entry point and how they ended, kill/resume cycles survived, autocast training steps per
family) are printed at the end of the run. ``VSSM_FULL_RELIABILITY=1`` runs the long counts.
"""
from __future__ import annotations

import os

import pytest
from rel_support import ERROR, FIGURES, FULL, RESULT, TALLY


@pytest.fixture(scope="session")
def tool_env(tmp_path_factory) -> dict[str, str]:
    """Environment of the tool subprocesses: one shapes cache per session, one thread, no torchrun variables."""
    env = dict(os.environ)
    env["VSSM_DATA"] = str(tmp_path_factory.mktemp("shapes-cache"))
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY and not FIGURES:
        return
    tr = terminalreporter
    tr.section(f"reliability figures ({'full' if FULL else 'CI'} counts; VSSM_FULL_RELIABILITY=1 for the full ones)")
    if TALLY:
        width = max(len(k) for k in TALLY) + 2
        tr.write_line(f"{'entry point':<{width}}{'cases':>7}{'clear error':>13}{'correct result':>16}")
        total = {ERROR: 0, RESULT: 0}
        for entry in sorted(TALLY):
            counts = TALLY[entry]
            for k in total:
                total[k] += counts[k]
            tr.write_line(f"{entry:<{width}}{counts[ERROR] + counts[RESULT]:>7}{counts[ERROR]:>13}{counts[RESULT]:>16}")
        tr.write_line(f"{'all':<{width}}{total[ERROR] + total[RESULT]:>7}{total[ERROR]:>13}{total[RESULT]:>16}")
        tr.write_line("crashes and silent wrong results fail their test: see the test outcome counts above")
    for key in sorted(FIGURES):
        tr.write_line(f"{key}: {FIGURES[key]}")
