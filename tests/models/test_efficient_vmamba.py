"""EfficientVMamba: parameter counts, the published layout, the atrous scan, parity with the official code,
checkpoint errors.

timm's model contract (forward, backward, features, cfg, options, own checkpoints; any input size with and without
the atrous padding) is checked for every family in test_contract.py. Forward checks use the tiny
``test_efficient_vmamba``; the published sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from vssm.scans import get_scan

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
from vssm.models.efficient_vmamba import AtrousSS2D, EfficientVMamba, checkpoint_filter_fn

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MODELS = ["efficient_vmamba_tiny", "efficient_vmamba_small", "efficient_vmamba_base"]
TEST_MODEL = "test_efficient_vmamba"

# Measured from the official code (num_classes=1000); the small model as published (64-channel stem).
OFFICIAL_PARAMS = {"efficient_vmamba_tiny": 6_493_660, "efficient_vmamba_small": 11_273_688,
                   "efficient_vmamba_base": 33_717_136}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry():
    for name in ALL_MODELS + [TEST_MODEL]:
        assert timm.is_model(name), name


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_param_counts(name, meta_model):
    model = meta_model(name)
    assert _count(model) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS + [TEST_MODEL])
def test_published_layout(name, meta_model):
    model = meta_model(name)
    # the published layout: EVSS blocks with the atrous (K = 4) scan in stages 0-1, inverted residuals after
    mixers = [m for m in model.modules() if isinstance(m, AtrousSS2D)]
    assert mixers and all(m.K == 4 and m.scan == get_scan("atrous") for m in mixers)
    assert all(n.startswith(("stages.0.", "stages.1.")) for n, m in model.named_modules() if isinstance(m, AtrousSS2D))


@pytest.mark.parametrize("size", [(10, 8), (7, 9)])
def test_atrous_mixer_is_one_ordered_scan_of_the_subgrids(size):
    """One op call over the atrous orders == EfficientVMamba's ES2D: the four stride-2 sub-grids cut out (offsets
    (0, 0), (1, 0), (0, 1), (1, 1); the second and fourth walked column-major), each scanned alone, written back."""
    from vssm.kernels import selective_scan_ref

    H, W = size
    torch.manual_seed(0)
    mixer = AtrousSS2D(8, d_state=4, atrous_padding=False).eval()
    x = torch.randn(2, H, W, 8)
    with torch.no_grad():
        y = mixer(x)
        u, z = mixer.in_proj(x).chunk(2, dim=-1)
        u = mixer.act(mixer.conv2d(u.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        Di, R, N = mixer.d_inner, mixer.dt_rank, mixer.d_state
        merged = torch.zeros(2, H, W, Di)
        for k, (r, c, column_major) in enumerate([(0, 0, False), (1, 0, True), (0, 1, False), (1, 1, True)]):
            sub = u[:, r::2, c::2]
            sub = sub.transpose(1, 2) if column_major else sub
            seq = sub.reshape(2, -1, Di)
            dt, Bs, Cs = torch.split(seq @ mixer.x_proj_weight[k].T, [R, N, N], dim=-1)
            yk = selective_scan_ref(seq, (dt @ mixer.dt_proj_weight[k].T)[:, :, None], -torch.exp(mixer.A_log[k:k + 1]),
                                    Bs[:, :, None], Cs[:, :, None], D=mixer.D[k:k + 1],
                                    delta_bias=mixer.dt_proj_bias[k:k + 1])
            yk = yk.reshape(sub.shape)
            merged[:, r::2, c::2] = yk.transpose(1, 2) if column_major else yk
        ref = mixer.out_proj(mixer.out_norm(merged) * mixer.act(z))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints


def _load_fixture():
    from safetensors import safe_open

    with safe_open(str(FIXTURES / "efficient_vmamba.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return json.loads(meta["config"]), sd, tensors


@pytest.mark.parametrize("wrap", ["state_dict", "model", None])
def test_parity_with_official_code(wrap):
    """Official EfficientVSSM (random weights) -> converted -> same logits (1e-4, fp32), at odd maps (the official
    zero-padded atrous scan: 11x13 and 6x7 in the SSM stages) and even ones."""
    cfg, sd, t = _load_fixture()
    model = EfficientVMamba(**cfg).eval()
    ckpt = {wrap: {"module.module." + k: v for k, v in sd.items()}} if wrap else sd
    model.load_state_dict(checkpoint_filter_fn(ckpt, model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(t["input"]), t["logits"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(model(t["input_even"]), t["logits_even"], atol=1e-4, rtol=1e-4)


def test_unpadded_atrous_scan_differs_only_on_odd_maps():
    cfg, sd, t = _load_fixture()
    model = EfficientVMamba(**cfg, atrous_padding=False).eval()
    model.load_state_dict(checkpoint_filter_fn(sd, model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(t["input_even"]), t["logits_even"], atol=1e-4, rtol=1e-4)
        assert not torch.allclose(model(t["input"]), t["logits"], atol=1e-5)


def test_wrong_checkpoint_names_keys_and_shapes():
    model = timm.create_model(TEST_MODEL, device="meta")
    other = timm.create_model("test_mlla").state_dict()
    with pytest.raises(CheckpointError, match=r"EfficientVMamba.*missing key\(s\): stem\.proj\.weight"):
        checkpoint_filter_fn(other, model)
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): stem\.conv1\.conv\.weight"):
        checkpoint_filter_fn(other, model)
    cfg, sd, _ = _load_fixture()
    with pytest.raises(CheckpointError,
                       match=r"conv_branch\.0\.weight: checkpoint \(8, 1, 3, 3\) vs model \(16, 1, 3, 3\)"):
        checkpoint_filter_fn(sd, model)  # an official checkpoint of another size
    sd = dict(sd)
    sd.pop("layers.0.blocks.0.op.A_logs")
    with pytest.raises(CheckpointError, match=r"missing key\(s\): stages\.0\.blocks\.0\.mixer\.A_log"):
        checkpoint_filter_fn(sd, EfficientVMamba(**cfg))


