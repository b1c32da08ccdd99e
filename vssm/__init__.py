"""vssm: vision state-space backbones. Importing it registers every model with timm."""
__version__ = "0.1.0"

from . import models  # noqa: E402,F401  (registers the models with timm)
