"""MambaVision: a hierarchical hybrid of convolution, Mamba and self-attention.

MambaVision: Hatamizadeh & Kautz, "MambaVision: A Hybrid Mamba-Transformer Vision Backbone", CVPR 2025
(arXiv:2407.08083), https://github.com/NVlabs/MambaVision. The published network, as built here:

- a stem of two stride-2 3x3 convs (BatchNorm, ReLU) to stride 4;
- stages 1-2 of residual conv blocks (3x3 conv, BN, tanh-GELU, 3x3 conv, BN);
- stages 3-4 of pre-norm transformer-style blocks (token mixer + MLP, optional layer scale) run on non-overlapping
  windows (zero-padded at the bottom/right to a multiple of the window, cropped after): the first half of each
  stage (``ceil(depth / 2)`` blocks) mixes with :class:`vssm.layers.MambaVisionMixer` (a non-causal conv on an SSM
  branch and a symmetric non-SSM branch, concatenated), the second half with multi-head self-attention;
- 3x3 stride-2 convs between stages, a final BatchNorm, average pooling and a linear head.

The mixer's scan is one call of the ordered selective-scan op; ``scan=`` chooses the path(s) inside a window (the
published model scans the window's tokens in raster order, ``'raster'``; a scan with ``K`` paths gives the mixer
``K`` sets of ``x_proj`` / ``dt_proj`` / ``A`` / ``D``, summed). Windows handle any input size as the official code
does (padding tokens take part in the mixing; they are zero on entry and cropped on exit).

Layout conventions: NCHW throughout (``output_fmt = 'NCHW'``); ``forward_features`` returns the normed
``(B, C, H/32, W/32)`` map; ``forward_intermediates`` and ``features_only=True`` give the four stage outputs
(strides 4, 8, 16, 32).
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, DropPath, LayerScale, trunc_normal_
from timm.models import checkpoint_seq, register_model
from torch.utils.checkpoint import checkpoint

from ..checkpoint import check_state_dict, rename_keys, reshape_like, resolve_use_ema, unwrap_state_dict
from ..layers.attention import Attention, window_partition, window_reverse
from ..layers.drop import drop_path_rates
from ..layers.linear import Mlp
from ..layers.mamba_mixer import MambaVisionMixer
from ._builder import build_model_with_cfg
from ._cfg import generate_default_cfgs
from ._hierarchical import HierarchicalModel

__all__ = ["MambaVision", "MambaVisionStage", "MambaVisionBlock", "ConvBlock", "checkpoint_filter_fn"]


class Stem(nn.Module):
    """Two 3x3 stride-2 convs (no bias), each with BatchNorm (eps 1e-4) and ReLU: stride 4."""

    def __init__(self, in_chans: int, hidden_dim: int, dim: int, device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv1 = nn.Conv2d(in_chans, hidden_dim, 3, stride=2, padding=1, bias=False, **dd)
        self.norm1 = nn.BatchNorm2d(hidden_dim, eps=1e-4, **dd)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(hidden_dim, dim, 3, stride=2, padding=1, bias=False, **dd)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-4, **dd)
        self.act2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(self.conv1(x)))
        return self.act2(self.norm2(self.conv2(x)))


class ConvBlock(nn.Module):
    """``x + drop_path(gamma * bn(conv(gelu_tanh(bn(conv(x))))))`` (3x3 convs, NCHW)."""

    def __init__(
            self,
            dim: int,
            drop_path: float = 0.0,
            layer_scale: Optional[float] = None,
            kernel_size: int = 3,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv1 = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, **dd)
        self.norm1 = nn.BatchNorm2d(dim, eps=1e-5, **dd)
        self.act1 = nn.GELU(approximate="tanh")
        self.conv2 = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, **dd)
        self.norm2 = nn.BatchNorm2d(dim, eps=1e-5, **dd)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale), **dd)) if layer_scale is not None else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        if self.gamma is not None:
            y = y * self.gamma.view(1, -1, 1, 1)
        return x + self.drop_path(y)


class MambaVisionBlock(nn.Module):
    """``x + drop_path(ls1(mixer(norm1(x))))``, ``x + drop_path(ls2(mlp(norm2(x))))`` on ``(B, L, C)`` tokens.

    The mixer is a :class:`~vssm.layers.MambaVisionMixer` or, with ``attention=True``, multi-head self-attention.
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            attention: bool = False,
            num_paths: int = 1,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            qk_norm: bool = False,
            proj_drop: float = 0.0,
            attn_drop: float = 0.0,
            drop_path: float = 0.0,
            layer_scale: Optional[float] = None,
            mixer_kwargs: Optional[Dict[str, Any]] = None,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            act_layer: Callable[..., nn.Module] = nn.GELU,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm1 = norm_layer(dim, **dd)
        if attention:
            self.mixer = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm, attn_drop=attn_drop,
                                   proj_drop=proj_drop, norm_layer=norm_layer, **dd)
        else:
            self.mixer = MambaVisionMixer(dim, num_paths=num_paths, **(mixer_kwargs or {}), **dd)
        self.ls1 = LayerScale(dim, layer_scale, **dd) if layer_scale is not None else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim, **dd)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop, **dd)
        self.ls2 = LayerScale(dim, layer_scale, **dd) if layer_scale is not None else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, order: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.norm1(x)
        h = self.mixer(h, order) if isinstance(self.mixer, MambaVisionMixer) else self.mixer(h)
        x = x + self.drop_path1(self.ls1(h))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class MambaVisionStage(nn.Module):
    """An optional 3x3 stride-2 downsample, then conv blocks or windowed mixer / attention blocks (NCHW in and out)."""

    def __init__(
            self,
            in_dim: int,
            dim: int,
            depth: int,
            conv: bool,
            downsample: bool,
            num_heads: int = 1,
            window_size: int = 7,
            scans: Optional[Sequence[Any]] = None,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            qk_norm: bool = False,
            proj_drop: float = 0.0,
            attn_drop: float = 0.0,
            drop_path: Sequence[float] = (),
            layer_scale: Optional[float] = None,
            layer_scale_conv: Optional[float] = None,
            mixer_kwargs: Optional[Dict[str, Any]] = None,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            in_dim: input width.
            dim: width of the blocks.
            depth: number of blocks.
            conv: conv blocks (stages 1-2) instead of windowed mixer / attention blocks (stages 3-4).
            downsample: start with a 3x3 stride-2 conv from ``in_dim`` to ``dim``.
            num_heads: attention heads.
            window_size: window side of the mixer / attention blocks.
            scans: one scan per block (mixer blocks only), over a ``window_size`` x ``window_size`` window.
            mlp_ratio: MLP ratio.
            qkv_bias: bias of the qkv projection.
            qk_norm: normalise queries and keys.
            proj_drop: dropout after projections and in the MLP.
            attn_drop: attention dropout.
            drop_path: stochastic depth rate per block.
            layer_scale: layer-scale init of the mixer / attention blocks (None: no layer scale).
            layer_scale_conv: layer-scale init of the conv blocks (None: no layer scale).
            mixer_kwargs: further :class:`~vssm.layers.MambaVisionMixer` arguments.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.grad_checkpointing = False
        self.conv = conv
        self.window_size = int(window_size)
        self.downsample = _Downsample(in_dim, dim, **dd) if downsample else nn.Identity()
        drop_path = list(drop_path) or [0.0] * depth
        if conv:
            self.scans = []
            self.blocks = nn.Sequential(*[
                ConvBlock(dim, drop_path=drop_path[i], layer_scale=layer_scale_conv, **dd) for i in range(depth)
            ])
        else:
            from vssm.scans import get_scan

            self.scans = list(scans) if scans is not None else [get_scan("raster")] * depth
            n_mixer = math.ceil(depth / 2)  # the first half mixes with Mamba, the rest with attention
            self.blocks = nn.Sequential(*[
                MambaVisionBlock(
                    dim, num_heads, attention=i >= n_mixer, num_paths=self.scans[i].K, mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias, qk_norm=qk_norm, proj_drop=proj_drop, attn_drop=attn_drop,
                    drop_path=drop_path[i], layer_scale=layer_scale, mixer_kwargs=mixer_kwargs, **dd,
                )
                for i in range(depth)
            ])

    def _order(self, i: int, device: torch.device) -> Optional[torch.Tensor]:
        scan = self.scans[i]
        if getattr(scan, "name", None) == "raster":
            return None
        return scan.orders(self.window_size, self.window_size, device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.conv:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                return checkpoint_seq(self.blocks, x)
            return self.blocks(x)
        B, C, H, W = x.shape
        ws = self.window_size
        x, padded = window_partition(x.permute(0, 2, 3, 1), ws)  # (B * nW, ws * ws, C)
        for i, blk in enumerate(self.blocks):
            order = self._order(i, x.device)
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, order, use_reentrant=False)
            else:
                x = blk(x, order)
        return window_reverse(x, ws, padded, (H, W)).permute(0, 3, 1, 2)


class _Downsample(nn.Module):
    """3x3 stride-2 conv without bias (MambaVision's downsampler)."""

    def __init__(self, in_dim: int, dim: int, device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, dim, 3, stride=2, padding=1, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MambaVision(HierarchicalModel):
    """MambaVision for image classification, timm-style (NCHW)."""

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            depths: Sequence[int] = (1, 3, 8, 4),
            dims: Union[int, Sequence[int]] = 80,
            stem_dim: int = 32,
            num_heads: Sequence[int] = (2, 4, 8, 16),
            window_size: Union[int, Sequence[int]] = (8, 8, 14, 7),
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            qk_norm: bool = False,
            layer_scale: Optional[float] = None,
            layer_scale_conv: Optional[float] = None,
            scan: Any = "raster",
            d_state: int = 8,
            d_conv: int = 3,
            expand: float = 1.0,
            dt_rank: Union[int, str] = "auto",
            drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            in_chans: input image channels.
            num_classes: classifier outputs (0: no classifier).
            global_pool: ``'avg'``, ``'max'``, ``'avgmax'`` or ``''`` (none).
            depths: blocks per stage (stages 1-2 conv, 3-4 mixer + attention).
            dims: width per stage, or the first width (doubled per stage).
            stem_dim: width between the two stem convs (official ``in_dim``).
            num_heads: attention heads per stage (stages 3-4 used).
            window_size: window side per stage (stages 3-4 used), or one for all.
            mlp_ratio: MLP ratio.
            qkv_bias: bias of the attention qkv projection.
            qk_norm: normalise queries and keys.
            layer_scale: layer-scale init of the mixer / attention blocks (published: B, L, L2: 1e-5; T, S: none).
            layer_scale_conv: layer-scale init of the conv blocks (published: none).
            scan: path(s) of the mixer inside a window: one scan, a list per stage, or one per block (see
                ``vssm.scans.resolve_scans``). Published: ``'raster'``.
            d_state: SSM state size of the mixer (published: 8).
            d_conv: conv size of the mixer (published: 3).
            expand: mixer inner width ratio (published: 1).
            dt_rank: dt projection rank or ``'auto'`` (``ceil(dim / 16)``).
            drop_rate: dropout before the classifier.
            proj_drop_rate: dropout after projections and in the MLPs.
            attn_drop_rate: attention dropout.
            drop_path_rate: stochastic depth, linearly increasing over all blocks up to this value.
            device: parameter device (``'meta'`` works, e.g. to count parameters).
            dtype: parameter dtype.
        """
        super().__init__()
        from vssm.scans import resolve_scans

        dd = {"device": device, "dtype": dtype}
        num_stages = len(depths)
        if isinstance(dims, int):
            dims = [dims * 2 ** i for i in range(num_stages)]
        dims = [int(d) for d in dims]
        if isinstance(window_size, int):
            window_size = [window_size] * num_stages
        if not (len(dims) == len(num_heads) == len(window_size) == num_stages):
            raise ValueError(f"dims ({dims}), num_heads ({list(num_heads)}) and window_size ({list(window_size)}) "
                             f"need one entry per stage of depths ({list(depths)})")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.output_fmt = "NCHW"
        self.scans = resolve_scans(scan, list(depths))

        self.stem = Stem(in_chans, stem_dim, dims[0], **dd)
        dpr = drop_path_rates(drop_path_rate, depths, per_stage=True)
        mixer_kwargs = dict(d_state=d_state, d_conv=d_conv, expand=expand, dt_rank=dt_rank)
        self.stages = nn.Sequential()
        self.feature_info = []
        prev, reduction = dims[0], 4
        for i, depth in enumerate(depths):
            if i > 0:
                reduction *= 2
            self.stages.append(MambaVisionStage(
                prev, dims[i], depth, conv=i < 2, downsample=i > 0, num_heads=num_heads[i],
                window_size=window_size[i], scans=self.scans[i], mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                qk_norm=qk_norm, proj_drop=proj_drop_rate, attn_drop=attn_drop_rate,
                drop_path=dpr[i], layer_scale=layer_scale, layer_scale_conv=layer_scale_conv,
                mixer_kwargs=mixer_kwargs, **dd,
            ))
            self.feature_info.append(dict(num_chs=dims[i], reduction=reduction, module=f"stages.{i}"))
            prev = dims[i]

        self.num_features = self.head_hidden_size = dims[-1]
        self.norm = nn.BatchNorm2d(self.num_features, **dd)
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate,
                                   input_fmt="NCHW", **dd)
        self.apply(self._init_weights)

    @staticmethod
    @torch.no_grad()
    def _init_weights(m: nn.Module) -> None:
        # MambaVision's init: every linear layer truncated-normal(0.02) with zero bias -- the mixer's x_proj and
        # dt_proj included, so the dt bias starts at 0 (the official model re-initialises them after Mamba's own
        # init); LayerNorm / BatchNorm (1, 0); convs keep PyTorch's default.
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, MambaVisionMixer):
            trunc_normal_(m.x_proj_weight, std=0.02)
            trunc_normal_(m.dt_proj_weight, std=0.02)
            nn.init.zeros_(m.dt_proj_bias)


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints

_STEM = {"0": "conv1", "1": "norm1", "3": "conv2", "4": "norm2"}
_MIXER = {"x_proj.weight": "x_proj_weight", "dt_proj.weight": "dt_proj_weight", "dt_proj.bias": "dt_proj_bias"}


def _official_key(k: str) -> Optional[str]:
    """Maps one official MambaVision key to this model's name (``None``: not an official key)."""
    m = re.match(r"^patch_embed\.conv_down\.(\d+)\.(.+)$", k)
    if m:
        return f"stem.{_STEM[m[1]]}.{m[2]}" if m[1] in _STEM else None
    m = re.match(r"^levels\.(\d+)\.downsample\.reduction\.0\.(.+)$", k)
    if m:
        return f"stages.{int(m[1]) + 1}.downsample.conv.{m[2]}"
    m = re.match(r"^levels\.(\d+)\.blocks\.(\d+)\.(.+)$", k)
    if m:
        prefix, rest = f"stages.{m[1]}.blocks.{m[2]}.", m[3]
        if rest in ("gamma_1", "gamma_2"):
            return prefix + ("ls1.gamma" if rest == "gamma_1" else "ls2.gamma")
        if rest.startswith("mixer."):
            rest = "mixer." + _MIXER.get(rest[len("mixer."):], rest[len("mixer."):])
        return prefix + rest
    m = re.match(r"^head\.(weight|bias)$", k)
    if m:
        return f"head.fc.{m[1]}"
    if k.startswith("norm."):
        return k
    return None


def _variant(model: nn.Module) -> str:
    return (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "")


def checkpoint_filter_fn(
        state_dict: Dict[str, Any], model: MambaVision, use_ema: Optional[bool] = None,
) -> Dict[str, torch.Tensor]:
    """Converts an official MambaVision checkpoint to this model's keys, strictly.

    Handles the timm training checkpoints of the official releases (``.pth.tar``: weights under ``'state_dict'``,
    EMA weights under ``'state_dict_ema'`` when ``use_ema``), ``'model'`` wrappers, ``module.`` prefixes, the
    Hugging Face port's ``model.`` prefix, and the official names (``patch_embed.conv_down.N``,
    ``levels.i.blocks.j``, ``levels.i.downsample.reduction.0``, ``gamma_1`` / ``gamma_2``, the mixer's ``x_proj`` /
    ``dt_proj`` linear layers stored with the path axis here, ``head``). A state dict already in this layout is only
    checked.

    Args:
        state_dict: the loaded checkpoint.
        model: the target model (``meta`` works).
        use_ema: take the EMA weights of a wrapped checkpoint (None: the pretrained cfg's ``use_ema``, False for
            every release: the official loader reads ``'state_dict'``).

    Returns:
        A state dict with exactly the model's keys (the classifier is left for timm to adapt).

    Raises:
        vssm.checkpoint.CheckpointError: naming the first missing / unexpected keys and shape mismatches.
    """
    sd = unwrap_state_dict(state_dict, use_ema=resolve_use_ema(model, use_ema))
    if sd and all(k.startswith("model.") for k in sd):
        sd = {k[len("model."):]: v for k, v in sd.items()}
    target = model.state_dict()
    if any(k.startswith(("patch_embed.", "levels.")) for k in sd):
        sd = rename_keys(sd, lambda k: _official_key(k) or k)
        sd = {k: reshape_like(v, target[k].shape if k in target else None) for k, v in sd.items()}
    check_state_dict(sd, model, ignore_prefixes=("head.fc.",), family=_variant(model))
    return sd


# ----------------------------------------------------------------------------------------------------------------
# Configurations

def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    return {
        "url": url,
        "use_ema": False,  # the official numbers are of the plain weights (see checkpoint_filter_fn)
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1", "classifier": "head.fc",
        "license": "other", "paper_ids": "arXiv:2407.08083",
        "paper_name": "MambaVision: A Hybrid Mamba-Transformer Vision Backbone",
        **kwargs,
    }


# The official releases on the Hugging Face Hub (timm training checkpoints that pickle their argparse namespace,
# read with it made inert, see vssm.models._builder); crop_pct / crop_mode are the official evaluation settings of
# each release, top1 the README's ImageNet-1k top-1 ("21K": pretrained on ImageNet-21K, fine-tuned on 1K).
default_cfgs = generate_default_cfgs({
    "mambavision_tiny.in1k": _cfg(
        crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-T-1K", hf_hub_filename="mambavision_tiny_1k.pth.tar", top1=82.3, gflops=4.4),
    "mambavision_tiny2.in1k": _cfg(
        crop_pct=0.98, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-T2-1K", hf_hub_filename="mambavision_tiny2_1k.pth.tar", top1=82.7, gflops=5.1),
    "mambavision_small.in1k": _cfg(
        crop_pct=0.93, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-S-1K", hf_hub_filename="mambavision_small_1k.pth.tar", top1=83.3, gflops=7.5),
    "mambavision_base.in1k": _cfg(
        crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-B-1K", hf_hub_filename="mambavision_base_1k.pth.tar", top1=84.2, gflops=15.0),
    "mambavision_base.in21k_ft_in1k": _cfg(
        crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-B-21K", hf_hub_filename="mambavision_base_21k.pth.tar", top1=84.9, gflops=15.0),
    "mambavision_large.in1k": _cfg(
        crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-L-1K", hf_hub_filename="mambavision_large_1k.pth.tar", top1=85.0, gflops=34.9),
    "mambavision_large.in21k_ft_in1k": _cfg(
        crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-L-21K", hf_hub_filename="mambavision_large_21k.pth.tar", top1=86.1, gflops=34.9),
    "mambavision_large2.in1k": _cfg(
        crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-L2-1K", hf_hub_filename="mambavision_large2_1k.pth.tar", top1=85.3, gflops=37.5),
    "mambavision_large2_512.in21k_ft_in1k": _cfg(
        input_size=(3, 512, 512), pool_size=(16, 16), crop_pct=0.93, crop_mode="squash",
        hf_hub_id="nvidia/MambaVision-L2-512-21K", hf_hub_filename="mambavision_L2_21k_240m_512.pth.tar",
        top1=87.3, gflops=196.3),
    "mambavision_large3_256.in21k_ft_in1k": _cfg(
        input_size=(3, 256, 256), pool_size=(8, 8), crop_pct=1.0, crop_mode="center",
        hf_hub_id="nvidia/MambaVision-L3-256-21K", hf_hub_filename="mambavision_L3_21k_740m_256.pth.tar",
        top1=87.3, gflops=122.3),
    "mambavision_large3_512.in21k_ft_in1k": _cfg(
        input_size=(3, 512, 512), pool_size=(16, 16), crop_pct=0.93, crop_mode="squash",
        hf_hub_id="nvidia/MambaVision-L3-512-21K", hf_hub_filename="mambavision_L3_21k_740m_512.pth.tar",
        top1=88.1, gflops=489.1),
    "test_mambavision": _cfg(input_size=(3, 64, 64), pool_size=(2, 2), crop_pct=1.0),
})


def _create_mambavision(variant: str, pretrained: bool = False, **kwargs: Any) -> MambaVision:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (1, 3, 8, 4))))))
    return build_model_with_cfg(
        MambaVision, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter", flatten_sequential=True),
        **kwargs,
    )


_SMALL_HEADS = (2, 4, 8, 16)
_LARGE_HEADS = (4, 8, 16, 32)
_WINDOWS = (8, 8, 14, 7)


@register_model
def mambavision_tiny(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-T (31.8M): dim 80, depths (1, 3, 8, 4) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(1, 3, 8, 4), dims=80, stem_dim=32, num_heads=_SMALL_HEADS, window_size=_WINDOWS)
    return _create_mambavision("mambavision_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_tiny2(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-T2 (35.1M): dim 80, depths (1, 3, 11, 4) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(1, 3, 11, 4), dims=80, stem_dim=32, num_heads=_SMALL_HEADS, window_size=_WINDOWS)
    return _create_mambavision("mambavision_tiny2", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_small(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-S (50.1M): dim 96, depths (3, 3, 7, 5) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(3, 3, 7, 5), dims=96, stem_dim=64, num_heads=_SMALL_HEADS, window_size=_WINDOWS)
    return _create_mambavision("mambavision_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_base(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-B (97.7M): dim 128, depths (3, 3, 10, 5), layer scale 1e-5 (official drop_path_rate 0.3)."""
    model_args = dict(depths=(3, 3, 10, 5), dims=128, stem_dim=64, num_heads=_SMALL_HEADS, window_size=_WINDOWS,
                      layer_scale=1e-5)
    return _create_mambavision("mambavision_base", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_large(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-L (228.0M): dim 196, depths (3, 3, 10, 5), layer scale 1e-5 (official drop_path_rate 0.3)."""
    model_args = dict(depths=(3, 3, 10, 5), dims=196, stem_dim=64, num_heads=_LARGE_HEADS, window_size=_WINDOWS,
                      layer_scale=1e-5)
    return _create_mambavision("mambavision_large", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_large2(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-L2 (241.6M): dim 196, depths (3, 3, 12, 5), layer scale 1e-5 (official drop_path_rate 0.3)."""
    model_args = dict(depths=(3, 3, 12, 5), dims=196, stem_dim=64, num_heads=_LARGE_HEADS, window_size=_WINDOWS,
                      layer_scale=1e-5)
    return _create_mambavision("mambavision_large2", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_large2_512(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-L2 at 512x512 (windows 32 and 16 in stages 3-4), the ImageNet-21K release."""
    model_args = dict(depths=(3, 3, 12, 5), dims=196, stem_dim=64, num_heads=_LARGE_HEADS,
                      window_size=(8, 8, 32, 16), layer_scale=1e-5)
    return _create_mambavision("mambavision_large2_512", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_large3_256(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-L3 at 256x256 (dim 256, depths (3, 3, 20, 10), windows 16 and 8), the ImageNet-21K release."""
    model_args = dict(depths=(3, 3, 20, 10), dims=256, stem_dim=64, num_heads=_LARGE_HEADS,
                      window_size=(8, 8, 16, 8), layer_scale=1e-5)
    return _create_mambavision("mambavision_large3_256", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mambavision_large3_512(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """MambaVision-L3 at 512x512 (windows 32 and 16 in stages 3-4), the ImageNet-21K release."""
    model_args = dict(depths=(3, 3, 20, 10), dims=256, stem_dim=64, num_heads=_LARGE_HEADS,
                      window_size=(8, 8, 32, 16), layer_scale=1e-5)
    return _create_mambavision("mambavision_large3_512", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_mambavision(pretrained: bool = False, **kwargs: Any) -> MambaVision:
    """Tiny MambaVision for fast tests: dims (16, 32, 48, 64), depths (1, 1, 3, 2), windows 2, layer scale."""
    model_args = dict(depths=(1, 1, 3, 2), dims=(16, 32, 48, 64), stem_dim=8, num_heads=(1, 2, 2, 4),
                      window_size=(2, 2, 2, 2), d_state=4, layer_scale=1e-5)
    return _create_mambavision("test_mambavision", pretrained=pretrained, **dict(model_args, **kwargs))
