"""Multi-scale scan: paths over a full-resolution map and over its down-sampled copy, in one index map.

Shi et al., "Multi-Scale VMamba: Hierarchy in Hierarchy Visual State Space Model", NeurIPS 2024
(arXiv:2405.14174). MSVMamba's multi-scale 2-D scan (MS2D) walks the full-resolution map along one path and a
stride-2 down-sampled map along several more. With the ordered selective-scan op this needs no per-path copies:
the full-resolution tokens (``H * W``) and the down-sampled tokens (``h * w``, ``h = ceil(H / stride)``,
``w = ceil(W / stride)``: what a stride-``s`` convolution with "same" padding produces) are concatenated along the
sequence axis, and every path is an order over that concatenated sequence of ``H * W + h * w`` positions.
Full-resolution paths visit positions ``[0, H * W)``, down-sampled paths visit ``[H * W, H * W + h * w)``
(position ``H * W + i * w + j`` is the down-sampled token ``(i, j)``); ``T = max(H * W, h * w)`` and shorter paths
end with ``-1``.

Each path is one variant of the row-major raster (:data:`scans.base.VARIANTS`): MSVMamba uses the row-major sweep at
full resolution and, on the down-sampled map, the reversed row-major, column-major and reversed column-major
sweeps, in that order (the defaults here).

Because its positions go beyond ``H * W``, this scan is not a drop-in scan of a single feature map: it is not
registered with :func:`vssm.scans.get_scan` (whose scans all index ``H * W`` positions) and serves models that build the
concatenated sequence themselves (``vssm.models.msvmamba``). ``num_positions(H, W)`` and ``low_size(H, W)`` give
the layout.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple, Union

import numpy as np
import torch

from .base import BaseScan, apply_variant, check_int, check_size, parse_variants
from .bidirectional import raster_path

__all__ = ["MultiScaleScan"]


class MultiScaleScan(BaseScan):
    """Raster-variant paths over a full-resolution map followed by paths over its stride-``s`` down-sampled map.

    Args:
        stride: Down-sampling stride ``s`` (>= 1; MSVMamba uses 2).
        full_variants: Variants walked on the full-resolution map (paths ``0 .. len(full_variants) - 1``).
        low_variants: Variants walked on the down-sampled map (the following paths).
    """

    name = "multiscale"

    def __init__(
            self,
            stride: int = 2,
            full_variants: Union[str, Sequence[str]] = ("normal",),
            low_variants: Union[str, Sequence[str]] = ("reversed", "transposed", "transposed_reversed"),
    ) -> None:
        self.stride = check_int("multiscale", "stride", stride, 1)
        self.full_variants = parse_variants("multiscale", full_variants)
        self.low_variants = parse_variants("multiscale", low_variants)

    @property
    def K(self) -> int:
        return len(self.full_variants) + len(self.low_variants)

    @property
    def num_full_paths(self) -> int:
        """Paths on the full-resolution map (the first ones)."""
        return len(self.full_variants)

    @property
    def num_low_paths(self) -> int:
        """Paths on the down-sampled map (the last ones)."""
        return len(self.low_variants)

    def low_size(self, H: int, W: int) -> Tuple[int, int]:
        """``(ceil(H / stride), ceil(W / stride))``: the down-sampled map of an ``H x W`` map."""
        H, W = check_size(H, W)
        return -(-H // self.stride), -(-W // self.stride)

    def num_positions(self, H: int, W: int) -> int:
        """Length of the concatenated sequence the orders index: ``H * W + h * w``."""
        h, w = self.low_size(H, W)
        return H * W + h * w

    def _config(self) -> Dict[str, Any]:
        return {"stride": self.stride, "full_variants": self.full_variants, "low_variants": self.low_variants}

    def _orders(self, H: int, W: int) -> np.ndarray:
        h, w = self.low_size(H, W)
        paths = [apply_variant(raster_path, H, W, v) for v in self.full_variants]
        paths += [H * W + apply_variant(raster_path, h, w, v) for v in self.low_variants]
        out = np.full((self.K, max(H * W, h * w)), -1, dtype=np.int64)
        for k, p in enumerate(paths):
            out[k, : p.size] = p
        return out

    def _build(self, H: int, W: int) -> torch.Tensor:
        out = torch.from_numpy(np.ascontiguousarray(self._orders(H, W), dtype=np.int32))
        n = self.num_positions(H, W)
        if out.numel() and (int(out.min()) < -1 or int(out.max()) >= n):  # pragma: no cover - construction bug
            raise RuntimeError(f"{self!r} produced positions outside [-1, {n}) for {H}x{W}")
        return out
