"""MambaVision: timm's model contract (mirrors timm's tests/test_models.py), any input size (windows that do not divide
the map), scans, official-checkpoint conversion and parity, bad input.

Forward-heavy checks use the tiny ``test_mambavision``; the registered sizes are built on the ``meta`` device for
their parameter counts and cfg checks.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from timm.optim import param_groups_weight_decay

import vssm  # noqa: F401
from vssm.convert import CheckpointMismatchError
from vssm.layers.attention import window_partition, window_reverse
from vssm.models.mambavision import MambaVision, checkpoint_filter_fn

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MODELS = sorted(timm.list_models("mambavision_*"))
# Measured from the official code (mamba_vision_T / T2 / S / B / L / L2, num_classes=1000).
OFFICIAL_PARAMS = {
    "mambavision_tiny": 31_794_248,
    "mambavision_tiny2": 35_104_008,
    "mambavision_small": 50_140_584,
    "mambavision_base": 97_685_288,
    "mambavision_large": 227_961_048,
    "mambavision_large2": 241_554_824,
    "mambavision_large2_512": 241_554_824,  # window sizes are not parameters
}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_param_counts(name):
    assert _count(timm.create_model(name, device="meta")) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS + ["test_mambavision"])
def test_default_cfg_meta(name):
    model = timm.create_model(name, device="meta")
    cfg = model.pretrained_cfg
    assert not cfg.get("url"), "no URL: official files are converted and loaded with pretrained_cfg_overlay"
    if name != "test_mambavision":
        assert cfg["origin_url"].startswith("https://huggingface.co/nvidia/MambaVision-")
    names = dict(model.named_modules())
    assert isinstance(names[cfg["first_conv"]], torch.nn.Conv2d)
    assert names[cfg["classifier"]] is model.get_classifier()
    assert cfg["num_classes"] == model.num_classes == 1000
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16, 32]
    assert model.feature_info[-1]["num_chs"] == model.num_features
    params = dict(model.named_parameters())
    nwd = model.no_weight_decay()
    assert nwd <= set(params) and {n.rsplit(".", 1)[-1] for n in nwd} == {"A_log", "D", "dt_proj_bias"}
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=nwd)
    decayed = {id(p) for p in groups[1]["params"]}
    assert not any(id(params[n]) in decayed for n in nwd)
    assert set(model.group_matcher()) == {"stem", "blocks"}


def test_published_block_layout():
    model = timm.create_model("mambavision_tiny2", device="meta")  # stage 3: 11 blocks -> 6 Mamba, 5 attention
    kinds = [[type(b.mixer).__name__ for b in s.blocks] for s in model.stages[2:]]
    assert kinds[0] == ["MambaVisionMixer"] * 6 + ["Attention"] * 5
    assert kinds[1] == ["MambaVisionMixer"] * 2 + ["Attention"] * 2
    assert [s.window_size for s in model.stages[2:]] == [14, 7]
    mixer = model.stages[2].blocks[0].mixer
    assert (mixer.d_state, mixer.d_inner, mixer.conv1d_x.kernel_size, mixer.conv1d_x.bias) == (8, 320, (3,), None)
    base = timm.create_model("mambavision_base", device="meta")
    assert base.stages[3].blocks[0].ls1.gamma.shape == (1024,) and base.stages[0].blocks[0].gamma is None


def test_forward_and_grad_checkpointing():
    torch.manual_seed(0)
    model = timm.create_model("test_mambavision").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = model(x)
        model.set_grad_checkpointing(True)
        y2 = model(x)
    assert y.shape == (2, 1000) and torch.isfinite(y).all()
    torch.testing.assert_close(y, y2)


def test_backward_every_param():
    torch.manual_seed(0)
    model = timm.create_model("test_mambavision", num_classes=42, layer_scale=None).train()
    model.set_grad_checkpointing(True)
    y = model(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 42)
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    for n, p in model.named_parameters():
        if n.endswith(("A_log", "dt_proj_bias", "x_proj_weight")):
            assert p.grad.abs().sum() > 0, n


def test_default_cfg_forward():
    model = timm.create_model("test_mambavision").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, model.num_features, 2, 2)  # NCHW, unpooled
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.head_hidden_size)
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)
        model.reset_classifier(0, "")
        torch.testing.assert_close(model(x), feats)
        model.reset_classifier(7, "avg")
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize("size", [(64, 48), (113, 97)], ids=lambda s: "x".join(map(str, s)))
def test_features_only(size):
    h, w = size
    model = timm.create_model("test_mambavision", features_only=True, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, h, w))
    assert len(outs) == 4
    for o, c, r in zip(outs, model.feature_info.channels(), model.feature_info.reduction()):
        assert o.shape[:2] == (1, c)
        assert o.shape[2:] == (-(-h // r), -(-w // r))  # stride-2 convs round up
    sub = timm.create_model("test_mambavision", features_only=True, out_indices=(1, 3)).eval()
    assert sub.feature_info.channels() == [32, 64]


def test_forward_intermediates():
    model = timm.create_model("test_mambavision").eval()
    x = torch.randn(1, 3, 64, 64)
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
        torch.testing.assert_close(normed[-1], final)
    assert model.prune_intermediate_layers(indices=[0, 1], prune_norm=True) == [0, 1]
    assert len(model.stages) == 2 and isinstance(model.norm, torch.nn.Identity)


@pytest.mark.parametrize("size", [(2, 113, 97), (1, 40, 200), (1, 32, 32)], ids=lambda s: "x".join(map(str, s)))
def test_any_input_size(size):
    b, h, w = size
    model = timm.create_model("test_mambavision", num_classes=5, window_size=(2, 2, 3, 2)).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
    assert y.shape == (b, 5) and torch.isfinite(y).all()


def test_windows_pad_and_crop():
    x = torch.randn(2, 5, 7, 3)
    windows, padded = window_partition(x, 3)
    assert padded == (6, 9) and windows.shape == (2 * 2 * 3, 9, 3)
    assert windows[0, :3].equal(x[0, 0, :3]) and windows[0, 3:6].equal(x[0, 1, :3])  # raster inside a window
    assert windows[2, 2].abs().sum() == 0  # the padding column of the last window of the first row
    torch.testing.assert_close(window_reverse(windows, 3, padded, (5, 7)), x)


def test_padding_tokens_take_part_as_in_the_official_code():
    """A window larger than the map pads it, and the zero padding tokens take part in the mixing (as in the official
    code, which the parity fixture with padded stages pins down); a window that fits the map adds no padding."""
    torch.manual_seed(0)
    model = timm.create_model("test_mambavision", window_size=(2, 2, 4, 2), num_classes=3).eval()
    bigger = timm.create_model("test_mambavision", window_size=(2, 2, 4, 2), num_classes=3).eval()
    bigger.load_state_dict(model.state_dict())
    for s in bigger.stages[2:]:
        s.window_size = 8  # pads 4x4 -> 8x8: the padding tokens now take part, the result changes
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(model(x), bigger(x))
        for s in bigger.stages[2:]:
            s.window_size = 4 if s is bigger.stages[2] else 2
        torch.testing.assert_close(model(x), bigger(x))


# ----------------------------------------------------------------------------------------------------------------
# Scans


@pytest.mark.parametrize("scan", ["raster", "bidirectional", "hilbert"])
def test_scan_plugin(scan):
    from vssm.scans import get_scan

    K = get_scan(scan).K
    model = timm.create_model("test_mambavision", scan=scan, num_classes=3).eval()
    mixer = model.stages[2].blocks[0].mixer
    assert mixer.x_proj_weight.shape[0] == mixer.A_log.shape[0] == K
    with torch.no_grad():
        y = model(torch.randn(1, 3, 48, 40))
    assert y.shape == (1, 3) and torch.isfinite(y).all()


# ----------------------------------------------------------------------------------------------------------------
# Bad input, options


def test_in_chans_and_wrong_channels():
    model = timm.create_model("test_mambavision", in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"in_chans=1.*3 channels"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="in_chans=1"):
        model.forward_intermediates(torch.randn(1, 4, 32, 32))


def test_drop_path_and_device_dtype():
    model = timm.create_model("test_mambavision", drop_path_rate=0.2, drop_rate=0.1)
    rates = [getattr(b, "drop_path", getattr(b, "drop_path1", None)) for s in model.stages for b in s.blocks]
    probs = [getattr(r, "drop_prob", 0.0) for r in rates]
    assert probs[0] == 0.0 and probs[-1] == pytest.approx(0.2)
    assert torch.isfinite(model.train()(torch.randn(2, 3, 32, 32))).all()
    meta = timm.create_model("test_mambavision", device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    model = timm.create_model("test_mambavision", dtype=torch.float64).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


def _load_fixture(name):
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return json.loads(meta["config"]), sd, tensors["input"], tensors["logits"]


@pytest.mark.parametrize("name, wrap", [
    ("parity_mambavision_t", "state_dict"),  # timm training checkpoint (.pth.tar)
    ("parity_mambavision_b_pad", "module"),  # DDP prefixes
    ("parity_mambavision_b_pad", "hf"),  # the Hugging Face port's 'model.' prefix
])
def test_parity_with_official(name, wrap):
    cfg, official, x, logits = _load_fixture(name)
    assert "levels.2.blocks.0.mixer.x_proj.weight" in official and "patch_embed.conv_down.0.weight" in official
    if wrap == "state_dict":
        ckpt = {"state_dict": official, "epoch": 3, "arch": "mamba_vision_T"}
    elif wrap == "module":
        ckpt = {"model": {"module." + k: v for k, v in official.items()}}
    else:
        ckpt = {"model." + k: v for k, v in official.items()}
    model = MambaVision(**cfg).eval()
    model.load_state_dict(checkpoint_filter_fn(ckpt, model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), logits, atol=1e-4, rtol=1e-4)


def test_wrong_checkpoint_names_keys_and_shapes():
    model = timm.create_model("test_mambavision", device="meta")
    _, official, _, _ = _load_fixture("parity_mambavision_t")
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch.*checkpoint \(.*\) vs model \("):
        checkpoint_filter_fn(official, model)
    vim = timm.create_model("test_vim", device="meta").state_dict()
    msg = r"does not fit test_mambavision \(MambaVision\).*missing key\(s\): stem\..*unexpected key\(s\): "
    with pytest.raises(CheckpointMismatchError, match=msg):
        checkpoint_filter_fn({"model": vim}, model)
    sd = timm.create_model("test_mambavision").state_dict()
    sd.pop("stages.2.blocks.0.mixer.A_log")
    sd["stages.9.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): stages\.2\.blocks\.0\.mixer\.A_log"):
        checkpoint_filter_fn({"state_dict": sd}, model)


def test_own_state_dict_roundtrip_and_ema():
    model = timm.create_model("test_mambavision").eval()
    sd = model.state_dict()
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}
    got = checkpoint_filter_fn({"state_dict": sd, "state_dict_ema": ema}, model)
    fresh = timm.create_model("test_mambavision").eval()
    fresh.load_state_dict(got, strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    got = checkpoint_filter_fn({"state_dict": sd, "state_dict_ema": ema}, model, use_ema=True)
    torch.testing.assert_close(got["norm.weight"], ema["norm.weight"])
