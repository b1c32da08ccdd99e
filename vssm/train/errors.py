"""The two ways a training or evaluation run ends early, as the command-line tools report them."""
from __future__ import annotations

__all__ = ["TrainingError", "UsageError"]


class UsageError(Exception):
    """Bad input from the user. ``run_cli`` prints the message as one line and exits with status 2."""


class TrainingError(Exception):
    """A run that cannot go on (e.g. the loss became NaN). ``run_cli`` prints one line and exits with status 1."""
