"""Shared by the reliability tests: the long-run switch, the tally of outcomes printed at the end, and the checks
that an error is a clear one.

A case ends in one of two outcomes, and the tally counts them per entry point:

* ``clear error``: an exception of an expected type whose message names the argument, the value and what is
  allowed (the needles of the case), or for a command-line tool one line on stderr and a non-zero exit status;
* ``correct result``: a result checked against a reference (the oracle, a clean run, a contiguous input...).

Anything else (a crash inside a kernel, a traceback from a tool, a result that differs) fails the test.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Callable, Iterable

import pytest

# VSSM_FULL_RELIABILITY=1: the long counts (kill/resume cycles, training steps, hypothesis examples).
FULL = os.environ.get("VSSM_FULL_RELIABILITY", "") not in ("", "0")

ERROR, RESULT = "clear error", "correct result"
TALLY: dict[str, dict[str, int]] = defaultdict(lambda: {ERROR: 0, RESULT: 0})
FIGURES: dict[str, Any] = {}


def record(entry: str, outcome: str, n: int = 1) -> None:
    TALLY[entry][outcome] += n


def expect_error(entry: str, fn: Callable[[], Any], exc: type | tuple[type, ...], needles: Iterable[str]) -> str:
    """Runs ``fn``; it must raise ``exc`` with every needle in its message. Counts a clear error."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg.strip(), f"a multi-line message: {msg!r}"
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    record(entry, ERROR)
    return msg
