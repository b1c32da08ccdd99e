"""Temporary re-exports while the callers move to :mod:`vssm.checkpoint` (removed in the same change)."""
from ..checkpoint import CheckpointError, get_rng_state, read_checkpoint, save_atomic, set_rng_state, to_primitive  # noqa: F401
from ..checkpoint import _check_zip_crc as check_zip_crc  # noqa: F401

load_safe = read_checkpoint
