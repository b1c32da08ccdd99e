#!/usr/bin/env python3
"""Draw the paths of a scan strategy on an H x W grid and write a PNG, one subplot per path.

Each path is a line through the cell centres coloured from dark (start) to bright (end), with the start marked by a
green circle and the end by a red square; cells a path never visits stay blank. Examples::

    python tools/visualize_scans.py --scan hilbert --height 16 --width 24 --out scans.png
    python tools/visualize_scans.py --scan window --scan-kwargs size=7 --height 10 --width 15 --out window.png
    python tools/visualize_scans.py --scan cross+hilbert -H 13 -W 21 --out combo.png
    python tools/visualize_scans.py --scan all -H 13 -W 21 --out scans.png   # scans_<name>.png for each scan

``--scan`` takes any spec :func:`vssm.scans.get_scan` understands by name (``'a+b'`` combines), ``--scan-kwargs k=v``
the constructor arguments (values are Python literals: ``size=2``, ``variants="('normal','reversed')"``).
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
from vssm.scans import Scan, get_scan, list_scans

# What `--scan all` gives the registered scans that cannot be built without arguments.
ALL_DEFAULT_KWARGS: Dict[str, Dict[str, Any]] = {"combine": {"scans": ["cross", "hilbert"]}}
_CROSS_NAMES = ["row-major", "column-major", "row-major reversed", "column-major reversed"]
_ZIGZAG_NAMES = [f"{kind} snake from {corner}" for corner in ("TL", "TR", "BL", "BR") for kind in ("row", "column")]


def path_labels(scan: Scan) -> List[str]:
    """A short title for each path of a built-in scan (``path k`` for anything else)."""
    name = getattr(scan, "name", "")
    parts = getattr(scan, "scans", None)
    if parts is not None:  # a combination: the labels of its parts, in order
        return [f"{getattr(p, 'name', '?')}: {label}" for p in parts for label in path_labels(p)]
    if hasattr(scan, "variants"):
        labels = list(scan.variants)
    elif hasattr(scan, "directions"):
        labels = list(scan.directions)
    elif hasattr(scan, "indices"):
        labels = [f"{_ZIGZAG_NAMES[i]} (ZigMa #{i})" for i in scan.indices]
    elif hasattr(scan, "subgrids"):
        labels = [f"sub-grid ({r}, {c}) {'column' if col else 'row'}-major" for r, c, col in scan.subgrids()]
    elif name == "cross":
        labels = list(_CROSS_NAMES)
    elif name == "bidirectional":
        labels = ["forward", "reversed"]
    else:
        labels = []
    return labels if len(labels) == scan.K else [f"path {k}" for k in range(scan.K)]


def draw(scan: Scan, H: int, W: int, out: Path, cols: int = 4, dpi: int = 110, title: str | None = None) -> Path:
    """Draws every path of ``scan`` on an ``H x W`` grid into ``out`` (a PNG).

    Args:
        scan: The scan.
        H: Grid height.
        W: Grid width.
        out: Output file.
        cols: Subplots per row.
        dpi: Resolution.
        title: Figure title (default: the scan's repr and the size).

    Returns:
        ``out``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    orders = scan.orders(H, W).numpy().astype(np.int64)
    K = orders.shape[0]
    cols = max(1, min(cols, K))
    rows = -(-K // cols)
    cell = min(0.35, 5.0 / max(H, W))  # inches per cell, so that big grids stay a sensible size
    fig_w, fig_h = cols * max(2.4, W * cell), rows * max(2.4, H * cell) + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(fig_w, fig_h), squeeze=False)
    labels = path_labels(scan)
    for k, ax in enumerate(axes.ravel()):
        if k >= K:
            ax.axis("off")
            continue
        path = orders[k][orders[k] >= 0]
        r, c = np.divmod(path, W)
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)  # row 0 at the top
        ax.set_aspect("equal")
        if max(H, W) <= 64:  # cell borders
            ax.set_xticks(np.arange(-0.5, W, 1), minor=True)
            ax.set_yticks(np.arange(-0.5, H, 1), minor=True)
            ax.grid(which="minor", color="0.88", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        if path.size > 1:
            points = np.stack([c, r], axis=1).astype(float)
            segments = np.stack([points[:-1], points[1:]], axis=1)
            lines = LineCollection(segments, cmap="viridis", linewidths=max(0.6, min(2.0, 60 / max(H, W))))
            lines.set_array(np.arange(len(segments)))
            ax.add_collection(lines)
        if path.size:
            ms = max(3.0, min(8.0, 200 / max(H, W)))
            ax.plot(c[0], r[0], "o", color="tab:green", markersize=ms, zorder=3)
            ax.plot(c[-1], r[-1], "s", color="tab:red", markersize=ms, zorder=3)
        ax.set_title(f"{k}: {labels[k]}" if not labels[k].startswith("path") else labels[k], fontsize=8)
    fig.suptitle(title or f"{scan!r}  on  {H}x{W}  (K={K}, T={orders.shape[1]})", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _parse_kwargs(items: Sequence[str]) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --scan-kwargs expects key=value, got {item!r}")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value  # a bare word: a string
    return kwargs


def main(argv: Sequence[str] | None = None) -> List[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scan", default="all", help=f"scan spec, or 'all' (registered: {', '.join(list_scans())})")
    parser.add_argument("--scan-kwargs", nargs="*", default=[], metavar="K=V", help="constructor arguments")
    parser.add_argument("-H", "--height", type=int, default=16, help="grid height (default 16)")
    parser.add_argument("-W", "--width", type=int, default=24, help="grid width (default 24)")
    parser.add_argument("--out", type=Path, default=Path("scans.png"),
                        help="output PNG; with --scan all, one file per scan named <stem>_<scan><suffix>")
    parser.add_argument("--cols", type=int, default=4, help="subplots per row (default 4)")
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args(argv)
    kwargs = _parse_kwargs(args.scan_kwargs)
    try:
        if args.scan == "all":
            if kwargs:
                raise ValueError("--scan-kwargs cannot be used with --scan all")
            jobs = [(get_scan(n, **ALL_DEFAULT_KWARGS.get(n, {})),
                     args.out.with_name(f"{args.out.stem}_{n}{args.out.suffix or '.png'}")) for n in list_scans()]
        else:
            jobs = [(get_scan(args.scan, **kwargs), args.out)]
        written = [draw(scan, args.height, args.width, out, cols=args.cols, dpi=args.dpi) for scan, out in jobs]
    except ValueError as err:
        parser.exit(2, f"error: {err}\n")
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
