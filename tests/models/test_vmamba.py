"""VMamba / LocalVMamba: parameter counts, configs, scans, checkpoint errors.

timm's model contract (forward, backward, features, cfg, options, own checkpoints) is checked for every family in
test_contract.py; parity with the official code in test_vmamba_parity.py.
"""
from __future__ import annotations

import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
from vssm.models.vmamba import checkpoint_filter_fn

# Measured from the official code (num_classes=1000).
OFFICIAL_PARAMS = {
    "vmamba_tiny_s1l8": 30_249_064,
    "vmamba_small_s1l20": 49_012_840,
    "vmamba_base_s1l20": 86_614_504,
    "vmamba_tiny_s2l5": 30_705_832,
    "vmamba_small_s2l15": 50_147_752,
    "vmamba_base_s2l15": 88_557_800,
    "vanilla_vmamba_tiny": 22_893_448,
    "vanilla_vmamba_small": 44_417_416,
    "vanilla_vmamba_base": 76_254_056,
    "vmamba_tiny": 30_249_064,
    "vmamba_small": 50_147_752,
    "vmamba_base": 88_557_800,
    "localvmamba_tiny": 25_527_160,
    "localvmamba_small": 49_748_536,
}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry():
    for name in ["vmamba_tiny_s1l8", "vmamba_small_s1l20", "vmamba_base_s1l20", "vmamba_tiny_s2l5",
                 "vmamba_small_s2l15", "vmamba_base_s2l15", "vmamba_tiny", "vmamba_small", "vmamba_base",
                 "vanilla_vmamba_tiny", "vanilla_vmamba_small", "vanilla_vmamba_base", "localvmamba_tiny",
                 "localvmamba_small", "vmamba_micro", "test_vmamba", "test_localvmamba"]:
        assert timm.is_model(name), name


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_param_counts(name, meta_model):
    model = meta_model(name)
    assert _count(model) == OFFICIAL_PARAMS[name]


# ----------------------------------------------------------------------------------------------------------------
# Scans


def _scan_names():
    from vssm.scans import get_scan, list_scans

    names = []
    for n in list_scans():
        try:
            get_scan(n)
        except (ValueError, TypeError):  # needs arguments (e.g. 'combine')
            continue
        names.append(n)
    return names


@pytest.mark.parametrize("scan", _scan_names())
def test_every_registered_scan(scan, meta_model):
    from vssm.scans import get_scan

    K = get_scan(scan).K
    ref = meta_model("test_vmamba")
    model = timm.create_model("test_vmamba", scan=scan, num_classes=4).eval()
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        if n.rsplit(".", 1)[-1] in ("x_proj_weight", "dt_proj_weight", "dt_proj_bias", "A_log", "D"):
            assert p.shape[0] == K and p.shape[1:] == q.shape[1:], n  # only the path axis follows K
        elif not n.startswith("head."):
            assert p.shape == q.shape, n
    with torch.no_grad():
        y = model(torch.randn(1, 3, 35, 29))
    assert y.shape == (1, 4) and torch.isfinite(y).all()


def test_scan_per_stage_and_per_layer():
    per_stage = timm.create_model("test_vmamba", scan=["cross", "bidirectional", {"type": "window", "size": 2},
                                                       "raster"], device="meta")
    assert [s.blocks[0].mixer.K for s in per_stage.stages] == [4, 2, 4, 1]
    per_layer = timm.create_model("test_vmamba", scan=["cross", "raster", "bidirectional", "cross", "raster"],
                                  device="meta")
    assert [b.mixer.K for s in per_layer.stages for b in s.blocks] == [4, 1, 2, 4, 1]
    same = timm.create_model("test_vmamba", scan="cross", device="meta")
    default = timm.create_model("test_vmamba", device="meta")
    assert {k: v.shape for k, v in same.state_dict().items()} == {k: v.shape for k, v in default.state_dict().items()}


def test_unknown_scan_raises_the_scans_error():
    with pytest.raises(ValueError, match="unknown scan 'crosss'"):
        timm.create_model("test_vmamba", scan="crosss")


def test_localvmamba_scans_are_the_searched_ones(meta_model):
    from vssm.models.vmamba import LOCALVMAMBA_SMALL_DIRECTIONS, LOCALVMAMBA_TINY_DIRECTIONS

    for name, dirs in (("localvmamba_tiny", LOCALVMAMBA_TINY_DIRECTIONS),
                       ("localvmamba_small", LOCALVMAMBA_SMALL_DIRECTIONS)):
        model = meta_model(name)
        got = [tuple(b.mixer.scan.directions) for s in model.stages for b in s.blocks]
        assert got == [tuple(d) for d in dirs]
        assert all(b.mixer.path_attn is not None for s in model.stages for b in s.blocks)


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


def test_wrong_checkpoint_names_keys_and_shapes():
    small = timm.create_model("test_vmamba", device="meta")
    other = timm.create_model("test_localvmamba").state_dict()
    with pytest.raises(CheckpointError, match=r"shape mismatch.*checkpoint \(.*\) vs model \("):
        checkpoint_filter_fn(other, small)
    sd = timm.create_model("test_vmamba").state_dict()
    sd.pop("stages.0.blocks.0.mixer.A_log")
    sd["stages.9.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing key\(s\): stages\.0\.blocks\.0\.mixer\.A_log"):
        checkpoint_filter_fn({"model": sd}, small)


