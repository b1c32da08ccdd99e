"""EfficientVMamba: atrous selective scan for light-weight visual Mamba.

Pei et al., "EfficientVMamba: Atrous Selective Scan for Light Weight Visual Mamba", 2024 (arXiv:2403.09977),
https://github.com/TerryPei/EfficientVMamba.

The network follows the official ``EfficientVSSM``: a 4x4 patch-embed stem (conv + LayerNorm), two stages of
efficient VSS (EVSS) blocks, two stages of MobileNetV2 inverted-residual blocks with squeeze-excitation, Swin patch
merging between stages, a final LayerNorm, average pooling and a linear classifier. An EVSS block is::

    y = LN(x)
    x = x + drop_path(CA(SS2D_atrous(y)) + CA(conv1x1(gelu(BN(dwconv3x3(y))))))

where ``CA`` is one channel attention (LN, global mean, two linear layers, sigmoid gate) shared by both branches,
and ``SS2D_atrous`` is VMamba's gated SS2D mixer whose four paths each walk one stride-2 sub-grid of the map (the
efficient 2-D scan, ES2D): offsets (0, 0) row-major, (1, 0) column-major, (0, 1) row-major, (1, 1) column-major,
merged back to their own positions. Here that is the ``atrous`` scan of ``scans`` handed to the one ordered
selective-scan op (``vssm.layers.SS2D``): no sub-grid copies of the map are made.

The official code zero-pads maps of odd height / width to even before sampling, and the sub-grid paths then also
walk the padding tokens (which only decay their state). :class:`AtrousSS2D` reproduces that by default
(``atrous_padding=True``), so results match the official code at every size; ``atrous_padding=False`` uses the
scan's own shorter paths on odd maps instead.

Model sizes: the published EfficientVMamba-S (11.3M parameters, its training log) has a 64-channel stem; the
``vssm_efficient_small.yaml`` of the official repository builds a different 24.8M network (96 channels). The
``efficient_vmamba_small`` entrypoint follows the published model.

Layout: features are channels-last; ``forward_features`` returns the normed ``(B, H, W, C)`` map
(``output_fmt = 'NHWC'``); ``forward_intermediates`` and ``features_only=True`` give NCHW maps.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Dict, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, DropPath
from timm.models import checkpoint_seq, register_model
from timm.models._efficientnet_blocks import SqueezeExcite

from ..checkpoint import check_state_dict, rename_keys, reshape_like, resolve_use_ema, unwrap_state_dict
from ..layers.drop import drop_path_rates
from ..layers.ss2d import SS2D, PathChannelAttention
from ..layers.ssm import selective_ssm
from ..layers.stems import PatchEmbedStem, PatchMerging
from ._builder import build_model_with_cfg
from ._cfg import generate_default_cfgs
from ._hierarchical import HierarchicalModel

__all__ = ["EfficientVMamba", "AtrousSS2D", "EVSSBlock", "InvertedResidual", "checkpoint_filter_fn"]


class AtrousSS2D(SS2D):
    """:class:`~vssm.layers.SS2D` with the atrous scan, optionally zero-padding odd maps as the official ES2D does.

    With ``atrous_padding`` the map (after the depthwise conv and activation) is zero-padded at the bottom / right
    to a multiple of the scan's stride, the scan's orders of the padded grid are walked (so each sub-grid path also
    visits the padding tokens, whose ``u = 0`` only decays the state) and the output is cropped back.

    Args:
        dim: Block width.
        scan: A scan with a ``stride`` (default ``'atrous'``: EfficientVMamba's sub-grid order).
        atrous_padding: Pad odd maps as the official code (True), or use the scan's shorter paths (False).
        **kwargs: Further :class:`~vssm.layers.SS2D` arguments.
    """

    def __init__(self, dim: int, scan: Any = "atrous", atrous_padding: bool = True, **kwargs: Any):
        super().__init__(dim, scan=scan, **kwargs)
        if self.path_attn is not None:
            raise ValueError("AtrousSS2D merges its sub-grid paths by position; path_attn is not supported")
        self.atrous_padding = atrous_padding
        self.stride = int(getattr(self.scan, "stride", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Bt, H, W, _ = x.shape
        Di = self.d_inner
        x = self.in_proj(x)
        if self.gate:
            x, z = x.chunk(2, dim=-1)
        if self.conv2d is not None:
            x = self.conv2d(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = self.act(x)
        s = self.stride if self.atrous_padding else 1
        Hp, Wp = -(-H // s) * s, -(-W // s) * s
        if (Hp, Wp) != (H, W):
            x = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))  # zero tokens, as the official ES2D pads
        u = x.reshape(Bt, Hp * Wp, Di)
        y = selective_ssm(u, self.x_proj_weight, self.dt_proj_weight, self.dt_proj_bias, self.A_log, self.D,
                          order=self.scan.orders(Hp, Wp, x.device), merge="sum")  # each position on one path
        y = y.to(x.dtype).reshape(Bt, Hp, Wp, Di)[:, :H, :W]
        y = self.out_norm(y)
        if self.gate:
            y = y * self.act(z)
        return self.proj_drop(self.out_proj(y))


class EVSSBlock(nn.Module):
    """Efficient VSS block (channels-last): atrous SS2D and a depthwise-conv branch, each gated by one shared
    channel attention, summed into the residual."""

    def __init__(
            self,
            dim: int,
            scan: Any = "atrous",
            drop_path: float = 0.0,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            d_state: int = 16,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            ssm_conv: int = 3,
            ssm_conv_bias: bool = True,
            ssm_drop: float = 0.0,
            atrous_padding: bool = True,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: Block width.
            scan: Scan of the SS2D branch (a name, dict or Scan with a ``stride``).
            drop_path: Stochastic depth rate.
            norm_layer: Norm class (channels-last).
            d_state: SSM state size.
            ssm_ratio: SS2D inner width ratio.
            dt_rank: dt projection rank or ``'auto'``.
            ssm_conv: SS2D depthwise conv size.
            ssm_conv_bias: Bias of that conv.
            ssm_drop: Dropout after the SS2D out-projection.
            atrous_padding: Zero-pad odd maps as the official ES2D.
            device: Parameter device.
            dtype: Parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm = norm_layer(dim, **dd)
        self.mixer = AtrousSS2D(
            dim, scan=scan, atrous_padding=atrous_padding, d_state=d_state, ssm_ratio=ssm_ratio, dt_rank=dt_rank,
            d_conv=ssm_conv, conv_bias=ssm_conv_bias, gate=True, proj_drop=ssm_drop, norm_layer=norm_layer, **dd,
        )
        self.conv_branch = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **dd),
            nn.BatchNorm2d(dim, **dd),
            nn.GELU(),
            nn.Conv2d(dim, dim, 1, **dd),
        )
        self.se = PathChannelAttention(dim, act_ratio=0.125, **dd)  # the official BiAttn (channel branch only)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def _attend(self, y: torch.Tensor) -> torch.Tensor:
        B, H, W, C = y.shape
        return self.se(y.reshape(B, H * W, 1, C)).reshape(B, H, W, C)  # one "path": gate from the map's mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        ssm = self.mixer(y)
        conv = self.conv_branch(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.drop_path(self._attend(ssm) + self._attend(conv))


class InvertedResidual(nn.Module):
    """MobileNetV2 inverted residual with squeeze-excitation, as in EfficientVMamba's later stages (NCHW).

    ``x + drop_path(BN(conv1x1(SE(relu(BN(dwconv3x3(relu(BN(conv1x1(x))))))))))``.
    """

    def __init__(
            self,
            dim: int,
            expand_ratio: float = 4.0,
            se_ratio: float = 0.125,
            drop_path: float = 0.0,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        mid = int(dim * expand_ratio)
        self.conv_pw = nn.Sequential(
            nn.Conv2d(dim, mid, 1, bias=False, **dd), nn.BatchNorm2d(mid, **dd), nn.ReLU(inplace=True))
        self.conv_dw = nn.Sequential(
            nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False, **dd), nn.BatchNorm2d(mid, **dd),
            nn.ReLU(inplace=True))
        # timm's EfficientNet SE: conv_reduce / conv_expand (1x1, bias), ReLU, sigmoid gate, the official keys
        self.se = SqueezeExcite(mid, rd_channels=max(1, int(mid * se_ratio)), **dd) if se_ratio else nn.Identity()
        self.conv_pw2 = nn.Sequential(nn.Conv2d(mid, dim, 1, bias=False, **dd), nn.BatchNorm2d(dim, **dd))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.conv_pw2(self.se(self.conv_dw(self.conv_pw(x)))))


class EfficientVMambaStage(nn.Module):
    """An optional patch merging (all stages but the first) and ``depth`` EVSS or inverted-residual blocks (NHWC)."""

    def __init__(
            self,
            dim: int,
            out_dim: int,
            depth: int,
            block_type: str = "evss",
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
        self.channels_first = block_type == "ir"
        self.downsample = PatchMerging(dim, out_dim, norm_layer=norm_layer, **dd) if downsample else nn.Identity()
        drop_path = list(drop_path) or [0.0] * depth
        kwargs = block_kwargs or {}
        if block_type == "evss":
            blocks = [EVSSBlock(out_dim, drop_path=drop_path[i], norm_layer=norm_layer, **kwargs, **dd)
                      for i in range(depth)]
        elif block_type == "ir":
            blocks = [InvertedResidual(out_dim, drop_path=drop_path[i], **kwargs, **dd) for i in range(depth)]
        else:
            raise ValueError(f"block_type must be 'evss' or 'ir', got {block_type!r}")
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.channels_first:
            x = x.permute(0, 3, 1, 2)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return x.permute(0, 2, 3, 1) if self.channels_first else x


class EfficientVMamba(HierarchicalModel):
    """EfficientVMamba for image classification, timm-style, channels-last inside."""

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            depths: Sequence[int] = (2, 2, 4, 2),
            dims: Union[int, Sequence[int]] = 48,
            num_ssm_stages: int = 2,
            patch_size: int = 4,
            scan: Any = "atrous",
            atrous_padding: bool = True,
            d_state: int = 16,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            ssm_conv: int = 3,
            ssm_conv_bias: bool = True,
            ir_expand_ratio: float = 4.0,
            ir_se_ratio: float = 0.125,
            norm_eps: float = 1e-5,
            drop_rate: float = 0.0,
            ssm_drop_rate: float = 0.0,
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
            num_ssm_stages: Leading stages made of EVSS blocks; the rest use inverted residuals (official: 2).
            patch_size: Stem stride.
            scan: Scan of the SS2D branches (default ``'atrous'``, stride 2; any scan with a ``stride`` works).
            atrous_padding: Zero-pad odd maps before the atrous scan, as the official code.
            d_state: SSM state size.
            ssm_ratio: SS2D inner width ratio.
            dt_rank: dt projection rank or ``'auto'`` (``ceil(dim / 16)``).
            ssm_conv: SS2D depthwise conv size.
            ssm_conv_bias: Bias of that conv.
            ir_expand_ratio: Expansion of the inverted residuals.
            ir_se_ratio: Squeeze-excitation ratio of the inverted residuals (of the expanded width).
            norm_eps: LayerNorm epsilon.
            drop_rate: Dropout before the classifier.
            ssm_drop_rate: Dropout after the SS2D out-projection.
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
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.output_fmt = "NHWC"
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.stem = PatchEmbedStem(in_chans, dims[0], patch_size, norm_layer=norm_layer, **dd)
        dpr = drop_path_rates(drop_path_rate, depths, per_stage=True, float64=True)
        evss_kwargs = dict(scan=scan, atrous_padding=atrous_padding, d_state=d_state, ssm_ratio=ssm_ratio,
                           dt_rank=dt_rank, ssm_conv=ssm_conv, ssm_conv_bias=ssm_conv_bias, ssm_drop=ssm_drop_rate)
        ir_kwargs = dict(expand_ratio=ir_expand_ratio, se_ratio=ir_se_ratio)
        self.stages = nn.Sequential()
        self.feature_info = []
        prev, reduction = dims[0], patch_size
        for i, depth in enumerate(depths):
            if i > 0:
                reduction *= 2
            ssm = i < num_ssm_stages
            self.stages.append(EfficientVMambaStage(
                prev, dims[i], depth, block_type="evss" if ssm else "ir", downsample=i > 0,
                drop_path=dpr[i], norm_layer=norm_layer,
                block_kwargs=evss_kwargs if ssm else ir_kwargs, **dd,
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

_SSM_NAMES = {"dt_projs_weight": "dt_proj_weight", "dt_projs_bias": "dt_proj_bias", "A_logs": "A_log", "Ds": "D"}
_LAYER_RE = re.compile(r"^layers\.(\d+)\.(.*)$")


def _official_key(key: str, depths: Sequence[int]) -> str | None:
    """Maps one official ``EfficientVSSM`` key to this model's key (unknown keys pass through unchanged)."""
    if key.startswith("patch_embed.0."):
        return "stem.proj." + key[len("patch_embed.0."):]
    if key.startswith("patch_embed.2."):
        return "stem.norm." + key[len("patch_embed.2."):]
    if key.startswith("classifier.norm."):
        return "norm." + key[len("classifier.norm."):]
    if key.startswith("classifier.head."):
        return "head.fc." + key[len("classifier.head."):]
    m = _LAYER_RE.match(key)
    if not m:
        return key
    i, rest = int(m.group(1)), m.group(2)
    if rest.startswith("blocks."):  # EVSS stages: layers.i.blocks.j.* and layers.i.downsample.*
        rest = rest.replace(".op.", ".mixer.", 1)
        head, _, leaf = rest.rpartition(".")
        return f"stages.{i}.{head}.{_SSM_NAMES.get(leaf, leaf)}" if ".mixer." in rest else f"stages.{i}.{rest}"
    if rest.startswith("downsample."):
        return f"stages.{i + 1}.{rest}"
    idx, _, tail = rest.partition(".")  # inverted-residual stages: layers.i.<1..depth>.*, layers.i.<depth+2>.*
    if idx.isdigit() and i < len(depths):
        n = int(idx)
        if 1 <= n <= depths[i]:
            return f"stages.{i}.blocks.{n - 1}.{tail}"
        if n == depths[i] + 2:
            return f"stages.{i + 1}.downsample.{tail}"
    return key


def checkpoint_filter_fn(
        state_dict: Dict[str, Any],
        model: EfficientVMamba,
        use_ema: bool | None = None,
) -> Dict[str, torch.Tensor]:
    """Converts an official EfficientVMamba checkpoint to this model's keys, strictly.

    Handles training checkpoints wrapped in ``'state_dict'`` / ``'model'`` / ``'state_dict_ema'`` (with one or two
    ``module.`` prefixes), the official names (``patch_embed.0/2``, ``layers.i.blocks.j.op.*`` with stacked
    ``dt_projs_*``, flattened ``A_logs (K*D, N)`` / ``Ds (K*D)``, the inverted-residual stages'
    ``layers.i.<n>.*`` and their patch merging ``layers.i.<depth+2>.*``, ``classifier.norm`` / ``classifier.head``);
    a state dict already in this layout is checked and returned.

    Args:
        state_dict: The loaded checkpoint.
        model: The target model (its depths place the inverted-residual keys, its shapes decide the reshapes).
        use_ema: Prefer EMA weights in a wrapped checkpoint (None: the pretrained cfg's ``use_ema``, default True).

    Returns:
        A state dict with exactly the model's keys (the classifier is left for timm to adapt).

    Raises:
        vssm.checkpoint.CheckpointError: Naming the missing / unexpected keys and shape mismatches.
    """
    sd = unwrap_state_dict(state_dict, use_ema=resolve_use_ema(model, use_ema))
    while sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if not any(k.startswith(("stem.", "stages.")) for k in sd):
        depths = [len(s.blocks) for s in model.stages]
        target = model.state_dict()
        sd = rename_keys(sd, lambda k: _official_key(k, depths))
        sd = {k: reshape_like(v, target[k].shape if k in target else None) for k, v in sd.items()}
    check_state_dict(sd, model, ignore_prefixes=("head.fc.",), family="EfficientVMamba")
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
        "license": "unknown", "paper_ids": "arXiv:2403.09977",
        "paper_name": "EfficientVMamba: Atrous Selective Scan for Light Weight Visual Mamba",
        **kwargs,
    }


# The official releases on the Hugging Face Hub (plain state dicts); top1: the README's ImageNet-1k top-1 at 224.
# The official repository has no license file.
default_cfgs = generate_default_cfgs({
    "efficient_vmamba_tiny.in1k": _cfg(
        hf_hub_id="TerryPei/EfficientVMamba-Tiny", hf_hub_filename="efficient_vmamba_tiny.ckpt", top1=76.5, gflops=0.8),
    "efficient_vmamba_small.in1k": _cfg(
        hf_hub_id="TerryPei/EfficientVMamba-Small", hf_hub_filename="efficient_vmamba_small.ckpt",
        top1=78.7, gflops=1.3),
    "efficient_vmamba_base.in1k": _cfg(
        hf_hub_id="TerryPei/EfficientVMamba-Base", hf_hub_filename="efficient_vmamba_base.ckpt", top1=81.8, gflops=4.0),
    "test_efficient_vmamba": _cfg(input_size=(3, 32, 32), pool_size=(1, 1), crop_pct=1.0),
})


def _create_efficient_vmamba(variant: str, pretrained: bool = False, **kwargs: Any) -> EfficientVMamba:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (2, 2, 4, 2))))))
    return build_model_with_cfg(
        EfficientVMamba, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter", flatten_sequential=True),
        **kwargs,
    )


@register_model
def efficient_vmamba_tiny(pretrained: bool = False, **kwargs: Any) -> EfficientVMamba:
    """EfficientVMamba-T (6.5M): dims 48, depths (2, 2, 4, 2) (official drop_path_rate 0.1)."""
    model_args = dict(depths=(2, 2, 4, 2), dims=48)
    return _create_efficient_vmamba("efficient_vmamba_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def efficient_vmamba_small(pretrained: bool = False, **kwargs: Any) -> EfficientVMamba:
    """EfficientVMamba-S as published (11.3M): dims 64, depths (2, 2, 4, 2) (official drop_path_rate 0.1)."""
    model_args = dict(depths=(2, 2, 4, 2), dims=64)
    return _create_efficient_vmamba("efficient_vmamba_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def efficient_vmamba_base(pretrained: bool = False, **kwargs: Any) -> EfficientVMamba:
    """EfficientVMamba-B (33.7M): dims 96, depths (2, 2, 9, 2) (official drop_path_rate 0.1)."""
    model_args = dict(depths=(2, 2, 9, 2), dims=96)
    return _create_efficient_vmamba("efficient_vmamba_base", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_efficient_vmamba(pretrained: bool = False, **kwargs: Any) -> EfficientVMamba:
    """Tiny EfficientVMamba for fast tests: dims (16, 24, 32, 32), depths (1, 2, 1, 1), d_state 4."""
    model_args = dict(depths=(1, 2, 1, 1), dims=(16, 24, 32, 32), d_state=4)
    return _create_efficient_vmamba("test_efficient_vmamba", pretrained=pretrained, **dict(model_args, **kwargs))
