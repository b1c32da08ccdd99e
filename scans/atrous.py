"""Atrous (dilated) scan of EfficientVMamba.

Pei et al., "EfficientVMamba: Atrous Selective Scan for Light Weight Visual Mamba", arXiv:2403.09977, 2024.
Its efficient 2D scan (ES2D) samples the map with stride ``s = 2``: each of the four paths visits one of the four
sub-grids ``x[r::2, c::2]``. In EfficientVMamba's ``EfficientScan`` the paths are, in order, the sub-grids with
offsets (row, col) = (0, 0) row-major, (1, 0) column-major, (0, 1) row-major and (1, 1) column-major: layout
``'efficientvmamba'`` (the default) reproduces that order, generalised to any stride as offset
``(k % s, k // s)`` for path ``k`` with row-major / column-major alternating. Layout ``'raster'`` visits the
sub-grids in row-major order of their offsets ((0, 0), (0, 1), (1, 0), (1, 1) for ``s = 2``), each row-major.

EfficientVMamba zero-pads odd sizes to a multiple of the stride and scans the padding; here sub-grids at odd sizes
are simply smaller, and their paths end with ``-1`` padding. ``T = ceil(H / s) * ceil(W / s)``; a sub-grid that
does not exist (``H < s`` or ``W < s``) gives a path of ``-1`` only, so that ``K = s * s`` holds for every size.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import BaseScan, check_int, register_scan

__all__ = ["AtrousScan", "ATROUS_LAYOUTS"]

ATROUS_LAYOUTS = ("efficientvmamba", "raster")


@register_scan("atrous")
class AtrousScan(BaseScan):
    """One path per stride-``s`` sub-grid (``K = s * s``); together they visit every position exactly once.

    Args:
        stride: Sampling stride ``s`` (>= 1; EfficientVMamba uses 2).
        layout: ``'efficientvmamba'`` (EfficientVMamba's path order and alternating row/column-major traversal) or
            ``'raster'`` (sub-grids in row-major order of their offsets, each traversed row-major).
    """

    def __init__(self, stride: int = 2, layout: str = "efficientvmamba") -> None:
        self.stride = check_int("atrous", "stride", stride, 1)
        if layout not in ATROUS_LAYOUTS:
            raise ValueError(f"atrous: layout must be one of {ATROUS_LAYOUTS}, got {layout!r}")
        self.layout = layout

    @property
    def K(self) -> int:
        return self.stride * self.stride

    def _config(self) -> Dict[str, Any]:
        return {"stride": self.stride, "layout": self.layout}

    def subgrids(self) -> list[tuple[int, int, bool]]:
        """``(row offset, column offset, column_major)`` of each path, in path order."""
        s = self.stride
        if self.layout == "raster":
            return [(k // s, k % s, False) for k in range(s * s)]
        return [(k % s, k // s, k % 2 == 1) for k in range(s * s)]

    def _orders(self, H: int, W: int) -> np.ndarray:
        s = self.stride
        T = (-(-H // s)) * (-(-W // s))
        grid = np.arange(H * W, dtype=np.int64).reshape(H, W)
        out = np.full((self.K, T), -1, dtype=np.int64)
        for k, (r, c, column_major) in enumerate(self.subgrids()):
            sub = grid[r::s, c::s]
            path = (sub.T if column_major else sub).ravel()
            out[k, : path.size] = path
        return out
