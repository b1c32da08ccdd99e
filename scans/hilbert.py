"""Hilbert scan: the generalised Hilbert curve on any ``H x W`` rectangle.

A Hilbert curve keeps positions that are close in the sequence close on the map, with no long jumps. It is used as
a scan order for vision SSMs by FractalMamba: Tang et al., "Scalable Visual State Space Model with Fractal Scanning",
arXiv:2405.14480, 2024.

The classical curve only exists on ``2^p x 2^p`` squares. The construction here is the generalised one of Jakub
Červený ("gilbert", https://github.com/jakubcerveny/gilbert, 2018), implemented from its description: a rectangle
is given by an origin, a *major* axis vector (the curve enters at the origin and leaves at the far end of this axis)
and a *minor* axis vector. A rectangle one cell thick is walked straight. A rectangle much longer than wide
(``2 |major| > 3 |minor|``) is cut across the major axis into two halves walked the same way. Otherwise it is cut into
three: the first half of the minor extent over the first half of the major extent (walked with the axes swapped,
i.e. "up"), the remaining minor extent over the whole major extent ("across"), and the first half of the minor
extent over the rest of the major extent walked back ("down"). Halves are rounded so that sub-rectangles have even
lengths where possible, which is what lets consecutive pieces join at neighbouring cells.

The curve starts at the top-left cell and travels along its *major* side: gilbert takes the longer side (``x`` on
squares), and the ``'transposed'`` variant takes the other one. (Running gilbert on the transposed map would not do:
away from squares it gives back the very same curve, because the construction commutes with transposition.)

Properties (checked in tests/scans/test_hilbert.py): every cell is visited once; consecutive cells are
4-neighbours, except for at most one diagonal step, which occurs only when the major side is odd and the other side
even; the curve ends at the far corner of the major side (one cell short of it on odd strips two cells thick); on
``2^p x 2^p`` squares it equals the classical Hilbert curve of the standard ``d2xy`` conversion with ``x`` the
column and ``y`` the row (top-left to top-right), and the ``'transposed'`` variant is its transpose.

Generation is fast without per-cell Python: the recursion depends only on the axis vectors of a rectangle, not on
its origin, so each distinct sub-rectangle shape is generated once (memoised, a few hundred shapes even for
``1024 x 1024``) as offset arrays and the pieces are joined with vectorised numpy operations.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple, Union

import numpy as np

from .base import VARIANTS, BaseScan, parse_variants, register_scan

__all__ = ["HilbertScan", "hilbert_path", "hilbert_xy"]

_Piece = Tuple[np.ndarray, np.ndarray]


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


def hilbert_xy(width: int, height: int, major: str = "long") -> _Piece:
    """Cell coordinates of the generalised Hilbert curve of a ``width x height`` rectangle, in curve order.

    Args:
        width: Number of columns (``x`` in ``[0, width)``).
        height: Number of rows (``y`` in ``[0, height)``).
        major: The side the curve travels along from its start (top-left) to its end: ``'long'`` (the longer side,
            ``x`` on squares; gilbert's choice) or ``'short'`` (the other one).

    Returns:
        ``(x, y)``, two ``(width * height,)`` int64 arrays.
    """
    memo: Dict[Tuple[int, int, int, int], _Piece] = {}

    def piece(ux: int, uy: int, vx: int, vy: int) -> _Piece:
        """Offsets from the origin of the curve through the rectangle spanned by major ``u`` and minor ``v``."""
        key = (ux, uy, vx, vy)
        done = memo.get(key)
        if done is not None:
            return done
        major, minor = abs(ux + uy), abs(vx + vy)  # side lengths (each vector lies on one axis)
        sux, suy, svx, svy = _sign(ux), _sign(uy), _sign(vx), _sign(vy)  # unit steps
        if minor == 1 or major == 1:  # one cell thick: a straight walk
            steps = np.arange(major if minor == 1 else minor, dtype=np.int64)
            dx, dy = (sux, suy) if minor == 1 else (svx, svy)
            memo[key] = out = (steps * dx, steps * dy)
            return out
        hux, huy, hvx, hvy = ux // 2, uy // 2, vx // 2, vy // 2  # floor halves of the axis vectors
        if 2 * major > 3 * minor:
            # Long and thin: two halves along the major axis, the first one made even when the whole allows.
            if abs(hux + huy) % 2 and major > 2:
                hux, huy = hux + sux, huy + suy
            parts = [((0, 0), (hux, huy, vx, vy)), ((hux, huy), (ux - hux, uy - huy, vx, vy))]
        else:
            if abs(hvx + hvy) % 2 and minor > 2:
                hvx, hvy = hvx + svx, hvy + svy
            parts = [
                ((0, 0), (hvx, hvy, hux, huy)),  # up: axes swapped
                ((hvx, hvy), (ux, uy, vx - hvx, vy - hvy)),  # across the far part of the minor axis
                ((ux - sux + hvx - svx, uy - suy + hvy - svy), (-hvx, -hvy, hux - ux, huy - uy)),  # back down
            ]
        xs, ys = [], []
        for (ox, oy), axes in parts:
            px, py = piece(*axes)
            xs.append(px + ox)
            ys.append(py + oy)
        memo[key] = out = (np.concatenate(xs), np.concatenate(ys))
        return out

    if major not in ("long", "short"):
        raise ValueError(f"hilbert: major must be 'long' or 'short', got {major!r}")
    if (width >= height) == (major == "long"):
        return piece(width, 0, 0, height)
    return piece(0, height, width, 0)


def hilbert_path(H: int, W: int, major: str = "long") -> np.ndarray:
    """The generalised Hilbert curve of an ``H x W`` map as flat positions ``h * W + w`` (``(H * W,)`` int64).

    Args:
        H: Height.
        W: Width.
        major: ``'long'`` (along the longer side) or ``'short'``; see :func:`hilbert_xy`.
    """
    x, y = hilbert_xy(W, H, major)
    return y * W + x


@register_scan("hilbert")
class HilbertScan(BaseScan):
    """Generalised Hilbert curve paths, one per variant.

    Args:
        variants: Which paths, in order (``K = len(variants)``), from :data:`~scans.base.VARIANTS`:
            ``'normal'`` (gilbert's curve, along the longer side: top-left to top-right on wide maps and
            squares), ``'transposed'`` (along the other side: top-left to bottom-left on wide maps and squares,
            where it is exactly the transpose of ``'normal'``), ``'reversed'``, ``'transposed_reversed'``. The
            default runs all four in VMamba's cross order, a drop-in replacement for ``cross``.
    """

    def __init__(self, variants: Union[str, Sequence[str]] = VARIANTS) -> None:
        self.variants = parse_variants("hilbert", variants)

    @property
    def K(self) -> int:
        return len(self.variants)

    def _config(self) -> Dict[str, Any]:
        return {"variants": self.variants}

    def _orders(self, H: int, W: int) -> np.ndarray:
        paths = []
        for variant in self.variants:
            path = hilbert_path(H, W, "short" if variant.startswith("transposed") else "long")
            paths.append(path[::-1] if variant.endswith("reversed") else path)
        return np.stack(paths)
