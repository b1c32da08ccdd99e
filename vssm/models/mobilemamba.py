"""MobileMamba: a lightweight multi-receptive visual Mamba.

He et al., "MobileMamba: Lightweight Multi-Receptive Visual Mamba Network", CVPR 2025 (arXiv:2411.15941),
https://github.com/lewandofskee/MobileMamba.

The network follows the official ``MobileMamba``: a stride-16 stem of four 3x3 stride-2 conv + BN layers (ReLU
between them), three stages at strides 16 / 32 / 64, average pooling and a BatchNorm1d + linear classifier. Between
stages a down-sampler runs a residual depthwise conv and FFN, an inverted patch merging (1x1 to 4x, depthwise 3x3
stride 2, squeeze-excite, 1x1) and again a residual depthwise conv and FFN. A block is::

    y = x + dw0(x);  y = y + ffn0(y);  y = y + mixer(y);  y = y + dw1(y);  y = y + ffn1(y)
    out = x + drop_path(y)            (the official block adds its input once more: out = 2x + ...)

The mixer (the multi-receptive field feature interaction, MRFFI) splits the channels into ``global | local |
identity`` parts and projects their concatenation back (ReLU, 1x1 conv + BN):

* global: a wavelet-enhanced Mamba (WTE-Mamba): ``base_scale * SSM(x) + IWT(scale * dwconv(WT(x)))`` with a
  one-level Haar transform (the four 2x2 filters, frozen parameters as in the official code, zero padding of odd
  maps at the bottom / right, cropped after the inverse transform). ``SSM`` is the official ``SS2D`` of its "v052d"
  form: 1x1 conv + BN input projection to ``(x, z)``, depthwise 3x3 conv (with bias) and SiLU on ``x``, a selective
  scan with ``d_state = 1`` over two paths (the row-major raster and its reverse: the ``bidirectional`` scan) with
  the rank-``ceil(C / 16)`` step size, the paths summed, LayerNorm over channels, times ``SiLU(z)``, 1x1 conv + BN
  output projection. Here it runs on the one ordered selective-scan op: no flipped copies of the map are made.
* local: depthwise ``k x k`` conv + BN + ReLU, then a per-channel 1x1 conv + BN (multi-kernel, ``k`` = 7 / 5 / 3).
* identity: passed through.

The global part has ``round16(global_ratio * C)`` channels (to the nearer multiple of 16, ties up), the local part
``int(local_ratio * C)`` (clipped to what is left), the identity part the rest.

Deployment: every conv + BN pair and the classifier's BatchNorm1d + linear fold into one layer
(``timm.utils.reparameterize_model(model)``, or ``model.fuse()`` in place), the official ``replace_batchnorm``.

Layout: NCHW throughout; ``forward_features`` returns the ``(B, C, H / 64, W / 64)`` map.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, SelectAdaptivePool2d, SqueezeExcite, trunc_normal_
from timm.models import checkpoint_seq, register_model

from ..checkpoint import check_state_dict, resolve_use_ema, unwrap_state_dict
from ..layers._fx import register_notrace_module
from ..layers.drop import drop_path_rates
from ..layers.ssm import selective_ssm
from ._builder import build_model_with_cfg
from ._cfg import generate_default_cfgs
from ._hierarchical import HierarchicalModel

__all__ = ["MobileMamba", "MOBILEMAMBA_CFGS", "split_channels", "checkpoint_filter_fn"]

# (embed dims, depths, drop path) of each released size; every size: global ratios (0.8, 0.7, 0.6), local
# (0.2, 0.2, 0.3), kernels (7, 5, 3), ssm_ratio 2. B2 / B4 are B1 trained at 384 / 512.
MOBILEMAMBA_CFGS: Dict[str, Dict[str, Any]] = {
    "t2": dict(embed_dims=(144, 272, 368), depths=(1, 2, 2)),
    "t4": dict(embed_dims=(176, 368, 448), depths=(1, 2, 2)),
    "s6": dict(embed_dims=(192, 384, 448), depths=(1, 2, 2)),
    "b1": dict(embed_dims=(200, 376, 448), depths=(2, 3, 2), drop_path_rate=0.03),
}


def split_channels(dim: int, global_ratio: float, local_ratio: float) -> Tuple[int, int, int]:
    """``(global, local, identity)`` channels of a mixer of width ``dim`` (the official rule)."""
    n = int(global_ratio * dim)
    lower = n // 16 * 16
    g = lower if n - lower < lower + 16 - n else lower + 16
    l_ = int(local_ratio * dim)
    if g + l_ > dim:
        l_ = dim - g
    return g, l_, dim - g - l_


class ConvNorm(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d; ``fuse()`` returns the one Conv2d with bias they compute in eval mode."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, bn_weight_init: float = 1.0):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.zeros_(self.bn.bias)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        c, bn = self.conv, self.bn
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups,
                          bias=True, device=c.weight.device, dtype=c.weight.dtype)
        fused.weight.copy_(c.weight * s[:, None, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * s)
        return fused


class FFN(nn.Module):
    """1x1 conv + BN to ``hidden``, ReLU, 1x1 conv + BN back (its BN starts at 0: the residual starts as identity)."""

    def __init__(self, dim: int, hidden: int, zero_init_last: bool = True):
        super().__init__()
        self.pw1 = ConvNorm(dim, hidden)
        self.act = nn.ReLU()
        self.pw2 = ConvNorm(hidden, dim, bn_weight_init=0.0 if zero_init_last else 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


class ConvFFN(nn.Module):
    """The down-sampler's residual depthwise 3x3 conv + BN and residual FFN."""

    def __init__(self, dim: int, zero_init_last: bool = True):
        super().__init__()
        self.dw = ConvNorm(dim, dim, 3, 1, 1, groups=dim)
        self.ffn = FFN(dim, 2 * dim, zero_init_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dw(x)
        return x + self.ffn(x)


class PatchMerging(nn.Module):
    """Inverted stride-2 merging: 1x1 to ``4 * dim``, ReLU, depthwise 3x3 stride 2, ReLU, squeeze-excite, 1x1."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        hidden = 4 * dim
        self.conv1 = ConvNorm(dim, hidden)
        self.act = nn.ReLU()
        self.conv2 = ConvNorm(hidden, hidden, 3, 2, 1, groups=hidden)
        self.se = SqueezeExcite(hidden, rd_ratio=0.25)
        self.conv3 = ConvNorm(hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.se(self.act(self.conv2(self.act(self.conv1(x))))))


class Downsample(nn.Sequential):
    def __init__(self, dim: int, out_dim: int, zero_init_last: bool = True):
        super().__init__(ConvFFN(dim, zero_init_last), PatchMerging(dim, out_dim), ConvFFN(out_dim, zero_init_last))


class BidirectionalSSM(nn.Module):
    """The official ``SS2D`` ("v052d", d_state 1, two paths: raster and reversed raster) on the ordered op, NCHW."""

    def __init__(self, dim: int, ssm_ratio: float = 2.0, d_state: int = 1):
        super().__init__()
        from vssm.scans import get_scan

        di = int(ssm_ratio * dim)
        R = -(-dim // 16)
        K = 2
        self.scan = get_scan("bidirectional")
        self.in_proj = ConvNorm(dim, 2 * di)
        self.conv2d = nn.Conv2d(di, di, 3, padding=1, groups=di, bias=True)
        self.x_proj_weight = nn.Parameter(torch.empty(K, R + 2 * d_state, di))
        self.dt_proj_weight = nn.Parameter(torch.empty(K, di, R))
        self.dt_proj_bias = nn.Parameter(torch.empty(K, di))
        self.A_log = nn.Parameter(torch.zeros(K, di, d_state))
        self.D = nn.Parameter(torch.ones(K, di))
        self.out_norm = nn.LayerNorm(di)
        self.out_proj = ConvNorm(di, dim)
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self) -> None:
        """The official "v2" init: ``A = -1``, ``D = 1``, dt weight and bias ``0.1 * U[0, 1)``, ``x_proj`` as
        ``nn.Linear``."""
        bound = self.x_proj_weight.shape[-1] ** -0.5
        nn.init.uniform_(self.x_proj_weight, -bound, bound)
        self.dt_proj_weight.uniform_(0, 0.1)
        self.dt_proj_bias.uniform_(0, 0.1)
        self.A_log.zero_()
        self.D.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        x, z = self.in_proj(x).chunk(2, dim=1)
        u = F.silu(self.conv2d(x)).flatten(2).transpose(1, 2)           # (B, L, Di), spatial order
        y = selective_ssm(u, self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                          self.scan.orders(H, W, device=u.device), merge="sum")
        y = self.out_norm(y).to(x.dtype).transpose(1, 2).reshape(B, y.shape[-1], H, W)  # (an empty batch: no -1)
        return self.out_proj(y * F.silu(z))


def _haar_filters(channels: int) -> torch.Tensor:
    """The four 2x2 Haar filters (LL, rows, columns, diagonal), tiled per channel: ``(4 C, 1, 2, 2)``."""
    f = 0.5 * torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [-1.0, -1.0]],
                            [[1.0, -1.0], [1.0, -1.0]], [[1.0, -1.0], [-1.0, 1.0]]])
    return f.repeat(channels, 1, 1).unsqueeze(1)


@register_notrace_module
class WaveletMamba(nn.Module):
    """WTE-Mamba: ``base_scale * SSM(x) + IWT(wavelet_scale * dwconv_k(WT(x)))``, one Haar level."""

    def __init__(self, dim: int, kernel_size: int, ssm_ratio: float = 2.0):
        super().__init__()
        self.dim = dim
        # frozen, as in the official code (they are part of its state dict and of its parameter count)
        self.wt_filter = nn.Parameter(_haar_filters(dim), requires_grad=False)
        self.iwt_filter = nn.Parameter(_haar_filters(dim), requires_grad=False)
        self.ssm = BidirectionalSSM(dim, ssm_ratio)
        self.base_scale = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.wavelet_conv = nn.Conv2d(4 * dim, 4 * dim, kernel_size, padding=kernel_size // 2, groups=4 * dim,
                                      bias=False)
        self.wavelet_scale = nn.Parameter(torch.full((1, 4 * dim, 1, 1), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        xp = F.pad(x, (0, W % 2, 0, H % 2)) if H % 2 or W % 2 else x
        bands = F.conv2d(xp, self.wt_filter.to(x.dtype), stride=2, groups=self.dim)
        bands = self.wavelet_conv(bands) * self.wavelet_scale
        x_tag = F.conv_transpose2d(bands, self.iwt_filter.to(x.dtype), stride=2, groups=self.dim)[..., :H, :W]
        return self.base_scale * self.ssm(x) + x_tag


class LocalConv(nn.Module):
    """Depthwise ``k x k`` conv + BN, ReLU, per-channel 1x1 conv + BN."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.dw = ConvNorm(dim, dim, kernel_size, 1, kernel_size // 2, groups=dim)
        self.act = nn.ReLU()
        self.pw = ConvNorm(dim, dim, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.act(self.dw(x)))


class MRFFI(nn.Module):
    """The multi-receptive mixer: ``global | local | identity`` channels, concatenated, ReLU, 1x1 conv + BN."""

    def __init__(self, dim: int, global_ratio: float, local_ratio: float, kernel_size: int, ssm_ratio: float,
                 zero_init_last: bool = True):
        super().__init__()
        self.splits = split_channels(dim, global_ratio, local_ratio)
        g, l_, _ = self.splits
        self.global_op = WaveletMamba(g, kernel_size, ssm_ratio) if g else nn.Identity()
        self.local_op = LocalConv(l_, kernel_size) if l_ else nn.Identity()
        self.act = nn.ReLU()
        self.proj = ConvNorm(dim, dim, bn_weight_init=0.0 if zero_init_last else 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xg, xl, xi = torch.split(x, self.splits, dim=1)
        return self.proj(self.act(torch.cat([self.global_op(xg), self.local_op(xl), xi], dim=1)))


class MobileMambaBlock(nn.Module):
    """Residual depthwise conv, FFN, MRFFI mixer, depthwise conv, FFN; then the block input added once more."""

    def __init__(self, dim: int, global_ratio: float, local_ratio: float, kernel_size: int, ssm_ratio: float,
                 drop_path: float = 0.0, zero_init_last: bool = True):
        super().__init__()
        z = 0.0 if zero_init_last else 1.0
        self.dw0 = ConvNorm(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=z)
        self.ffn0 = FFN(dim, 2 * dim, zero_init_last)
        self.mixer = MRFFI(dim, global_ratio, local_ratio, kernel_size, ssm_ratio, zero_init_last)
        self.dw1 = ConvNorm(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=z)
        self.ffn1 = FFN(dim, 2 * dim, zero_init_last)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.dw0(x)
        y = y + self.ffn0(y)
        y = y + self.mixer(y)
        y = y + self.dw1(y)
        y = y + self.ffn1(y)
        return x + self.drop_path(y)


class MobileMambaStage(nn.Module):
    def __init__(self, in_dim: int, dim: int, depth: int, global_ratio: float, local_ratio: float,
                 kernel_size: int, ssm_ratio: float, drop_path: Sequence[float], downsample: bool,
                 zero_init_last: bool = True):
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = Downsample(in_dim, dim, zero_init_last) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[
            MobileMambaBlock(dim, global_ratio, local_ratio, kernel_size, ssm_ratio, drop_path[i], zero_init_last)
            for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class MobileMambaHead(nn.Module):
    """Global pool, BatchNorm1d, linear classifier (the official ``BN_Linear``); ``reparameterize()`` folds the
    BatchNorm into the linear layer."""

    def __init__(self, in_features: int, num_classes: int, pool_type: str = "avg", drop_rate: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.drop_rate = drop_rate
        self.global_pool = self._pool(pool_type, num_classes)
        self.norm = nn.BatchNorm1d(self.global_pool.feat_mult() * in_features) if num_classes else nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.fc = self._fc(num_classes)

    @staticmethod
    def _pool(pool_type: str, num_classes: int) -> SelectAdaptivePool2d:
        if not pool_type and num_classes:
            raise ValueError(f"global_pool: got {pool_type!r} with num_classes={num_classes}; allowed: a pool type "
                             "(the classifier is BatchNorm1d + linear on pooled features), or num_classes=0")
        return SelectAdaptivePool2d(pool_type=pool_type, flatten=bool(pool_type))

    def _fc(self, num_classes: int) -> nn.Module:
        if not num_classes:
            return nn.Identity()
        fc = nn.Linear(self.global_pool.feat_mult() * self.in_features, num_classes)
        trunc_normal_(fc.weight, std=0.02)
        nn.init.zeros_(fc.bias)
        return fc

    def reset(self, num_classes: int, pool_type: Optional[str] = None) -> None:
        if pool_type is not None:
            self.global_pool = self._pool(pool_type, num_classes)
        feats = self.global_pool.feat_mult() * self.in_features
        self.norm = nn.BatchNorm1d(feats) if num_classes else nn.Identity()
        self.fc = self._fc(num_classes)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if not isinstance(self.norm, nn.BatchNorm1d) or not isinstance(self.fc, nn.Linear):
            return
        bn, fc = self.norm, self.fc
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = fc.bias + fc.weight @ (bn.bias - bn.running_mean * s)
        fc.weight.mul_(s[None, :])
        fc.bias.copy_(bias)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.global_pool(x))
        if pre_logits:
            return x
        return self.fc(self.norm(x))


class MobileMamba(HierarchicalModel):
    """MobileMamba for image classification and dense prediction (three stages, strides 16 / 32 / 64), timm-style."""

    no_weight_decay_names = ("A_log", "D", "dt_proj_bias")

    def __init__(
            self,
            embed_dims: Sequence[int] = (144, 272, 368),
            depths: Sequence[int] = (1, 2, 2),
            global_ratios: Sequence[float] = (0.8, 0.7, 0.6),
            local_ratios: Sequence[float] = (0.2, 0.2, 0.3),
            kernel_sizes: Sequence[int] = (7, 5, 3),
            ssm_ratio: float = 2.0,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            zero_init_last: bool = True,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            embed_dims: width of each stage (the stem ends at the first).
            depths: blocks per stage.
            global_ratios, local_ratios: the mixer's channel split per stage (see ``split_channels``).
            kernel_sizes: kernel of the local branch and of the wavelet conv, per stage.
            ssm_ratio: inner width of the selective-scan branch over its input width.
            in_chans: input image channels.
            num_classes: classifier outputs (0: no classifier).
            global_pool: ``'avg'`` (published), ``'max'``, ``'avgmax'``, ... (timm's pool types).
            drop_rate: dropout before the classifier.
            drop_path_rate: stochastic depth, rising linearly over the blocks (not the down-samplers).
            zero_init_last: start the BatchNorm that ends each residual branch (depthwise convs, FFNs, mixer
                projection) at weight 0, as the official code does (timm's ``zero_init_last``).
            device: parameter device (``'meta'`` works, e.g. to count parameters).
            dtype: parameter dtype.
        """
        super().__init__()
        with torch.device(device) if device is not None else contextlib.nullcontext():
            self._build(embed_dims, depths, global_ratios, local_ratios, kernel_sizes, ssm_ratio, in_chans,
                        num_classes, global_pool, drop_rate, drop_path_rate, zero_init_last)
        if dtype is not None:
            self.to(dtype)

    def _build(self, embed_dims, depths, global_ratios, local_ratios, kernel_sizes, ssm_ratio, in_chans, num_classes,
               global_pool, drop_rate, drop_path_rate, zero_init_last) -> None:
        lengths = {len(embed_dims), len(depths), len(global_ratios), len(local_ratios), len(kernel_sizes)}
        if len(lengths) != 1:
            raise ValueError(f"embed_dims / depths / global_ratios / local_ratios / kernel_sizes: got lengths "
                             f"{sorted(lengths)}; allowed: one length (the number of stages)")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.output_fmt = "NCHW"
        e0 = embed_dims[0]
        self.stem = nn.Sequential(
            ConvNorm(in_chans, e0 // 8, 3, 2, 1), nn.ReLU(), ConvNorm(e0 // 8, e0 // 4, 3, 2, 1), nn.ReLU(),
            ConvNorm(e0 // 4, e0 // 2, 3, 2, 1), nn.ReLU(), ConvNorm(e0 // 2, e0, 3, 2, 1),
        )
        dpr = drop_path_rates(drop_path_rate, depths, per_stage=True)
        stages, info, prev = [], [], e0
        for i, (dim, depth) in enumerate(zip(embed_dims, depths)):
            stages.append(MobileMambaStage(prev, dim, depth, global_ratios[i], local_ratios[i], kernel_sizes[i],
                                           ssm_ratio, dpr[i], downsample=i > 0, zero_init_last=zero_init_last))
            info.append(dict(num_chs=dim, reduction=16 * 2 ** i, module=f"stages.{i}"))
            prev = dim
        self.stages = nn.Sequential(*stages)
        self.feature_info = info
        self.num_features = self.head_hidden_size = prev
        self.norm = nn.Identity()
        self.head = MobileMambaHead(prev, num_classes, global_pool, drop_rate)

    @torch.jit.ignore
    def fuse(self) -> MobileMamba:
        """Folds every conv + BN pair and the classifier's BatchNorm1d in place (eval-mode deployment form)."""
        from timm.models import reparameterize_model

        return reparameterize_model(self, inplace=True)


# ----------------------------------------------------------------------------------------------------------------
# official checkpoints

_RENAMES: List[Tuple[str, str]] = [
    (r"^patch_embed\.", "stem."),
    (r"^head\.bn\.", "head.norm."),
    (r"^head\.l\.", "head.fc."),
    (r"\.mixer\.m\.attn\.", ".mixer."),
    (r"\.(dw[01])\.m\.", r".\1."),
    (r"\.(ffn[01])\.m\.", r".\1."),
    (r"\.global_op\.global_atten\.", ".global_op.ssm."),
    (r"\.global_op\.base_scale\.weight$", ".global_op.base_scale"),
    (r"\.global_op\.wavelet_convs\.0\.", ".global_op.wavelet_conv."),
    (r"\.global_op\.wavelet_scale\.0\.weight$", ".global_op.wavelet_scale"),
    (r"\.local_op\.dwconv3x3\.", ".local_op.dw.conv."),
    (r"\.local_op\.bn1\.", ".local_op.dw.bn."),
    (r"\.local_op\.dwconv1x1\.", ".local_op.pw.conv."),
    (r"\.local_op\.bn2\.", ".local_op.pw.bn."),
    (r"\.proj\.1\.", ".proj."),
    (r"\.ssm\.dt_projs_weight$", ".ssm.dt_proj_weight"),
    (r"\.ssm\.dt_projs_bias$", ".ssm.dt_proj_bias"),
    (r"\.ssm\.A_logs$", ".ssm.A_log"),
    (r"\.ssm\.Ds$", ".ssm.D"),
]


def _stage_key(key: str) -> str:
    """``blocks1.j`` -> ``stages.0.blocks.j``; ``blocksS.0-2`` -> the down-sampler, ``blocksS.(j+3)`` -> block j."""
    m = re.match(r"^blocks(\d+)\.(\d+)\.(.*)$", key)
    if not m:
        return key
    s, j, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
    if s == 0:
        return f"stages.0.blocks.{j}.{rest}"
    if j < 3:  # [ConvFFN, PatchMerging, ConvFFN]: Residual(dw conv) -> .dw, Residual(FFN) -> .ffn
        if j != 1:
            rest = re.sub(r"^0\.m\.", "dw.", rest)
            rest = re.sub(r"^1\.m\.", "ffn.", rest)
        return f"stages.{s}.downsample.{j}.{rest}"
    return f"stages.{s}.blocks.{j - 3}.{rest}"


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: MobileMamba, use_ema: Optional[bool] = None
                         ) -> Dict[str, torch.Tensor]:
    """An official MobileMamba state dict (or a training file's dict holding one: ``net`` / ``net_E``, the EMA) ->
    this model's keys and shapes, strictly (``vssm.checkpoint.CheckpointError`` names what does not fit)."""
    use_ema = resolve_use_ema(model, use_ema)
    if isinstance(state_dict, dict) and ("net" in state_dict or "net_E" in state_dict):
        state_dict = state_dict["net_E" if use_ema and "net_E" in state_dict else "net"]
    sd = unwrap_state_dict(state_dict, use_ema=use_ema)
    if any(k.startswith("stages.") for k in sd):  # already ours
        return sd
    out = {}
    for k, v in sd.items():
        k = _stage_key(k)
        k = k.replace(".c.weight", ".conv.weight") if k.endswith(".c.weight") else k
        for pat, rep in _RENAMES:
            k = re.sub(pat, rep, k)
        out[k] = v
    target = model.state_dict()
    for k in list(out):
        t = target.get(k)
        if t is not None and out[k].shape != t.shape and out[k].numel() == t.numel():
            out[k] = out[k].reshape(t.shape)  # A_logs (K*D, N) -> (K, D, N), Ds (K*D,) -> (K, D)
    check_state_dict(out, model, family="official MobileMamba")
    return out


# ----------------------------------------------------------------------------------------------------------------
# pretrained cfgs and entrypoints

def _cfg(file_id: str = "", side: int = 224, **kwargs: Any) -> Dict[str, Any]:
    release = dict(origin_url=f"https://drive.google.com/file/d/{file_id}/view", file_name=kwargs.pop("file_name"),
                   ) if file_id else {}
    return {
        "url": "", "num_classes": 1000, "input_size": (3, side, side), "pool_size": (-(-side // 64),) * 2,
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.0.conv", "classifier": "head.fc",
        "license": "apache-2.0", "paper_ids": "arXiv:2411.15941",
        "paper_name": "MobileMamba: Lightweight Multi-Receptive Visual Mamba Network",
        **release, **kwargs,
    }


# The official releases are single Google Drive files, which a plain HTTP request cannot fetch: pretrained=True names
# the file's page and the cache path where the downloaded file is picked up (file_name). `in1k_dist`: the
# knowledge-distilled models of the paper (a TResNet-L teacher, 1000 epochs; the README's dagger rows), the same
# architectures. B2 / B4 are B1 trained and tested at 384 / 512. top-1 and GFLOPs as the README's table prints them
# (T2: 71.5 there, while its test command and training log give 73.6).
default_cfgs = generate_default_cfgs({
    "mobilemamba_t2.in1k": _cfg("1LXh5wjVEUu5Kj1foclC9zmlKsy7JpMQ-", 192, file_name="mobilemamba_t2.pth",
                                top1=71.5, gflops=0.255),
    "mobilemamba_t2.in1k_dist": _cfg("14UUeEeN62a1jo5qit-m0yChQnNU8JWQG", 192, file_name="mobilemamba_t2s.pth",
                                     top1=76.9, gflops=0.255),
    "mobilemamba_t4.in1k": _cfg("17-5Q93_cEhBYMDzWTq4sDcc4_c_ezwpd", 192, file_name="mobilemamba_t4.pth",
                                top1=76.1, gflops=0.413),
    "mobilemamba_t4.in1k_dist": _cfg("12e1RKJEYDWVjOZuQLycjOUkA5PqCUnwu", 192, file_name="mobilemamba_t4s.pth",
                                     top1=78.9, gflops=0.413),
    "mobilemamba_s6.in1k": _cfg("13en_zNB2wuHmnHKZMUQDe4KizlaTCHbP", 224, file_name="mobilemamba_s6.pth",
                                top1=78.0, gflops=0.652),
    "mobilemamba_s6.in1k_dist": _cfg("1ujVeWpoICjioRF0aB7PD1fadM4PGFRfl", 224, file_name="mobilemamba_s6s.pth",
                                     top1=80.7, gflops=0.652),
    "mobilemamba_b1.in1k": _cfg("1ODO1XM2luMfczbDLJxHrEl-ie7yUscAC", 256, file_name="mobilemamba_b1.pth",
                                top1=79.9, gflops=1.080),
    "mobilemamba_b1.in1k_dist": _cfg("15rBhYky_f7jNSknXujuwQESaIkiTBAR1", 256, file_name="mobilemamba_b1s.pth",
                                     top1=82.2, gflops=1.080),
    "mobilemamba_b1.in1k_r384": _cfg("1tJJZqeP09D_IAKKFuQtJQOYm4eNGjr1r", 384, file_name="mobilemamba_b2.pth",
                                     top1=81.6, gflops=2.427),
    "mobilemamba_b1.in1k_dist_r384": _cfg("1KuleL6Fi84zkjIhkRFbR4lqGa2iu6bOp", 384,
                                          file_name="mobilemamba_b2s.pth", top1=83.3, gflops=2.427),
    "mobilemamba_b1.in1k_r512": _cfg("1MiGLHSldK2JpbQEe-7VlmFsaCdugDnYR", 512, file_name="mobilemamba_b4.pth",
                                     top1=82.5, gflops=4.313),
    "mobilemamba_b1.in1k_dist_r512": _cfg("1KevdesGm8Pb4fEbgZ5JY4FMy9IQgYbiZ", 512,
                                          file_name="mobilemamba_b4s.pth", top1=83.6, gflops=4.313),
    "test_mobilemamba": _cfg(side=64, crop_pct=1.0),
})


def _create_mobilemamba(variant: str, pretrained: bool = False, **kwargs: Any) -> MobileMamba:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (1, 2, 2))))))
    return build_model_with_cfg(
        MobileMamba, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter", flatten_sequential=True),
        **kwargs,
    )


@register_model
def mobilemamba_t2(pretrained: bool = False, **kwargs: Any) -> MobileMamba:
    """MobileMamba-T2 (8.8M): dims (144, 272, 368), depths (1, 2, 2), 192x192."""
    return _create_mobilemamba("mobilemamba_t2", pretrained=pretrained, **dict(MOBILEMAMBA_CFGS["t2"], **kwargs))


@register_model
def mobilemamba_t4(pretrained: bool = False, **kwargs: Any) -> MobileMamba:
    """MobileMamba-T4 (14.2M): dims (176, 368, 448), depths (1, 2, 2), 192x192."""
    return _create_mobilemamba("mobilemamba_t4", pretrained=pretrained, **dict(MOBILEMAMBA_CFGS["t4"], **kwargs))


@register_model
def mobilemamba_s6(pretrained: bool = False, **kwargs: Any) -> MobileMamba:
    """MobileMamba-S6 (15.0M): dims (192, 384, 448), depths (1, 2, 2), 224x224."""
    return _create_mobilemamba("mobilemamba_s6", pretrained=pretrained, **dict(MOBILEMAMBA_CFGS["s6"], **kwargs))


@register_model
def mobilemamba_b1(pretrained: bool = False, **kwargs: Any) -> MobileMamba:
    """MobileMamba-B1 (17.1M): dims (200, 376, 448), depths (2, 3, 2), drop path 0.03, 256x256 (B2 / B4: the
    ``in1k_r384`` / ``in1k_r512`` tags)."""
    return _create_mobilemamba("mobilemamba_b1", pretrained=pretrained, **dict(MOBILEMAMBA_CFGS["b1"], **kwargs))


@register_model
def test_mobilemamba(pretrained: bool = False, **kwargs: Any) -> MobileMamba:
    """Tiny MobileMamba for fast tests: dims (48, 64, 80), depths (1, 2, 1) (every mixer has all three parts)."""
    model_args = dict(embed_dims=(48, 64, 80), depths=(1, 2, 1))
    return _create_mobilemamba("test_mobilemamba", pretrained=pretrained, **dict(model_args, **kwargs))
