"""Zigzag (boustrophedon) scans of ZigMa.

Hu et al., "ZigMa: A DiT-style Zigzag Mamba Diffusion Model", ECCV 2024 (arXiv:2403.13802). ZigMa's eight
continuous paths are snakes that keep spatial neighbours adjacent in the sequence: from each corner (top-left,
top-right, bottom-left, bottom-right, in that order) a row snake (each row in turn, alternating direction) and then
a column snake (each column in turn, alternating direction). ZigMa itself gives each layer one of these paths in
turn; here ``K`` consecutive ones (cyclically from ``start``) form one scan, so ``K=1, start=i % 8`` per layer
reproduces ZigMa and ``K=8`` runs all of them in one block. Generalised from ZigMa's square grids to any ``H x W``.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from .base import BaseScan, check_int, register_scan

__all__ = ["ZigzagScan", "zigzag_paths", "NUM_ZIGZAG_PATHS"]

NUM_ZIGZAG_PATHS = 8


def _snake(grid: np.ndarray) -> np.ndarray:
    """Rows of ``grid`` in turn, every other row reversed."""
    g = grid.copy()
    g[1::2] = g[1::2, ::-1]
    return g.ravel()


def zigzag_paths(H: int, W: int) -> np.ndarray:
    """All eight ZigMa paths of an ``H x W`` grid.

    Returns:
        ``(8, H * W)`` int64 flat positions: for each corner (TL, TR, BL, BR) its row snake then its column snake.
    """
    grid = np.arange(H * W, dtype=np.int64).reshape(H, W)
    paths = []
    for flip_rows, flip_cols in ((False, False), (False, True), (True, False), (True, True)):
        g = grid[::-1] if flip_rows else grid
        g = g[:, ::-1] if flip_cols else g
        paths.append(_snake(g))  # rows in turn, starting at the corner and moving away from it
        paths.append(_snake(g.T))  # columns in turn
    return np.stack(paths)


@register_scan("zigzag")
class ZigzagScan(BaseScan):
    """``K`` of ZigMa's eight snake paths (every step is between 4-neighbours).

    Args:
        K: Number of paths, 1 to 8.
        start: Index (0 to 7) of the first path; path ``k`` of the scan is ZigMa's path ``(start + k) % 8``.
    """

    def __init__(self, K: int = NUM_ZIGZAG_PATHS, start: int = 0) -> None:
        self._k = check_int("zigzag", "K", K, 1, NUM_ZIGZAG_PATHS)
        self.start = check_int("zigzag", "start", start, 0, NUM_ZIGZAG_PATHS - 1)

    @property
    def K(self) -> int:
        return self._k

    @property
    def indices(self) -> tuple[int, ...]:
        """Which of ZigMa's eight paths this scan runs, in order."""
        return tuple((self.start + k) % NUM_ZIGZAG_PATHS for k in range(self._k))

    def _config(self) -> Dict[str, Any]:
        return {"K": self._k, "start": self.start}

    def _orders(self, H: int, W: int) -> np.ndarray:
        return zigzag_paths(H, W)[list(self.indices)]
