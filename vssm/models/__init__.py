"""Model families; importing this package registers every model with timm."""
from .vmamba import VMamba, VMambaStage

__all__ = ["VMamba", "VMambaStage"]
