"""``torch.fx`` leaves: the modules and functions that timm's FX feature extraction keeps whole.

Symbolic tracing runs ``forward`` on ``Proxy`` values, which have no shapes to branch on. Our mixers derive their
scan orders, paddings and window partitions from the feature map's size, so each is registered with timm as a leaf
(timm passes its registry to ``torch.fx`` as ``leaf_modules`` / ``autowrap_functions``, in
``timm.create_model(..., features_only=True, feature_cls='fx')`` and ``timm.models.create_feature_extractor``); the
rest of a model traces into plain graph nodes. At run time a leaf runs its eager code on real tensors.
"""
from __future__ import annotations

import torch

try:
    from timm.layers import register_notrace_function, register_notrace_module
except ImportError:  # timm < 1.0
    from timm.models._features_fx import register_notrace_function, register_notrace_module

__all__ = ["register_notrace_function", "register_notrace_module", "is_fx_proxy"]


def is_fx_proxy(x: object) -> bool:
    """``x`` is a ``torch.fx`` symbolic-tracing value. (Not ``torch.fx``'s ``is_fx_tracing()``: before torch 2.9
    that is true under ``torch.export`` as well, whose values are real or fake tensors.)"""
    return isinstance(x, torch.fx.Proxy)
