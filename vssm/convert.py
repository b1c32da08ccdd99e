"""Temporary re-exports while the callers move to :mod:`vssm.checkpoint` (removed in the same change)."""
from .checkpoint import CheckpointError as CheckpointMismatchError  # noqa: F401
from .checkpoint import check_state_dict, read_checkpoint, rename_keys, reshape_like, unwrap_state_dict  # noqa: F401

load_checkpoint_file = read_checkpoint
