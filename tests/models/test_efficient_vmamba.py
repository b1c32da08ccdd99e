"""EfficientVMamba: timm's model contract (mirrors timm's tests/test_models.py), the atrous scan, any input size,
parameter counts, parity with the official code, bad input.

Forward-heavy checks use the tiny ``test_efficient_vmamba``; the published sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import timm
import torch
from timm.optim import param_groups_weight_decay
from vssm.scans import get_scan

import vssm  # noqa: F401
from vssm.convert import CheckpointMismatchError
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
    assert cfg["classifier"] in names and names[cfg["classifier"]] is model.get_classifier()
    assert cfg["num_classes"] == model.num_classes == 1000
    assert [f["num_chs"] for f in model.feature_info][-1] == model.num_features
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    params = dict(model.named_parameters())
    nwd = model.no_weight_decay()
    assert nwd and nwd <= set(params)
    assert {n.rsplit(".", 1)[-1] for n in nwd} == {"A_log", "D", "dt_proj_bias"}
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=nwd)
    decayed = {id(p) for p in groups[1]["params"]}
    assert not any(id(params[n]) in decayed for n in nwd)
    assert set(model.group_matcher()) == {"stem", "blocks"}
    # the published layout: EVSS blocks with the atrous (K = 4) scan in stages 0-1, inverted residuals after
    mixers = [m for m in model.modules() if isinstance(m, AtrousSS2D)]
    assert mixers and all(m.K == 4 and m.scan == get_scan("atrous") for m in mixers)
    assert all(n.startswith(("stages.0.", "stages.1.")) for n, m in model.named_modules() if isinstance(m, AtrousSS2D))


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


def test_backward_every_param():
    torch.manual_seed(0)
    model = timm.create_model(TEST_MODEL, num_classes=42).train()
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 42)
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    for n, p in model.named_parameters():
        if n.endswith(("A_log", "dt_proj_bias", "x_proj_weight")):
            assert p.grad.abs().sum() > 0, n


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


@pytest.mark.parametrize("size", [(2, 97, 113), (1, 40, 72), (1, 35, 29)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("padding", [True, False])
def test_any_input_size(size, padding):
    b, h, w = size
    model = timm.create_model(TEST_MODEL, num_classes=5, atrous_padding=padding).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
        feats = model.forward_intermediates(torch.randn(1, 3, h, w), intermediates_only=True)
    assert y.shape == (b, 5) and torch.isfinite(y).all()
    sizes = [(h // 4, w // 4)]
    for _ in range(3):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    assert [tuple(f.shape[2:]) for f in feats] == sizes


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


def test_in_chans_and_wrong_channels():
    model = timm.create_model(TEST_MODEL, in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"in_chans=1.*3 channels"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="in_chans=1"):
        model.forward_intermediates(torch.randn(1, 2, 32, 32))


def test_drop_path_and_dropouts():
    model = timm.create_model(TEST_MODEL, drop_path_rate=0.2, drop_rate=0.1)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for s in model.stages for b in s.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2) and len(rates) == 5
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
    with pytest.raises(CheckpointMismatchError, match=r"EfficientVMamba.*missing key\(s\): stem\.proj\.weight"):
        checkpoint_filter_fn(other, model)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected key\(s\): stem\.conv1\.conv\.weight"):
        checkpoint_filter_fn(other, model)
    cfg, sd, _ = _load_fixture()
    with pytest.raises(CheckpointMismatchError,
                       match=r"conv_branch\.0\.weight: checkpoint \(8, 1, 3, 3\) vs model \(16, 1, 3, 3\)"):
        checkpoint_filter_fn(sd, model)  # an official checkpoint of another size
    sd = dict(sd)
    sd.pop("layers.0.blocks.0.op.A_logs")
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): stages\.0\.blocks\.0\.mixer\.A_log"):
        checkpoint_filter_fn(sd, EfficientVMamba(**cfg))


def test_own_state_dict_roundtrip():
    model = timm.create_model(TEST_MODEL).eval()
    sd = checkpoint_filter_fn({"model": {"module." + k: v for k, v in model.state_dict().items()}}, model)
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
