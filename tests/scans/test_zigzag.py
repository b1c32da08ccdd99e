"""ZigMa's zigzag scans: continuity, the eight paths against a loop-based construction, and K/start."""
import numpy as np
import pytest
from vssm.scans import ZigzagScan, get_scan

SIZES = [(1, 1), (1, 6), (6, 1), (2, 2), (3, 4), (7, 7), (13, 21), (56, 56), (200, 333)]


def zigma_paths(H, W):
    """ZigMa's eight paths, written as loops: for each corner its row snake, then its column snake."""
    paths = []
    for r0, c0, dr, dc in [(0, 0, 1, 1), (0, W - 1, 1, -1), (H - 1, 0, -1, 1), (H - 1, W - 1, -1, -1)]:
        rows = []
        for i in range(H):
            for j in range(W):
                col = j if i % 2 == 0 else W - 1 - j
                rows.append((r0 + dr * i) * W + c0 + dc * col)
        cols = []
        for j in range(W):
            for i in range(H):
                row = i if j % 2 == 0 else H - 1 - i
                cols.append((r0 + dr * row) * W + c0 + dc * j)
        paths += [rows, cols]
    return np.array(paths)


@pytest.mark.parametrize("H,W", [(1, 1), (1, 5), (4, 1), (4, 4), (3, 5), (8, 6), (13, 21)])
def test_matches_zigma_construction(H, W):
    assert np.array_equal(ZigzagScan().orders(H, W).numpy(), zigma_paths(H, W))


@pytest.mark.parametrize("H,W", SIZES)
def test_every_step_is_between_4_neighbours(H, W):
    orders = ZigzagScan(K=8).orders(H, W).numpy().astype(np.int64)
    for path in orders:
        r, c = np.divmod(path, W)
        assert (np.abs(np.diff(r)) + np.abs(np.diff(c)) == 1).all()


def test_paths_are_distinct():
    orders = ZigzagScan().orders(5, 6).numpy()
    assert len({tuple(p) for p in orders}) == 8


def test_K_and_start_select_paths_cyclically():
    all8 = ZigzagScan().orders(4, 5)
    sub = ZigzagScan(K=3, start=6)
    assert sub.K == 3 and sub.indices == (6, 7, 0)
    assert np.array_equal(sub.orders(4, 5).numpy(), all8.numpy()[[6, 7, 0]])
    assert get_scan("zigzag", K=1, start=2).orders(4, 5).tolist() == all8[2:3].tolist()


@pytest.mark.parametrize("kwargs,needle", [
    ({"K": 0}, "K must be an integer in [1, 8], got 0"),
    ({"K": 9}, "K must be an integer in [1, 8], got 9"),
    ({"K": 2.0}, "K must be an integer in [1, 8]"),
    ({"start": 8}, "start must be an integer in [0, 7], got 8"),
    ({"start": -1}, "start must be an integer in [0, 7]"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(ValueError) as err:
        get_scan("zigzag", **kwargs)
    assert needle in str(err.value)
