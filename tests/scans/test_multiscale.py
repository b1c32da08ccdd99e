"""The multi-scale scan: paths over a full-resolution map followed by paths over its down-sampled copy, as orders
over the concatenated sequence (``H * W + h * w`` positions)."""
import copy
import pickle

import numpy as np
import pytest
import torch
from vssm.scans import list_scans
from vssm.scans.multiscale import MultiScaleScan

SIZES = [(1, 1), (1, 9), (9, 1), (2, 2), (2, 3), (7, 7), (5, 8), (13, 21), (56, 56)]


@pytest.mark.parametrize("H,W", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_msvmamba_paths(H, W):
    scan = MultiScaleScan()
    h, w = -(-H // 2), -(-W // 2)
    assert scan.low_size(H, W) == (h, w) and scan.num_positions(H, W) == H * W + h * w
    orders = scan.orders(H, W)
    assert orders.dtype == torch.int32 and orders.shape == (4, max(H * W, h * w)) and scan.K == 4
    a = orders.numpy().astype(np.int64)
    full = np.arange(H * W)
    low = np.arange(h * w).reshape(h, w)
    np.testing.assert_array_equal(a[0, :H * W], full)  # row-major at full resolution
    np.testing.assert_array_equal(a[1, :h * w] - H * W, low.ravel()[::-1])  # reversed row-major, half resolution
    np.testing.assert_array_equal(a[2, :h * w] - H * W, low.T.ravel())  # column-major
    np.testing.assert_array_equal(a[3, :h * w] - H * W, low.T.ravel()[::-1])  # reversed column-major
    assert (a[1:, h * w:] == -1).all()


@pytest.mark.parametrize("H,W", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_invariants(H, W, stride):
    scan = MultiScaleScan(stride=stride, full_variants=("normal", "transposed_reversed"), low_variants="reversed")
    a = scan.orders(H, W).numpy().astype(np.int64)
    n = scan.num_positions(H, W)
    assert ((a >= -1) & (a < n)).all()
    for k, path in enumerate(a):
        valid = path >= 0
        assert not (np.diff(valid.astype(np.int8)) > 0).any(), f"path {k} has -1 before a position"
        visited = np.sort(path[valid])
        region = np.arange(H * W) if k < scan.num_full_paths else np.arange(H * W, n)
        np.testing.assert_array_equal(visited, region)  # each path covers its own map exactly once


def test_config_cache_and_registry():
    scan = MultiScaleScan()
    assert scan == MultiScaleScan(2, ("normal",), ["reversed", "transposed", "transposed_reversed"])
    assert hash(scan) == hash(MultiScaleScan()) and scan != MultiScaleScan(stride=3)
    assert scan.config == {"type": "multiscale", "stride": 2, "full_variants": ["normal"],
                           "low_variants": ["reversed", "transposed", "transposed_reversed"]}
    first = scan.orders(6, 10)
    assert scan.orders(6, 10) is first
    assert scan.orders(6, 10, device="meta").device.type == "meta"
    for clone in (copy.deepcopy(scan), pickle.loads(pickle.dumps(scan))):
        assert clone == scan and torch.equal(clone.orders(6, 10), first)
    # its positions reach past H * W, so it is not offered as a single-map scan by name
    assert "multiscale" not in list_scans()


def test_bad_arguments():
    with pytest.raises(ValueError, match="stride"):
        MultiScaleScan(stride=0)
    with pytest.raises(ValueError, match="unknown variant"):
        MultiScaleScan(low_variants=("diagonal",))
    with pytest.raises(ValueError, match="at least one"):
        MultiScaleScan(full_variants=())
    with pytest.raises(ValueError, match="H must be a positive integer"):
        MultiScaleScan().orders(0, 4)
