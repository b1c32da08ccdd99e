"""Local-window scans of LocalMamba.

Huang et al., "LocalMamba: Visual State Space Model with Windowed Selective Scan", arXiv:2403.09338, 2024.
A window scan cuts the map into ``wh x ww`` windows, visits the windows in row-major order and, inside each window,
the positions in row-major order, so that spatially close tokens stay close in the sequence. Windows at the right
and bottom borders are partial: LocalMamba zero-pads the map to a multiple of the window and scans the padding
tokens; here there is no padding, so the path is LocalMamba's with the padding tokens left out.

LocalMamba searches, per layer, among the directions ``'h'`` (row-major), ``'v'`` (column-major), ``'w2'`` and
``'w7'`` (windows of 2 and 7) and their ``'_flip'`` (reversed) versions; :class:`LocalMambaScan` takes exactly those
names (plus ``'w<n>'`` for any window size, and ``'w<n>_v'`` for LocalMamba's ``column_first`` window order).
"""
from __future__ import annotations

import re
from typing import Any, Dict, Sequence, Union

import numpy as np

from .base import VARIANTS, BaseScan, apply_variant, parse_variants, register_scan
from .bidirectional import column_path, raster_path

__all__ = ["WindowScan", "LocalMambaScan", "window_path", "LOCALMAMBA_DIRECTIONS"]

# LocalMamba's search space (``MultiScan.ALL_CHOICES``), the default of LocalMambaScan.
LOCALMAMBA_DIRECTIONS = ("h", "h_flip", "v", "v_flip", "w2", "w2_flip", "w7", "w7_flip")
_DIRECTION_RE = re.compile(r"^(?:(?P<line>h|v)|w(?P<size>[1-9][0-9]*)(?P<column>_v)?)(?P<flip>_flip)?$")


def window_path(H: int, W: int, wh: int, ww: int) -> np.ndarray:
    """Row-major windows of ``wh x ww``, row-major inside each window; border windows are partial.

    Returns:
        ``(H * W,)`` int64 flat positions.
    """
    hg, wg = -(-H // wh), -(-W // ww)
    rows = np.arange(H, dtype=np.int64)[:, None]
    cols = np.arange(W, dtype=np.int64)[None, :]
    # Rank of every position in the padded (hg, wg, wh, ww) layout; padding ranks stay -1 and are dropped.
    rank = ((rows // wh) * wg + cols // ww) * (wh * ww) + (rows % wh) * ww + cols % ww
    padded = np.full(hg * wg * wh * ww, -1, dtype=np.int64)
    padded[rank.ravel()] = np.arange(H * W, dtype=np.int64)
    return padded[padded >= 0]


def _window_size(owner: str, size: Any) -> tuple[int, int]:
    pair = (size, size) if not isinstance(size, (list, tuple)) else tuple(size)
    if len(pair) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in pair):
        raise ValueError(f"{owner}: size must be a positive integer or a pair (height, width) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


@register_scan("window")
class WindowScan(BaseScan):
    """Local windows (LocalMamba), one path per variant.

    Args:
        size: Window size, an integer or ``(height, width)``; e.g. 2 or 7 as in LocalMamba.
        variants: Which paths, in order (``K = len(variants)``), from :data:`~scans.base.VARIANTS`:
            ``'normal'`` (row-major windows, row-major inside), ``'transposed'`` (column-major windows, column-major
            inside: LocalMamba's ``column_first``), ``'reversed'`` and ``'transposed_reversed'`` (LocalMamba's
            ``flip``). The default runs all four in VMamba's cross order.
    """

    def __init__(self, size: Union[int, Sequence[int]] = 7, variants: Union[str, Sequence[str]] = VARIANTS) -> None:
        self.size = _window_size("window", size)
        self.variants = parse_variants("window", variants)

    @property
    def K(self) -> int:
        return len(self.variants)

    def _config(self) -> Dict[str, Any]:
        size = self.size[0] if self.size[0] == self.size[1] else self.size
        return {"size": size, "variants": self.variants}

    def _orders(self, H: int, W: int) -> np.ndarray:
        paths = []
        for variant in self.variants:
            size = self.size if not variant.startswith("transposed") else self.size[::-1]
            paths.append(apply_variant(lambda h, w, s=size: window_path(h, w, *s), H, W, variant))
        return np.stack(paths)


@register_scan("localmamba")
class LocalMambaScan(BaseScan):
    """LocalMamba's named scan directions, one path per name.

    Args:
        directions: Names, in order (``K = len(directions)``):
            ``'h'`` row-major, ``'v'`` column-major, ``'w<n>'`` local windows of ``n x n`` (row-major windows,
            row-major inside; LocalMamba uses ``'w2'`` and ``'w7'``), ``'w<n>_v'`` column-first windows
            (LocalMamba's ``column_first=True``), each optionally suffixed ``'_flip'`` (reversed). Default: all of
            LocalMamba's search space, :data:`LOCALMAMBA_DIRECTIONS`.
    """

    def __init__(self, directions: Union[str, Sequence[str]] = LOCALMAMBA_DIRECTIONS) -> None:
        if isinstance(directions, str):
            directions = (directions,)
        if not isinstance(directions, Sequence):
            raise ValueError(f"localmamba: directions: got {directions!r}; allowed: a direction name or a sequence of "
                             f"them, e.g. {LOCALMAMBA_DIRECTIONS}")
        self.directions = tuple(directions)
        if not self.directions:
            raise ValueError(f"localmamba: directions must name at least one direction, e.g. {LOCALMAMBA_DIRECTIONS}")
        bad = [d for d in self.directions if not isinstance(d, str) or not _DIRECTION_RE.match(d)]
        if bad:
            raise ValueError(f"localmamba: unknown direction(s) {bad}; allowed: 'h', 'v', 'w<n>' (n >= 1, e.g. 'w2', "
                             f"'w7'), 'w<n>_v', each optionally with '_flip' (e.g. {LOCALMAMBA_DIRECTIONS})")

    @property
    def K(self) -> int:
        return len(self.directions)

    def _config(self) -> Dict[str, Any]:
        return {"directions": self.directions}

    @staticmethod
    def direction_path(direction: str, H: int, W: int) -> np.ndarray:
        """The path of one LocalMamba direction name on an ``H x W`` map (flat positions)."""
        m = _DIRECTION_RE.match(direction)
        if m is None:
            raise ValueError(f"localmamba: unknown direction {direction!r}")
        if m["line"] == "h":
            path = raster_path(H, W)
        elif m["line"] == "v":
            path = column_path(H, W)
        else:
            n = int(m["size"])
            variant = "transposed" if m["column"] else "normal"
            path = apply_variant(lambda h, w: window_path(h, w, n, n), H, W, variant)
        return path[::-1] if m["flip"] else path

    def _orders(self, H: int, W: int) -> np.ndarray:
        return np.stack([self.direction_path(d, H, W) for d in self.directions])
