"""Registry, get_scan specs, size validation, equality and resolve_scans, with the error messages users see."""
import numpy as np
import pytest
import torch
import vssm.scans as scans
from vssm.scans import BaseScan, get_scan, list_scans, register_scan, resolve_scans
from vssm.scans.base import _REGISTRY


@pytest.fixture
def registry_guard():
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)


class Diagonal(BaseScan):
    """A user scan: anti-diagonals in turn (test helper)."""

    def __init__(self, reverse: bool = False) -> None:
        self.reverse = reverse

    @property
    def K(self) -> int:
        return 1

    def _config(self):
        return {"reverse": self.reverse}

    def _orders(self, H, W):
        r, c = np.divmod(np.arange(H * W), W)
        path = np.lexsort((r, r + c))
        return (path[::-1] if self.reverse else path)[None]


def test_package_exports():
    for name in ["Scan", "BaseScan", "register_scan", "get_scan", "list_scans", "resolve_scans", "RasterScan",
                 "BidirectionalScan", "CrossScan", "ZigzagScan", "WindowScan", "LocalMambaScan", "HilbertScan",
                 "AtrousScan", "CombineScan"]:
        assert hasattr(scans, name), name
    assert isinstance(get_scan("cross"), scans.Scan)


def test_register_and_build_user_scan(registry_guard):
    register_scan("diagonal", Diagonal)
    assert "diagonal" in list_scans() and Diagonal.name == "diagonal"
    scan = get_scan("diagonal", reverse=True)
    assert scan.orders(2, 2).tolist() == [[3, 2, 1, 0]]
    assert get_scan({"type": "diagonal"}).orders(2, 3).tolist() == [[0, 1, 3, 2, 4, 5]]
    assert get_scan("cross+diagonal").K == 5


def test_register_as_decorator(registry_guard):
    @register_scan("diag2")
    class Diag2(Diagonal):
        pass

    assert Diag2.name == "diag2" and isinstance(get_scan("diag2"), Diag2)


def test_duplicate_name_needs_override(registry_guard):
    with pytest.raises(ValueError) as err:
        register_scan("hilbert", Diagonal)
    msg = str(err.value)
    assert "'hilbert' is already registered" in msg and "override=True" in msg
    register_scan("hilbert", Diagonal, override=True)
    assert isinstance(get_scan("hilbert"), Diagonal)


@pytest.mark.parametrize("name", ["", "a+b", "has space", 3, None])
def test_bad_registration_names(name, registry_guard):
    with pytest.raises(ValueError) as err:
        register_scan(name, Diagonal)
    assert "scan name" in str(err.value)


def test_unknown_name_suggests_close_names():
    with pytest.raises(ValueError) as err:
        get_scan("hilbrt")
    msg = str(err.value)
    assert "unknown scan 'hilbrt'" in msg and "did you mean 'hilbert'" in msg and "registered scans:" in msg
    with pytest.raises(ValueError) as err:
        get_scan("crosss")
    assert "'cross'" in str(err.value)
    with pytest.raises(ValueError) as err:
        get_scan("qqqqqq")
    assert "did you mean" not in str(err.value) and "zigzag" in str(err.value)


def test_unknown_keyword_lists_accepted_ones():
    with pytest.raises(ValueError) as err:
        get_scan("window", sise=7)
    msg = str(err.value)
    assert "unknown argument(s) ['sise']" in msg and "size" in msg and "variants" in msg
    with pytest.raises(ValueError) as err:
        get_scan("cross", K=4)
    assert "no arguments" in str(err.value)


def test_spec_forms():
    scan = get_scan("window", size=2)
    assert get_scan(scan) is scan
    assert get_scan({"type": "window", "size": 2}) == scan
    assert get_scan({"type": "window", "size": 7}, size=2) == scan  # keyword arguments override the dict
    with pytest.raises(ValueError, match="cannot be applied to an existing scan"):
        get_scan(scan, size=3)
    with pytest.raises(ValueError, match="needs a 'type' key"):
        get_scan({"size": 2})
    with pytest.raises(TypeError, match="a scan spec is a name"):
        get_scan(3)


@pytest.mark.parametrize("H,W,needle", [
    (0, 4, "H must be a positive integer (>= 1), got 0"),
    (4, -3, "W must be a positive integer (>= 1), got -3"),
    (2.5, 4, "H must be a positive integer (>= 1), got 2.5 of type float"),
    (4, 4.0, "W must be a positive integer (>= 1), got 4.0 of type float"),
    ("8", 4, "H must be a positive integer (>= 1), got '8' of type str"),
    (True, 4, "H must be a positive integer (>= 1), got True"),
    (4, None, "W must be a positive integer (>= 1), got None"),
])
def test_bad_sizes(H, W, needle):
    with pytest.raises(ValueError) as err:
        get_scan("raster").orders(H, W)
    assert needle in str(err.value)


def test_integer_like_sizes_are_accepted():
    scan = get_scan("raster")
    assert scan.orders(np.int64(3), torch.tensor(4)) is scan.orders(3, 4)


def test_equality_and_hash_by_config():
    assert get_scan("hilbert") == get_scan("hilbert", variants=scans.VARIANTS)
    assert get_scan("hilbert") != get_scan("hilbert", variants="normal")
    assert get_scan("zigzag", K=2) != get_scan("zigzag", K=3)
    assert get_scan("cross") != get_scan("raster")
    assert len({get_scan("window", size=7), get_scan("window", size=(7, 7)), get_scan("window")}) == 1
    assert repr(get_scan("zigzag", K=2)) == "ZigzagScan(K=2, start=0)"


def test_user_scan_without_config_compares_by_identity():
    class Plain(BaseScan):
        K = 1

        def _orders(self, H, W):
            return np.arange(H * W)[None]

    a, b = Plain(), Plain()
    assert a != b and a == a and len({a, b}) == 2
    assert a.orders(2, 2).tolist() == [[0, 1, 2, 3]]


def test_broken_user_scan_is_reported():
    class Broken(BaseScan):
        K = 2

        def _orders(self, H, W):
            return np.arange(H * W)[None]

    with pytest.raises(RuntimeError, match=r"orders of shape \(1, 4\) for 2x2; expected \(2, T\)"):
        Broken().orders(2, 2)


# -- resolve_scans --------------------------------------------------------------------------------------------


def names(resolved):
    return [[s.name for s in stage] for stage in resolved]


def test_resolve_single_spec_shares_one_object():
    out = resolve_scans("cross", depths=[2, 1, 3])
    assert names(out) == [["cross"] * 2, ["cross"], ["cross"] * 3]
    assert len({id(s) for stage in out for s in stage}) == 1


def test_resolve_per_stage_and_per_layer():
    out = resolve_scans(["cross", {"type": "window", "size": 2}, ["hilbert", "zigzag", "hilbert"]], depths=[2, 2, 3])
    assert names(out) == [["cross", "cross"], ["window", "window"], ["hilbert", "zigzag", "hilbert"]]
    assert out[1][0].size == (2, 2)
    assert out[2][0] is out[2][2]  # equal specs share one object, hence one cache
    # per-layer entries may themselves combine scans
    out = resolve_scans([["cross+hilbert", ["raster", "atrous"]]], depths=[2])
    assert names(out) == [["cross+hilbert", "raster+atrous"]]


def test_resolve_flat_per_layer_list():
    specs = [{"type": "zigzag", "K": 1, "start": i % 8} for i in range(5)]
    out = resolve_scans(specs, depths=[5])
    assert len(out) == 1 and [s.start for s in out[0]] == [0, 1, 2, 3, 4]
    out = resolve_scans(["raster", "cross", "hilbert"], depths=[1, 2])
    assert names(out) == [["raster"], ["cross", "hilbert"]]


def test_resolve_errors_name_the_mismatch():
    with pytest.raises(ValueError) as err:
        resolve_scans(["cross", "hilbert"], depths=[2, 2, 9, 2])
    msg = str(err.value)
    assert "2 entries" in msg and "4 stage(s)" in msg and "15 layer(s)" in msg and "'a+b'" in msg
    with pytest.raises(ValueError) as err:
        resolve_scans(["cross", ["hilbert"]], depths=[1, 2])
    assert "stage 1 has 2 layer(s)" in str(err.value) and "1 entries" in str(err.value)
    with pytest.raises(ValueError, match="depths must be a sequence"):
        resolve_scans("cross", depths=4)
    with pytest.raises(ValueError, match=r"depths\[1\] must be an integer >= 0, got -1"):
        resolve_scans("cross", depths=[1, -1])
    with pytest.raises(ValueError, match="unknown scan"):
        resolve_scans(["cross", "nope"], depths=[1, 1])


def test_missing_required_argument_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"'combine' needs argument\(s\) \['scans'\]"):
        get_scan("combine")
