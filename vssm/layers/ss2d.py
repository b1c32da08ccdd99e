"""SS2D: the 2-D selective-scan token mixer of VMamba, written around one ordered selective-scan call.

VMamba (Liu et al., 2024, "VMamba: Visual State Space Model") mixes tokens with SS2D: in-projection, a 3x3
depthwise convolution, a selective scan along ``K`` paths over the feature map, a norm and an out-projection.
The original code copies the map ``K`` times into scan order ("cross-scan"), projects each copy, scans and
copies the results back ("cross-merge"). Here the per-position projections (``x_proj``, ``dt_proj``) commute with
the permutation, so they run once in spatial order, and the op walks every path inside the kernel from the
scan's ``order`` tensor: one call, no copies, any scan strategy at the cost of a raster scan.

LocalMamba (Huang et al., 2024, "LocalMamba: Visual State Space Model with Windowed Selective Scan") combines the
paths with a small channel attention per path (``path_attn=True``) instead of a plain sum.

Everything here is channels-last: modules take and return ``(B, H, W, C)``.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Tuple, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..scans.base import real_tensors
from ._fx import register_notrace_module
from .linear import Linear
from .ssm import init_ssm_parameters, resolve_dt_rank, selective_ssm

__all__ = ["SS2D", "PathChannelAttention", "resolve_dt_rank", "get_scan_obj"]


def get_scan_obj(scan: Any) -> Any:
    """A Scan from a Scan, a name, a dict spec or a list (combined); ``vssm.scans.get_scan`` raises for unknown ones."""
    from vssm.scans import get_scan

    return get_scan(scan)


class PathChannelAttention(nn.Module):
    """LocalMamba's per-path channel attention (its "BiAttn" with only the channel branch active).

    For each path ``k`` separately: ``y_k * sigmoid(W2 gelu(W1 mean_L(LN(y_k))))``. Weights are shared by the paths.
    """

    def __init__(
            self,
            dim: int,
            act_ratio: float = 0.125,
            act_layer: Type[nn.Module] = nn.GELU,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        hidden = int(dim * act_ratio)
        self.norm = nn.LayerNorm(dim, **dd)
        self.global_reduce = Linear(dim, hidden, **dd)
        self.act = act_layer()
        self.channel_select = Linear(hidden, dim, **dd)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        # y: (B, L, K, D) -> per-path gate (B, 1, K, D)
        g = self.norm(y).mean(1, keepdim=True)
        g = self.channel_select(self.act(self.global_reduce(g)))
        return y * torch.sigmoid(g)


@register_notrace_module
class SS2D(nn.Module):
    """2-D selective scan mixer (channels-last in and out).

    Parameters follow the path count ``K`` of the scan: ``x_proj_weight (K, R + 2N, Di)``,
    ``dt_proj_weight (K, Di, R)``, ``dt_proj_bias (K, Di)``, ``A_log (K, Di, N)``, ``D (K, Di)``; everything else is
    shared. The forward makes one call to ``vssm.kernels.selective_scan`` with the scan's ``order``.
    """

    def __init__(
            self,
            dim: int,
            scan: Any = "cross",
            d_state: int = 16,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            act_layer: Type[nn.Module] = nn.SiLU,
            d_conv: int = 3,
            conv_bias: bool = True,
            gate: bool = True,
            out_norm: bool = True,
            path_attn: bool = False,
            window_padding: bool = False,
            bias: bool = False,
            proj_drop: float = 0.0,
            dt_min: float = 0.001,
            dt_max: float = 0.1,
            dt_init: str = "random",
            dt_scale: float = 1.0,
            dt_init_floor: float = 1e-4,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: block width ``C``.
            scan: a Scan, a registered scan name, or a dict spec; ``K`` (the number of paths) comes from it.
            d_state: SSM state size ``N`` (VMamba v0: 16, v2: 1).
            ssm_ratio: inner width ``Di = ssm_ratio * dim``.
            dt_rank: rank ``R`` of the dt projection, or ``'auto'`` (``ceil(dim / 16)``).
            act_layer: activation after the depthwise conv, also applied to the gate.
            d_conv: depthwise conv kernel size; ``< 2`` disables the conv.
            conv_bias: bias in the depthwise conv.
            gate: multiply by ``act(z)`` with ``z`` from the in-projection (VMamba v0/v2); ``False`` is ``_noz``.
            out_norm: LayerNorm on the merged scan output (``False``: identity).
            path_attn: combine the paths with LocalMamba's per-path channel attention instead of a plain sum.
            window_padding: with a ``localmamba`` scan, reproduce LocalMamba's zero padding of partial windows: the
                map is zero-padded (after the conv) to a multiple of each window path's size and that path also
                walks the padding tokens (which only decay its state), as the official code does. Other paths and
                other scans are unaffected. Off: partial border windows (the scan's own paths).
            bias: bias in the in/out projections.
            proj_drop: dropout after the out-projection.
            dt_min: lower end of the initial ``softplus(dt_bias)`` range.
            dt_max: upper end of the initial ``softplus(dt_bias)`` range.
            dt_init: ``'random'`` (uniform) or ``'constant'`` init of ``dt_proj_weight``.
            dt_scale: scale of the ``dt_proj_weight`` init.
            dt_init_floor: floor of the initial dt.
            norm_layer: norm class for ``out_norm``.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scan = get_scan_obj(scan)
        self.K = int(self.scan.K)
        self.dim = dim
        self.d_state = int(d_state)
        self.d_inner = int(ssm_ratio * dim)
        self.dt_rank = resolve_dt_rank(dt_rank, dim)
        self.gate = gate
        self.window_padding = window_padding
        self._pad_cache: Dict[Tuple[int, int, str], Tuple[int, int, torch.Tensor] | None] = {}
        self.dt_init_cfg = dict(min=dt_min, max=dt_max, init=dt_init, scale=dt_scale, floor=dt_init_floor)
        K, Di, R, N = self.K, self.d_inner, self.dt_rank, self.d_state

        self.in_proj = Linear(dim, Di * (2 if gate else 1), bias=bias, **dd)
        self.conv2d = nn.Conv2d(
            Di, Di, kernel_size=d_conv, padding=(d_conv - 1) // 2, groups=Di, bias=conv_bias, **dd,
        ) if d_conv > 1 else None
        self.act = act_layer()
        self.x_proj_weight = nn.Parameter(torch.empty(K, R + 2 * N, Di, **dd))
        self.dt_proj_weight = nn.Parameter(torch.empty(K, Di, R, **dd))
        self.dt_proj_bias = nn.Parameter(torch.empty(K, Di, **dd))
        self.A_log = nn.Parameter(torch.empty(K, Di, N, **dd))
        self.D = nn.Parameter(torch.empty(K, Di, **dd))
        self.path_attn = PathChannelAttention(Di, **dd) if path_attn else None
        self.out_norm = norm_layer(Di, **dd) if out_norm else nn.Identity()
        self.out_proj = Linear(Di, dim, bias=bias, **dd)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Mamba's initialisation of the SSM parameters, the same for every path (:func:`init_ssm_parameters`)."""
        cfg = self.dt_init_cfg
        init_ssm_parameters(self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                            dt_min=cfg["min"], dt_max=cfg["max"], dt_init=cfg["init"], dt_scale=cfg["scale"],
                            dt_init_floor=cfg["floor"])

    def _padded_orders(self, H: int, W: int, device: torch.device) -> Tuple[int, int, torch.Tensor] | None:
        """LocalMamba's zero-padded window paths on a common padded grid: ``(Hp, Wp, order)``, or None (no padding).

        Each direction keeps its own grid (``'w<n>'``: ``H, W`` rounded up to multiples of ``n``; lines: ``H, W``),
        placed at the top-left of the ``Hp x Wp`` grid; shorter paths end in ``-1``.
        """
        directions = getattr(self.scan, "directions", None)
        if directions is None or not hasattr(self.scan, "direction_path"):
            return None
        key = (H, W, str(device))
        if key in self._pad_cache:
            return self._pad_cache[key]
        extents = []
        for d in directions:
            m = re.match(r"^w(\d+)", d)
            n = int(m[1]) if m else 1
            extents.append((-(-H // n) * n, -(-W // n) * n))
        Hp, Wp = max(e[0] for e in extents), max(e[1] for e in extents)
        result = None
        if (Hp, Wp) != (H, W):
            with real_tensors():  # a cached constant: an ordinary tensor even under inference_mode / export
                paths = []
                for d, (hk, wk) in zip(directions, extents):
                    p = torch.as_tensor(self.scan.direction_path(d, hk, wk).copy(), dtype=torch.int64)
                    paths.append((p // wk) * Wp + p % wk)
                order = torch.full((len(paths), max(len(p) for p in paths)), -1, dtype=torch.int32)
                for k, p in enumerate(paths):
                    order[k, :len(p)] = p.to(torch.int32)
                result = (Hp, Wp, order.to(device))
        self._pad_cache[key] = result
        return result

    def extra_repr(self) -> str:
        name = getattr(self.scan, "name", type(self.scan).__name__)
        return f"scan={name}, K={self.K}, d_state={self.d_state}, d_inner={self.d_inner}, dt_rank={self.dt_rank}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Bt, H, W, _ = x.shape
        x = self.in_proj(x)
        if self.gate:
            x, z = x.chunk(2, dim=-1)
        if self.conv2d is not None:
            x = self.conv2d(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # depthwise conv in NCHW, back to NHWC
        x = self.act(x)
        pad = self._padded_orders(H, W, x.device) if self.window_padding else None
        if pad is not None:
            Hp, Wp, order = pad
            x = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))  # zero tokens: dt = softplus(bias), B = C = 0 there
        else:
            Hp, Wp, order = H, W, self.scan.orders(H, W, x.device)
        u = x.reshape(Bt, Hp * Wp, self.d_inner)
        # per-position projections, once, in spatial order, then one op call over every path
        y = selective_ssm(u, self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                          order=order, merge=None if self.path_attn is not None else "sum")
        if pad is not None:  # back to the real positions
            y = y.unflatten(1, (Hp, Wp))[:, :H, :W].flatten(1, 2)
        if self.path_attn is not None:
            y = self.path_attn(y.to(x.dtype)).sum(2)  # (Bt, L, K, Di) -> (Bt, L, Di)
        y = self.out_norm(y.to(x.dtype).reshape(Bt, H, W, self.d_inner))
        if self.gate:
            y = y * self.act(z)
        return self.proj_drop(self.out_proj(y))
