"""Mamba token mixers for 1-D token sequences, written around the one ordered selective-scan op.

* :class:`PathMamba` is the bidirectional Mamba layer of Vision Mamba (Vim: Zhu et al., 2024, "Vision Mamba:
  Efficient Visual Representation Learning with Bidirectional State Space Model") generalised to ``K`` paths. Vim
  runs two Mamba scans over the token sequence, forwards and backwards, each with its own depthwise causal conv,
  ``x_proj``, ``dt_proj``, ``A`` and ``D`` (its "bimamba v2"), gates both with the same ``silu(z)``, and averages
  them before the out-projection ("div2"). Here the per-path parameters are stacked along a leading ``K`` axis, the
  causal conv of each path runs along that path (the backward conv is the anti-causal conv in token order), and the
  ``K`` scans are one call of :func:`vssm.kernels.selective_scan` with the paths' ``order``.
* :class:`MambaVisionMixer` is the mixer of MambaVision (Hatamizadeh & Kautz, 2024, "MambaVision: A Hybrid
  Mamba-Transformer Vision Backbone"): the in-projection is split into an SSM branch and a symmetric non-SSM branch,
  both through a non-causal ('same') depthwise conv and SiLU; the SSM branch is scanned, the two are concatenated and
  projected out.

Both take and return ``(B, L, C)`` token sequences (channels-last).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.op import is_tracing
from ._fx import register_notrace_module
from .linear import Linear
from .ssm import init_ssm_parameters, resolve_dt_rank, selective_ssm

__all__ = ["PathMamba", "MambaVisionMixer", "path_inverse", "compact_orders", "init_ssm_parameters"]


def compact_orders(order: torch.Tensor) -> torch.Tensor:
    """Moves the ``-1`` (skip) entries of every path to its end, keeping the visiting order of the rest.

    A skip changes nothing in the scan, but a convolution along a path must see the visited positions back to back.
    """
    order = order.to(torch.int64)
    if not bool((order < 0).any()):
        return order
    key = torch.where(order < 0, order.new_full((), order.shape[1]), torch.arange(order.shape[1], device=order.device))
    return torch.gather(order, 1, key.argsort(dim=1, stable=True))


def path_inverse(order: torch.Tensor, length: int) -> torch.Tensor:
    """``inverse[k, l]``: the step at which path ``k`` visits token ``l`` (``-1``: never)."""
    K, T = order.shape
    inv = torch.full((K, length), -1, dtype=torch.int64, device=order.device)
    steps = torch.arange(T, device=order.device).expand(K, T)
    valid = order >= 0
    rows = torch.arange(K, device=order.device)[:, None].expand(K, T)
    inv[rows[valid], order[valid].long()] = steps[valid]
    return inv


@register_notrace_module
class PathMamba(nn.Module):
    """Mamba over ``K`` paths of a token sequence with separate per-path parameters (Vim's bidirectional layer).

    ``x, z = in_proj(x)``; for each path ``k``: ``u_k = silu(causal_conv_k(x along path k))``,
    ``dt_k, B_k, C_k = x_proj_k(u_k)``, ``y_k = SSM_k(u_k)`` along path k; ``y = sum_k y_k * silu(z)``, divided by
    ``K`` when ``divide_out`` (Vim's ``if_divide_out``); ``out_proj(y)``. With the bidirectional orders this is Vim's
    "bimamba v2" layer: path 0 holds the official ``conv1d`` / ``x_proj`` / ``dt_proj`` / ``A_log`` / ``D``, path 1
    their ``*_b`` twins.

    Parameters (``K`` leading): ``conv_weight (K, Di, d_conv)``, ``conv_bias (K, Di)``, ``x_proj_weight
    (K, R + 2N, Di)``, ``dt_proj_weight (K, Di, R)``, ``dt_proj_bias (K, Di)``, ``A_log (K, Di, N)``, ``D (K, Di)``.
    """

    def __init__(
            self,
            dim: int,
            num_paths: int = 2,
            d_state: int = 16,
            expand: float = 2.0,
            d_conv: int = 4,
            dt_rank: Union[int, str] = "auto",
            conv_bias: bool = True,
            bias: bool = False,
            divide_out: bool = True,
            dt_min: float = 0.001,
            dt_max: float = 0.1,
            dt_init: str = "random",
            dt_scale: float = 1.0,
            dt_init_floor: float = 1e-4,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            dim: token width ``C``.
            num_paths: number of paths ``K`` (Vim: 2).
            d_state: SSM state size ``N``.
            expand: inner width ``Di = expand * dim``.
            d_conv: causal depthwise conv size along each path.
            dt_rank: rank ``R`` of the dt projection, or ``'auto'`` (``ceil(dim / 16)``).
            conv_bias: bias in the depthwise convs.
            bias: bias in the in/out projections.
            divide_out: average the paths instead of summing them.
            dt_min: lower end of the initial ``softplus(dt_bias)`` range.
            dt_max: upper end of that range.
            dt_init: ``'random'`` or ``'constant'`` init of ``dt_proj_weight``.
            dt_scale: scale of the ``dt_proj_weight`` init.
            dt_init_floor: floor of the initial dt.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dim = dim
        self.K = K = int(num_paths)
        self.d_state = N = int(d_state)
        self.d_inner = Di = int(expand * dim)
        self.d_conv = int(d_conv)
        self.dt_rank = R = resolve_dt_rank(dt_rank, dim)
        self.divide_out = divide_out
        self.fast_paths = True  # forwards / backwards paths without gathers (see _path_conv)
        self.dt_init_cfg = dict(dt_min=dt_min, dt_max=dt_max, dt_init=dt_init, dt_scale=dt_scale,
                                dt_init_floor=dt_init_floor)

        self.in_proj = Linear(dim, 2 * Di, bias=bias, **dd)
        self.conv_weight = nn.Parameter(torch.empty(K, Di, self.d_conv, **dd))
        self.conv_bias = nn.Parameter(torch.empty(K, Di, **dd)) if conv_bias else None
        self.x_proj_weight = nn.Parameter(torch.empty(K, R + 2 * N, Di, **dd))
        self.dt_proj_weight = nn.Parameter(torch.empty(K, Di, R, **dd))
        self.dt_proj_bias = nn.Parameter(torch.empty(K, Di, **dd))
        self.A_log = nn.Parameter(torch.empty(K, Di, N, **dd))
        self.D = nn.Parameter(torch.empty(K, Di, **dd))
        self.out_proj = Linear(Di, dim, bias=bias, **dd)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Conv as ``nn.Conv1d``'s default (uniform ``+-1/sqrt(d_conv)``), SSM parameters as Mamba."""
        bound = 1.0 / math.sqrt(self.d_conv)
        nn.init.uniform_(self.conv_weight, -bound, bound)
        if self.conv_bias is not None:
            nn.init.uniform_(self.conv_bias, -bound, bound)
        init_ssm_parameters(self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                            **self.dt_init_cfg)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, K={self.K}, d_inner={self.d_inner}, d_state={self.d_state}, "
                f"dt_rank={self.dt_rank}, d_conv={self.d_conv}, divide_out={self.divide_out}")

    def _directions(self, order: torch.Tensor, L: int) -> Optional[list]:
        """``[+1 / -1 per path]`` when every path is the token sequence forwards or backwards (Vim), else None."""
        if order.shape[1] != L:
            return None
        fwd = torch.arange(L, device=order.device, dtype=order.dtype)
        dirs = []
        for k in range(order.shape[0]):
            if torch.equal(order[k], fwd):
                dirs.append(1)
            elif torch.equal(order[k], fwd.flip(0)):
                dirs.append(-1)
            else:
                return None
        return dirs

    def _path_conv(self, x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        """Causal depthwise conv of each path along its own order: ``(B, L, Di)`` -> ``(B, L, K, Di)`` (token order).

        Channels-last shifted multiply-adds (``d_conv`` of them) instead of a grouped conv. When every path is the
        sequence forwards or backwards, the backward conv is the anti-causal conv in token order and no gather is
        needed.
        """
        Bt, L, Di = x.shape
        K, T = order.shape
        dc = self.d_conv
        w = self.conv_weight  # (K, Di, dc)
        # exported / compiled: the orders are constants the tracer cannot compare; the gather below is the same conv
        dirs = self._directions(order, L) if self.fast_paths and not is_tracing() else None
        if dirs is not None:
            xp = F.pad(x, (0, 0, dc - 1, dc - 1))  # (B, L + 2(dc - 1), Di)
            outs = []
            for k, d in enumerate(dirs):
                # forwards: sum_j w[j] x[t - dc + 1 + j]; backwards: sum_j w[j] x[t + dc - 1 - j]
                starts = [j if d > 0 else 2 * (dc - 1) - j for j in range(dc)]
                y = xp[:, starts[0]:starts[0] + L] * w[k, :, 0]
                for j in range(1, dc):
                    y = y.addcmul_(xp[:, starts[j]:starts[j] + L], w[k, :, j])
                outs.append(y if self.conv_bias is None else y.add_(self.conv_bias[k]))
            return torch.stack(outs, dim=2)
        xp = x[:, order.clamp(min=0)]  # (B, K, T, Di), path order
        if is_tracing() or bool((order < 0).any()):
            xp = xp * (order >= 0)[None, :, :, None].to(xp.dtype)
        xp = F.pad(xp, (0, 0, dc - 1, 0))
        y = xp[:, :, 0:T] * w[None, :, None, :, 0]
        for j in range(1, dc):
            y = y.addcmul_(xp[:, :, j:j + T], w[None, :, None, :, j])
        if self.conv_bias is not None:
            y = y.add_(self.conv_bias[None, :, None, :])
        # back to token order: u[b, l, k] = y[b, k, inverse[k, l]] (tokens a path never visits: anything)
        idx = inverse.clamp(min=0)[None, :, :, None].expand(Bt, K, L, Di)
        return torch.gather(y, 2, idx).transpose(1, 2)

    def forward(self, x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``(B, L, C)`` tokens.
            order: ``(K, T)`` int64 token positions per path, skips (``-1``) at the end (see :func:`compact_orders`).
            inverse: ``(K, L)`` the step of each token on each path (:func:`path_inverse`).

        Returns:
            ``(B, L, C)``.
        """
        x, z = self.in_proj(x).chunk(2, dim=-1)
        u = F.silu(self._path_conv(x, order, inverse))  # (B, L, K, Di)
        y = selective_ssm(u, self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                          order=order, z=z, merge="sum")
        if self.divide_out:
            y = y / self.K
        return self.out_proj(y)


@register_notrace_module
class MambaVisionMixer(nn.Module):
    """MambaVision's token mixer (channels-last).

    ``x, z = split(in_proj(x))`` (``Di / 2`` channels each); ``x = silu(conv_x(x))``, ``z = silu(conv_z(z))`` with
    non-causal ('same' padded) depthwise convs; ``y = SSM(x)`` over the scan's paths (default one raster path, as
    published; more paths get their own ``x_proj`` / ``dt_proj`` / ``A`` / ``D`` and are summed);
    ``out_proj(concat(y, z))``.

    Parameters (``K`` leading): ``x_proj_weight (K, R + 2N, Di/2)``, ``dt_proj_weight (K, Di/2, R)``,
    ``dt_proj_bias (K, Di/2)``, ``A_log (K, Di/2, N)``, ``D (K, Di/2)``.
    """

    def __init__(
            self,
            dim: int,
            num_paths: int = 1,
            d_state: int = 8,
            expand: float = 1.0,
            d_conv: int = 3,
            dt_rank: Union[int, str] = "auto",
            conv_bias: bool = False,
            bias: bool = False,
            dt_min: float = 0.001,
            dt_max: float = 0.1,
            dt_init: str = "random",
            dt_scale: float = 1.0,
            dt_init_floor: float = 1e-4,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            dim: token width ``C``.
            num_paths: number of scan paths ``K`` (published: 1).
            d_state: SSM state size ``N`` (published: 8).
            expand: inner width ``Di = expand * dim`` (published: 1), split in two halves.
            d_conv: depthwise conv size (published: 3).
            dt_rank: rank ``R`` of the dt projection, or ``'auto'`` (``ceil(dim / 16)``).
            conv_bias: bias in the depthwise convs (published: none).
            bias: bias in the in/out projections.
            dt_min: lower end of the initial ``softplus(dt_bias)`` range.
            dt_max: upper end of that range.
            dt_init: ``'random'`` or ``'constant'`` init of ``dt_proj_weight``.
            dt_scale: scale of the ``dt_proj_weight`` init.
            dt_init_floor: floor of the initial dt.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dim = dim
        self.K = K = int(num_paths)
        self.d_state = N = int(d_state)
        self.d_inner = int(expand * dim)
        if self.d_inner % 2:
            raise ValueError(f"MambaVisionMixer: the inner width expand * dim = {self.d_inner} must be even "
                             f"(it is split into the SSM and the non-SSM branch)")
        self.d_ssm = Ds = self.d_inner // 2
        self.dt_rank = R = resolve_dt_rank(dt_rank, dim)
        self.dt_init_cfg = dict(dt_min=dt_min, dt_max=dt_max, dt_init=dt_init, dt_scale=dt_scale,
                                dt_init_floor=dt_init_floor)

        self.in_proj = Linear(dim, self.d_inner, bias=bias, **dd)
        self.conv1d_x = nn.Conv1d(Ds, Ds, d_conv, padding="same", groups=Ds, bias=conv_bias, **dd)
        self.conv1d_z = nn.Conv1d(Ds, Ds, d_conv, padding="same", groups=Ds, bias=conv_bias, **dd)
        self.x_proj_weight = nn.Parameter(torch.empty(K, R + 2 * N, Ds, **dd))
        self.dt_proj_weight = nn.Parameter(torch.empty(K, Ds, R, **dd))
        self.dt_proj_bias = nn.Parameter(torch.empty(K, Ds, **dd))
        self.A_log = nn.Parameter(torch.empty(K, Ds, N, **dd))
        self.D = nn.Parameter(torch.empty(K, Ds, **dd))
        self.out_proj = Linear(self.d_inner, dim, bias=bias, **dd)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        init_ssm_parameters(self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                            **self.dt_init_cfg)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, K={self.K}, d_inner={self.d_inner}, d_state={self.d_state}, dt_rank={self.dt_rank}"

    def forward(self, x: torch.Tensor, order: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x: ``(B, L, C)`` tokens.
            order: ``(K, T)`` token positions per path; ``None``: raster (``K`` must be 1).

        Returns:
            ``(B, L, C)``.
        """
        x, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (B, Di/2, L) each, for the convs
        x = F.silu(self.conv1d_x(x)).transpose(1, 2)
        z = F.silu(self.conv1d_z(z)).transpose(1, 2)
        y = selective_ssm(x, self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                          order=order, merge="sum")
        return self.out_proj(torch.cat([y, z], dim=-1))
