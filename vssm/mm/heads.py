"""Detection heads: :class:`FixedSSDHead`, mmdet's ``SSDHead`` that can also predict under mmdet 3.3.

mmdet 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which ``SSDHead`` never sets (it
skips ``AnchorHead.__init__``; open-mmlab/mmdetection#11780, #11305, unfixed in 3.3.0), so every SSD / SSDLite model
fails in validation and inference with ``AttributeError: 'SSDHead' object has no attribute 'loss_cls'``. The subclass
sets ``loss_cls = None``: ``SSDHead`` computes its losses itself (softmax cross-entropy with hard negative mining and
smooth L1), so nothing reads it but that check, which then takes mmdet's softmax branch as before 3.3. Weights, state
dict keys, losses and predictions are those of ``SSDHead``.
"""
from __future__ import annotations

__all__ = ["register_heads"]


def register_heads() -> None:
    """Defines :class:`FixedSSDHead` and registers it in mmdet's ``MODELS`` (when mmdet can be imported)."""
    try:
        from mmdet.models.dense_heads import SSDHead
        from mmdet.registry import MODELS
    except ImportError:
        return
    if MODELS.get("FixedSSDHead") is not None:
        return

    class FixedSSDHead(SSDHead):
        """mmdet's ``SSDHead`` (same arguments) with the ``loss_cls`` attribute mmdet 3.3's prediction reads."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if not hasattr(self, "loss_cls"):
                self.loss_cls = None

    MODELS.register_module(module=FixedSSDHead)
