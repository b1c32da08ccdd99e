"""Multi-head self-attention over token sequences and the window helpers of the hybrid backbones.

MambaVision (Hatamizadeh & Kautz, 2024, "MambaVision: A Hybrid Mamba-Transformer Vision Backbone") runs its late
stages on non-overlapping windows: the map is zero-padded at the bottom/right to a multiple of the window, cut into
windows of ``window_size ** 2`` tokens (raster order inside a window), mixed, put back and cropped.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._fx import register_notrace_function
from .linear import Linear

__all__ = ["Attention", "window_partition", "window_reverse"]


class Attention(nn.Module):
    """Plain multi-head self-attention on ``(B, L, C)`` tokens (``qkv`` and ``proj`` linear layers)."""

    def __init__(
            self,
            dim: int,
            num_heads: int = 8,
            qkv_bias: bool = True,
            qk_norm: bool = False,
            attn_drop: float = 0.0,
            proj_drop: float = 0.0,
            norm_layer: type = nn.LayerNorm,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            dim: token width.
            num_heads: attention heads (must divide ``dim``).
            qkv_bias: bias of the qkv projection.
            qk_norm: normalise queries and keys per head.
            attn_drop: attention-weight dropout (training only).
            proj_drop: dropout after the output projection.
            norm_layer: norm for ``qk_norm``.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"Attention: num_heads ({num_heads}) must divide dim ({dim})")
        dd = {"device": device, "dtype": dtype}
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias, **dd)
        self.q_norm = norm_layer(self.head_dim, **dd) if qk_norm else nn.Identity()
        self.k_norm = norm_layer(self.head_dim, **dd) if qk_norm else nn.Identity()
        self.attn_drop = attn_drop
        self.proj = Linear(dim, dim, **dd)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, L, head_dim)
        q, k = self.q_norm(q), self.k_norm(k)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, L, C)
        return self.proj_drop(self.proj(x))


@register_notrace_function
def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Zero-pads an NHWC map at the bottom/right to a multiple of ``window_size`` and cuts it into windows.

    Args:
        x: ``(B, H, W, C)``.
        window_size: window side ``ws``.

    Returns:
        ``(B * nH * nW, ws * ws, C)`` windows (raster order inside each, windows in raster order per image) and the
        padded size ``(Hp, Wp)``.
    """
    B, H, W, C = x.shape
    pad_b, pad_r = (-H) % window_size, (-W) % window_size
    if pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    Hp, Wp = H + pad_b, W + pad_r
    x = x.reshape(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, C), (Hp, Wp)


@register_notrace_function
def window_reverse(windows: torch.Tensor, window_size: int, padded: Tuple[int, int], size: Tuple[int, int]
                   ) -> torch.Tensor:
    """Inverse of :func:`window_partition`, cropping the padding: ``(B * nW, ws * ws, C)`` -> ``(B, H, W, C)``."""
    Hp, Wp = padded
    H, W = size
    C = windows.shape[-1]
    x = windows.reshape(-1, Hp // window_size, Wp // window_size, window_size, window_size, C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, Hp, Wp, C)
    return x[:, :H, :W] if (Hp, Wp) != (H, W) else x
