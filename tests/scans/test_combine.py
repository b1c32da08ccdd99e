"""Combined scans: paths concatenated along K in order, shorter paths padded with -1, every way of writing one."""
import pytest
import torch
from vssm.scans import CombineScan, get_scan


def test_concatenation_and_padding():
    H, W = 5, 7
    combo = get_scan("cross+atrous")
    cross, atrous = get_scan("cross").orders(H, W), get_scan("atrous").orders(H, W)
    o = combo.orders(H, W)
    assert combo.K == 8 and o.shape == (8, H * W) and o.dtype == torch.int32
    assert torch.equal(o[:4], cross)
    assert torch.equal(o[4:, : atrous.shape[1]], atrous)
    assert (o[4:, atrous.shape[1]:] == -1).all()


def test_padding_when_the_first_part_is_shorter():
    o = get_scan(["atrous", "raster"]).orders(3, 3)
    assert o.shape == (5, 9)
    assert o[0].tolist() == [0, 2, 6, 8, -1, -1, -1, -1, -1]
    assert o[4].tolist() == list(range(9))


def test_spellings_are_equal():
    a = get_scan("cross+hilbert")
    b = get_scan(["cross", "hilbert"])
    c = get_scan({"type": "combine", "scans": ["cross", {"type": "hilbert"}]})
    d = CombineScan(scans=("cross", get_scan("hilbert")))
    assert a == b == c == d and len({a, b, c, d}) == 1
    assert a.name == "cross+hilbert" and a.K == 8
    assert torch.equal(a.orders(4, 6), d.orders(4, 6))
    assert get_scan(" cross + hilbert ") == a


def test_nested_combinations_are_flattened():
    nested = get_scan(["raster", "cross+zigzag"])
    assert [s.name for s in nested.scans] == ["raster", "cross", "zigzag"]
    assert nested.K == 1 + 4 + 8 and nested.name == "raster+cross+zigzag"


def test_configured_parts_and_round_trip():
    combo = get_scan(["cross", {"type": "window", "size": 2, "variants": ["normal", "reversed"]}])
    assert combo.K == 6
    assert combo.config == {"type": "combine", "scans": [
        {"type": "cross"}, {"type": "window", "size": 2, "variants": ["normal", "reversed"]}]}
    assert get_scan(combo.config) == combo


def test_single_element_list_is_that_scan():
    assert get_scan(["hilbert"]) == get_scan("hilbert")
    assert type(get_scan(["hilbert"])).__name__ == "HilbertScan"


@pytest.mark.parametrize("spec,kwargs,needle", [
    ([], {}, "empty list"),
    ("cross+hilbert", {"variants": "normal"}, "ambiguous"),
    (["cross", "hilbert"], {"size": 2}, "ambiguous"),
    ("cross+hilbrt", {}, "did you mean 'hilbert'"),
    ({"type": "combine", "scans": []}, {}, "non-empty list"),
    ({"type": "combine", "scans": "cross"}, {}, "non-empty list"),
])
def test_bad_combinations(spec, kwargs, needle):
    with pytest.raises(ValueError) as err:
        get_scan(spec, **kwargs)
    assert needle in str(err.value)
