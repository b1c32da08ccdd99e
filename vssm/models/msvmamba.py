"""MSVMamba: multi-scale VMamba (the paper's v1 models: nano / micro / tiny).

Shi et al., "Multi-Scale VMamba: Hierarchy in Hierarchy Visual State Space Model", NeurIPS 2024
(arXiv:2405.14174), https://github.com/YuHengsss/MSVMamba (``master``, configs ``vssm_{nano,micro,tiny}_224_ms``).

The network is VMamba's (patch-embed v1 stem, four stages joined by Swin patch merging, final LayerNorm, average
pooling, linear classifier) with MSVMamba's block::

    x = x + drop_path(MS2D(LN(x)))
    x = x + drop_path(ConvFFN(LN(x)))                 # 1x1 conv, + 3x3 depthwise conv, GELU, 1x1 conv

The multi-scale mixer (MS2D) projects ``x`` to an inner width and a gate ``z``; one branch convolves it with a 3x3
depthwise conv (full resolution), the other with a 7x7 stride-2 depthwise conv (half resolution). The full map is
scanned along one row-major path, the half map along three (reversed row-major, column-major, reversed
column-major) that share one set of SSM parameters. Every path's output goes through the same LayerNorm; the
half-resolution outputs are summed, bilinearly up-sampled and added to the full-resolution one, followed by a
squeeze-excitation, the gate ``silu(z)`` and the out-projection.

Here the two branches are one sequence: the full-resolution tokens followed by the half-resolution tokens
(``H * W + h * w``), and the four paths are orders over it (``vssm.scans.multiscale.MultiScaleScan``), so one call
of the ordered selective-scan op serves all of them and no path copies the map.

The official code concatenates the three half-resolution traversals into one sequence and scans it as one, so
each traversal starts from the state the previous one ended with. The op starts every path from zero; with
``chain_low_paths=True`` (default) the carried states are added exactly afterwards: the state of a linear
recurrence started from ``h0`` is the zero-start state plus ``exp(A * cumsum(delta)) * h0``, computed here in
closed form on the half-resolution map (cheap: MSVMamba uses ``d_state = 1``). ``chain_low_paths=False`` gives
three independent paths instead.

Layout: features are channels-last; ``forward_features`` returns the normed ``(B, H, W, C)`` map
(``output_fmt = 'NHWC'``); ``forward_intermediates`` and ``features_only=True`` give NCHW maps.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Dict, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, DropPath
from timm.models import checkpoint_seq, register_model

from vssm.kernels import selective_scan
from vssm.scans.multiscale import MultiScaleScan

from ..checkpoint import check_state_dict, rename_keys, reshape_like, resolve_use_ema, unwrap_state_dict
from ..layers._fx import register_notrace_module
from ..layers.drop import drop_path_rates
from ..layers.linear import Linear
from ..layers.squeeze_excite import SqueezeExciteCl
from ..layers.ssm import init_ssm_parameters, resolve_dt_rank, ssm_inputs
from ..layers.stems import PatchEmbedStem, PatchMerging
from ._builder import build_model_with_cfg
from ._cfg import generate_default_cfgs
from ._hierarchical import HierarchicalModel

__all__ = ["MSVMamba", "MultiScaleSS2D", "MSVMambaBlock", "ConvFFN", "chained_state_correction",
           "checkpoint_filter_fn"]


def chained_state_correction(
        u: torch.Tensor,
        delta: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        perms: Sequence[torch.Tensor],
) -> torch.Tensor:
    """What chaining paths that share one set of SSM parameters adds to their zero-start outputs.

    Paths ``p = 0, 1, ...`` each visit every position once, in the orders ``perms[p]``. Scanned as one sequence
    (path 0, then path 1, ...), path ``p`` starts from the state ``s_p`` path ``p - 1`` ended with instead of zero;
    since the recurrence is linear, its outputs gain ``C_t . (exp(A * S_t) * s_p)`` with ``S_t`` the running sum of
    ``delta`` along the path. ``s_0 = 0``, ``s_{p+1} = last_p + exp(A * S_T) * s_p`` with ``last_p`` the zero-start
    final state of path ``p``. Everything is differentiable torch code; memory is ``(Bt, L, Du, N)``.

    Args:
        u: ``(Bt, L, Du)`` inputs, spatial order.
        delta: ``(Bt, L, Du)`` step sizes after bias and softplus.
        A: ``(Du, N)`` (negative).
        B: ``(Bt, L, N)``.
        C: ``(Bt, L, N)``.
        perms: One ``(L,)`` long tensor per path: the spatial index visited at each step.

    Returns:
        ``(Bt, L, P, Du)`` corrections in spatial order (zero for the first path).
    """
    ctype = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(ctype) for t in (u, delta, A, B, C))
    Bt, L, Du = u.shape
    out = u.new_zeros(Bt, L, len(perms), Du)
    total = delta.sum(1)  # (Bt, Du): the same for every path (same positions, same parameters)
    decay_all = torch.exp(total[..., None] * A)  # (Bt, Du, N)
    state = None
    for p, perm in enumerate(perms):
        d = delta[:, perm]  # (Bt, L, Du) in path order
        if state is not None:
            prefix = torch.cumsum(d, dim=1)  # inclusive: the state after step t has decayed over steps 0..t
            carried = torch.exp(prefix[..., None] * A) * state[:, None]  # (Bt, L, Du, N)
            corr = (carried * C[:, perm, None, :]).sum(-1)  # (Bt, L, Du)
            out[:, perm, p] = corr
        if p < len(perms) - 1:
            # zero-start final state: sum_t exp(A * sum_{r > t} delta_r) * delta_t * B_t * u_t
            suffix = torch.flip(torch.cumsum(torch.flip(d, [1]), dim=1), [1])  # inclusive sum_{r >= t}
            after = torch.cat([suffix[:, 1:], torch.zeros_like(suffix[:, :1])], dim=1)  # exclusive sum_{r > t}
            last = (torch.exp(after[..., None] * A) * (d * u[:, perm])[..., None] * B[:, perm, None, :]).sum(1)
            state = last if state is None else last + decay_all * state
    return out


@register_notrace_module
class MultiScaleSS2D(nn.Module):
    """MSVMamba's multi-scale 2-D selective-scan mixer (channels-last in and out).

    Parameter sets follow the official layout: index 0 is shared by the down-sampled paths, index ``1 + j`` belongs
    to full-resolution path ``j``: ``x_proj_weight (P, R + 2N, Di)``, ``dt_proj_weight (P, Di, R)``,
    ``dt_proj_bias (P, Di)``, ``A_log (P, Di, N)``, ``D (P, Di)`` with ``P = 1 + full paths``.
    """

    def __init__(
            self,
            dim: int,
            scan: MultiScaleScan | None = None,
            d_state: int = 1,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            act_layer: Type[nn.Module] = nn.SiLU,
            d_conv: int = 3,
            low_conv: int = 7,
            conv_bias: bool = True,
            se_reduction: int = 8,
            chain_low_paths: bool = True,
            proj_drop: float = 0.0,
            dt_min: float = 0.001,
            dt_max: float = 0.1,
            dt_init_floor: float = 1e-4,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: Block width ``C``.
            scan: The multi-scale scan (default: MSVMamba's, stride 2, 1 + 3 paths).
            d_state: SSM state size ``N`` (MSVMamba: 1).
            ssm_ratio: Inner width ``Di = ssm_ratio * dim``.
            dt_rank: Rank ``R`` of the dt projection, or ``'auto'`` (``ceil(dim / 16)``).
            act_layer: Activation after the convolutions, also applied to the gate.
            d_conv: Full-resolution depthwise conv size.
            low_conv: Down-sampling depthwise conv size (stride = the scan's stride, "same" padding).
            conv_bias: Bias in both convs.
            se_reduction: Squeeze-excitation reduction (0: none).
            chain_low_paths: Carry the state from one down-sampled path into the next, as the official code
                (which scans them as one concatenated sequence).
            proj_drop: Dropout after the out-projection.
            dt_min: Lower end of the initial ``softplus(dt_bias)`` range.
            dt_max: Upper end of that range.
            dt_init_floor: Floor of the initial dt.
            norm_layer: Norm class of the path outputs.
            device: Parameter device.
            dtype: Parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scan = scan if scan is not None else MultiScaleScan()
        if not isinstance(self.scan, MultiScaleScan):
            raise ValueError(f"MultiScaleSS2D needs a MultiScaleScan, got {self.scan!r}")
        self.K = self.scan.K
        self.num_full = self.scan.num_full_paths
        self.num_low = self.scan.num_low_paths
        self.d_state = int(d_state)
        self.d_inner = Di = int(ssm_ratio * dim)
        self.dt_rank = R = resolve_dt_rank(dt_rank, dim)
        self.chain_low_paths = chain_low_paths
        self.dt_init_cfg = dict(min=dt_min, max=dt_max, floor=dt_init_floor)
        P, N = 1 + self.num_full, self.d_state
        stride = self.scan.stride

        self.in_proj = Linear(dim, Di * 2, bias=False, **dd)
        self.conv2d = nn.Conv2d(Di, Di, d_conv, padding=(d_conv - 1) // 2, groups=Di, bias=conv_bias, **dd)
        self.conv2d_low = nn.Conv2d(Di, Di, low_conv, stride=stride, padding=(low_conv - 1) // 2, groups=Di,
                                    bias=conv_bias, **dd)
        self.act = act_layer()
        self.x_proj_weight = nn.Parameter(torch.empty(P, R + 2 * N, Di, **dd))
        self.dt_proj_weight = nn.Parameter(torch.empty(P, Di, R, **dd))
        self.dt_proj_bias = nn.Parameter(torch.empty(P, Di, **dd))
        self.A_log = nn.Parameter(torch.empty(P, Di, N, **dd))
        self.D = nn.Parameter(torch.empty(P, Di, **dd))
        self.out_norm = norm_layer(Di, **dd)
        self.se = SqueezeExciteCl(Di, se_reduction, **dd) if se_reduction else nn.Identity()
        self.out_proj = Linear(Di, dim, bias=False, **dd)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """Mamba's initialisation: ``x_proj`` as a linear layer, ``dt_proj_weight`` uniform in ``+-1 / sqrt(R)``,
        ``dt_proj_bias`` the inverse softplus of a log-uniform dt, ``A_log = log(1..N)``, ``D = 1``."""
        cfg = self.dt_init_cfg
        init_ssm_parameters(self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                            dt_min=cfg["min"], dt_max=cfg["max"], dt_init_floor=cfg["floor"])

    def extra_repr(self) -> str:
        return (f"K={self.K} ({self.num_full} full + {self.num_low} down-sampled), d_state={self.d_state}, "
                f"d_inner={self.d_inner}, dt_rank={self.dt_rank}, chain_low_paths={self.chain_low_paths}")

    def _path_params(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-path ``A (K, Di, N)``, ``D (K, Di)``, ``delta_bias (K, Di)``, ``dt_proj_weight (K, Di, R)``: full
        paths own sets, low paths share set 0."""
        idx = list(range(1, 1 + self.num_full)) + [0] * self.num_low
        idx = torch.tensor(idx, device=self.A_log.device)
        A = -torch.exp(self.A_log.float())
        return A[idx], self.D.float()[idx], self.dt_proj_bias.float()[idx], self.dt_proj_weight.float()[idx]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Bt, H, W, _ = x.shape
        N, Di, Kf, Kl = self.d_state, self.d_inner, self.num_full, self.num_low
        x, z = self.in_proj(x).chunk(2, dim=-1)
        xc = x.permute(0, 3, 1, 2)
        full = self.act(self.conv2d(xc)).permute(0, 2, 3, 1)  # (Bt, H, W, Di)
        low = self.act(self.conv2d_low(xc)).permute(0, 2, 3, 1)  # (Bt, h, w, Di)
        h, w = low.shape[1:3]
        if (h, w) != self.scan.low_size(H, W):
            raise ValueError(f"down-sampled map {h}x{w} does not match the scan's {self.scan.low_size(H, W)}")
        HW, hw = H * W, h * w
        u = torch.cat([full.reshape(Bt, HW, Di), low.reshape(Bt, hw, Di)], dim=1)  # one sequence: (Bt, HW + hw, Di)

        # per-position projections, once: full positions with the full paths' sets, low ones with set 0
        dt_f, B_f, C_f = ssm_inputs(u[:, :HW], self.x_proj_weight[1:], N)  # rank-R dt, B, C: (Bt, HW, Kf, .)
        dt_l, B_l, C_l = (t[:, :, 0] for t in ssm_inputs(u[:, HW:], self.x_proj_weight[:1], N))  # (Bt, hw, .)

        def per_path(f: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
            # (Bt, HW, Kf, X) and (Bt, hw, X) -> (Bt, HW + hw, K, X); a path never reads the other region (zeros),
            # written block by block into one buffer (2x faster on CPU than concatenating)
            out = f.new_empty(Bt, HW + hw, Kf + Kl, f.shape[-1])
            out[:, :HW, :Kf] = f
            out[:, :HW, Kf:] = 0
            out[:, HW:, :Kf] = 0
            out[:, HW:, Kf:] = lo[:, :, None]
            return out

        A, D, delta_bias, dt_w = self._path_params()
        y = selective_scan(
            u, per_path(dt_f, dt_l), A, per_path(B_f, B_l), per_path(C_f, C_l),
            D=D, delta_bias=delta_bias, delta_softplus=True, order=self.scan.orders(H, W, x.device),
            dt_proj_weight=dt_w,
        )
        y_full = y[:, :HW, :Kf]  # (Bt, HW, Kf, Di)
        y_low = y[:, HW:, Kf:]  # (Bt, hw, Kl, Di)
        if self.chain_low_paths and Kl > 1:
            orders = self.scan.orders(H, W, x.device)
            perms = [orders[Kf + p, :hw].long() - HW for p in range(Kl)]
            delta_l = F.softplus(dt_l.float() @ dt_w[Kf].t() + delta_bias[Kf], beta=1.0, threshold=20.0)
            y_low = y_low + chained_state_correction(u[:, HW:], delta_l, A[Kf], B_l, C_l, perms).to(y_low.dtype)
        y_full = self.out_norm(y_full.to(x.dtype)).sum(2).reshape(Bt, H, W, Di)
        y_low = self.out_norm(y_low.to(x.dtype)).sum(2).reshape(Bt, h, w, Di).permute(0, 3, 1, 2)
        y_low = F.interpolate(y_low, size=(H, W), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
        y = self.se(y_full + y_low) * self.act(z)
        return self.proj_drop(self.out_proj(y))


class ConvFFN(nn.Module):
    """MSVMamba's feed-forward: 1x1 conv, ``x + dwconv3x3(x)``, GELU, 1x1 conv (NCHW)."""

    def __init__(
            self,
            dim: int,
            expansion: int = 2,
            drop: float = 0.0,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        hidden = dim * expansion
        self.linear1 = nn.Conv2d(dim, hidden, 1, **dd)
        self.drop1 = nn.Dropout(drop)
        self.dwc = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, **dd)
        self.act = nn.GELU()
        self.linear2 = nn.Conv2d(hidden, dim, 1, **dd)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.linear1(x))
        x = self.act(x + self.dwc(x))
        return self.drop2(self.linear2(x))


class MSVMambaBlock(nn.Module):
    """``x + drop_path(MS2D(LN(x)))``, then ``x + drop_path(ConvFFN(LN(x)))`` (channels-last)."""

    def __init__(
            self,
            dim: int,
            drop_path: float = 0.0,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            ffn_expansion: int = 2,
            ffn_drop: float = 0.0,
            mixer_kwargs: Dict[str, Any] | None = None,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm1 = norm_layer(dim, **dd)
        self.mixer = MultiScaleSS2D(dim, norm_layer=norm_layer, **(mixer_kwargs or {}), **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim, **dd)
        self.ffn = ConvFFN(dim, ffn_expansion, drop=ffn_drop, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


class MSVMambaStage(nn.Module):
    """An optional patch merging (all stages but the first) followed by ``depth`` MSVMamba blocks."""

    def __init__(
            self,
            dim: int,
            out_dim: int,
            depth: int,
            downsample: bool = False,
            drop_path: Sequence[float] = (),
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            block_kwargs: Dict[str, Any] | None = None,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.grad_checkpointing = False
        self.downsample = PatchMerging(dim, out_dim, norm_layer=norm_layer, **dd) if downsample else nn.Identity()
        drop_path = list(drop_path) or [0.0] * depth
        self.blocks = nn.Sequential(*[
            MSVMambaBlock(out_dim, drop_path=drop_path[i], norm_layer=norm_layer, **(block_kwargs or {}), **dd)
            for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class MSVMamba(HierarchicalModel):
    """MSVMamba for image classification, timm-style, channels-last inside."""

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            depths: Sequence[int] = (1, 2, 9, 2),
            dims: Union[int, Sequence[int]] = 96,
            patch_size: int = 4,
            scan: MultiScaleScan | Dict[str, Any] | None = None,
            d_state: int = 1,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            ssm_conv: int = 3,
            low_conv: int = 7,
            ssm_conv_bias: bool = True,
            se_reduction: int = 8,
            chain_low_paths: bool = True,
            ffn_expansion: int = 2,
            norm_eps: float = 1e-5,
            drop_rate: float = 0.0,
            ssm_drop_rate: float = 0.0,
            ffn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            in_chans: Input image channels.
            num_classes: Classifier outputs (0: no classifier).
            global_pool: ``'avg'``, ``'max'``, ``'avgmax'`` or ``''`` (none).
            depths: Blocks per stage.
            dims: Width per stage, or the first width (doubled per stage).
            patch_size: Stem stride.
            scan: The multi-scale scan, or its arguments as a dict (default: MSVMamba's, stride 2, 1 + 3 paths).
            d_state: SSM state size (MSVMamba: 1).
            ssm_ratio: Mixer inner width ratio.
            dt_rank: dt projection rank or ``'auto'`` (``ceil(dim / 16)``).
            ssm_conv: Full-resolution depthwise conv size.
            low_conv: Down-sampling depthwise conv size.
            ssm_conv_bias: Bias of both convs.
            se_reduction: Squeeze-excitation reduction in the mixer (0: none).
            chain_low_paths: Carry states across the down-sampled paths, as the official code.
            ffn_expansion: ConvFFN hidden width ratio.
            norm_eps: LayerNorm epsilon.
            drop_rate: Dropout before the classifier.
            ssm_drop_rate: Dropout after the mixer's out-projection.
            ffn_drop_rate: ConvFFN dropout (the official ``FFN_DROPOUT``).
            drop_path_rate: Stochastic depth, linearly increasing over all blocks up to this value.
            device: Parameter device (``'meta'`` works, e.g. to count parameters).
            dtype: Parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        num_stages = len(depths)
        if isinstance(dims, int):
            dims = [dims * 2 ** i for i in range(num_stages)]
        dims = [int(d) for d in dims]
        if len(dims) != num_stages:
            raise ValueError(f"dims ({dims}) and depths ({list(depths)}) must have one entry per stage")
        if isinstance(scan, str) and scan == "multiscale":
            scan = None
        elif isinstance(scan, dict) and scan.get("type", "multiscale") == "multiscale":
            scan = MultiScaleScan(**{k: v for k, v in scan.items() if k != "type"})
        if scan is not None and not isinstance(scan, MultiScaleScan):
            raise ValueError(f"MSVMamba scans two resolutions at once and takes a multi-scale scan "
                             f"(vssm.scans.multiscale.MultiScaleScan, 'multiscale' or a dict of its arguments); got "
                             f"{scan!r}, which indexes a single map")
        self.scan = scan if scan is not None else MultiScaleScan()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.output_fmt = "NHWC"
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.stem = PatchEmbedStem(in_chans, dims[0], patch_size, norm_layer=norm_layer, **dd)
        dpr = drop_path_rates(drop_path_rate, depths, per_stage=True, float64=True)
        mixer_kwargs = dict(scan=self.scan, d_state=d_state, ssm_ratio=ssm_ratio, dt_rank=dt_rank, d_conv=ssm_conv,
                            low_conv=low_conv, conv_bias=ssm_conv_bias, se_reduction=se_reduction,
                            chain_low_paths=chain_low_paths, proj_drop=ssm_drop_rate)
        block_kwargs = dict(ffn_expansion=ffn_expansion, ffn_drop=ffn_drop_rate, mixer_kwargs=mixer_kwargs)
        self.stages = nn.Sequential()
        self.feature_info = []
        prev, reduction = dims[0], patch_size
        for i, depth in enumerate(depths):
            if i > 0:
                reduction *= 2
            self.stages.append(MSVMambaStage(
                prev, dims[i], depth, downsample=i > 0, drop_path=dpr[i], norm_layer=norm_layer,
                block_kwargs=block_kwargs, **dd,
            ))
            self.feature_info.append(dict(num_chs=dims[i], reduction=reduction, module=f"stages.{i}"))
            prev = dims[i]

        self.num_features = self.head_hidden_size = dims[-1]
        self.norm = norm_layer(self.num_features, **dd)
        self.head = ClassifierHead(
            self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, input_fmt=self.output_fmt,
            **dd,
        )
        self.apply(self._init_weights)


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints

_BLOCK_NAMES = {
    "norm": "norm1", "op": "mixer", "convFFN": "ffn", "norm2": "norm2",
}
_MIXER_NAMES = {
    "dt_projs_weight": "dt_proj_weight", "dt_projs_bias": "dt_proj_bias", "A_logs": "A_log", "Ds": "D",
    "conv2d_b1": "conv2d_low",
}
_BLOCK_RE = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.([A-Za-z0-9_]+)\.(.*)$")


def _official_key(key: str) -> str | None:
    """Maps one official MSVMamba (``VSSM``) key to this model's key (unknown keys pass through unchanged)."""
    if key.startswith("patch_embed.0."):
        return "stem.proj." + key[len("patch_embed.0."):]
    if key.startswith("patch_embed.2."):
        return "stem.norm." + key[len("patch_embed.2."):]
    if key.startswith("classifier.norm."):
        return "norm." + key[len("classifier.norm."):]
    if key.startswith("classifier.head."):
        return "head.fc." + key[len("classifier.head."):]
    m = re.match(r"^layers\.(\d+)\.downsample\.(.*)$", key)
    if m:
        return f"stages.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
    m = _BLOCK_RE.match(key)
    if m:
        i, j, part, rest = m.groups()
        part = _BLOCK_NAMES.get(part, part)
        if part == "mixer":
            head, dot, tail = rest.partition(".")
            rest = _MIXER_NAMES.get(head, head) + dot + tail
        return f"stages.{i}.blocks.{j}.{part}.{rest}"
    return key


def checkpoint_filter_fn(
        state_dict: Dict[str, Any],
        model: MSVMamba,
        use_ema: bool | None = None,
) -> Dict[str, torch.Tensor]:
    """Converts an official MSVMamba (v1) checkpoint to this model's keys, strictly.

    Handles training checkpoints wrapped in ``'model'`` / ``'model_ema'`` / ``'state_dict'`` (with ``module.``
    prefixes) and the official names (``patch_embed.0/2``, ``layers.i.blocks.j.{norm, op, norm2, convFFN}``,
    ``op.conv2d_b1``, stacked ``dt_projs_*``, flattened ``A_logs (P*D, N)`` / ``Ds (P*D)``, ``layers.i.downsample``
    moved to ``stages.{i+1}.downsample``, ``classifier.norm`` / ``classifier.head``). A state dict already in this
    layout is checked and returned.

    Args:
        state_dict: The loaded checkpoint.
        model: The target model (its shapes decide the reshapes).
        use_ema: Prefer EMA weights in a wrapped checkpoint (None: the pretrained cfg's ``use_ema``, default True).

    Returns:
        A state dict with exactly the model's keys (the classifier is left for timm to adapt).

    Raises:
        vssm.checkpoint.CheckpointError: Naming the missing / unexpected keys and shape mismatches.
    """
    sd = unwrap_state_dict(state_dict, use_ema=resolve_use_ema(model, use_ema))
    if not any(k.startswith(("stem.", "stages.")) for k in sd):
        target = model.state_dict()
        sd = rename_keys(sd, _official_key)
        sd = {k: reshape_like(v, target[k].shape if k in target else None) for k, v in sd.items()}
    check_state_dict(sd, model, ignore_prefixes=("head.fc.",), family="MSVMamba")
    return sd


# ----------------------------------------------------------------------------------------------------------------
# Configurations

def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    return {
        "url": url,
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.proj", "classifier": "head.fc",
        "license": "unknown", "paper_ids": "arXiv:2405.14174",
        "paper_name": "Multi-Scale VMamba: Hierarchy in Hierarchy Visual State Space Model",
        **kwargs,
    }


# The official releases are only in Google Drive folders, which a plain HTTP request cannot fetch: pretrained=True
# names the folder and the cache path where the downloaded file is picked up (file_name). The official repository has
# no license file.
_DRIVE = "https://drive.google.com/drive/folders/"
default_cfgs = generate_default_cfgs({
    "msvmamba_nano.in1k": _cfg(
        file_name="msvmamba_nano_in1k.pth", origin_url=_DRIVE + "1J41w3ApitQhp2O3wHmJoOs4U032uqebK",
        top1=77.3, gflops=0.9),
    "msvmamba_micro.in1k": _cfg(
        file_name="msvmamba_micro_in1k.pth", origin_url=_DRIVE + "1jfl2GmuKcUB8sPwRlyHK_wT0MjqgljYk",
        top1=79.8, gflops=1.5),
    "msvmamba_tiny.in1k": _cfg(
        file_name="msvmamba_tiny_in1k.pth", origin_url=_DRIVE + "1ddNWk89ohcxxMuVEaJ2Y5A6xeBKgA7lU",
        top1=82.8, gflops=4.6),
    "test_msvmamba": _cfg(input_size=(3, 32, 32), pool_size=(1, 1), crop_pct=1.0),
})


def _create_msvmamba(variant: str, pretrained: bool = False, **kwargs: Any) -> MSVMamba:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (1, 2, 9, 2))))))
    return build_model_with_cfg(
        MSVMamba, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter", flatten_sequential=True),
        **kwargs,
    )


@register_model
def msvmamba_nano(pretrained: bool = False, **kwargs: Any) -> MSVMamba:
    """MSVMamba-N (6.9M): dims 48, depths (1, 2, 5, 2) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(1, 2, 5, 2), dims=48)
    return _create_msvmamba("msvmamba_nano", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def msvmamba_micro(pretrained: bool = False, **kwargs: Any) -> MSVMamba:
    """MSVMamba-M (11.9M): dims 64, depths (1, 2, 5, 2) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(1, 2, 5, 2), dims=64)
    return _create_msvmamba("msvmamba_micro", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def msvmamba_tiny(pretrained: bool = False, **kwargs: Any) -> MSVMamba:
    """MSVMamba-T (33.0M): dims 96, depths (1, 2, 9, 2) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(1, 2, 9, 2), dims=96)
    return _create_msvmamba("msvmamba_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_msvmamba(pretrained: bool = False, **kwargs: Any) -> MSVMamba:
    """Tiny MSVMamba for fast tests: dims (16, 24, 32, 32), depths (1, 2, 1, 1)."""
    model_args = dict(depths=(1, 2, 1, 1), dims=(16, 24, 32, 32))
    return _create_msvmamba("test_msvmamba", pretrained=pretrained, **dict(model_args, **kwargs))
