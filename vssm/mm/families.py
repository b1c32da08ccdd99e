"""The OpenMMLab backbones of the vssm families: one short declaration each over :class:`TimmBackbone`.

A declaration names the family, its aliases (``arch_zoo``), the pattern of its timm entrypoints (``model_pattern``)
and, where its checkpoints carry the classifier or out norms under other names than ours, ``head_keys`` /
``out_norm_keys``; the family's own ``checkpoint_filter_fn`` (found through its model) converts the weights.
"""
from __future__ import annotations

from typing import List

import torch.nn as nn

from .base import TimmBackbone, register_backbone

__all__ = ["EfficientVMambaBackbone", "LocalVMambaBackbone", "MLLABackbone", "MSVMambaBackbone",
           "MambaVisionBackbone", "MobileMambaBackbone", "VMambaBackbone", "VimBackbone"]


@register_backbone
class VMambaBackbone(TimmBackbone):
    """VMamba (v2 ``s1l*`` / ``s2l*`` and vanilla v0) for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``tiny`` / ``small`` / ``base`` (the official README's VMamba-T ``s1l8``, -S ``s2l15``, -B ``s2l15``),
    ``tiny_s1l8`` ... ``base_s2l15``, ``vanilla_tiny`` / ``vanilla_small`` / ``vanilla_base``, ``micro`` and ``test``.
    """

    family = "VMamba"
    arch_zoo = {
        "tiny": "vmamba_tiny", "small": "vmamba_small", "base": "vmamba_base",
        **{v: f"vmamba_{v}" for v in ("tiny_s1l8", "small_s1l20", "base_s1l20", "tiny_s2l5", "small_s2l15",
                                      "base_s2l15")},
        "vanilla_tiny": "vanilla_vmamba_tiny", "vanilla_small": "vanilla_vmamba_small",
        "vanilla_base": "vanilla_vmamba_base", "micro": "vmamba_micro", "test": "test_vmamba",
    }
    model_pattern = r"^((vanilla_)?vmamba_.+|test_vmamba)$"
    # official layouts: ``classifier.{norm,head}`` (v2) and top-level ``norm`` / ``head`` (v0 and ours)
    head_keys = r"^(classifier|norm|head)\."


@register_backbone
class LocalVMambaBackbone(TimmBackbone):
    """LocalVMamba (VMamba v0 blocks with searched local scans) for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``tiny``, ``small``, ``test``. ``scan`` overrides the searched per-layer directions.
    """

    family = "LocalVMamba"
    arch_zoo = {"tiny": "localvmamba_tiny", "small": "localvmamba_small", "test": "test_localvmamba"}
    model_pattern = r"^(test_)?localvmamba(_.+)?$"
    head_keys = r"^(classifier|norm|head)\."


@register_backbone
class VimBackbone(TimmBackbone):
    """Vision Mamba (Vim), a plain single-resolution model, for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``tiny`` / ``small`` / ``base`` (the published Vim-Ti / -S / -B, middle class token) and ``test``.

    Vim has one resolution (the patch grid), so the adapter always builds the model's ViTDet-style simple feature
    pyramid (``pyramid=True``) with ``pyramid_strides=(4, 8, 16, 32)``: the model picks the scales for its patch size
    (``(4, 2, 1, 1/2)`` for patch 16, ``(2, 1, 1/2, 1/4)`` for the patch-8 ``test`` model) and reports the strides in
    its ``feature_info``; ``pyramid``, ``pyramid_scales`` and ``pyramid_strides`` are therefore not ``arch`` keys.
    Level ``i`` reads the output of layer ``pyramid_layers[i]``
    (default: the last layer of each quarter of the depth, as Vim's UperNet backbone; ``arch=dict(base='tiny',
    pyramid_layers=(23, 23, 23, 23))`` gives ViTDet's pyramid from the last layer). Any input size works: the image is
    zero-padded to a multiple of the patch and the position embedding resampled to the actual grid, so level ``i``
    is ``ceil(H / patch) * patch / stride_i`` high (max pooling rounds up).

    ``frozen_stages`` counts pyramid levels: ``0`` freezes the patch embedding, position embedding and class token;
    ``k`` also the layers up to ``pyramid_layers[k - 1]`` with pyramid levels ``0..k-1`` and their out norms (with the
    default layers of Vim-Ti: ``1`` freezes layers 0-5, ``2`` layers 0-11, ``3`` layers 0-17, ``4`` all 24).

    Checkpoints: a classification checkpoint (ours or the official ``norm_f`` / per-direction layout) has no pyramid;
    the pyramid then keeps its initialisation. The position embedding is resampled to the model's ``img_size``.
    """

    family = "Vim"
    arch_zoo = {"tiny": "vim_tiny", "small": "vim_small", "base": "vim_base", "test": "test_vim"}
    model_pattern = r"^(vim_.+|test_vim)$"
    # ours: ``norm`` / ``head``; official: ``norm_f`` / ``head``
    head_keys = r"^(norm|norm_f|head)\."
    # the model turns the strides into scales for its patch size (and reports them in feature_info)
    fixed_kwargs = {"pyramid": True, "pyramid_scales": None, "pyramid_strides": (4, 8, 16, 32)}
    init_keys = r"^pyramid\."

    def _stage_groups(self) -> List[List[nn.Module]]:
        """Stage ``i``: the layers after the previous level's up to ``pyramid_layers[i]``, and pyramid level ``i``."""
        model = self.body.model
        groups: List[List[nn.Module]] = []
        prev = -1
        for i, last in enumerate(model.pyramid_layers):
            layers = [model.layers[j] for j in range(prev + 1, last + 1) if j < len(model.layers)]
            groups.append(layers + [model.pyramid.levels[i]])
            prev = max(prev, last)
        return groups


@register_backbone
class MambaVisionBackbone(TimmBackbone):
    """MambaVision (hybrid conv / Mamba / attention) for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``tiny``, ``tiny2``, ``small``, ``base``, ``large``, ``large2``, ``large2_512``, ``large3_256``,
    ``large3_512`` and ``test``.

    Stages 3-4 mix inside non-overlapping windows. Maps the window does not divide are zero-padded at the bottom /
    right and cropped back after the stage, as the official classification and dense-prediction code do (the padding
    tokens take part in the mixing); so any input size works. The official detection / segmentation recipes enlarge
    the windows of stages 3-4 (``(8, 8, 112, 56)`` for Cascade Mask R-CNN, ``(8, 8, 64, 32)`` for UperNet at 512x512):
    ``arch=dict(base='tiny', window_size=(8, 8, 64, 32))``. Window sizes hold no weights, so ImageNet checkpoints
    load unchanged. The official dense backbones' ``outnorm{i}`` (LayerNorm over channels) load into the out norms.
    """

    family = "MambaVision"
    arch_zoo = {
        **{v: f"mambavision_{v}" for v in ("tiny", "tiny2", "small", "base", "large", "large2", "large2_512",
                                            "large3_256", "large3_512")},
        "test": "test_mambavision",
    }
    model_pattern = r"^(mambavision_.+|test_mambavision)$"
    # ours and official: ``norm`` (BatchNorm) / ``head``; the Hugging Face port prefixes ``model.``
    head_keys = r"^(model\.)?(norm|head)\."


@register_backbone
class MLLABackbone(TimmBackbone):
    """MLLA (Mamba-like linear attention) for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``tiny``, ``small``, ``base``, ``test``. The official detection / segmentation backbones name their out
    norms ``norm{i}`` (LayerNorm); those checkpoints (``prefix='backbone.'``) load into ``outnorm{i}``.
    """

    family = "MLLA"
    arch_zoo = {"tiny": "mlla_tiny", "small": "mlla_small", "base": "mlla_base", "test": "test_mlla"}
    model_pattern = r"^(mlla_.+|test_mlla)$"
    head_keys = r"^(norm|head)\."  # ours and official alike (``norm.`` is the final norm; ``norm{i}.`` out norms)
    out_norm_keys = r"^(?:out)?norm(\d+)\.(.+)$"


@register_backbone
class EfficientVMambaBackbone(TimmBackbone):
    """EfficientVMamba (atrous-scan EVSS + inverted-residual stages) for mmdet / mmseg; arguments as
    :class:`TimmBackbone`.

    Aliases: ``tiny``, ``small``, ``base``, ``test``. Odd maps are zero-padded before the atrous scan as in the
    official code (the model's ``atrous_padding=True``).
    """

    family = "EfficientVMamba"
    arch_zoo = {"tiny": "efficient_vmamba_tiny", "small": "efficient_vmamba_small", "base": "efficient_vmamba_base",
                "test": "test_efficient_vmamba"}
    model_pattern = r"^(efficient_vmamba_.+|test_efficient_vmamba)$"
    # ours: ``norm`` / ``head``; official: ``classifier.norm`` / ``classifier.head``
    head_keys = r"^(classifier|norm|head)\."


@register_backbone
class MSVMambaBackbone(TimmBackbone):
    """MSVMamba (multi-scale VMamba, v1) for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``nano``, ``micro``, ``tiny``, ``test``. ``scan`` takes ``'multiscale'`` or its dict form only (the
    mixer needs a full- plus half-resolution scan).
    """

    family = "MSVMamba"
    arch_zoo = {"nano": "msvmamba_nano", "micro": "msvmamba_micro", "tiny": "msvmamba_tiny", "test": "test_msvmamba"}
    default_arch = "tiny"
    model_pattern = r"^(msvmamba_.+|test_msvmamba)$"
    # ours: ``norm`` / ``head``; official (VMamba layout): ``classifier.norm`` / ``classifier.head``
    head_keys = r"^(classifier|norm|head)\."


@register_backbone
class MobileMambaBackbone(TimmBackbone):
    """MobileMamba (lightweight, multi-receptive) for mmdet / mmseg; arguments as :class:`TimmBackbone`.

    Aliases: ``t2``, ``t4``, ``s6``, ``b1`` (default: the official dense models all use B1's network, with the B1
    weights for detection and the B4 ones, ``timm:mobilemamba_b1.in1k_r512``, for segmentation) and ``test``.

    Three stages at strides 16 / 32 / 64 (``out_strides``), with no out norms (the official dense backbone returns
    the stage outputs as they are). How they meet the necks: mmseg's FPN takes the three maps (``num_outs=3``) and
    Semantic FPN's head fuses them at stride 16 (``feature_strides=[16, 32, 64]``); for detection,
    :class:`~vssm.mm.necks.UpsampleFPN` adds the stride-8 and stride-4 levels with transposed convolutions from the
    stride-16 map, as the official detectors' neck does. Its BatchNorm layers take ``norm_eval``.
    """

    family = "MobileMamba"
    arch_zoo = {"t2": "mobilemamba_t2", "t4": "mobilemamba_t4", "s6": "mobilemamba_s6", "b1": "mobilemamba_b1",
                "test": "test_mobilemamba"}
    default_arch = "b1"
    model_pattern = r"^(mobilemamba_.+|test_mobilemamba)$"
    # ours: ``head.norm`` / ``head.fc``; official: ``head.bn`` / ``head.l`` (and ``head_dist.*`` with distillation)
    head_keys = r"^(head|head_dist|norm)\."
    out_norms = False
