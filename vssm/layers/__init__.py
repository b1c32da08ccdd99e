"""Shared building blocks of the vssm model families (all channels-last)."""
from .drop import drop_path_rates
from .squeeze_excite import SqueezeExciteCl
from .ss2d import SS2D, PathChannelAttention, get_scan_obj
from .ssm import init_ssm_parameters, resolve_dt_rank, selective_ssm, ssm_inputs
from .stems import ConvDownsample, ConvStem, PatchEmbedStem, PatchMerging, create_downsample, create_stem
from .vss_block import VSSBlock

__all__ = [
    "SS2D", "PathChannelAttention", "get_scan_obj", "resolve_dt_rank", "init_ssm_parameters",
    "selective_ssm", "ssm_inputs",
    "ConvDownsample", "ConvStem", "PatchEmbedStem", "PatchMerging", "create_downsample", "create_stem",
    "VSSBlock", "SqueezeExciteCl", "drop_path_rates",
]
