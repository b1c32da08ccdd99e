"""Necks for backbones whose first stage is coarser than stride 4 (MobileMamba: strides 16 / 32 / 64).

:class:`UpsampleFPN` is an FPN (1x1 lateral convs, top-down nearest upsampling and addition, 3x3 output convs) that
also grows ``num_upsample`` finer levels out of its finest lateral with 2x2 stride-2 transposed convolutions (each
followed by its own 3x3 output conv), as the neck of the official MobileMamba detectors (EfficientViT's FPN) does:
with three inputs at strides 16 / 32 / 64 and ``num_upsample=2`` it returns strides 4, 8, 16, 32, 64, the five levels
mmdet's Mask R-CNN / RetinaNet heads expect. Levels beyond those come from stride-2 3x3 convs on the last input
(``add_extra_convs='on_input'``) or on the last output (``'on_output'``), or from max pooling (False).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["UpsampleFPN", "register_necks"]


class UpsampleFPN(nn.Module):
    """FPN with transposed-conv levels finer than its inputs.

    Args:
        in_channels: Channels of each backbone output, finest first.
        out_channels: Channels of every output level.
        num_outs: Number of output levels (``num_upsample + len(in_channels)`` plus any extra coarser ones).
        num_upsample: Finer levels made by transposed convs from the finest lateral (each halves the stride).
        add_extra_convs: How levels coarser than the inputs are made: False (max pooling of the last output),
            ``'on_input'`` (a stride-2 3x3 conv on the last backbone map, then on the previous extra level) or
            ``'on_output'`` (on the last output level).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, num_outs: int, num_upsample: int = 0,
                 add_extra_convs: Union[bool, str] = False):
        super().__init__()
        in_channels = list(in_channels)
        n_in = len(in_channels)
        if not in_channels or not all(isinstance(c, int) and c > 0 for c in in_channels):
            raise ValueError(f"UpsampleFPN: in_channels: got {in_channels!r}; allowed: a list of positive ints")
        if not isinstance(num_upsample, int) or num_upsample < 0:
            raise ValueError(f"UpsampleFPN: num_upsample: got {num_upsample!r}; allowed: an int >= 0")
        if not isinstance(num_outs, int) or num_outs < n_in + num_upsample:
            raise ValueError(f"UpsampleFPN: num_outs: got {num_outs!r}; allowed: at least len(in_channels) + "
                             f"num_upsample = {n_in + num_upsample}")
        if add_extra_convs not in (False, "on_input", "on_output"):
            raise ValueError(f"UpsampleFPN: add_extra_convs: got {add_extra_convs!r}; allowed: False, 'on_input', "
                             "'on_output'")
        self.in_channels, self.out_channels, self.num_outs = in_channels, out_channels, num_outs
        self.num_upsample, self.add_extra_convs = num_upsample, add_extra_convs
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        self.up_convs = nn.ModuleList(nn.ConvTranspose2d(out_channels, out_channels, 2, stride=2)
                                      for _ in range(num_upsample))
        self.up_fpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1)
                                          for _ in range(num_upsample))
        n_extra = num_outs - n_in - num_upsample
        self.extra_convs = nn.ModuleList()
        if add_extra_convs:
            for i in range(n_extra):
                c = in_channels[-1] if (i == 0 and add_extra_convs == "on_input") else out_channels
                self.extra_convs.append(nn.Conv2d(c, out_channels, 3, stride=2, padding=1))
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform convolutions with zero bias (the transposed convs keep torch's default)."""
        for m in self.modules():
            if type(m) is nn.Conv2d:
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"UpsampleFPN: got {len(inputs)} input maps; allowed: {len(self.in_channels)} (one per "
                             "in_channels entry)")
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                              mode="nearest")
        fine: List[torch.Tensor] = []
        prev = laterals[0]
        for up, conv in zip(self.up_convs, self.up_fpn_convs):
            prev = up(prev)
            fine.insert(0, conv(prev))
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        for i in range(self.num_outs - len(fine) - len(outs)):
            if not self.add_extra_convs:
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            elif i == 0:
                source = inputs[-1] if self.add_extra_convs == "on_input" else outs[-1]
                outs.append(self.extra_convs[0](source))
            else:
                outs.append(self.extra_convs[i](outs[-1]))
        return tuple(fine + outs)


def register_necks() -> None:
    """Registers the necks in mmdet's ``MODELS`` (when mmdet can be imported)."""
    try:
        from mmdet.registry import MODELS
    except ImportError:
        return
    if MODELS.get("UpsampleFPN") is None:
        MODELS.register_module(module=UpsampleFPN)
