"""MLLA: parameter counts, RoPE, bad configurations, parity with the official code, checkpoint errors.

timm's model contract (forward, backward, features, cfg, options, own checkpoints) is checked for every family in
test_contract.py. Forward checks use the tiny ``test_mlla``; the published sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
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
def test_official_param_counts(name, meta_model):
    model = meta_model(name)
    assert _count(model) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS + [TEST_MODEL])
def test_rope_tables_are_not_stored(name, meta_model):
    assert not any("rope" in k for k in meta_model(name).state_dict()), "RoPE tables are computed, never stored"


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


def test_rope_traced_form_equals_the_complex_product(monkeypatch):
    """Under torch.compile / export RoPE2d rotates with real multiply-adds: same values and input gradient as the
    eager complex product, on a non-square grid."""
    import vssm.layers.linear_attention as la

    rope = RoPE2d(16)
    x = torch.randn(2, 5, 7, 16, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, 7, 16)
    eager = rope(x)
    (dx_eager,) = torch.autograd.grad(eager, x, g)
    monkeypatch.setattr(la, "is_tracing", lambda: True)
    traced = rope(x)
    (dx_traced,) = torch.autograd.grad(traced, x, g)
    assert traced.dtype == eager.dtype == torch.float32
    torch.testing.assert_close(traced, eager, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(dx_traced, dx_eager, rtol=1e-6, atol=1e-6)


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
    with pytest.raises(CheckpointError, match=r"missing key\(s\): stem\.conv1\.conv\.weight"):
        checkpoint_filter_fn(other, model)
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): stem\.conv1\.weight"):
        checkpoint_filter_fn(other, model)
    bigger = timm.create_model(TEST_MODEL, dims=(32, 48, 64, 64), device="meta").state_dict()
    with pytest.raises(CheckpointError, match=r"stem\.conv1\.conv\.weight: checkpoint \(16, 3, 3, 3\) vs"):
        checkpoint_filter_fn({k: torch.zeros(v.shape) for k, v in bigger.items()}, model)
    cfg, sd, _ = _load_fixture()
    sd = dict(sd, absolute_pos_embed=torch.zeros(1, 4, 8))
    with pytest.raises(CheckpointError, match="absolute_pos_embed"):
        checkpoint_filter_fn(sd, MLLA(**cfg))


