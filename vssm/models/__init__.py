"""Model families; importing this package registers every model with timm."""
from .efficient_vmamba import EfficientVMamba  # noqa: F401
from .mambavision import MambaVision  # noqa: F401
from .mlla import MLLA  # noqa: F401
from .mobilemamba import MobileMamba  # noqa: F401
from .msvmamba import MSVMamba  # noqa: F401
from .vim import Vim  # noqa: F401
from .vmamba import VMamba, VMambaStage

__all__ = ["VMamba", "VMambaStage"]
