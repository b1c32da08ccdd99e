"""Linear attention with a 2-D rotary position embedding and a locally-enhanced positional term (channels-last).

The token mixer of MLLA (Han et al., 2024, "Demystify Mamba in Vision: A Linear Attention Perspective", NeurIPS
2024, arXiv:2405.16605): queries and keys go through the ``elu(x) + 1`` kernel, the values are the block input
itself, the attention is normalised per head by ``q . mean(k)``, rotary position embeddings (RoPE) rotate the kernel
features of queries and keys before the ``k^T v`` product, and a 3x3 depthwise convolution of the values (LePE) is
added to the output.

The official code builds its RoPE table for one resolution at construction time, so a model only runs at the size
it was built for. Here the table is a function of the actual ``(H, W)`` grid, computed at run time (and cached per
grid, device and dtype, outside the state dict); at the construction size the values are those of the official
table.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.op import is_tracing
from ..scans.base import real_tensors
from ._fx import register_notrace_module
from .linear import Linear

__all__ = ["RoPE2d", "LinearAttention", "rope_2d_tables"]

_CACHE_LOCK = threading.Lock()


def rope_2d_tables(
        H: int,
        W: int,
        dim: int,
        base: float = 10000.0,
        device: torch.device | None = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables of the 2-D rotary embedding of an ``H x W`` grid.

    The ``dim`` channels form ``dim / 2`` consecutive pairs ``(2i, 2i + 1)``, each rotated by one angle. The first
    ``dim / 4`` pairs turn with the row index (``h * theta_j``), the last ``dim / 4`` with the column index
    (``w * theta_j``), with ``theta_j = base ** (-j / (dim / 4))``.

    Args:
        H: Grid height.
        W: Grid width.
        dim: Channels (a multiple of 4).
        base: Frequency base.
        device: Where the tables live.

    Returns:
        ``(cos, sin)``, each ``(H, W, dim / 2)`` fp32.
    """
    if dim % 4:
        raise ValueError(f"2-D RoPE needs a channel count divisible by 4 (two axes x complex pairs), got {dim}")
    k_max = dim // 4
    theta = 1.0 / (base ** (torch.arange(k_max, device=device, dtype=torch.float32) / k_max))
    rows = torch.arange(H, device=device, dtype=torch.float32)[:, None, None] * theta  # (H, 1, k)
    cols = torch.arange(W, device=device, dtype=torch.float32)[None, :, None] * theta  # (1, W, k)
    angles = torch.cat([rows.expand(H, W, k_max), cols.expand(H, W, k_max)], dim=-1)  # (H, W, dim / 2)
    return torch.cos(angles), torch.sin(angles)


@register_notrace_module
class RoPE2d(nn.Module):
    """2-D rotary position embedding for channels-last maps, with tables made for the grid at hand.

    Tables are cached per ``(H, W, device)`` in a small LRU that is not part of the state dict.

    Args:
        dim: Channels (a multiple of 4).
        base: Frequency base (10000 as the official code).
        cache_size: Number of grids whose tables are kept.
    """

    def __init__(self, dim: int, base: float = 10000.0, cache_size: int = 8):
        super().__init__()
        if dim % 4:
            raise ValueError(f"RoPE2d: dim must be divisible by 4, got {dim}")
        self.dim = dim
        self.base = base
        self.cache_size = cache_size
        self._tables: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def tables(self, H: int, W: int, device: torch.device) -> torch.Tensor:
        """The rotations ``cos + i sin`` of an ``H x W`` grid: ``(H, W, dim / 2)`` complex64."""
        if device.type == "meta" or is_tracing():  # traced: the tables are part of the graph (no lock, no cache)
            return torch.complex(*rope_2d_tables(H, W, self.dim, self.base, device))
        key = (H, W, device)
        with _CACHE_LOCK:
            hit = self._tables.get(key)
            if hit is not None:
                self._tables.move_to_end(key)
                return hit
        with torch.no_grad(), real_tensors():  # a constant: an ordinary tensor even under inference_mode
            out = torch.complex(*rope_2d_tables(H, W, self.dim, self.base, device))
        with _CACHE_LOCK:
            self._tables[key] = out
            while len(self._tables) > max(1, self.cache_size):
                self._tables.popitem(last=False)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotates ``x`` ``(B, H, W, dim)``; computes in fp32 and returns fp32 (as the official code).

        The channel pairs are read as complex numbers and multiplied by the table (one complex product, about
        7x faster on CPU than the same rotation written with real multiply-adds). Traced (torch.compile, export) the
        rotation is written with real multiply-adds, which the compiler fuses: the fake tensors of torch < 2.11
        give ``view_as_complex`` wrong strides in the backward, and exported graphs stay free of complex dtypes.
        """
        B, H, W, C = x.shape
        if is_tracing():
            cos, sin = rope_2d_tables(H, W, self.dim, self.base, x.device)
            a, b = x.float().reshape(B, H, W, C // 2, 2).unbind(-1)
            return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
        rot = self.tables(H, W, x.device)
        pairs = torch.view_as_complex(x.float().reshape(B, H, W, C // 2, 2).contiguous())
        return torch.view_as_real(pairs * rot).flatten(-2)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_tables"] = OrderedDict()
        return state

    def _apply(self, fn, recurse=True):
        self._tables = OrderedDict()  # tables follow the inputs' device; drop them when the module moves
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base:g}"


class LinearAttention(nn.Module):
    """MLLA's linear attention: ``elu + 1`` kernel, per-head normalisation, RoPE and LePE (channels-last).

    For each head, with ``phi = elu + 1``, ``q = phi(W_q x)``, ``k = phi(W_k x)``, ``v = x`` and ``n = H * W``::

        out = (RoPE(q) @ (RoPE(k)^T v / n)) / (q . mean_n(k) + 1e-6) + dwconv3x3(v)

    Args:
        dim: Channels (a multiple of 4 for RoPE, and of ``num_heads``).
        num_heads: Attention heads.
        qkv_bias: Bias in the query/key projection.
        rope_base: RoPE frequency base.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            qkv_bias: bool = True,
            rope_base: float = 10000.0,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"LinearAttention: dim ({dim}) must be divisible by num_heads ({num_heads})")
        dd = {"device": device, "dtype": dtype}
        self.dim = dim
        self.num_heads = num_heads
        self.qk = Linear(dim, dim * 2, bias=qkv_bias, **dd)
        self.lepe = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **dd)
        self.rope = RoPE2d(dim, base=rope_base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` -> ``(B, H, W, C)``."""
        B, H, W, C = x.shape
        n, nh = H * W, self.num_heads
        hd = C // nh
        q, k = self.qk(x).chunk(2, dim=-1)  # (B, H, W, C) each (unpacked, not a generator: torch.fx traces it)
        q, k = F.elu(q) + 1.0, F.elu(k) + 1.0
        q_rope = self.rope(q).reshape(B, n, nh, hd)  # fp32
        k_rope = self.rope(k).reshape(B, n, nh, hd)
        q, k, v = q.reshape(B, n, nh, hd), k.reshape(B, n, nh, hd), x.reshape(B, n, nh, hd)
        # heads stay a middle axis: einsum contracts without transposed copies (about 30% faster on CPU)
        z = 1.0 / (torch.einsum("bnhd,bhd->bnh", q, k.mean(dim=1)) + 1e-6)  # per-head normaliser q . mean(k)
        kv = torch.einsum("bnhd,bnhe->bhde", k_rope, v.float()) * (1.0 / n)  # (B, nh, hd, hd), fp32
        out = torch.einsum("bnhd,bhde->bnhe", q_rope, kv) * z[..., None]
        out = out.reshape(B, H, W, C).to(x.dtype)
        return out + self.lepe(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}"
