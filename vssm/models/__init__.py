"""Model families; importing this package registers every model with timm."""
from .mlla import MLLA  # noqa: F401
from .vmamba import VMamba, VMambaStage

__all__ = ["VMamba", "VMambaStage"]
