"""FLOPs of an mmdet detector / mmseg segmentor built from a config, counted like the families' dense tables.

    from vssm.mm.flops import count_config
    count_config("configs/detection/mask-rcnn_vmamba-t_fpn_1x_coco.py", (3, 1280, 800)).gflops   # ~271

The model is built from ``cfg.model`` with the backbone's ``init_cfg`` dropped (nothing is downloaded; FLOPs do
not depend on the weights beyond the detector's proposal count), put in eval mode, and run once on a random image
of ``input_shape`` = ``(C, H, W)`` at batch 1 in mmengine's ``mode='tensor'`` (the raw outputs of the heads: for a
two-stage detector the RPN's proposals feed the RoI heads, as in VMamba's ``analyze`` script, which counted with
mmengine's fvcore-style analyzer at ``(3, 1280, 800)``; its segmentation numbers are UperNet's encoder and decode
head at ``(3, 512, 2048)``). mmcv's compiled ops (RoIAlign, NMS) are not torch ops and count 0, as in fvcore.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence, Union

import torch

from ..utils.flops import FlopCount, count

__all__ = ["count_config", "BACKBONE_CONVENTION"]

# the counting convention of each family's dense tables (VMamba-derived families: VMamba's)
BACKBONE_CONVENTION = {
    "VMambaBackbone": "vmamba", "LocalVMambaBackbone": "vmamba", "MSVMambaBackbone": "vmamba",
    "EfficientVMambaBackbone": "fvcore", "MambaVisionBackbone": "ptflops", "MLLABackbone": "fvcore",
    "VimBackbone": "fvcore", "MobileMambaBackbone": "fvcore",
}


def _build(cfg):
    from mmengine.registry import DefaultScope

    import vssm.mm  # noqa: F401  (registers the backbones)

    scope = cfg.get("default_scope", "mmdet")
    if scope not in ("mmdet", "mmseg"):
        raise ValueError(f"count_config: default_scope={scope!r}; allowed: 'mmdet', 'mmseg'")
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop("init_cfg", None)
    model_cfg.pop("init_cfg", None)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(model_cfg)
    return model, scope


def count_config(config: Union[str, Path, Any], input_shape: Sequence[int] = (3, 1280, 800),
                 convention: str = "official") -> FlopCount:
    """Count one ``mode='tensor'`` forward of the config's model on a ``(1, *input_shape)`` image.

    ``convention='official'`` takes the backbone family's (``BACKBONE_CONVENTION``); any convention of
    ``vssm.utils.flops.count`` may be named.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(str(config)) if isinstance(config, (str, Path)) else config
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"count_config: input_shape={input_shape!r}; allowed: (C, H, W) positive ints")
    model, scope = _build(cfg)
    model.eval()
    if convention == "official":
        convention = BACKBONE_CONVENTION.get(cfg.model.backbone.type, "fvcore")
    _, H, W = shape
    meta = dict(img_shape=(H, W), pad_shape=(H, W), batch_input_shape=(H, W), ori_shape=(H, W),
                scale_factor=(1.0, 1.0))
    if scope == "mmdet":
        from mmdet.structures import DetDataSample as Sample
    else:
        from mmseg.structures import SegDataSample as Sample
    samples = [Sample(metainfo=meta)]
    x = torch.randn((1,) + shape)

    def forward():
        return model(x, samples, mode="tensor")

    r = count(forward, inputs=(), convention=convention)
    r.input_size = shape
    return r
