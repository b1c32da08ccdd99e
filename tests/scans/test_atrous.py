"""EfficientVMamba's atrous scan: sub-grid membership, the ES2D path order, partition of the map, -1 padding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from vssm.scans import AtrousScan, get_scan

SIZES = [(1, 1), (1, 5), (5, 1), (2, 2), (4, 6), (7, 7), (13, 21), (56, 56), (200, 333)]


def efficientvmamba_scan(H, W):
    """EfficientVMamba's EfficientScan (stride 2) on a map of its own positions, padding (-1) dropped per path."""
    x = torch.arange(H * W).view(1, 1, H, W)
    x = F.pad(x, (0, W % 2, 0, H % 2), value=-1)
    paths = [
        x[:, :, ::2, ::2].reshape(-1),
        x.transpose(2, 3)[:, :, ::2, 1::2].reshape(-1),
        x[:, :, ::2, 1::2].reshape(-1),
        x.transpose(2, 3)[:, :, 1::2, 1::2].reshape(-1),
    ]
    return [p[p >= 0].numpy() for p in paths]


@pytest.mark.parametrize("H,W", SIZES)
def test_matches_efficientvmamba(H, W):
    orders = AtrousScan().orders(H, W).numpy()
    assert orders.shape == (4, ((H + 1) // 2) * ((W + 1) // 2))
    for path, expected in zip(orders, efficientvmamba_scan(H, W)):
        assert np.array_equal(path[path >= 0], expected)
        assert (path[expected.size:] == -1).all()


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
@pytest.mark.parametrize("layout", ["efficientvmamba", "raster"])
@pytest.mark.parametrize("H,W", SIZES)
def test_each_path_is_one_subgrid_and_they_partition_the_map(H, W, stride, layout):
    scan = AtrousScan(stride=stride, layout=layout)
    orders = scan.orders(H, W).numpy().astype(np.int64)
    assert orders.shape[0] == scan.K == stride * stride
    assert orders.shape[1] == (-(-H // stride)) * (-(-W // stride))
    offsets = scan.subgrids()
    assert sorted((r, c) for r, c, _ in offsets) == [(r, c) for r in range(stride) for c in range(stride)]
    for path, (r0, c0, column_major) in zip(orders, offsets):
        visited = path[path >= 0]
        r, c = np.divmod(visited, W)
        assert ((r % stride == r0) & (c % stride == c0)).all()  # membership
        size = len(range(r0, H, stride)) * len(range(c0, W, stride))
        assert visited.size == size  # the whole sub-grid
        key = c * H + r if column_major else r * W + c
        assert (np.diff(key) > 0).all()  # row-major (or column-major) traversal
    every = orders[orders >= 0]
    assert np.array_equal(np.sort(every), np.arange(H * W))  # each position in exactly one path


def test_layout_orders():
    assert AtrousScan().subgrids() == [(0, 0, False), (1, 0, True), (0, 1, False), (1, 1, True)]
    assert AtrousScan(layout="raster").subgrids() == [(0, 0, False), (0, 1, False), (1, 0, False), (1, 1, False)]
    assert AtrousScan(stride=2).orders(4, 4).tolist() == [[0, 2, 8, 10], [4, 12, 6, 14], [1, 3, 9, 11],
                                                          [5, 13, 7, 15]]


def test_missing_subgrids_are_all_padding():
    orders = AtrousScan().orders(1, 1).tolist()
    assert orders == [[0], [-1], [-1], [-1]]


@pytest.mark.parametrize("kwargs,needle", [
    ({"stride": 0}, "stride must be an integer >= 1, got 0"),
    ({"stride": "2"}, "stride must be an integer >= 1"),
    ({"layout": "zigzag"}, "layout must be one of ('efficientvmamba', 'raster')"),
])
def test_bad_arguments(kwargs, needle):
    with pytest.raises(ValueError) as err:
        get_scan("atrous", **kwargs)
    assert needle in str(err.value)
