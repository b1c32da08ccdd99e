"""VMamba and LocalVMamba: hierarchical vision state-space models with pluggable scans.

VMamba: Liu et al., "VMamba: Visual State Space Model", NeurIPS 2024 (arXiv:2401.10166),
https://github.com/MzeroMiko/VMamba. LocalVMamba: Huang et al., "LocalMamba: Visual State Space Model with Windowed
Selective Scan", 2024 (arXiv:2403.09338), https://github.com/hunto/LocalMamba.

The network is VMamba's: a patch-embed stem, four stages of VSS blocks (SS2D token mixer, optional MLP) joined by
2x downsampling, a final norm, average pooling and a linear head. The SS2D mixer here calls one ordered
selective-scan op with the orders of its scan (``vssm.layers.SS2D``), so every scan strategy of ``vssm.scans`` plugs in
through ``scan=`` without copies of the feature map; VMamba's own cross scan is the default.

What the official code selects with strings maps onto plain arguments here:

============================  ===================================================================================
official                      here
============================  ===================================================================================
``forward_type='v0'/'v2'``    ``ssm_gate=True`` (``y = out_norm(scan) * silu(z)``)
``forward_type='v05_noz'``    ``ssm_gate=False`` (no ``z`` branch; v05 only changes kernels, not the maths)
``norm_layer='ln2d'``         the same LayerNorm over channels; this model always runs channels-last, so the v2
                              "channel-first" layout is the same function with the same parameters
``patchembed_version``        ``stem='v1'`` (strided conv) / ``'v2'`` (two 3x3 stride-2 convs)
``downsample_version``        ``downsample='v1'`` (patch merging) / ``'v2'`` (2x2 conv) / ``'v3'`` (3x3 conv)
``directions`` (LocalMamba)   ``scan={'type': 'localmamba', 'directions': [...]}`` per layer, ``path_attn=True``
============================  ===================================================================================

Layout conventions: features are channels-last. ``forward_features`` returns the normed ``(B, H, W, C)`` map
(``output_fmt = 'NHWC'``, as timm's Swin / MambaOut), so ``reset_classifier(0, '')`` gives a 4-D NHWC output;
``forward_intermediates`` and ``features_only=True`` give NCHW maps.

LocalMamba zero-pads the map to a multiple of its window and scans the padding tokens. The ``localmamba`` scan
itself has partial border windows instead; ``window_padding=True`` (set by the LocalVMamba entrypoints) reproduces
the official padding inside SS2D, so outputs match the official code at every input size.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Dict, List, Sequence, Union

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, get_act_layer
from timm.models import checkpoint_seq, register_model

from ..checkpoint import check_state_dict, rename_keys, reshape_like, resolve_use_ema, unwrap_state_dict
from ..layers import ConvStem, PatchMerging, VSSBlock, create_downsample, create_stem, drop_path_rates
from ._builder import build_model_with_cfg
from ._cfg import generate_default_cfgs
from ._hierarchical import HierarchicalModel

__all__ = ["VMamba", "VMambaStage", "checkpoint_filter_fn"]


class VMambaStage(nn.Module):
    """An optional downsample (all stages but the first) followed by ``depth`` VSS blocks."""

    def __init__(
            self,
            dim: int,
            out_dim: int,
            depth: int,
            scans: Sequence[Any],
            downsample: str = "",
            drop_path: Sequence[float] = (),
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            block_kwargs: Dict[str, Any] | None = None,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            dim: input width.
            out_dim: width of the blocks.
            depth: number of blocks.
            scans: one scan per block.
            downsample: downsample version (``'v1'``, ``'v2'``, ``'v3'``) or ``''`` for none.
            drop_path: stochastic depth rate per block.
            norm_layer: norm class.
            block_kwargs: further :class:`~vssm.layers.VSSBlock` arguments.
            device: parameter device.
            dtype: parameter dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.grad_checkpointing = False
        self.downsample = create_downsample(downsample, dim, out_dim, norm_layer, **dd) if downsample else nn.Identity()
        drop_path = list(drop_path) or [0.0] * depth
        block_kwargs = block_kwargs or {}
        self.blocks = nn.Sequential(*[
            VSSBlock(out_dim, scan=scans[i], drop_path=drop_path[i], norm_layer=norm_layer, **block_kwargs, **dd)
            for i in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return x


class VMamba(HierarchicalModel):
    """VMamba (and LocalVMamba) for image classification, timm-style, channels-last inside."""

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            depths: Sequence[int] = (2, 2, 9, 2),
            dims: Union[int, Sequence[int]] = 96,
            patch_size: int = 4,
            stem: str = "v1",
            downsample: str = "v1",
            scan: Any = "cross",
            d_state: int = 16,
            ssm_ratio: float = 2.0,
            dt_rank: Union[int, str] = "auto",
            ssm_act_layer: Union[str, Callable[..., nn.Module]] = "silu",
            ssm_conv: int = 3,
            ssm_conv_bias: bool = True,
            ssm_gate: bool = True,
            path_attn: bool = False,
            window_padding: bool = False,
            mlp_ratio: float = 4.0,
            mlp_act_layer: Union[str, Callable[..., nn.Module]] = "gelu",
            post_norm: bool = False,
            norm_eps: float = 1e-5,
            drop_rate: float = 0.0,
            ssm_drop_rate: float = 0.0,
            mlp_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        """
        Args:
            in_chans: input image channels.
            num_classes: classifier outputs (0: no classifier).
            global_pool: ``'avg'``, ``'max'``, ``'avgmax'`` or ``''`` (none).
            depths: blocks per stage.
            dims: width per stage, or the first width (doubled per stage).
            patch_size: stem stride.
            stem: ``'v1'`` (strided conv + norm) or ``'v2'`` (two 3x3 stride-2 convs).
            downsample: ``'v1'`` (patch merging), ``'v2'`` (2x2 conv), ``'v3'`` (3x3 conv).
            scan: a scan for every layer, a list with one per stage, or one per layer (names, dicts or Scan objects;
                see ``vssm.scans.resolve_scans``). Per-path parameters follow each scan's ``K``.
            d_state: SSM state size (VMamba v0: 16, v2: 1).
            ssm_ratio: SS2D inner width ratio.
            dt_rank: dt projection rank or ``'auto'`` (``ceil(dim / 16)``).
            ssm_act_layer: SS2D activation.
            ssm_conv: SS2D depthwise conv size (``< 2``: none).
            ssm_conv_bias: bias of that conv.
            ssm_gate: SiLU gate branch in SS2D (official ``v0``/``v2``: True; ``v05_noz``: False).
            path_attn: LocalMamba's per-path channel attention when merging the paths.
            window_padding: with ``localmamba`` scans, zero-pad partial windows and scan the padding as LocalMamba
                does (on for the LocalVMamba entrypoints, so their outputs match the official code at any size).
            mlp_ratio: MLP ratio of the blocks (0: no MLP branch).
            mlp_act_layer: MLP activation.
            post_norm: norms after the block branches instead of before.
            norm_eps: LayerNorm epsilon.
            drop_rate: dropout before the classifier.
            ssm_drop_rate: dropout after the SS2D out-projection.
            mlp_drop_rate: MLP dropout.
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
        if len(dims) != num_stages:
            raise ValueError(f"dims ({dims}) and depths ({list(depths)}) must have one entry per stage")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.output_fmt = "NHWC"
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.scans = resolve_scans(scan, list(depths))

        self.stem = create_stem(stem, in_chans, dims[0], patch_size, norm_layer=norm_layer, **dd)
        dpr = drop_path_rates(drop_path_rate, depths, per_stage=True, float64=True)
        block_kwargs = dict(
            d_state=d_state, ssm_ratio=ssm_ratio, dt_rank=dt_rank, ssm_act_layer=get_act_layer(ssm_act_layer),
            ssm_conv=ssm_conv, ssm_conv_bias=ssm_conv_bias, ssm_gate=ssm_gate, ssm_drop=ssm_drop_rate,
            path_attn=path_attn, window_padding=window_padding, mlp_ratio=mlp_ratio,
            mlp_act_layer=get_act_layer(mlp_act_layer), mlp_drop=mlp_drop_rate, post_norm=post_norm,
        )
        self.stages = nn.Sequential()
        self.feature_info = []
        prev, reduction = dims[0], patch_size
        for i, depth in enumerate(depths):
            if i > 0:
                reduction *= 2
            self.stages.append(VMambaStage(
                prev, dims[i], depth, self.scans[i], downsample=downsample if i > 0 else "",
                drop_path=dpr[i], norm_layer=norm_layer, block_kwargs=block_kwargs, **dd,
            ))
            self.feature_info.append(dict(num_chs=dims[i], reduction=reduction, module=f"stages.{i}"))
            prev = dims[i]

        self.num_features = self.head_hidden_size = dims[-1]
        self.norm = norm_layer(self.num_features, **dd)
        self.head = ClassifierHead(
            self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, input_fmt=self.output_fmt,
        )
        if device is not None or dtype is not None:
            self.head.to(**{k: v for k, v in dd.items() if v is not None})
        self.apply(self._init_weights)


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints

_STEM_V1 = {"0": "proj", "2": "norm"}
_STEM_V2 = {"0": "conv1", "2": "norm1", "5": "conv2", "7": "norm2"}
# downsample keys: v2 / v3 convs (nn.Sequential: permute, conv, identity, norm); patch merging as the classification
# code's PatchMerging2D (reduction, norm) or as the standalone vmamba.py's nn.Sequential (merge, norm, linear)
_DOWNSAMPLE_CONV = {"1": "conv", "3": "norm"}
_DOWNSAMPLE_MERGE = {"reduction": "reduction", "norm": "norm", "1": "norm", "2": "reduction"}
# mixer parameters: stacked per path (classification/models/vmamba.py), or the standalone vmamba.py's grouped
# Linear layers, x_proj.weight (K * (R + 2N), Di) and dt_projs.weight (K * Di, R), reshaped to the stacked layout
_MIXER = {
    "x_proj_weight": "x_proj_weight", "dt_projs_weight": "dt_proj_weight", "dt_projs_bias": "dt_proj_bias",
    "x_proj.weight": "x_proj_weight", "dt_projs.weight": "dt_proj_weight", "A_logs": "A_log", "Ds": "D",
}


def _official_key(k: str, stem_map: Dict[str, str], downsample_map: Dict[str, str]) -> str | None:
    """Maps one official VMamba / LocalMamba key to this model's name (``None``: not an official key)."""
    # legacy names of the first releases (VMamba v0 and older training code)
    k = re.sub(r"^patch_embed\.proj\.", "patch_embed.0.", k)
    k = re.sub(r"^patch_embed\.norm\.", "patch_embed.2.", k)
    k = re.sub(r"\.ln_1\.", ".norm.", k)
    k = k.replace(".self_attention.", ".op.")
    if re.match(r"^(norm|head)\.", k):
        k = "classifier." + k
    m = re.match(r"^patch_embed\.(\d+)\.(.+)$", k)
    if m:
        return f"stem.{stem_map[m[1]]}.{m[2]}" if m[1] in stem_map else None
    m = re.match(r"^layers\.(\d+)\.downsample\.([^.]+)\.(.+)$", k)
    if m:
        return f"stages.{int(m[1]) + 1}.downsample.{downsample_map[m[2]]}.{m[3]}" if m[2] in downsample_map else None
    m = re.match(r"^layers\.(\d+)\.blocks\.(\d+)\.(.+)$", k)
    if m:
        prefix, rest = f"stages.{m[1]}.blocks.{m[2]}.", m[3]
        if rest.startswith("norm."):
            return prefix + "norm1." + rest[len("norm."):]
        if rest.startswith(("norm2.", "mlp.")):
            return prefix + rest
        if rest.startswith("op."):
            rest = rest[len("op."):]
            rest = rest.replace("multi_scan.attn.", "path_attn.")
            return prefix + "mixer." + _MIXER.get(rest, rest)
        return None
    m = re.match(r"^classifier\.(norm|head)\.(.+)$", k)
    if m:
        return ("norm." if m[1] == "norm" else "head.fc.") + m[2]
    return None


def checkpoint_filter_fn(state_dict: Dict[str, Any], model: VMamba, use_ema: bool | None = None) -> Dict[str, Any]:
    """Converts an official VMamba / LocalMamba checkpoint (any layout) to this model's keys, strictly.

    Handles: training checkpoints wrapped in ``'model'`` / ``'model_ema'`` / ``'ema_model'`` / ``'state_dict'``;
    VMamba v2 keys (``patch_embed.N``, ``layers.i.blocks.j.op.*``, ``layers.i.downsample.N``, ``classifier.*``) with
    stacked ``x_proj_weight (K, R+2N, D)``, flattened ``A_logs (K*D, N)`` / ``Ds (K*D)``, and 1x1-conv weights
    of the channel-first layout; the standalone ``vmamba.py`` at the root of the official repository (grouped
    ``x_proj.weight (K*(R+2N), D)`` / ``dt_projs.weight (K*D, R)``, patch merging as ``downsample.1`` norm and
    ``downsample.2`` linear); vanilla v0 and legacy names (``patch_embed.proj``, ``ln_1``, ``self_attention``,
    top-level ``norm`` / ``head``); LocalMamba's ``op.multi_scan.attn.*``. A state dict already in this layout is
    checked and returned as is.

    Args:
        state_dict: the loaded checkpoint.
        model: the target model (its shapes decide the reshapes).
        use_ema: prefer EMA weights in a wrapped checkpoint; None: the pretrained cfg's ``use_ema`` (True, as timm,
            except for the releases whose official numbers are of the plain weights: Vanilla-VMamba-T, LocalVMamba).

    Returns:
        A state dict with exactly the model's keys (the classifier is left for timm to adapt).

    Raises:
        vssm.checkpoint.CheckpointError: naming the first missing / unexpected keys and shape mismatches.
    """
    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "") or ""
    sd = unwrap_state_dict(state_dict, use_ema=resolve_use_ema(model, use_ema))
    target = model.state_dict()
    if not any(k.startswith(("stem.", "stages.")) for k in sd):
        stem_map = _STEM_V2 if isinstance(model.stem, ConvStem) else _STEM_V1
        merging = any(isinstance(m, PatchMerging) for m in model.modules())
        ds_map = _DOWNSAMPLE_MERGE if merging else _DOWNSAMPLE_CONV
        sd = rename_keys(sd, lambda k: _official_key(k, stem_map, ds_map) or k)
        sd = {k: reshape_like(v, target[k].shape if k in target else None) for k, v in sd.items()}
    check_state_dict(sd, model, ignore_prefixes=("head.fc.",), family=arch)
    return sd


# ----------------------------------------------------------------------------------------------------------------
# Configurations

def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    return {
        "url": url,
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1", "classifier": "head.fc",
        "license": "mit", "paper_ids": "arXiv:2401.10166", "paper_name": "VMamba: Visual State Space Model",
        **kwargs,
    }


_VMAMBA_RELEASES = "https://github.com/MzeroMiko/VMamba/releases/download/"
_LOCALMAMBA_RELEASES = "https://github.com/hunto/LocalMamba/releases/download/"

# The official releases (GitHub release assets: training checkpoints, read with their pickled configuration made
# inert, see vssm.models._builder); top1 is the README's ImageNet-1k top-1 at 224 (Resize 256 + CenterCrop 224).
# LocalVMamba-T was never released (its README says "retraining"), so it has no tag.
default_cfgs = generate_default_cfgs({
    "vmamba_tiny_s1l8.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth", top1=82.6, gflops=4.9),
    "vmamba_small_s1l20.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm1_small_0229s_ckpt_epoch_240.pth", top1=83.3, gflops=8.6),
    "vmamba_base_s1l20.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm1_base_0229s_ckpt_epoch_225.pth", top1=83.8, gflops=15.2),
    "vmamba_tiny_s2l5.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm_tiny_0230_ckpt_epoch_262.pth", top1=82.5, gflops=4.9),
    "vmamba_small_s2l15.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm_small_0229_ckpt_epoch_222.pth", top1=83.6, gflops=8.7),
    "vmamba_base_s2l15.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm_base_0229_ckpt_epoch_237.pth", top1=83.9, gflops=15.4),
    "vmamba_tiny.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth", top1=82.6, gflops=4.9),
    "vmamba_small.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm_small_0229_ckpt_epoch_222.pth", top1=83.6, gflops=8.7),
    "vmamba_base.in1k": _cfg(
        url=_VMAMBA_RELEASES + "%23v2cls/vssm_base_0229_ckpt_epoch_237.pth", top1=83.9, gflops=15.4),
    # Vanilla-VMamba-T was trained without EMA; its reported accuracy is of the plain weights.
    "vanilla_vmamba_tiny.in1k": _cfg(
        first_conv="stem.proj", notes=("trained without EMA",), use_ema=False,
        url=_VMAMBA_RELEASES + "%23v0cls/vssmtiny_dp01_ckpt_epoch_292.pth", top1=82.2, gflops=5.6),
    "vanilla_vmamba_small.in1k": _cfg(
        first_conv="stem.proj", url=_VMAMBA_RELEASES + "%23v0cls/vssmsmall_dp03_ckpt_epoch_238.pth",
        top1=83.5, gflops=11.2),
    "vanilla_vmamba_base.in1k": _cfg(
        first_conv="stem.proj", url=_VMAMBA_RELEASES + "%23v0cls/vssmbase_dp06_ckpt_epoch_241.pth",
        top1=83.7, gflops=18.0),
    "localvmamba_tiny": _cfg(
        first_conv="stem.proj", use_ema=False, license="apache-2.0", paper_ids="arXiv:2403.09338",
        paper_name="LocalMamba: Visual State Space Model with Windowed Selective Scan", gflops=5.7),
    "localvmamba_small.in1k": _cfg(
        first_conv="stem.proj", use_ema=False, license="apache-2.0", paper_ids="arXiv:2403.09338",
        paper_name="LocalMamba: Visual State Space Model with Windowed Selective Scan",
        url=_LOCALMAMBA_RELEASES + "v1.0.0/local_vssm_small.ckpt", top1=83.7, gflops=11.4),
    "vmamba_micro": _cfg(input_size=(3, 64, 64), pool_size=(2, 2), crop_pct=1.0),
    "test_vmamba": _cfg(input_size=(3, 32, 32), pool_size=(1, 1), crop_pct=1.0),
    "test_localvmamba": _cfg(input_size=(3, 32, 32), pool_size=(1, 1), crop_pct=1.0, first_conv="stem.proj"),
})


def _create_vmamba(variant: str, pretrained: bool = False, **kwargs: Any) -> VMamba:
    out_indices = kwargs.pop("out_indices", tuple(range(len(kwargs.get("depths", (2, 2, 9, 2))))))
    return build_model_with_cfg(
        VMamba, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter", flatten_sequential=True),
        **kwargs,
    )


# VMamba v2, ``s1l*``: d_state 1, ssm_ratio 1, no gate (v05_noz), MLP 4, conv stem v2, 3x3 downsample (v3).
_V2 = dict(stem="v2", downsample="v3", d_state=1, ssm_conv_bias=False, ssm_gate=False, mlp_ratio=4.0)
# Vanilla VMamba (v0): d_state 16, ssm_ratio 2, gated SS2D, no MLP, patch-embed v1, patch merging.
_V0 = dict(stem="v1", downsample="v1", d_state=16, ssm_ratio=2.0, ssm_conv_bias=True, ssm_gate=True, mlp_ratio=0.0)


@register_model
def vmamba_tiny_s1l8(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-T [s1l8] (30.2M): dims 96, depths (2, 2, 8, 2), ssm_ratio 1 (official drop_path_rate 0.2)."""
    model_args = dict(_V2, depths=(2, 2, 8, 2), dims=96, ssm_ratio=1.0)
    return _create_vmamba("vmamba_tiny_s1l8", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_small_s1l20(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-S [s1l20] (49.0M): dims 96, depths (2, 2, 20, 2), ssm_ratio 1 (official drop_path_rate 0.3)."""
    model_args = dict(_V2, depths=(2, 2, 20, 2), dims=96, ssm_ratio=1.0)
    return _create_vmamba("vmamba_small_s1l20", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_base_s1l20(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-B [s1l20] (86.6M): dims 128, depths (2, 2, 20, 2), ssm_ratio 1 (official drop_path_rate 0.5)."""
    model_args = dict(_V2, depths=(2, 2, 20, 2), dims=128, ssm_ratio=1.0)
    return _create_vmamba("vmamba_base_s1l20", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_tiny_s2l5(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-T [s2l5] (30.7M): dims 96, depths (2, 2, 5, 2), ssm_ratio 2 (official drop_path_rate 0.2)."""
    model_args = dict(_V2, depths=(2, 2, 5, 2), dims=96, ssm_ratio=2.0)
    return _create_vmamba("vmamba_tiny_s2l5", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_small_s2l15(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-S [s2l15] (50.1M): dims 96, depths (2, 2, 15, 2), ssm_ratio 2 (official drop_path_rate 0.3)."""
    model_args = dict(_V2, depths=(2, 2, 15, 2), dims=96, ssm_ratio=2.0)
    return _create_vmamba("vmamba_small_s2l15", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_base_s2l15(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-B [s2l15] (88.6M): dims 128, depths (2, 2, 15, 2), ssm_ratio 2 (official drop_path_rate 0.6)."""
    model_args = dict(_V2, depths=(2, 2, 15, 2), dims=128, ssm_ratio=2.0)
    return _create_vmamba("vmamba_base_s2l15", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_tiny(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-T of the official README: the ``s1l8`` configuration."""
    model_args = dict(_V2, depths=(2, 2, 8, 2), dims=96, ssm_ratio=1.0)
    return _create_vmamba("vmamba_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_small(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-S of the official README: the ``s2l15`` configuration."""
    model_args = dict(_V2, depths=(2, 2, 15, 2), dims=96, ssm_ratio=2.0)
    return _create_vmamba("vmamba_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_base(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """VMamba-B of the official README: the ``s2l15`` configuration."""
    model_args = dict(_V2, depths=(2, 2, 15, 2), dims=128, ssm_ratio=2.0)
    return _create_vmamba("vmamba_base", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vanilla_vmamba_tiny(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """Vanilla-VMamba-T (v0, 22.9M): dims 96, depths (2, 2, 9, 2), d_state 16 (official drop_path_rate 0.2)."""
    model_args = dict(_V0, depths=(2, 2, 9, 2), dims=96)
    return _create_vmamba("vanilla_vmamba_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vanilla_vmamba_small(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """Vanilla-VMamba-S (v0, 44.4M): dims 96, depths (2, 2, 27, 2), d_state 16 (official drop_path_rate 0.3)."""
    model_args = dict(_V0, depths=(2, 2, 27, 2), dims=96)
    return _create_vmamba("vanilla_vmamba_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vanilla_vmamba_base(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """Vanilla-VMamba-B (v0, 76.3M): dims 128, depths (2, 2, 27, 2), d_state 16 (official drop_path_rate 0.6)."""
    model_args = dict(_V0, depths=(2, 2, 27, 2), dims=128)
    return _create_vmamba("vanilla_vmamba_base", pretrained=pretrained, **dict(model_args, **kwargs))


# LocalMamba's searched directions, one list of 4 per layer (local_vssm_tiny / local_vssm_small of the paper code).
LOCALVMAMBA_TINY_DIRECTIONS = (
    ("h", "h_flip", "w7", "w7_flip"), ("h_flip", "v_flip", "w2", "w2_flip"),
    ("h_flip", "v_flip", "w2_flip", "w7"), ("h_flip", "v", "v_flip", "w2"),
    ("h", "h_flip", "v_flip", "w2_flip"), ("h_flip", "v_flip", "w2", "w2_flip"), ("h", "w2_flip", "w7", "w7_flip"),
    ("h", "h_flip", "v", "v_flip"), ("h", "v_flip", "w7", "w7_flip"), ("h_flip", "v", "w2", "w7_flip"),
    ("v", "v_flip", "w2", "w7_flip"), ("h", "h_flip", "v_flip", "w2_flip"), ("v_flip", "w2_flip", "w7", "w7_flip"),
    ("h_flip", "v_flip", "w2_flip", "w7_flip"), ("h_flip", "v", "w7", "w7_flip"),
)
LOCALVMAMBA_SMALL_DIRECTIONS = (
    ("h", "v", "v_flip", "w7_flip"), ("h", "h_flip", "v", "w7"),
    ("h_flip", "v", "v_flip", "w7"), ("h_flip", "v", "w2_flip", "w7"),
    ("h_flip", "v", "w2_flip", "w7"), ("h_flip", "v_flip", "w2", "w7_flip"), ("h_flip", "v", "v_flip", "w7"),
    ("h", "v", "v_flip", "w7"), ("h", "v", "v_flip", "w7"), ("h", "v", "v_flip", "w7_flip"),
    ("h", "h_flip", "v", "v_flip"), ("h", "v", "v_flip", "w2"), ("v", "v_flip", "w2_flip", "w7"),
    ("h", "h_flip", "v", "w2"), ("h_flip", "v", "v_flip", "w7_flip"), ("h", "h_flip", "v", "v_flip"),
    ("h", "v", "v_flip", "w7_flip"), ("h", "v", "v_flip", "w7_flip"), ("h", "h_flip", "v_flip", "w7"),
    ("h_flip", "v_flip", "w2_flip", "w7"), ("h_flip", "v", "v_flip", "w7_flip"), ("v", "v_flip", "w7", "w7_flip"),
    ("h", "v", "v_flip", "w7_flip"), ("h_flip", "v", "v_flip", "w2"), ("h", "v", "v_flip", "w2_flip"),
    ("h", "h_flip", "v", "w7"), ("h", "h_flip", "w7", "w7_flip"), ("h", "v_flip", "w2", "w2_flip"),
    ("h", "v_flip", "w2", "w7"), ("h", "v", "v_flip", "w7_flip"),
    ("h_flip", "v", "w2_flip", "w7"), ("h_flip", "v_flip", "w7", "w7_flip"), ("h", "v", "w7", "w7_flip"),
)


def localmamba_scans(directions: Sequence[Sequence[str]]) -> List[Dict[str, Any]]:
    """One ``localmamba`` scan spec per layer from LocalMamba's per-layer direction lists."""
    return [{"type": "localmamba", "directions": list(d)} for d in directions]


# LocalVMamba: vanilla VMamba (v0) blocks with per-layer searched scans and per-path channel attention.
_LOCAL = dict(_V0, path_attn=True, window_padding=True)


@register_model
def localvmamba_tiny(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """LocalVMamba-T (``local_vssm_tiny``): dims 96, depths (2, 2, 9, 2), searched scans per layer."""
    model_args = dict(_LOCAL, depths=(2, 2, 9, 2), dims=96, scan=localmamba_scans(LOCALVMAMBA_TINY_DIRECTIONS))
    return _create_vmamba("localvmamba_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def localvmamba_small(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """LocalVMamba-S (``local_vssm_small``): dims 96, depths (2, 2, 27, 2), searched scans per layer."""
    model_args = dict(_LOCAL, depths=(2, 2, 27, 2), dims=96, scan=localmamba_scans(LOCALVMAMBA_SMALL_DIRECTIONS))
    return _create_vmamba("localvmamba_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vmamba_micro(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """A small real VMamba for CPU training on small images (0.73M parameters at 8 classes; tools/train.py's default).

    The v2 recipe (d_state 1, ssm_ratio 1, MLP 2, conv stem, 3x3 downsample) with dims (48, 96, 128, 128) and depths
    (1, 1, 2, 1): feature maps of 8, 4, 2, 1 pixels at 32x32 and 16, 8, 4, 2 at 64x64.
    """
    model_args = dict(_V2, depths=(1, 1, 2, 1), dims=(48, 96, 128, 128), ssm_ratio=1.0, mlp_ratio=2.0)
    return _create_vmamba("vmamba_micro", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_vmamba(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """Tiny VMamba v2 (s1l-style: d_state 1, no gate, ln, MLP) for fast tests."""
    model_args = dict(_V2, depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), ssm_ratio=1.0, mlp_ratio=2.0)
    return _create_vmamba("test_vmamba", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_localvmamba(pretrained: bool = False, **kwargs: Any) -> VMamba:
    """Tiny LocalVMamba for fast tests (one searched-style direction list per layer)."""
    directions = (("h", "v_flip", "w2", "w7_flip"), ("h_flip", "v", "w2_flip", "w7"),
                  ("h", "h_flip", "w2", "w2_flip"), ("v", "v_flip", "w7", "w7_flip"), ("h", "v", "w2", "w7"))
    model_args = dict(_LOCAL, depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), d_state=4, ssm_ratio=1.0,
                      scan=localmamba_scans(directions))
    return _create_vmamba("test_localvmamba", pretrained=pretrained, **dict(model_args, **kwargs))
