"""OpenMMLab backbones: the timm models of vssm as mmdet / mmseg backbones.

One adapter class per model family (:class:`VMambaBackbone`, :class:`LocalVMambaBackbone`, :class:`VimBackbone`,
:class:`MambaVisionBackbone`, :class:`MLLABackbone`, :class:`EfficientVMambaBackbone`, :class:`MSVMambaBackbone`,
:class:`MobileMambaBackbone`),
all thin subclasses of :class:`TimmBackbone` (:mod:`vssm.mm.base`; the declarations: :mod:`vssm.mm.families`), which
builds the family's timm model with ``features_only=True`` and adds what dense prediction configs expect of a
backbone: a tuple of NCHW maps with one LayerNorm per output index (``outnorm{i}``, named as in the official VMamba
detection / segmentation backbone so its checkpoints load), ``frozen_stages``, ``norm_eval``, ``with_cp`` and strict
``init_cfg=dict(type='Pretrained', ...)`` loading. The networks themselves live in ``vssm.models``; nothing here
changes what they compute. :class:`~vssm.mm.necks.UpsampleFPN` (registered in mmdet) is the neck for backbones whose
first stage is coarser than stride 4 (MobileMamba's stride 16); :mod:`vssm.mm.heads` registers ``FixedSSDHead``
(mmdet's SSDHead, which cannot predict under mmdet 3.3.0 otherwise) for the SSDLite configs.

Importing this module registers the backbones in mmengine's root ``MODELS`` registry and in the ``MODELS`` registries
of mmdet and mmseg, each when it can be imported, so either library finds them from a config with::

    custom_imports = dict(imports=['vssm.mm'], allow_failed_imports=False)
    model = dict(backbone=dict(type='VMambaBackbone', arch='tiny', ...))

Adding a family takes a subclass that names its ``family``, its aliases (``arch_zoo``), the pattern of its timm
entrypoints (``model_pattern``) and, when its checkpoints carry classifier keys under other names, ``head_keys``;
``fixed_kwargs`` / ``out_norm_keys`` / ``init_keys`` and the ``_stage_groups`` hook cover the rest (see
:class:`VimBackbone` for a plain, single-resolution family). The family's converter is its model module's
``checkpoint_filter_fn`` (:func:`vssm.checkpoint.find_filter`). ``allow_mmengine_checkpoints`` is
:func:`vssm.checkpoint.allow_mmengine_checkpoints`, re-exported here for the launchers.
"""
from ..checkpoint import allow_mmengine_checkpoints
from .base import REGISTRIES, TimmBackbone, register_backbone
from .families import (
    EfficientVMambaBackbone,
    LocalVMambaBackbone,
    MambaVisionBackbone,
    MLLABackbone,
    MobileMambaBackbone,
    MSVMambaBackbone,
    VimBackbone,
    VMambaBackbone,
)
from .heads import register_heads
from .necks import UpsampleFPN, register_necks

register_necks()
register_heads()

__all__ = [
    "EfficientVMambaBackbone",
    "LocalVMambaBackbone",
    "MLLABackbone",
    "MSVMambaBackbone",
    "MambaVisionBackbone",
    "MobileMambaBackbone",
    "REGISTRIES",
    "TimmBackbone",
    "VMambaBackbone",
    "UpsampleFPN",
    "VimBackbone",
    "allow_mmengine_checkpoints",
    "register_backbone",
]
