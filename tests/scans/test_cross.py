"""Raster, bidirectional (Vim) and cross (VMamba) scans against explicit tensor constructions."""
import numpy as np
import pytest
import torch
from vssm.scans import BidirectionalScan, CrossScan, RasterScan, get_scan

SIZES = [(1, 1), (1, 7), (7, 1), (2, 3), (7, 7), (13, 21), (56, 56), (200, 333)]


def vmamba_cross_scan(H, W):
    """VMamba's CrossScan applied to a map holding its own flat positions: (4, H*W)."""
    x = torch.arange(H * W).view(1, 1, H, W)
    xs = x.new_empty((1, 4, 1, H * W))
    xs[:, 0] = x.flatten(2, 3)
    xs[:, 1] = x.transpose(dim0=2, dim1=3).flatten(2, 3)
    xs[:, 2:4] = torch.flip(xs[:, 0:2], dims=[-1])
    return xs.view(4, H * W)


@pytest.mark.parametrize("H,W", SIZES)
def test_cross_equals_vmamba_cross_scan(H, W):
    orders = CrossScan().orders(H, W)
    assert torch.equal(orders.long(), vmamba_cross_scan(H, W))


@pytest.mark.parametrize("H,W", SIZES)
def test_raster_and_bidirectional(H, W):
    flat = torch.arange(H * W).view(1, H, W).flatten(1)
    assert torch.equal(RasterScan().orders(H, W).long(), flat)
    assert torch.equal(BidirectionalScan().orders(H, W).long(), torch.cat([flat, flat.flip(-1)]))


@pytest.mark.parametrize("H,W", SIZES)
def test_raster_rows_are_continuous(H, W):
    path = RasterScan().orders(H, W)[0].numpy().astype(np.int64)
    rows, cols = np.divmod(path, W)
    same_row = np.diff(rows) == 0
    assert (np.diff(cols)[same_row] == 1).all()  # left to right inside a row
    assert (np.diff(rows)[~same_row] == 1).all() and (cols[1:][~same_row] == 0).all()  # then the next row


def test_cross_paths_in_vmamba_order():
    o = get_scan("cross").orders(2, 3).tolist()
    assert o == [[0, 1, 2, 3, 4, 5], [0, 3, 1, 4, 2, 5], [5, 4, 3, 2, 1, 0], [5, 2, 4, 1, 3, 0]]
    assert get_scan("cross").K == 4 and get_scan("bidirectional").K == 2 and get_scan("raster").K == 1
