"""The generalised Hilbert scan: the classical curve on 2^p squares (against the bit-manipulation d2xy written here),
continuity on every rectangle, and the variants."""
import numpy as np
import pytest

from scans import HilbertScan, get_scan, hilbert_path


def classical_d2xy(n, d):
    """Classical Hilbert curve index -> (x, y) on an n x n grid (n a power of two), vectorised over d."""
    d = np.asarray(d, dtype=np.int64)
    x = np.zeros_like(d)
    y = np.zeros_like(d)
    t = d.copy()
    s = 1
    while s < n:
        rx = 1 & (t // 2)
        ry = 1 & (t ^ rx)
        # rotate the quadrant
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        x = x + s * rx
        y = y + s * ry
        t = t // 4
        s *= 2
    return x, y


def far_end(H, W):
    """Where the curve ends: the far corner of the longer side, one cell short of it on 2-thick odd strips."""
    short = 1 if min(H, W) == 2 and max(H, W) % 2 == 1 else 0
    return W - 1 - short if W >= H else (H - 1 - short) * W


def step_kinds(path, W):
    """Counts of (4-neighbour steps, diagonal steps, longer jumps) along a path of flat positions."""
    r, c = np.divmod(np.asarray(path, dtype=np.int64), W)
    dr, dc = np.abs(np.diff(r)), np.abs(np.diff(c))
    four = int(((dr + dc) == 1).sum())
    diag = int(((dr == 1) & (dc == 1)).sum())
    return four, diag, dr.size - four - diag


@pytest.mark.parametrize("p", range(0, 9))
def test_equals_classical_curve_on_power_of_two_squares(p):
    n = 2 ** p
    x, y = classical_d2xy(n, np.arange(n * n))
    # x is the column, y the row: the curve starts top-left, steps down first and ends top-right.
    assert np.array_equal(HilbertScan(variants="normal").orders(n, n)[0].numpy(), y * n + x)


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_orientation_on_squares(n):
    path = hilbert_path(n, n)
    assert path[0] == 0 and path[-1] == n - 1  # top-left to top-right
    # The classical curve's first step alternates with the order: down for odd p, right for even p.
    assert path[1] == (n if n.bit_length() % 2 == 0 else 1)
    transposed = HilbertScan(variants="transposed").orders(n, n)[0].numpy()
    assert transposed[0] == 0 and transposed[-1] == (n - 1) * n  # top-left to bottom-left


@pytest.mark.parametrize("H,W", [(5, 9), (9, 5), (6, 6), (1, 4), (4, 1), (13, 21), (21, 13)])
def test_endpoints_on_rectangles(H, W):
    path = hilbert_path(H, W)
    assert path[0] == 0 and path[-1] == far_end(H, W)


def _check_continuity(H, W):
    path = hilbert_path(H, W)
    assert np.array_equal(np.sort(path), np.arange(H * W))
    assert path[0] == 0 and path[-1] == far_end(H, W)
    four, diag, jumps = step_kinds(path, W)
    assert jumps == 0, f"{H}x{W}: a step longer than a diagonal"
    long_side, short_side = max(H, W), min(H, W)
    assert diag <= 1, f"{H}x{W}: {diag} diagonal steps"
    if diag:
        assert long_side % 2 == 1 and short_side % 2 == 0, f"{H}x{W}: a diagonal step without an odd/even shape"
    return diag


def test_continuity_on_every_small_rectangle():
    diagonals = {}
    for H in range(1, 33):
        for W in range(1, 33):
            diagonals[H, W] = _check_continuity(H, W)
    # The diagonal step does happen (the statement above is not vacuous), e.g. on 3 x 2 boxes that cannot be
    # walked corner to corner along the long side by 4-neighbour steps alone.
    assert any(diagonals.values())


@pytest.mark.parametrize("H,W", [(1, 1), (1, 333), (333, 1), (7, 7), (13, 21), (21, 13), (56, 56), (200, 333),
                                 (333, 200), (97, 89), (3, 1000)])
def test_continuity_on_odd_prime_and_large_sizes(H, W):
    _check_continuity(H, W)


def test_variants():
    scan = HilbertScan()
    assert scan.variants == ("normal", "transposed", "reversed", "transposed_reversed") and scan.K == 4
    H, W = 13, 21
    o = scan.orders(H, W).numpy()
    assert np.array_equal(o[0], hilbert_path(H, W))
    t = hilbert_path(W, H)  # the curve of the transposed map, mapped back to this one
    assert np.array_equal(o[1], (t % H) * W + t // H)
    assert np.array_equal(o[2], o[0][::-1]) and np.array_equal(o[3], o[1][::-1])
    sq = HilbertScan(variants=("normal", "transposed")).orders(4, 4).numpy()
    assert sq[0].tolist() == [0, 1, 5, 4, 8, 12, 13, 9, 10, 14, 15, 11, 7, 6, 2, 3]
    assert sq[1].tolist() == [0, 4, 5, 1, 2, 3, 7, 6, 10, 11, 15, 14, 13, 9, 8, 12]
    assert get_scan("hilbert", variants=["reversed"]).orders(2, 2).tolist() == [[1, 3, 2, 0]]


def test_bad_variants():
    with pytest.raises(ValueError) as err:
        get_scan("hilbert", variants=("normal", "diagonal"))
    assert "diagonal" in str(err.value) and "transposed_reversed" in str(err.value)
