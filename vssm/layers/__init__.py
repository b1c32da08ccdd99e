"""Shared building blocks of the vssm model families (all channels-last)."""
from .ss2d import SS2D, PathChannelAttention, get_scan_obj, resolve_dt_rank
from .stems import ConvDownsample, ConvStem, PatchEmbedStem, PatchMerging, create_downsample, create_stem
from .vss_block import Mlp, VSSBlock

__all__ = [
    "SS2D", "PathChannelAttention", "get_scan_obj", "resolve_dt_rank",
    "ConvDownsample", "ConvStem", "PatchEmbedStem", "PatchMerging", "create_downsample", "create_stem",
    "Mlp", "VSSBlock",
]
