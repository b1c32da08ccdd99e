"""Invariants every registered scan keeps, at every size: valid positions, each at most once per path, ``-1`` only
as trailing padding, full coverage, int32 on the requested device, ``K`` known up front, and caching."""
import copy
import pickle

import numpy as np
import pytest
import torch
from vssm.scans import BaseScan, get_scan, list_scans

# Arguments for registered scans that need some (every other one must build with its defaults).
SPEC_KWARGS = {"combine": {"scans": ["cross", "atrous", {"type": "window", "size": 2}]}}
# Scans whose every path visits every position (the others only promise that their union does).
COMPLETE_PATHS = {"raster", "bidirectional", "cross", "zigzag", "window", "localmamba", "hilbert"}
SIZES = [(1, 1), (1, 9), (9, 1), (2, 2), (2, 3), (7, 7), (5, 8), (13, 21), (17, 31), (56, 56), (200, 333)]


def build(name):
    return get_scan(name, **SPEC_KWARGS.get(name, {}))


def test_builtins_are_registered():
    expected = {"raster", "bidirectional", "cross", "zigzag", "window", "localmamba", "hilbert", "atrous", "combine"}
    assert expected <= set(list_scans())
    assert list_scans() == sorted(list_scans())


@pytest.mark.parametrize("name", list_scans())
@pytest.mark.parametrize("H,W", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_paths_are_valid(name, H, W):
    scan = build(name)
    orders = scan.orders(H, W)
    assert orders.dtype == torch.int32 and orders.device.type == "cpu" and orders.dim() == 2
    assert orders.shape[0] == scan.K >= 1 and orders.shape[1] >= 1
    a = orders.numpy().astype(np.int64)
    assert ((a >= -1) & (a < H * W)).all(), "positions outside [-1, H*W)"
    for k, path in enumerate(a):
        valid = path >= 0
        # -1 pads the end of a shorter path: once a path stops it never resumes.
        assert not (np.diff(valid.astype(np.int8)) > 0).any(), f"path {k} has -1 before a position"
        visited = path[valid]
        assert np.unique(visited).size == visited.size, f"path {k} visits a position twice"
        if name in COMPLETE_PATHS:
            assert visited.size == H * W and np.array_equal(np.sort(visited), np.arange(H * W))
    assert np.array_equal(np.unique(a[a >= 0]), np.arange(H * W)), "the paths together miss positions"


@pytest.mark.parametrize("name", ["bidirectional", "cross", "zigzag", "window", "hilbert", "atrous"])
@pytest.mark.parametrize("H,W", [(2, 2), (2, 3), (3, 2), (7, 7), (5, 8), (13, 21), (21, 13), (56, 56)])
def test_paths_are_distinct(name, H, W):
    orders = build(name).orders(H, W).numpy()
    assert len({tuple(p) for p in orders}) == orders.shape[0], "two paths of one scan are the same"


@pytest.mark.parametrize("name", list_scans())
def test_K_is_known_before_any_size(name):
    scan = build(name)
    K = scan.K
    assert isinstance(K, int) and K == scan.num_paths
    assert {scan.orders(h, w).shape[0] for h, w in [(1, 1), (3, 5), (8, 8)]} == {K}


@pytest.mark.parametrize("name", list_scans())
def test_orders_are_cached_per_size_and_device(name):
    scan = build(name)
    first = scan.orders(6, 10)
    assert scan.orders(6, 10) is first
    assert scan.orders(6, 10, device="cpu") is first
    assert scan.orders(6, 10, device=torch.device("cpu")) is first
    assert scan.orders(10, 6) is not first
    meta = scan.orders(6, 10, device="meta")
    assert meta.device.type == "meta" and meta.dtype == torch.int32 and meta.shape == first.shape
    assert scan.orders(6, 10, device="meta") is meta
    scan.clear_cache()
    again = scan.orders(6, 10)
    assert again is not first and torch.equal(again, first)


def test_cache_is_bounded():
    scan = get_scan("raster")
    scan.cache_size = 3
    first = scan.orders(1, 1)
    for n in range(2, 6):
        scan.orders(n, n)
    assert scan.orders(1, 1) is not first


@pytest.mark.gpu
@pytest.mark.parametrize("name", list_scans())
def test_orders_on_cuda(name):
    scan = build(name)
    cpu = scan.orders(13, 21)
    cuda = scan.orders(13, 21, device="cuda")
    assert cuda.is_cuda and cuda.dtype == torch.int32 and torch.equal(cuda.cpu(), cpu)
    assert scan.orders(13, 21, device="cuda") is cuda
    assert scan.orders(13, 21, device=torch.device("cuda", torch.cuda.current_device())) is cuda


@pytest.mark.parametrize("name", list_scans())
def test_scans_are_plain_objects(name):
    scan = build(name)
    assert not isinstance(scan, torch.nn.Module)
    module = torch.nn.Module()
    module.scan = scan
    scan.orders(4, 4)
    assert module.state_dict() == {}
    # Copies (e.g. timm's EMA deepcopy) and pickles are equal scans without the cache.
    for clone in (copy.deepcopy(scan), pickle.loads(pickle.dumps(scan))):
        assert clone == scan and hash(clone) == hash(scan) and clone is not scan
        assert "_order_cache" not in clone.__dict__
        assert torch.equal(clone.orders(4, 4), scan.orders(4, 4))


@pytest.mark.parametrize("name", list_scans())
def test_config_round_trip(name):
    scan = build(name)
    cfg = scan.config
    rebuilt = get_scan(cfg)
    assert rebuilt == scan and hash(rebuilt) == hash(scan) and repr(rebuilt) == repr(scan)
    assert isinstance(scan, BaseScan) and repr(scan).startswith(type(scan).__name__ + "(")


@pytest.mark.parametrize("name", list_scans())
def test_large_map_paths_are_valid(name):
    """1024x1024 (speed is measured by `tools/benchmark.py scans`, not asserted here: the machine is shared)."""
    scan = build(name)
    orders = scan.orders(1024, 1024)
    assert orders.shape[0] == scan.K and orders.dtype == torch.int32
    for path in orders:
        visited = path[path >= 0]
        assert int(visited.max()) < 1024 * 1024 and visited.unique().numel() == visited.numel(), name
