"""A simple feature pyramid for plain (single-stride) backbones, as ViTDet and BEiT/Vim segmentation build it.

Li et al., 2022, "Exploring Plain Vision Transformer Backbones for Object Detection" (ViTDet) showed that a plain
backbone's single-stride maps feed FPN-style heads well once resampled: 2x2 stride-2 transposed convolutions to go up,
max pooling to go down. Vim's segmentation backbone does the same from four depths of the network. Here level ``i``
takes its own input map (the same map may feed every level) and rescales it by ``scales[i]``.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn
from timm.layers import LayerNorm2d

__all__ = ["SimpleFeaturePyramid"]


def _level(dim: int, scale: float, norm_layer: Callable[..., nn.Module], act_layer: Callable[..., nn.Module],
           dd: dict) -> nn.Module:
    if scale == 1:
        return nn.Identity()
    if scale < 1:
        k = round(1 / scale)
        if not math.isclose(k, 1 / scale) or k & (k - 1):
            raise ValueError(f"SimpleFeaturePyramid: down-scales must be 1/2^n, got {scale}")
        return nn.MaxPool2d(kernel_size=k, stride=k, ceil_mode=True)
    n = round(math.log2(scale))
    if not math.isclose(2 ** n, scale):
        raise ValueError(f"SimpleFeaturePyramid: up-scales must be 2^n, got {scale}")
    layers: List[nn.Module] = []
    for i in range(n):
        if i:
            layers += [norm_layer(dim, **dd), act_layer()]
        layers.append(nn.ConvTranspose2d(dim, dim, kernel_size=2, stride=2, **dd))
    return nn.Sequential(*layers)


class SimpleFeaturePyramid(nn.Module):
    """Rescales NCHW maps of one stride to ``scales`` (e.g. stride 16 -> 4, 8, 16, 32 for ``(4, 2, 1, 0.5)``).

    Up by ``2^n``: ``n`` transposed 2x2 stride-2 convs with norm + activation between them; ``1``: identity; down by
    ``2^n``: max pooling (``ceil_mode``, so odd maps keep their border). Widths are unchanged (the FPN neck of the
    detector or segmenter projects them).
    """

    def __init__(
            self,
            dim: int,
            scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
            norm_layer: Callable[..., nn.Module] = LayerNorm2d,
            act_layer: Callable[..., nn.Module] = nn.GELU,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            dim: channels of the input maps (and of every output).
            scales: one resampling factor per level.
            norm_layer: norm between stacked transposed convs (a batch-independent LayerNorm over channels, as
                ViTDet; Vim's segmentation code uses SyncBatchNorm).
            act_layer: activation between stacked transposed convs.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scales = tuple(float(s) for s in scales)
        self.levels = nn.ModuleList([_level(dim, s, norm_layer, act_layer, dd) for s in self.scales])

    def forward(self, maps: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """``maps[i]`` (NCHW) -> level ``i``; one map per level."""
        if len(maps) != len(self.levels):
            raise ValueError(f"SimpleFeaturePyramid: expected {len(self.levels)} maps, got {len(maps)}")
        return [level(m) for level, m in zip(self.levels, maps)]
