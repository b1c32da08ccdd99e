"""Channels-last stems and downsampling layers of the hierarchical vision SSMs (VMamba, LocalVMamba).

Every module takes NCHW images (stems) or NHWC maps (downsamplers) and returns NHWC maps. The variants are the
ones of VMamba (Liu et al., 2024): patch-embed ``v1`` (one strided conv), ``v2`` (two stride-2 3x3 convs), and
downsample ``v1`` (Swin patch merging), ``v2`` (2x2 stride-2 conv), ``v3`` (3x3 stride-2 conv).
"""
from __future__ import annotations

from typing import Any, Callable, Type

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._fx import is_fx_proxy, register_notrace_module
from .linear import Linear

__all__ = ["PatchEmbedStem", "ConvStem", "PatchMerging", "ConvDownsample", "create_stem", "create_downsample",
           "check_image_input"]


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
    except RuntimeError:  # a device type without autocast (meta)
        return False


def check_image_input(model: nn.Module, x: Any, in_chans: int, stem: nn.Module) -> None:
    """Checks the images given to a model, before anything runs on them.

    Errors read ``<Model>: x: got <value>; allowed: <what>``: a tensor of shape ``(B, in_chans, H, W)``, ``H`` and
    ``W`` at least the stem's ``min_input_size`` (1 unless set), on the stem's device, and of the stem's dtype (any
    floating dtype under ``torch.autocast``, which casts it). An empty batch is fine.

    Args:
        model: The model (for its name in messages).
        x: The input.
        in_chans: Channels the model was built with.
        stem: The first module the images meet.
    """
    if is_fx_proxy(x):  # torch.fx tracing: no values to check (the graph, like an exported one, has no checks)
        return
    name = type(model).__name__
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: x: got {type(x).__name__}; allowed: a (B, {in_chans}, H, W) torch.Tensor")
    if x.ndim != 4 or x.shape[1] != in_chans:
        got = f"{x.shape[1]} channels" if x.ndim == 4 else f"a {x.ndim}-D tensor"
        raise ValueError(f"{name} (in_chans={in_chans}): x: got {got} (shape {tuple(x.shape)}); allowed: "
                         f"(B, {in_chans}, H, W) images")
    min_size = getattr(stem, "min_input_size", 1)
    if x.shape[2] < min_size or x.shape[3] < min_size:
        why = f" (the stem's {min_size}x{min_size} patches)" if min_size > 1 else ""
        raise ValueError(f"{name}: x: got a {x.shape[2]}x{x.shape[3]} image; allowed: height and width >= "
                         f"{min_size}{why}")
    params = list(stem.parameters())  # not next(..., None): torch.compile / export before torch 2.7 reject it
    if not params:
        return
    ref = params[0]
    if x.device != ref.device:
        raise ValueError(f"{name}: x: got device {x.device}; allowed: {ref.device}, the model's device "
                         f"(x.to({str(ref.device)!r}))")
    if not x.is_floating_point():
        raise TypeError(f"{name}: x: got dtype {x.dtype}; allowed: {ref.dtype} (the model's dtype), e.g. "
                        "x.float() / 255 for 8-bit images")
    if x.dtype != ref.dtype and not _autocast_enabled(x.device.type):
        raise TypeError(f"{name}: x: got dtype {x.dtype}; allowed: {ref.dtype} (the model's dtype), or any "
                        "floating dtype under torch.autocast")


class PatchEmbedStem(nn.Module):
    """Patch-embed ``v1``: ``patch_size`` x ``patch_size`` conv with the same stride, then a norm."""

    def __init__(
            self,
            in_chans: int,
            embed_dim: int,
            patch_size: int = 4,
            norm_layer: Callable[..., nn.Module] | None = nn.LayerNorm,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, **dd)
        self.norm = norm_layer(embed_dim, **dd) if norm_layer else nn.Identity()
        self.min_input_size = patch_size  # an unpadded conv: smaller images have no patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a channels-last image makes the conv write channels-last, so the permute below is a contiguous NHWC view
        # and the norm reads it in place (an NCHW conv output cost the norm a copy, forward and backward)
        x = self.proj(x.contiguous(memory_format=torch.channels_last))
        return self.norm(x.permute(0, 2, 3, 1))  # (B, C, H, W) -> (B, H/p, W/p, D)


class ConvStem(nn.Module):
    """Patch-embed ``v2``: conv (k = p/2 + 1, stride p/2, pad 1) -> norm -> GELU -> conv (same) -> norm.

    The first conv has ``embed_dim // 2`` outputs; with ``patch_size=4`` both convs are 3x3 stride 2.
    """

    def __init__(
            self,
            in_chans: int,
            embed_dim: int,
            patch_size: int = 4,
            norm_layer: Callable[..., nn.Module] | None = nn.LayerNorm,
            act_layer: Type[nn.Module] = nn.GELU,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        stride = patch_size // 2
        kernel_size = stride + 1
        mid = embed_dim // 2
        self.conv1 = nn.Conv2d(in_chans, mid, kernel_size=kernel_size, stride=stride, padding=1, **dd)
        self.norm1 = norm_layer(mid, **dd) if norm_layer else nn.Identity()
        self.act = act_layer()
        self.conv2 = nn.Conv2d(mid, embed_dim, kernel_size=kernel_size, stride=stride, padding=1, **dd)
        self.norm2 = norm_layer(embed_dim, **dd) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last image: conv1 writes channels-last, so norm1 reads it as contiguous NHWC, no copy (see
        # PatchEmbedStem)
        x = self.conv1(x.contiguous(memory_format=torch.channels_last))
        x = self.norm1(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = self.conv2(self.act(x)).permute(0, 2, 3, 1)
        return self.norm2(x)


@register_notrace_module
class PatchMerging(nn.Module):
    """Downsample ``v1`` (Swin's patch merging): 2x2 neighbours concatenated, norm over ``4C``, linear to ``out_dim``.

    Odd maps are zero-padded at the bottom/right first. Concatenation order: (0,0), (1,0), (0,1), (1,1) as (h, w).
    """

    def __init__(
            self,
            dim: int,
            out_dim: int,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm = norm_layer(4 * dim, **dd)
        self.reduction = Linear(4 * dim, out_dim, bias=False, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[1:3]
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class ConvDownsample(nn.Module):
    """Downsample ``v2`` (2x2 conv, stride 2) or ``v3`` (3x3 conv, stride 2, pad 1), then a norm."""

    def __init__(
            self,
            dim: int,
            out_dim: int,
            kernel_size: int = 3,
            norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
            device: torch.device | None = None,
            dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv = nn.Conv2d(dim, out_dim, kernel_size=kernel_size, stride=2, padding=(kernel_size - 1) // 2, **dd)
        self.norm = norm_layer(out_dim, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


def create_stem(
        version: str,
        in_chans: int,
        embed_dim: int,
        patch_size: int = 4,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
        **dd,
) -> nn.Module:
    """``'v1'``: :class:`PatchEmbedStem`; ``'v2'``: :class:`ConvStem`."""
    if version == "v1":
        return PatchEmbedStem(in_chans, embed_dim, patch_size, norm_layer=norm_layer, **dd)
    if version == "v2":
        return ConvStem(in_chans, embed_dim, patch_size, norm_layer=norm_layer, **dd)
    raise ValueError(f"stem version must be 'v1' or 'v2', got {version!r}")


def create_downsample(
        version: str,
        dim: int,
        out_dim: int,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
        **dd,
) -> nn.Module:
    """``'v1'``: :class:`PatchMerging`; ``'v2'``: 2x2 :class:`ConvDownsample`; ``'v3'``: 3x3 :class:`ConvDownsample`."""
    if version == "v1":
        return PatchMerging(dim, out_dim, norm_layer=norm_layer, **dd)
    if version in ("v2", "v3"):
        return ConvDownsample(dim, out_dim, kernel_size=2 if version == "v2" else 3, norm_layer=norm_layer, **dd)
    raise ValueError(f"downsample version must be 'v1', 'v2' or 'v3', got {version!r}")
