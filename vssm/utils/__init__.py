"""Small helpers shared by the tools: checkpoint I/O."""
from .checkpoint import CheckpointError, get_rng_state, load_safe, save_atomic, set_rng_state, to_primitive

__all__ = ["CheckpointError", "get_rng_state", "load_safe", "save_atomic", "set_rng_state", "to_primitive"]
