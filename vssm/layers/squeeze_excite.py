"""Channels-last squeeze-excitation in MSVMamba's layout."""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["SqueezeExciteCl"]


class SqueezeExciteCl(nn.Module):
    """Squeeze-excitation with linear layers without bias (``fc.0``, ReLU, ``fc.2``, sigmoid), channels-last.

    The layout of MSVMamba's checkpoints. timm has no equivalent with these keys: ``timm.layers.SEModule`` (alias
    ``SqueezeExcite``) and timm's EfficientNet ``SqueezeExcite`` are NCHW 1x1 convs (``fc1`` / ``fc2`` resp.
    ``conv_reduce`` / ``conv_expand``, with bias); the channels-last ``timm.layers.squeeze_excite.SqueezeExciteCl``
    names its layers ``fc1`` / ``fc2`` (not exported from ``timm.layers``) and rounds the reduced width with
    ``make_divisible`` unless given. The NCHW EfficientVMamba SE is timm's EfficientNet one.
    """

    def __init__(
            self,
            dim: int,
            reduction: int = 8,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: Channels (last dim).
            reduction: The hidden width is ``dim // reduction``.
            device: Parameter device.
            dtype: Parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.fc = nn.Sequential(
            nn.Linear(dim, dim // reduction, bias=False, **dd), nn.ReLU(inplace=True),
            nn.Linear(dim // reduction, dim, bias=False, **dd), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((1, 2), keepdim=True))
