"""The generalised Hilbert scan: the classical curve on 2^p squares (against the bit-manipulation d2xy written here),
continuity on every rectangle, and the variants."""
import numpy as np
import pytest
from vssm.scans import HilbertScan, get_scan, hilbert_path


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


def far_end(H, W, major="long"):
    """Where the curve ends: the far corner of its major side, one cell short of it on 2-thick odd strips."""
    along_x = (W >= H) == (major == "long")
    if (W if along_x else H) == 1:  # a 1-thick map: the only curve is the straight walk
        along_x = not along_x
    length, other = (W, H) if along_x else (H, W)
    end = length - 1 - (1 if other == 2 and length % 2 == 1 else 0)
    return end if along_x else end * W


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


def _check_continuity(H, W, major="long"):
    path = hilbert_path(H, W, major)
    assert np.array_equal(np.sort(path), np.arange(H * W))
    assert path[0] == 0 and path[-1] == far_end(H, W, major)
    four, diag, jumps = step_kinds(path, W)
    assert jumps == 0, f"{H}x{W} ({major}): a step longer than a diagonal"
    assert diag <= 1, f"{H}x{W} ({major}): {diag} diagonal steps"
    if diag:
        along_x = (W >= H) == (major == "long")
        length, other = (W, H) if along_x else (H, W)
        assert length % 2 == 1 and other % 2 == 0, f"{H}x{W} ({major}): a diagonal step without an odd/even shape"
    return diag


@pytest.mark.parametrize("major", ["long", "short"])
def test_continuity_on_every_small_rectangle(major):
    diagonals = {}
    for H in range(1, 33):
        for W in range(1, 33):
            diagonals[H, W] = _check_continuity(H, W, major)
    # The diagonal step does happen (the statement above is not vacuous), e.g. on 2 x 3 boxes that cannot be
    # walked corner to corner along their odd side by 4-neighbour steps alone.
    assert any(diagonals.values())


@pytest.mark.parametrize("H,W", [(1, 1), (1, 333), (333, 1), (7, 7), (13, 21), (21, 13), (56, 56), (200, 333),
                                 (333, 200), (97, 89), (3, 1000)])
def test_continuity_on_odd_prime_and_large_sizes(H, W):
    _check_continuity(H, W, "long")
    _check_continuity(H, W, "short")


def test_variants():
    scan = HilbertScan()
    assert scan.variants == ("normal", "transposed", "reversed", "transposed_reversed") and scan.K == 4
    H, W = 13, 21
    o = scan.orders(H, W).numpy()
    assert np.array_equal(o[0], hilbert_path(H, W)) and np.array_equal(o[1], hilbert_path(H, W, "short"))
    assert np.array_equal(o[2], o[0][::-1]) and np.array_equal(o[3], o[1][::-1])
    assert len({tuple(p) for p in o}) == 4
    assert o[0][-1] == W - 1 and o[1][-1] == (H - 1) * W  # along the long side / along the short side
    # On squares the transposed variant is the transpose of the normal one.
    for n in (4, 7, 16):
        sq = scan.orders(n, n).numpy()
        assert np.array_equal(sq[1], (sq[0] % n) * n + sq[0] // n)
    sq = HilbertScan(variants=("normal", "transposed")).orders(4, 4).numpy()
    assert sq[0].tolist() == [0, 1, 5, 4, 8, 12, 13, 9, 10, 14, 15, 11, 7, 6, 2, 3]
    assert sq[1].tolist() == [0, 4, 5, 1, 2, 3, 7, 6, 10, 11, 15, 14, 13, 9, 8, 12]
    assert get_scan("hilbert", variants=["reversed"]).orders(2, 2).tolist() == [[1, 3, 2, 0]]


def test_bad_variants():
    with pytest.raises(ValueError) as err:
        get_scan("hilbert", variants=("normal", "diagonal"))
    assert "diagonal" in str(err.value) and "transposed_reversed" in str(err.value)
