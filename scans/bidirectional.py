"""Raster and bidirectional scans.

``raster`` is the plain row-major sweep of a 1-D Mamba applied to flattened patches. ``bidirectional`` adds the
reversed sweep, as in Vision Mamba (Vim): Zhu et al., "Vision Mamba: Efficient Visual Representation Learning with
Bidirectional State Space Model", ICML 2024 (arXiv:2401.09417).
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import BaseScan, register_scan

__all__ = ["RasterScan", "BidirectionalScan", "raster_path", "column_path"]


def raster_path(H: int, W: int) -> np.ndarray:
    """Row-major path: ``0, 1, ..., H*W - 1`` (rows top to bottom, each left to right)."""
    return np.arange(H * W, dtype=np.int64)


def column_path(H: int, W: int) -> np.ndarray:
    """Column-major path: columns left to right, each top to bottom (``x.transpose(H, W).flatten()``)."""
    return np.arange(H * W, dtype=np.int64).reshape(H, W).T.ravel()


@register_scan("raster")
class RasterScan(BaseScan):
    """One row-major path (``K = 1``); consecutive positions are 4-neighbours within a row."""

    @property
    def K(self) -> int:
        return 1

    def _config(self) -> Dict[str, Any]:
        return {}

    def _orders(self, H: int, W: int) -> np.ndarray:
        return raster_path(H, W)[None]


@register_scan("bidirectional")
class BidirectionalScan(BaseScan):
    """Vim's two paths (``K = 2``): row-major forward, then the same path reversed."""

    @property
    def K(self) -> int:
        return 2

    def _config(self) -> Dict[str, Any]:
        return {}

    def _orders(self, H: int, W: int) -> np.ndarray:
        fwd = raster_path(H, W)
        return np.stack([fwd, fwd[::-1]])
