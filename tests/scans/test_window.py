"""LocalMamba's window scans: windows exhausted one at a time, partial border windows, equality with LocalMamba's
padded local scan (padding dropped), the transposed / reversed variants and the LocalMamba direction names."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from vssm.scans import LOCALMAMBA_DIRECTIONS, LocalMambaScan, WindowScan, get_scan

SIZES = [(1, 1), (1, 10), (10, 1), (7, 7), (10, 15), (13, 21), (14, 14), (56, 56), (200, 333)]


def localmamba_local_scan(H, W, w, flip=False, column_first=False):
    """LocalMamba's local_scan on a map of its own flat positions, padded with -1, then the padding dropped."""
    x = torch.arange(H * W).view(H, W)
    hg, wg = -(-H // w), -(-W // w)
    x = F.pad(x, (0, wg * w - W, 0, hg * w - H), value=-1)
    if column_first:
        seq = x.view(hg, w, wg, w).permute(2, 0, 3, 1).reshape(-1)
    else:
        seq = x.view(hg, w, wg, w).permute(0, 2, 1, 3).reshape(-1)
    if flip:
        seq = seq.flip(0)
    return seq[seq >= 0].numpy()


@pytest.mark.parametrize("size", [1, 2, 3, 7])
@pytest.mark.parametrize("H,W", SIZES)
def test_window_matches_localmamba(H, W, size):
    orders = WindowScan(size=size).orders(H, W).numpy()
    expected = [localmamba_local_scan(H, W, size, flip=f, column_first=c)
                for c, f in [(False, False), (True, False), (False, True), (True, True)]]
    assert np.array_equal(orders, np.stack(expected))


@pytest.mark.parametrize("wh,ww", [(2, 2), (7, 7), (2, 3), (4, 1)])
@pytest.mark.parametrize("H,W", SIZES)
def test_paths_stay_inside_a_window_until_it_is_exhausted(H, W, wh, ww):
    path = WindowScan(size=(wh, ww), variants="normal").orders(H, W)[0].numpy().astype(np.int64)
    r, c = np.divmod(path, W)
    win = (r // wh) * (-(-W // ww)) + c // ww
    # Windows come in row-major order, each one contiguous in the path ...
    change = np.flatnonzero(np.diff(win)) + 1
    starts = np.concatenate([[0], change])
    assert np.array_equal(win[starts], np.arange(starts.size))
    # ... of the size of the (possibly partial) window, visited row-major inside.
    lengths = np.diff(np.concatenate([starts, [path.size]]))
    rows0, cols0 = (r[starts] // wh) * wh, (c[starts] // ww) * ww
    assert np.array_equal(lengths, np.minimum(wh, H - rows0) * np.minimum(ww, W - cols0))
    for s, n in zip(starts, lengths):
        assert np.array_equal(path[s:s + n], np.sort(path[s:s + n]))


def test_window_of_the_whole_map_is_raster():
    assert np.array_equal(WindowScan(size=64, variants="normal").orders(10, 15)[0].numpy(), np.arange(150))


def test_variants_are_transposes_and_reversals():
    scan = WindowScan(size=(2, 3), variants=("normal", "transposed", "reversed", "transposed_reversed"))
    o = scan.orders(5, 7).numpy()
    assert np.array_equal(o[2], o[0][::-1]) and np.array_equal(o[3], o[1][::-1])
    # The transposed path is the normal path of the transposed map with a transposed window, mapped back.
    t = WindowScan(size=(3, 2), variants="normal").orders(7, 5)[0].numpy()
    assert np.array_equal(o[1], (t % 5) * 7 + t // 5)


def test_localmamba_direction_names():
    H, W = 10, 15
    names = ["h", "h_flip", "v", "v_flip", "w2", "w2_flip", "w7", "w7_flip", "w3_v", "w3_v_flip"]
    o = get_scan("localmamba", directions=names).orders(H, W).numpy()
    grid = np.arange(H * W).reshape(H, W)
    assert np.array_equal(o[0], grid.ravel()) and np.array_equal(o[1], grid.ravel()[::-1])
    assert np.array_equal(o[2], grid.T.ravel()) and np.array_equal(o[3], grid.T.ravel()[::-1])
    assert np.array_equal(o[4], localmamba_local_scan(H, W, 2))
    assert np.array_equal(o[5], localmamba_local_scan(H, W, 2, flip=True))
    assert np.array_equal(o[6], localmamba_local_scan(H, W, 7))
    assert np.array_equal(o[7], localmamba_local_scan(H, W, 7, flip=True))
    assert np.array_equal(o[8], localmamba_local_scan(H, W, 3, column_first=True))
    assert np.array_equal(o[9], localmamba_local_scan(H, W, 3, flip=True, column_first=True))


def test_localmamba_defaults_and_k():
    scan = LocalMambaScan()
    assert scan.directions == LOCALMAMBA_DIRECTIONS and scan.K == 8
    assert get_scan("localmamba", directions=["h", "v_flip", "w7", "w2_flip"]).K == 4
    assert get_scan("localmamba", directions="w7").K == 1


@pytest.mark.parametrize("kwargs,needle", [
    ({"size": 0}, "size must be a positive integer or a pair"),
    ({"size": (2, 0)}, "got (2, 0)"),
    ({"size": 2.5}, "size must be a positive integer"),
    ({"variants": ()}, "at least one of"),
    ({"variants": ("normal", "flipped")}, "unknown variant(s) ['flipped']"),
])
def test_bad_window_arguments(kwargs, needle):
    with pytest.raises(ValueError) as err:
        get_scan("window", **kwargs)
    assert needle in str(err.value)
    if "variant" in needle:
        assert "transposed_reversed" in str(err.value)  # the allowed values are listed


@pytest.mark.parametrize("directions", [["h", "x"], ["w0"], ["hv"], ["v_v"], []])
def test_bad_localmamba_directions(directions):
    with pytest.raises(ValueError) as err:
        get_scan("localmamba", directions=directions)
    assert "direction" in str(err.value) and "'h'" in str(err.value)
