"""MLLA: timm's model contract (mirrors timm's tests/test_models.py), any input size, parameter counts, parity with
the official code, bad input.

Forward-heavy checks use the tiny ``test_mlla``; the published sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import timm
import torch
from timm.optim import param_groups_weight_decay

import vssm  # noqa: F401
from vssm.convert import CheckpointMismatchError
from vssm.layers.linear_attention import RoPE2d, rope_2d_tables
from vssm.models.mlla import MLLA, checkpoint_filter_fn

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MODELS = ["mlla_tiny", "mlla_small", "mlla_base"]
TEST_MODEL = "test_mlla"

# Measured from the official code (num_classes=1000).
OFFICIAL_PARAMS = {"mlla_tiny": 24_392_200, "mlla_small": 43_015_048, "mlla_base": 95_983_960}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry():
    for name in ALL_MODELS + [TEST_MODEL]:
        assert timm.is_model(name), name
    assert set(ALL_MODELS) <= set(timm.list_models("mlla*"))


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_param_counts(name):
    model = timm.create_model(name, device="meta")
    assert _count(model) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS + [TEST_MODEL])
def test_default_cfg_meta(name):
    model = timm.create_model(name, device="meta")
    cfg = model.pretrained_cfg
    assert not cfg.get("url"), "no URL: official files are converted and loaded with pretrained_cfg_overlay"
    names = dict(model.named_modules())
    assert cfg["first_conv"] in names and isinstance(names[cfg["first_conv"]], torch.nn.Conv2d)
    assert names[cfg["first_conv"]].in_channels == 3
    assert cfg["classifier"] in names and names[cfg["classifier"]] is model.get_classifier()
    assert cfg["num_classes"] == model.num_classes == 1000
    assert [f["num_chs"] for f in model.feature_info][-1] == model.num_features
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    assert model.no_weight_decay() == set()  # no SSM parameters nor position tables
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=model.no_weight_decay())
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert set(model.group_matcher()) == {"stem", "blocks"}
    assert not any("rope" in k for k in model.state_dict()), "RoPE tables are computed, never stored"


def test_forward_and_grad_checkpointing():
    torch.manual_seed(0)
    model = timm.create_model(TEST_MODEL).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 1000) and torch.isfinite(y).all()
        model.set_grad_checkpointing(True)
        y2 = model(x)
    torch.testing.assert_close(y, y2)
    model.train()
    loss = model(x).sum()
    loss.backward()  # checkpointed backward runs


def test_backward_every_param():
    torch.manual_seed(0)
    model = timm.create_model(TEST_MODEL, num_classes=42).train()
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 42)
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"


def test_default_cfg_forward():
    model = timm.create_model(TEST_MODEL).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 1, 1, model.num_features)  # NHWC, unpooled
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.head_hidden_size)
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)
        model.reset_classifier(0, "")
        out = model(x)
        assert out.ndim == 4
        torch.testing.assert_close(out, feats)
        model.reset_classifier(7, "avg")
        assert model(x).shape == (2, 7)


def test_features_only():
    model = timm.create_model(TEST_MODEL, features_only=True).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == 4
    for o, c, r in zip(outs, model.feature_info.channels(), model.feature_info.reduction()):
        assert o.shape == (1, c, 64 // r, 96 // r)  # NCHW
    sub = timm.create_model(TEST_MODEL, features_only=True, out_indices=(1, 3)).eval()
    assert sub.feature_info.channels() == [model.feature_info.channels()[i] for i in (1, 3)]
    with torch.no_grad():
        assert [o.shape[1] for o in sub(x)] == sub.feature_info.channels()


def test_forward_intermediates():
    model = timm.create_model(TEST_MODEL).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [t.shape[1] for t in inter] == [f["num_chs"] for f in model.feature_info]
        only = model.forward_intermediates(x, indices=2, intermediates_only=True, stop_early=True)
        assert len(only) == 2
        torch.testing.assert_close(only[-1], inter[-1])
        nhwc = model.forward_intermediates(x, indices=[0], output_fmt="NHWC", intermediates_only=True)
        torch.testing.assert_close(nhwc[0].permute(0, 3, 1, 2), inter[0])
        normed = model.forward_intermediates(x, norm=True, intermediates_only=True)
        torch.testing.assert_close(normed[-1], final.permute(0, 3, 1, 2))
    assert model.prune_intermediate_layers(indices=[0, 1], prune_norm=True) == [0, 1]
    assert len(model.stages) == 2
    with torch.no_grad():
        assert model(x).shape == (1, 4, 4, model.feature_info[1]["num_chs"])  # head reset to identity, 32 / 8


@pytest.mark.parametrize("size", [(2, 97, 113), (1, 40, 72), (1, 33, 33)], ids=lambda s: "x".join(map(str, s)))
def test_any_input_size(size):
    b, h, w = size
    model = timm.create_model(TEST_MODEL, num_classes=5).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
        feats = model.forward_intermediates(torch.randn(1, 3, h, w), intermediates_only=True)
    assert y.shape == (b, 5) and torch.isfinite(y).all()
    sizes = [(math.ceil(h / 4), math.ceil(w / 4))]
    for _ in range(3):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    assert [tuple(f.shape[2:]) for f in feats] == sizes


def test_rope_matches_the_complex_rotation_and_follows_the_grid():
    H, W, C = 5, 7, 8
    cos, sin = rope_2d_tables(H, W, C)
    assert cos.shape == (H, W, C // 2)
    # the official table: angles (h * theta_k for k < C/4, then w * theta_k), theta_k = 1e4 ** (-k / (C / 4))
    k = C // 4
    theta = 1 / (10000 ** (torch.arange(k) / k))
    hh, ww = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    angles = torch.cat([hh[..., None] * theta, ww[..., None] * theta], dim=-1)
    x = torch.randn(2, H, W, C)
    expected = torch.view_as_real(torch.view_as_complex(x.reshape(2, H, W, C // 2, 2)) * torch.polar(
        torch.ones_like(angles), angles)).flatten(-2)
    rope = RoPE2d(C)
    torch.testing.assert_close(rope(x), expected)
    assert rope.tables(H, W, x.device) is rope.tables(H, W, x.device)  # cached per grid
    assert rope(torch.randn(1, 3, 11, C)).shape == (1, 3, 11, C)  # any grid
    with pytest.raises(ValueError, match="divisible by 4"):
        RoPE2d(6)


def test_in_chans_and_wrong_channels():
    model = timm.create_model(TEST_MODEL, in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"in_chans=1.*3 channels"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="in_chans=1"):
        model.forward_intermediates(torch.randn(1, 2, 32, 32))


def test_drop_path_and_dropouts():
    model = timm.create_model(TEST_MODEL, drop_path_rate=0.2, drop_rate=0.1, proj_drop_rate=0.1)
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, "drop_prob") else 0.0
             for s in model.stages for b in s.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    model.train()
    assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()


def test_device_dtype_kwargs():
    model = timm.create_model(TEST_MODEL, device="meta")
    assert all(t.device.type == "meta" for t in model.state_dict().values())
    model = timm.create_model(TEST_MODEL, dtype=torch.float64).eval()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_bad_config():
    with pytest.raises(ValueError, match="one entry per stage"):
        MLLA(depths=(1, 1), dims=(16, 32), num_heads=(2,))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MLLA(depths=(1,), dims=(12,), num_heads=(8,))


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints


def _load_fixture():
    from safetensors import safe_open

    with safe_open(str(FIXTURES / "mlla.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return json.loads(meta["config"]), sd, tensors


@pytest.mark.parametrize("wrap", ["model", "model_ema", None])
def test_parity_with_official_code(wrap):
    """Official MLLA (random weights, odd last grid) -> converted -> same logits and pre-logits (1e-4, fp32)."""
    cfg, sd, t = _load_fixture()
    assert any(k.endswith("attn.rope.rotations") for k in sd)  # the official buffers are dropped by the converter
    model = MLLA(**cfg).eval()
    ckpt = {wrap: {"module." + k: v for k, v in sd.items()}} if wrap else sd
    model.load_state_dict(checkpoint_filter_fn(ckpt, model), strict=True)
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(t["input"]), pre_logits=True)
        logits = model(t["input"])
    torch.testing.assert_close(feats, t["features"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits, t["logits"], atol=1e-4, rtol=1e-4)


def test_wrong_checkpoint_names_keys_and_shapes():
    model = timm.create_model(TEST_MODEL, device="meta")
    other = timm.create_model("test_vmamba").state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): stem\.conv1\.conv\.weight"):
        checkpoint_filter_fn(other, model)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected key\(s\): stem\.conv1\.weight"):
        checkpoint_filter_fn(other, model)
    bigger = timm.create_model(TEST_MODEL, dims=(32, 48, 64, 64), device="meta").state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"stem\.conv1\.conv\.weight: checkpoint \(16, 3, 3, 3\) vs"):
        checkpoint_filter_fn({k: torch.zeros(v.shape) for k, v in bigger.items()}, model)
    cfg, sd, _ = _load_fixture()
    sd = dict(sd, absolute_pos_embed=torch.zeros(1, 4, 8))
    with pytest.raises(CheckpointMismatchError, match="absolute_pos_embed"):
        checkpoint_filter_fn(sd, MLLA(**cfg))


def test_own_state_dict_roundtrip():
    model = timm.create_model(TEST_MODEL).eval()
    sd = checkpoint_filter_fn({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, model)
    fresh = timm.create_model(TEST_MODEL).eval()
    fresh.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))


@pytest.mark.parametrize("pool", ["avg", "max", "avgmax"])
def test_global_pool(pool):
    model = timm.create_model(TEST_MODEL, global_pool=pool, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    model = timm.create_model(TEST_MODEL, global_pool="", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).ndim == 4


def test_group_matcher_with_timm():
    from timm.models import group_parameters

    model = timm.create_model(TEST_MODEL, device="meta")
    groups = group_parameters(model, model.group_matcher(coarse=False))
    assert {n for names in groups.values() for n in names} == {n for n, _ in model.named_parameters()}
    assert len(group_parameters(model, model.group_matcher(coarse=True))) < len(groups)


def test_pretrained_file_with_new_head(tmp_path):
    from safetensors.torch import save_file

    src = timm.create_model(TEST_MODEL).eval()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = timm.create_model(TEST_MODEL, pretrained=True, num_classes=5,
                              pretrained_cfg_overlay=dict(file=str(path))).eval()
    for k, v in src.state_dict().items():
        if not k.startswith("head."):
            torch.testing.assert_close(model.state_dict()[k], v)
    assert model.get_classifier().out_features == 5
