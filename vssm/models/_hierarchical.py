"""The timm model contract shared by the hierarchical (four-stage pyramid) families.

VMamba, EfficientVMamba, MSVMamba, MLLA and MambaVision all have the same top-level layout: a ``stem``, an
``nn.Sequential`` of ``stages`` (each with an optional ``downsample`` first and its ``blocks``, and a
``grad_checkpointing`` flag), a final ``norm`` and a timm ``ClassifierHead`` as ``head``. :class:`HierarchicalModel`
implements the timm methods on top of that layout once; a family only builds the modules in its ``__init__`` and sets

* ``self.in_chans``: the input channels checked by ``_check_input``;
* ``self.output_fmt``: the layout of the stage outputs and of ``forward_features`` (``'NHWC'`` or ``'NCHW'``);
  ``forward_intermediates`` permutes to the layout asked for;
* ``self.num_classes``: kept up to date by ``reset_classifier``;

and, where it differs, the class attribute ``no_weight_decay_names`` (the parameter names, last component only,
kept out of weight decay) or the ``_init_weights`` hook.
"""
from __future__ import annotations

from typing import Any, Dict, List, Set, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import trunc_normal_

from ..layers.stems import check_image_input
from ._builder import PretrainedMixin

try:
    from timm.models import feature_take_indices
except ImportError:  # older timm
    from timm.models._features import feature_take_indices

__all__ = ["HierarchicalModel"]


class HierarchicalModel(PretrainedMixin, nn.Module):
    """Base of the hierarchical backbones: timm's classification and feature-extraction contract.

    Subclasses build ``stem``, ``stages``, ``norm`` and ``head`` (a ``timm.layers.ClassifierHead``) and set
    ``in_chans``, ``num_classes`` and ``output_fmt`` (see the module docstring).

    Attributes:
        no_weight_decay_names: Last name components of the parameters returned by ``no_weight_decay``; the SSM
            parameters (``A_log``, ``D`` and the dt bias) by default.
    """

    no_weight_decay_names: Tuple[str, ...] = ("A_log", "D", "dt_proj_bias")

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """The common init: linear layers truncated-normal(0.02) with zero bias, affine LayerNorm (1, 0).

        Convs, BatchNorm and the SSM parameters keep their own initialisation (see ``SS2D.reset_ssm_parameters``).
        Subclasses apply it with ``self.apply(self._init_weights)`` and may override it.
        """
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> Set[str]:
        """Full names of the parameters kept out of weight decay (those named in ``no_weight_decay_names``)."""
        names = self.no_weight_decay_names
        return {n for n, _ in self.named_parameters() if n.rsplit(".", 1)[-1] in names}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        """Parameter groups for layer-wise LR decay: the stem, then each stage (or each downsample and block)."""
        return dict(
            stem=r"^stem",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Turns activation checkpointing of every stage's blocks on or off."""
        for s in self.stages:
            s.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The final linear classifier (``nn.Identity`` when there is none)."""
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replaces the classifier.

        Args:
            num_classes: New number of classes (0: no classifier, the head returns pooled features).
            global_pool: New pooling type, or None to keep the current one.
        """
        self.num_classes = num_classes
        self.head.reset(num_classes, pool_type=global_pool)

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_input(self, x, self.in_chans, self.stem)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Union[int, List[int]] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage outputs (timm's contract).

        Args:
            x: ``(B, in_chans, H, W)`` images.
            indices: Take the last ``n`` stages if an int, all if None, else these stage indices.
            norm: Apply the final norm to the last stage's output.
            stop_early: Stop after the last requested stage.
            output_fmt: ``'NCHW'`` (default) or ``'NHWC'``.
            intermediates_only: Return only the intermediates.

        Returns:
            The intermediates, or ``(final features (normed, in the model's output_fmt), intermediates)``.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        self._check_input(x)
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        last_idx = len(self.stages) - 1
        # stage outputs are in self.output_fmt; permute only when the other layout is asked for
        perm = None if output_fmt == self.output_fmt else (0, 3, 1, 2) if output_fmt == "NCHW" else (0, 2, 3, 1)
        intermediates = []
        x = self.stem(x)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[:max_index + 1]
        feat_idx = -1
        for feat_idx, stage in enumerate(stages):
            x = stage(x)
            if feat_idx in take_indices:
                x_inter = self.norm(x) if norm and feat_idx == last_idx else x
                intermediates.append(x_inter.permute(*perm).contiguous() if perm is not None else x_inter)
        if intermediates_only:
            return intermediates
        if feat_idx == last_idx:
            x = self.norm(x)
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drops the stages after the last wanted index (and the norm / head when asked)."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[:max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> the normed last-stage map (unpooled), in ``self.output_fmt``.

        That is ``(B, H', W', num_features)`` for NHWC models and ``(B, num_features, H', W')`` for NCHW ones, with
        ``H' = H / 32`` for the standard four-stage, stride-4-stem configurations.
        """
        self._check_input(x)
        x = self.stem(x)
        x = self.stages(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pools the ``forward_features`` map and classifies it (only pools, and drops out, with ``pre_logits``)."""
        return self.head(x, pre_logits=True) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> ``(B, num_classes)`` logits (pooled features when ``num_classes == 0``)."""
        return self.forward_head(self.forward_features(x))
