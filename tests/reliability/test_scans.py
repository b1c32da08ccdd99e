"""Every scan under bad configuration and bad sizes, and random sizes and configurations (hypothesis) against the
invariants and the copy-based scan of the oracle."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import FULL, RESULT, expect_error, record
from vssm.kernels import selective_scan, selective_scan_ref
from vssm.scans import get_scan, list_scans

# (scan spec, keyword arguments, needles: the argument, the value, what is allowed)
BAD_CONFIG = [
    ("nosuch", {}, ["unknown scan 'nosuch'", "registered scans: atrous"]),
    ("hilbrt", {}, ["'hilbrt'", "did you mean 'hilbert'"]),
    ("", {}, ["unknown scan ''", "registered scans"]),
    ("cross", dict(K=4), ["K", "no arguments"]),
    ("window", dict(size=0), ["size", "got 0", "positive integer"]),
    ("window", dict(size="7"), ["size", "'7'", "positive integer"]),
    ("window", dict(size=(7,)), ["size", "(7,)", "pair"]),
    ("window", dict(size=7.5), ["size", "7.5", "positive integer"]),
    ("window", dict(sise=7), ["'sise'", "size"]),
    ("window", dict(variants=["diagonal"]), ["variant", "'diagonal'", "'normal'"]),
    ("window", dict(variants=3), ["variants", "3", "'normal'"]),
    ("hilbert", dict(variants=[]), ["variants", "empty", "'normal'"]),
    ("zigzag", dict(K=9), ["K", "9", "[1, 8]"]),
    ("zigzag", dict(K="2"), ["K", "'2'", "[1, 8]"]),
    ("zigzag", dict(start=-1), ["start", "-1", "[0, 7]"]),
    ("atrous", dict(stride=0), ["stride", "0", ">= 1"]),
    ("atrous", dict(stride=2.0), ["stride", "2.0", ">= 1"]),
    ("atrous", dict(layout="grid"), ["layout", "'grid'", "'efficientvmamba'"]),
    ("localmamba", dict(directions=["w0"]), ["direction", "'w0'", "'h'"]),
    ("localmamba", dict(directions=5), ["directions", "5", "sequence"]),
    ("combine", {}, ["'combine'", "scans"]),
    ("combine", dict(scans=[]), ["scans", "[]", "non-empty"]),
    ("combine", dict(scans=["cross", "nope"]), ["'nope'", "registered scans"]),
    ({"size": 3}, {}, ["'type'", "{'size': 3}"]),
    ({"type": 3}, {}, ["'type'", "3", "str"]),
    ([], {}, ["empty list"]),
]


@pytest.mark.parametrize("spec,kwargs,needles", BAD_CONFIG, ids=[f"{s}-{k}" for s, k, _ in BAD_CONFIG])
def test_bad_configuration(spec, kwargs, needles):
    expect_error("scans get_scan", lambda: get_scan(spec, **kwargs), ValueError, needles)


@pytest.mark.parametrize("spec", [None, 3, 2.5, b"cross", ["cross", None]], ids=repr)
def test_spec_of_a_wrong_type(spec):
    expect_error("scans get_scan", lambda: get_scan(spec), TypeError, ["scan spec", "a name", type(
        spec if not isinstance(spec, list) else None).__name__])


BAD_SIZE = [((0, 4), ["H", "got 0", ">= 1"]), ((4, -2), ["W", "-2", ">= 1"]), ((2.5, 4), ["H", "2.5", "integer"]),
            (("8", 4), ["H", "'8'", "integer"]), ((True, 4), ["H", "True", "integer"]), ((4, None), ["W", "None"]),
            ((4, 4, "tpu9"), ["device", "'tpu9'", "'cpu'"]), ((4, 4, 3.5), ["device", "3.5", "'cpu'"])]
if not torch.cuda.is_available():
    BAD_SIZE.append(((4, 4, "cuda"), ["device", "'cuda'", "CUDA is not available"]))


@pytest.mark.parametrize("name", list_scans())
@pytest.mark.parametrize("args,needles", BAD_SIZE, ids=[repr(a) for a, _ in BAD_SIZE])
def test_bad_size_or_device(name, args, needles):
    scan = get_scan(name, **({"scans": ["cross", "window"]} if name == "combine" else {}))
    expect_error(f"scans {name}.orders", lambda: scan.orders(*args), ValueError, needles)


def _check_orders(scan, H, W):
    order = scan.orders(H, W)
    assert order.dtype == torch.int32 and order.shape[0] == scan.K
    a = order.numpy().astype(np.int64)
    assert ((a >= -1) & (a < H * W)).all()
    for path in a:
        seen = path[path >= 0]
        assert np.unique(seen).size == seen.size
    assert np.array_equal(np.unique(a[a >= 0]), np.arange(H * W)), "the paths together miss positions"
    return order


def _gather_scan_scatter(t, order):
    """Each path as its own gathered 1-D raster scan of the oracle, scattered back: what the peers do by copying."""
    Bt, L, K, Du = t["delta"].shape
    out = torch.zeros(Bt, L, K, Du)
    for k in range(K):
        idx = order[k][order[k] >= 0].long()
        out[:, idx, k] = selective_scan_ref(t["u"][:, idx], t["delta"][:, idx, k:k + 1], t["A"][k:k + 1],
                                            t["B"][:, idx, k:k + 1], t["C"][:, idx, k:k + 1], t["D"][k:k + 1])[:, :, 0]
    return out


def _through_op(order, H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    K = order.shape[0]
    t = dict(u=torch.randn(1, H * W, 3, generator=g), delta=torch.randn(1, H * W, K, 3, generator=g) - 1,
             A=-torch.rand(K, 3, 2, generator=g) - 0.1, B=torch.randn(1, H * W, K, 2, generator=g),
             C=torch.randn(1, H * W, K, 2, generator=g), D=torch.randn(K, 3, generator=g))
    torch.testing.assert_close(selective_scan(**t, order=order), _gather_scan_scatter(t, order), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list_scans())
@pytest.mark.parametrize("H,W", [(1, 1), (1, 13), (13, 1), (2, 1), (3, 2)])
def test_degenerate_maps(name, H, W):
    scan = get_scan(name, **({"scans": ["cross", {"type": "window", "size": 2}]} if name == "combine" else {}))
    _through_op(_check_orders(scan, H, W), H, W)
    record(f"scans {name}.orders", RESULT)


@pytest.mark.parametrize("name", ["hilbert", "window", "zigzag"])
def test_large_non_square_map(name):
    """Valid paths on a large odd non-square map (1535 x 2047 in the full run; the 1024 x 1024 square of every scan
    is in tests/scans)."""
    H, W = (1535, 2047) if FULL else (383, 511)
    _check_orders(get_scan(name), H, W)
    record(f"scans {name}.orders", RESULT)


@st.composite
def scan_specs(draw):
    name = draw(st.sampled_from([n for n in list_scans() if n != "combine"]))
    kw = {}
    if name == "window":
        kw = dict(size=draw(st.one_of(st.integers(1, 9), st.tuples(st.integers(1, 9), st.integers(1, 9)))),
                  variants=draw(st.lists(st.sampled_from(["normal", "transposed", "reversed", "transposed_reversed"]),
                                         min_size=1, max_size=4, unique=True)))
    elif name == "zigzag":
        kw = dict(K=draw(st.integers(1, 8)), start=draw(st.integers(0, 7)))
    elif name == "atrous":
        kw = dict(stride=draw(st.integers(1, 4)), layout=draw(st.sampled_from(["efficientvmamba", "raster"])))
    elif name == "localmamba":
        kw = dict(directions=draw(st.lists(st.from_regex(r"(h|v|w[1-9]|w[1-9]_v)(_flip)?", fullmatch=True),
                                           min_size=1, max_size=4)))
    spec = {"type": name, **kw}
    if draw(st.booleans()):
        spec = {"type": "combine", "scans": [spec, draw(st.sampled_from(["cross", "raster", "hilbert"]))]}
    return spec


@settings(max_examples=300 if FULL else 30, deadline=None, derandomize=not FULL,
          suppress_health_check=[HealthCheck.too_slow])
@given(spec=scan_specs(), H=st.integers(1, 24), W=st.integers(1, 24))
def test_random_scans_and_sizes(spec, H, W):
    """Any valid configuration at any size: valid paths, and through the op the copy-based scan's result."""
    scan = get_scan(spec)
    assert get_scan(scan.config) == scan
    order = _check_orders(scan, H, W)
    if H * W <= 64:
        _through_op(order, H, W)
    record("scans get_scan + orders", RESULT)
