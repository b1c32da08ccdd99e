"""Combined scans: several scans' paths concatenated along ``K``.

Multi-scan hybrids such as LocalMamba (Huang et al., arXiv:2403.09338) mix global and local paths in one block; a
combination expresses any such mix without a new class: ``get_scan('cross+hilbert')``, ``get_scan(['cross',
{'type': 'window', 'size': 2}])`` or ``{'type': 'combine', 'scans': [...]}``. Paths keep their order (all paths of the
first scan, then all of the second, ...); shorter paths are padded with ``-1`` up to the longest ``T``.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch

from .base import BaseScan, Scan, get_scan, register_scan

__all__ = ["CombineScan"]


@register_scan("combine")
class CombineScan(BaseScan):
    """Concatenation of several scans' paths (``K`` = sum of their ``K``).

    Args:
        scans: At least one scan spec (names, dicts, scans; see :func:`~scans.base.get_scan`). Nested combinations
            are flattened.
    """

    def __init__(self, scans: Sequence[Any]) -> None:
        if isinstance(scans, (str, dict)) or not isinstance(scans, Sequence) or not scans:
            raise ValueError(f"combine: scans must be a non-empty list of scan specs, got {scans!r}")
        flat: list[Scan] = []
        for spec in scans:
            scan = get_scan(spec)
            flat.extend(scan.scans if isinstance(scan, CombineScan) else [scan])
        self.scans = tuple(flat)
        # The readable name: what get_scan('a+b') was given.
        self.name = "+".join(s.name for s in self.scans)

    @property
    def K(self) -> int:
        return sum(s.K for s in self.scans)

    def _config(self) -> Dict[str, Any]:
        return {"scans": self.scans}

    @property
    def config(self) -> Dict[str, Any]:
        """``{'type': 'combine', 'scans': [each part's config]}`` (a part without ``config`` gives its name)."""
        return {"type": "combine", "scans": [getattr(s, "config", s.name) for s in self.scans]}

    def _orders(self, H: int, W: int) -> torch.Tensor:
        parts = [s.orders(H, W) for s in self.scans]
        T = max(p.shape[1] for p in parts)
        out = torch.full((self.K, T), -1, dtype=torch.int32)
        k = 0
        for p in parts:
            out[k : k + p.shape[0], : p.shape[1]] = p
            k += p.shape[0]
        return out
