"""Scan strategies as index maps.

A scan is ``K`` orders over the ``H * W`` positions of a feature map, an int32 tensor ``order[K, T]`` of flat
positions ``h * W + w`` (``-1`` pads shorter paths); see DESIGN.md. Importing this package registers the built-in
scans:

==================  ==========================  ==========================================================
name                K                           paper
==================  ==========================  ==========================================================
``raster``          1                           (1-D Mamba on flattened patches)
``bidirectional``   2                           Vim
``cross``           4                           VMamba
``zigzag``          ``K`` (1..8, default 8)     ZigMa
``window``          ``len(variants)`` (4)       LocalMamba
``localmamba``      ``len(directions)`` (8)     LocalMamba (its direction names: 'h', 'v_flip', 'w7', ...)
``hilbert``         ``len(variants)`` (4)       generalised Hilbert curve (gilbert); FractalMamba
``atrous``          ``stride ** 2`` (4)         EfficientVMamba
``combine``         sum of the parts            any mix: ``'cross+hilbert'``, ``['cross', 'window']``
==================  ==========================  ==========================================================

Example:
    >>> from vssm.scans import get_scan
    >>> get_scan('cross').orders(2, 3)
    tensor([[0, 1, 2, 3, 4, 5],
            [0, 3, 1, 4, 2, 5],
            [5, 4, 3, 2, 1, 0],
            [5, 2, 4, 1, 3, 0]], dtype=torch.int32)
"""
from .atrous import AtrousScan
from .base import VARIANTS, BaseScan, Scan, check_size, get_scan, list_scans, register_scan, resolve_scans
from .bidirectional import BidirectionalScan, RasterScan
from .combine import CombineScan
from .cross import CrossScan
from .hilbert import HilbertScan, hilbert_path
from .window import LOCALMAMBA_DIRECTIONS, LocalMambaScan, WindowScan
from .zigzag import ZigzagScan

__all__ = [
    "Scan",
    "BaseScan",
    "register_scan",
    "get_scan",
    "list_scans",
    "resolve_scans",
    "check_size",
    "VARIANTS",
    "LOCALMAMBA_DIRECTIONS",
    "RasterScan",
    "BidirectionalScan",
    "CrossScan",
    "ZigzagScan",
    "WindowScan",
    "LocalMambaScan",
    "HilbertScan",
    "hilbert_path",
    "AtrousScan",
    "CombineScan",
]
