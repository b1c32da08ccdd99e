"""MLLA: Mamba-like linear attention backbones.

Han et al., "Demystify Mamba in Vision: A Linear Attention Perspective", NeurIPS 2024 (arXiv:2405.16605),
https://github.com/LeapLabTHU/MLLA. The paper reads Mamba as a linear-attention Transformer with six differences and
keeps the two that matter most, the forget-gate-like positional information (here RoPE, LePE and convolutional
position encodings) and Mamba's macro block design, around a linear attention with the ``elu + 1`` kernel.

The network follows the official classification model: a convolutional stem (3x3 stride-2 conv, a residual pair of
3x3 convs, a 3x3 stride-2 conv to ``4 * dim`` and a 1x1 projection, all with BatchNorm), four stages of MLLA blocks
joined by an inverted-residual downsampling (1x1 conv, 3x3 stride-2 depthwise conv, 1x1 conv + BatchNorm), a final
LayerNorm, average pooling and a linear classifier. An MLLA block is::

    x = x + dwconv3x3(x)                                                    # cpe1
    x = x + drop_path(out_proj(LinAttn(silu(dwc(in_proj(LN(x))))) * silu(act_proj(LN(x)))))
    x = x + dwconv3x3(x)                                                    # cpe2
    x = x + drop_path(MLP(LN(x)))

Differences from the official code, none of which changes a result at the training resolution:

* any input size: the RoPE table is computed for the actual grid (the official model fixes it at construction,
  ``img_size``, and its attention assumes a square grid);
* downsampling sits at the start of the next stage (timm's layout), so stage ``i`` outputs the map that the
  official detection / segmentation backbones take as their ``i``-th feature; the converter moves the keys;
* odd maps are downsampled by the stride-2 convolution's own padding (``ceil(H / 2)``), as the classification
  model does; the official dense-prediction backbone zero-pads the input of the 1x1 conv first, which differs at
  the bottom / right border of odd maps.

Layout: features are channels-last; ``forward_features`` returns the normed ``(B, H, W, C)`` map
(``output_fmt = 'NHWC'``); ``forward_intermediates`` and ``features_only=True`` give NCHW maps.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Dict, Sequence, Type, Union

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, DropPath
from timm.models import checkpoint_seq, register_model

from ..checkpoint import CheckpointError, check_state_dict, rename_keys, resolve_use_ema, unwrap_state_dict
from ..layers.drop import drop_path_rates
from ..layers.linear import Linear, Mlp
from ..layers.linear_attention import LinearAttention
from ._builder import build_model_with_cfg
from ._cfg import generate_default_cfgs
from ._hierarchical import HierarchicalModel

__all__ = ["MLLA", "MllaBlock", "MllaStage", "checkpoint_filter_fn"]


class ConvNormAct(nn.Module):
    """Conv2d -> optional BatchNorm -> optional activation (NCHW): the official ``ConvLayer`` (``conv``, ``norm``)."""

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int = 3,
            stride: int = 1,
            padding: int = 0,
            groups: int = 1,
            bias: bool = True,
            norm: bool = True,
            act_layer: Type[nn.Module] | None = nn.ReLU,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias,
                              **dd)
        self.norm = nn.BatchNorm2d(out_chs, **dd) if norm else None
        self.act = act_layer() if act_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class MllaStem(nn.Module):
    """The official stem: stride 4 in two 3x3 stride-2 convs with a residual 3x3 pair between (NCHW in, NHWC out)."""

    def __init__(
            self,
            in_chans: int,
            embed_dim: int,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        mid = embed_dim // 2
        self.conv1 = ConvNormAct(in_chans, mid, 3, stride=2, padding=1, bias=False, **dd)
        self.conv2 = nn.Sequential(
            ConvNormAct(mid, mid, 3, padding=1, bias=False, **dd),
            ConvNormAct(mid, mid, 3, padding=1, bias=False, act_layer=None, **dd),
        )
        self.conv3 = nn.Sequential(
            ConvNormAct(mid, embed_dim * 4, 3, stride=2, padding=1, bias=False, **dd),
            ConvNormAct(embed_dim * 4, embed_dim, 1, bias=False, act_layer=None, **dd),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.conv2(x) + x
        return self.conv3(x).permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H/4, W/4, C)


class MllaDownsample(nn.Module):
    """Inverted-residual downsampling: 1x1 conv (ReLU), 3x3 stride-2 depthwise conv (ReLU), 1x1 conv + BN (NHWC)."""

    def __init__(
            self,
            dim: int,
            out_dim: int,
            ratio: float = 4.0,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        hidden = int(out_dim * ratio)
        self.conv = nn.Sequential(
            ConvNormAct(dim, hidden, 1, norm=False, **dd),
            ConvNormAct(hidden, hidden, 3, stride=2, padding=1, groups=hidden, norm=False, **dd),
            ConvNormAct(hidden, out_dim, 1, act_layer=None, **dd),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _dwconv(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """A 2-D conv on a channels-last map."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class MllaBlock(nn.Module):
    """MLLA block (channels-last): conv position encodings around a Mamba-style gated linear-attention branch and an
    MLP branch."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            proj_drop: float = 0.0,
            drop_path: float = 0.0,
            act_layer: Type[nn.Module] = nn.GELU,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: Channels.
            num_heads: Attention heads.
            mlp_ratio: MLP hidden width ratio.
            qkv_bias: Bias in the query/key projection.
            proj_drop: MLP dropout.
            drop_path: Stochastic depth rate of both branches.
            act_layer: MLP activation.
            norm_layer: Norm class (channels-last).
            device: Parameter device.
            dtype: Parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.cpe1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **dd)
        self.norm1 = norm_layer(dim, **dd)
        self.in_proj = Linear(dim, dim, **dd)
        self.act_proj = Linear(dim, dim, **dd)
        self.dwc = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **dd)
        self.act = nn.SiLU()
        self.attn = LinearAttention(dim, num_heads=num_heads, qkv_bias=qkv_bias, **dd)
        self.out_proj = Linear(dim, dim, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.cpe2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, **dd)
        self.norm2 = norm_layer(dim, **dd)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + _dwconv(x, self.cpe1)
        shortcut = x
        x = self.norm1(x)
        gate = self.act(self.act_proj(x))  # Mamba's input gate branch
        x = self.act(_dwconv(self.in_proj(x), self.dwc))
        x = self.out_proj(self.attn(x) * gate)
        x = shortcut + self.drop_path(x)
        x = x + _dwconv(x, self.cpe2)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class MllaStage(nn.Module):
    """An optional downsample (all stages but the first) followed by ``depth`` MLLA blocks."""

    def __init__(
            self,
            dim: int,
            out_dim: int,
            depth: int,
            num_heads: int,
            downsample: bool = False,
            drop_path: Sequence[float] = (),
            block_kwargs: Dict[str, Any] | None = None,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.grad_checkpointing = False
        self.downsample = MllaDownsample(dim, out_dim, **dd) if downsample else nn.Identity()
        drop_path = list(drop_path) or [0.0] * depth
        self.blocks = nn.Sequential(*[
            MllaBlock(out_dim, num_heads, drop_path=drop_path[i], **(block_kwargs or {}), **dd) for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class MLLA(HierarchicalModel):
    """MLLA for image classification, timm-style, channels-last inside."""

    # MLLA has no SSM parameters (``A_log``, ``D``, dt biases) nor position tables to keep out of decay.
    no_weight_decay_names = ()

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            depths: Sequence[int] = (2, 4, 8, 4),
            dims: Union[int, Sequence[int]] = 64,
            num_heads: Sequence[int] = (2, 4, 8, 16),
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            norm_eps: float = 1e-5,
            drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
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
            dims: Width per stage, or the first width (doubled per stage). Widths must be multiples of 4 (RoPE) and
                of the stage's head count.
            num_heads: Attention heads per stage.
            mlp_ratio: MLP hidden width ratio.
            qkv_bias: Bias in the query/key projections.
            norm_eps: LayerNorm epsilon.
            drop_rate: Dropout before the classifier.
            proj_drop_rate: MLP dropout (the official ``drop_rate``).
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
        if len(dims) != num_stages or len(num_heads) != num_stages:
            raise ValueError(f"dims ({dims}), num_heads ({list(num_heads)}) and depths ({list(depths)}) must have one "
                             f"entry per stage")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.output_fmt = "NHWC"
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)

        self.stem = MllaStem(in_chans, dims[0], **dd)
        dpr = drop_path_rates(drop_path_rate, depths, per_stage=True, float64=True)
        block_kwargs = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=proj_drop_rate, norm_layer=norm_layer)
        self.stages = nn.Sequential()
        self.feature_info = []
        prev, reduction = dims[0], 4
        for i, depth in enumerate(depths):
            if i > 0:
                reduction *= 2
            self.stages.append(MllaStage(
                prev, dims[i], depth, num_heads[i], downsample=i > 0, drop_path=dpr[i],
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

_LAYER_RE = re.compile(r"^layers\.(\d+)\.(blocks|downsample)\.(.*)$")


def _official_key(key: str) -> str | None:
    """Maps one official MLLA key to this model's key (``None``: derived data to drop)."""
    if key.endswith(".attn.rope.rotations"):
        return None  # the fixed-resolution RoPE table; computed at run time here
    if key.startswith("patch_embed."):
        return "stem." + key[len("patch_embed."):]
    m = _LAYER_RE.match(key)
    if m:
        i, part, rest = int(m.group(1)), m.group(2), m.group(3)
        if part == "blocks":
            return f"stages.{i}.blocks.{rest}"
        return f"stages.{i + 1}.downsample.{rest}"  # official: end of stage i; here: start of stage i + 1
    if key.startswith("head."):
        return "head.fc." + key[len("head."):]
    return key


def checkpoint_filter_fn(
        state_dict: Dict[str, Any],
        model: MLLA,
        use_ema: bool | None = None,
) -> Dict[str, torch.Tensor]:
    """Converts an official MLLA checkpoint to this model's keys, strictly.

    Handles training checkpoints wrapped in ``'model'`` / ``'model_ema'`` / ``'state_dict'`` (with ``module.``
    prefixes), the official names (``patch_embed.*``, ``layers.i.blocks.j.*``, ``layers.i.downsample.*`` moved to
    ``stages.{i+1}.downsample``, ``head.*``) and drops the fixed-resolution RoPE tables (``attn.rope.rotations``),
    which this model computes for every input size. A state dict already in this layout is checked and returned.

    Args:
        state_dict: The loaded checkpoint.
        model: The target model.
        use_ema: Prefer EMA weights in a wrapped checkpoint (None: the pretrained cfg's ``use_ema``, default True).

    Returns:
        A state dict with exactly the model's keys (the classifier is left for timm to adapt).

    Raises:
        vssm.checkpoint.CheckpointError: Naming the missing / unexpected keys and shape mismatches.
    """
    sd = unwrap_state_dict(state_dict, use_ema=resolve_use_ema(model, use_ema))
    if "absolute_pos_embed" in sd:
        raise CheckpointError("MLLA checkpoint has 'absolute_pos_embed' (trained with ape=True); this model "
                                      "has no absolute position embedding")
    if not any(k.startswith(("stem.", "stages.")) for k in sd):
        sd = rename_keys(sd, _official_key)
    check_state_dict(sd, model, ignore_prefixes=("head.fc.",), family="MLLA")
    return sd


# ----------------------------------------------------------------------------------------------------------------
# Configurations

def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    return {
        "url": url,
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1.conv", "classifier": "head.fc",
        "license": "mit", "paper_ids": "arXiv:2405.16605",
        "paper_name": "Demystify Mamba in Vision: A Linear Attention Perspective",
        **kwargs,
    }


# The official releases: Tsinghua cloud share links whose ``?dl=1`` form is a direct download (kept in the cache as
# file_name, the links name no file); Swin-style training checkpoints. top1: the README's ImageNet-1k top-1 at 224.
default_cfgs = generate_default_cfgs({
    "mlla_tiny.in1k": _cfg(
        url="https://cloud.tsinghua.edu.cn/f/7a19712877cb4242889c/?dl=1", file_name="mlla_tiny_in1k.pth",
        top1=83.5, gflops=4.2),
    "mlla_small.in1k": _cfg(
        url="https://cloud.tsinghua.edu.cn/f/0e5d0b1409d540aaa80c/?dl=1", file_name="mlla_small_in1k.pth",
        top1=84.4, gflops=7.3),
    "mlla_base.in1k": _cfg(
        url="https://cloud.tsinghua.edu.cn/f/91c85c5a1061496d8796/?dl=1", file_name="mlla_base_in1k.pth",
        top1=85.3, gflops=16.2),
    "test_mlla": _cfg(input_size=(3, 32, 32), pool_size=(1, 1), crop_pct=1.0),
})


def _create_mlla(variant: str, pretrained: bool = False, **kwargs: Any) -> MLLA:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (2, 4, 8, 4))))))
    return build_model_with_cfg(
        MLLA, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter", flatten_sequential=True),
        **kwargs,
    )


@register_model
def mlla_tiny(pretrained: bool = False, **kwargs: Any) -> MLLA:
    """MLLA-T (24.4M): dims 64, depths (2, 4, 8, 4), heads (2, 4, 8, 16) (official drop_path_rate 0.2)."""
    model_args = dict(depths=(2, 4, 8, 4), dims=64, num_heads=(2, 4, 8, 16))
    return _create_mlla("mlla_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mlla_small(pretrained: bool = False, **kwargs: Any) -> MLLA:
    """MLLA-S (43.0M): dims 64, depths (3, 6, 21, 6), heads (2, 4, 8, 16) (official drop_path_rate 0.3)."""
    model_args = dict(depths=(3, 6, 21, 6), dims=64, num_heads=(2, 4, 8, 16))
    return _create_mlla("mlla_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def mlla_base(pretrained: bool = False, **kwargs: Any) -> MLLA:
    """MLLA-B (96.0M): dims 96, depths (3, 6, 21, 6), heads (3, 6, 12, 24) (official drop_path_rate 0.5)."""
    model_args = dict(depths=(3, 6, 21, 6), dims=96, num_heads=(3, 6, 12, 24))
    return _create_mlla("mlla_base", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_mlla(pretrained: bool = False, **kwargs: Any) -> MLLA:
    """Tiny MLLA for fast tests: dims (16, 24, 32, 32), depths (1, 1, 2, 1), heads (2, 2, 4, 4)."""
    model_args = dict(depths=(1, 1, 2, 1), dims=(16, 24, 32, 32), num_heads=(2, 2, 4, 4), mlp_ratio=2.0)
    return _create_mlla("test_mlla", pretrained=pretrained, **dict(model_args, **kwargs))
