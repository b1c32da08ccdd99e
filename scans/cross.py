"""Cross scan (VMamba's cross-scan module, SS2D).

Liu et al., "VMamba: Visual State Space Model", NeurIPS 2024 (arXiv:2401.10166). Four paths in exactly the order of
VMamba's ``CrossScan``: row-major (``x.flatten``), column-major (``x.transpose(H, W).flatten``), then both of them
reversed. Checkpoints store per-path parameters in this order, so it must not change.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import BaseScan, register_scan
from .bidirectional import column_path, raster_path

__all__ = ["CrossScan"]


@register_scan("cross")
class CrossScan(BaseScan):
    """VMamba's four paths (``K = 4``): ``[row-major, column-major, reversed row-major, reversed column-major]``."""

    @property
    def K(self) -> int:
        return 4

    def _config(self) -> Dict[str, Any]:
        return {}

    def _orders(self, H: int, W: int) -> np.ndarray:
        row, col = raster_path(H, W), column_path(H, W)
        return np.stack([row, col, row[::-1], col[::-1]])
