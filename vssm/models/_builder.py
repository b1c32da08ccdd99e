"""``pretrained=True`` for the vssm models: timm's ``build_model_with_cfg`` with our fetching and loading.

timm's own pretrained path cannot read the official releases: their training checkpoints pickle configuration
objects (``argparse.Namespace``, yacs ``CfgNode``) that ``torch.load(weights_only=True)`` refuses, its ``file``
source reads with ``weights_only=False``, and a download is cached before it is known to be a checkpoint. So
:func:`build_model_with_cfg` resolves the pretrained cfg as timm does (tag, ``pretrained_cfg``,
``pretrained_cfg_overlay``), gets the file with :func:`vssm.hub.fetch_pretrained` (checked, atomic, cached), and
hands timm a cfg whose source is that local file with ``custom_load=True``: timm then calls the model's
``load_pretrained(path)`` (:class:`PretrainedMixin`) at the point where it would load weights, before a
``features_only`` wrapper is built. That method reads the file with pickled objects made inert, converts it with the
family's ``checkpoint_filter_fn`` and loads it strictly; only the classifier (another ``num_classes``) and the first
conv (another ``in_chans``) adapt, as in timm.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import torch.nn as nn
from timm.models import build_model_with_cfg as _timm_build_model_with_cfg
from timm.models import resolve_pretrained_cfg

from ..checkpoint import load_weights
from ..hub import fetch_pretrained
from ._cfg import PretrainedCfg

__all__ = ["PretrainedMixin", "build_model_with_cfg"]


class PretrainedMixin:
    """``load_pretrained(checkpoint_path)``, the hook timm calls for cfgs with ``custom_load=True``."""

    def load_pretrained(self, checkpoint_path: str | os.PathLike, prefix: str = "") -> str:
        """Loads an official or converted checkpoint file into this model, strictly (see the module docstring).

        Args:
            checkpoint_path: A local file (any layout the family's ``checkpoint_filter_fn`` reads).
            prefix: Unused (timm's signature).

        Returns:
            What was loaded, for a log line.
        """
        assert isinstance(self, nn.Module)
        return load_weights(self, checkpoint_path, adapt_classifier=True, adapt_in_chans=True, inert_objects=True)


def build_model_with_cfg(model_cls: Callable[..., nn.Module], variant: str, pretrained: bool, **kwargs: Any
                         ) -> nn.Module:
    """timm's ``build_model_with_cfg``; with ``pretrained``, the weights come through :func:`vssm.hub.
    fetch_pretrained` and the model's :meth:`PretrainedMixin.load_pretrained`."""
    if pretrained and not _wants_timm_state_dict(kwargs):
        given = kwargs.pop("pretrained_cfg", None)
        if isinstance(given, dict):  # ours, not timm's dataclass: it has our fields (use_ema, file_name)
            given = PretrainedCfg(**given)
        cfg = resolve_pretrained_cfg(variant, pretrained_cfg=given,
                                     pretrained_cfg_overlay=kwargs.pop("pretrained_cfg_overlay", None))
        path = fetch_pretrained(cfg, cache_dir=kwargs.get("cache_dir"))
        kwargs["pretrained_cfg"] = dataclasses.replace(cfg, file=str(path), custom_load=True)
    return _timm_build_model_with_cfg(model_cls, variant, pretrained, **kwargs)


def _wants_timm_state_dict(kwargs: dict) -> bool:
    """An in-memory ``state_dict`` overlay: timm's own path (filter, adaptation, load) handles it as given."""
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    return overlay.get("state_dict") is not None
