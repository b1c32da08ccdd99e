"""vssm.mm.flops: detectors and segmentors built from our configs, counted as VMamba's dense tables count them."""
from __future__ import annotations

import warnings

import pytest
import torch
from mm_helpers import CONFIGS

from vssm.mm.flops import BACKBONE_CONVENTION, count_config

SMOKES = sorted(CONFIGS.glob("*/*smoke*.py"))


@pytest.mark.parametrize("path", SMOKES, ids=lambda p: p.name)
def test_every_family_counts_with_every_op_handled(path):
    torch.manual_seed(0)
    shape = (3, 96, 128)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = count_config(path, shape, convention="exact")
    assert r.unhandled == {} and not [w for w in caught if "no formula" in str(w.message)]
    assert r.by_module["backbone"] > 0 and r.total > r.by_module["backbone"]
    assert r.input_size == shape


def test_convention_follows_the_backbone():
    r = count_config(CONFIGS / "segmentation" / "upernet_vmamba-test_shapes-smoke.py", (3, 64, 64))
    assert r.convention == BACKBONE_CONVENTION["VMambaBackbone"] == "vmamba"
    fv = count_config(CONFIGS / "segmentation" / "upernet_vmamba-test_shapes-smoke.py", (3, 64, 64), "fvcore")
    assert 0 < fv.total < r.total


# VMamba's analyze/flops.py at 2ed52ea prints 271163376640 for Mask R-CNN with VMamba-T [s1l8] at (3, 1280, 800)
# (its README: 271G) and 948.78G for UperNet with VMamba-T at (3, 512, 2048) (README: 949G).
@pytest.mark.parametrize("name,shape,official", [
    ("detection/mask-rcnn_vmamba-t_fpn_1x_coco.py", (3, 1280, 800), 271.16337664),
    ("segmentation/upernet_vmamba-t_8xb2-160k_ade20k-512x512.py", (3, 512, 2048), 948.78),
])
def test_vmamba_dense_tables(name, shape, official):
    torch.manual_seed(0)
    r = count_config(CONFIGS / name, shape)
    assert r.convention == "vmamba"
    assert r.gflops == pytest.approx(official, rel=1e-3)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"input_shape=\(1280, 800\); allowed: \(C, H, W\)"):
        count_config(CONFIGS / "segmentation" / "upernet_vmamba-test_shapes-smoke.py", (1280, 800))
