"""Pretrained cfgs of the vssm models: timm's ``PretrainedCfg`` plus the fields our checkpoint loading reads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Union

from timm.models import PretrainedCfg as _TimmPretrainedCfg
from timm.models import generate_default_cfgs as _timm_generate_default_cfgs

__all__ = ["PretrainedCfg", "generate_default_cfgs"]


@dataclass
class PretrainedCfg(_TimmPretrainedCfg):
    """timm's pretrained cfg plus the fields our loading and the model-zoo table read.

    Attributes:
        use_ema: Which weights of an official training checkpoint holding both the plain and the EMA weights are the
            released ones (those the published accuracy was measured on). Default True, timm's choice;
            ``vssm.checkpoint.resolve_use_ema`` reads it from ``model.pretrained_cfg``.
        file_name: The file's name in the download cache, for a ``url`` whose path does not name it, or for a
            browser-only release (``origin_url`` alone) that the user puts there by hand.
        top1: The published ImageNet-1k top-1 (%) of these weights at the cfg's ``input_size``.
        gflops: The published GFLOPs of the architecture at the cfg's ``input_size``, as its paper / README prints
            them (multiply-adds, counted the family's way: ``vssm.utils.flops``, ``convention='official'``).
    """

    use_ema: bool = True
    file_name: str = ""
    top1: float | None = None
    gflops: float | None = None


def generate_default_cfgs(cfgs: Dict[str, Union[Dict[str, Any], _TimmPretrainedCfg]]) -> Dict[str, Any]:
    """timm's ``generate_default_cfgs`` over :class:`PretrainedCfg` (dicts are turned into ours, not timm's)."""
    return _timm_generate_default_cfgs({k: PretrainedCfg(**v) if isinstance(v, dict) else v for k, v in cfgs.items()})
