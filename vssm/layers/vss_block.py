"""The VSS block of VMamba (Liu et al., 2024): pre-norm SS2D branch, optional pre-norm MLP branch (channels-last)."""
from __future__ import annotations

from typing import Any, Callable, Type, Union

import torch
import torch.nn as nn
from timm.layers import DropPath

from .linear import Mlp
from .ss2d import SS2D

__all__ = ["VSSBlock"]


class VSSBlock(nn.Module):
    """``x + drop_path(SS2D(norm1(x)))``, then ``x + drop_path(mlp(norm2(x)))`` when ``mlp_ratio > 0``.

    With ``post_norm=True`` the norms move after the branches (``x + drop_path(norm1(SS2D(x)))``), as VMamba allows.
    """

    def __init__(
            self,
            dim: int,
            scan: Any = "cross",
            drop_path: float = 0.0,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            d_state: int = 16,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            ssm_act_layer: Type[nn.Module] = nn.SiLU,
            ssm_conv: int = 3,
            ssm_conv_bias: bool = True,
            ssm_gate: bool = True,
            ssm_drop: float = 0.0,
            path_attn: bool = False,
            window_padding: bool = False,
            mlp_ratio: float = 4.0,
            mlp_act_layer: Type[nn.Module] = nn.GELU,
            mlp_drop: float = 0.0,
            post_norm: bool = False,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: block width.
            scan: scan of the mixer (a Scan, a name or a dict spec).
            drop_path: stochastic depth rate of both branches.
            norm_layer: norm class (channels-last).
            d_state: SSM state size.
            ssm_ratio: SS2D inner width ratio.
            dt_rank: dt projection rank or ``'auto'``.
            ssm_act_layer: SS2D activation.
            ssm_conv: SS2D depthwise conv size (``< 2``: none).
            ssm_conv_bias: bias of that conv.
            ssm_gate: SiLU gate branch in SS2D (VMamba v0/v2: on; ``v05_noz``: off).
            ssm_drop: dropout after the SS2D out-projection.
            path_attn: LocalMamba's per-path channel attention when merging the paths.
            window_padding: LocalMamba's zero padding of partial windows (see :class:`~vssm.layers.SS2D`).
            mlp_ratio: MLP hidden ratio; ``0`` disables the MLP branch (VMamba v0, LocalVMamba).
            mlp_act_layer: MLP activation.
            mlp_drop: MLP dropout.
            post_norm: norms after the branches instead of before.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.post_norm = post_norm
        self.norm1 = norm_layer(dim, **dd)
        self.mixer = SS2D(
            dim, scan=scan, d_state=d_state, ssm_ratio=ssm_ratio, dt_rank=dt_rank, act_layer=ssm_act_layer,
            d_conv=ssm_conv, conv_bias=ssm_conv_bias, gate=ssm_gate, path_attn=path_attn,
            window_padding=window_padding, proj_drop=ssm_drop,
            norm_layer=norm_layer, **dd,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        if mlp_ratio > 0:
            self.norm2 = norm_layer(dim, **dd)
            self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=mlp_act_layer, drop=mlp_drop, **dd)
        else:
            self.norm2 = None
            self.mlp = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_norm:
            x = x + self.drop_path(self.norm1(self.mixer(x)))
            if self.mlp is not None:
                x = x + self.drop_path(self.norm2(self.mlp(x)))
        else:
            x = x + self.drop_path(self.mixer(self.norm1(x)))
            if self.mlp is not None:
                x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x
