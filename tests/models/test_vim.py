"""Vim: timm's model contract (mirrors timm's tests/test_models.py), any input size, pos-embed resampling, scans,
the feature pyramid, official-checkpoint conversion and parity, bad input.

Forward-heavy checks use the tiny ``test_vim`` (embed 32, depth 4, patch 8); the registered sizes are built on the
``meta`` device for their parameter counts and cfg checks.
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
from vssm.models.vim import Vim, checkpoint_filter_fn, resample_vim_pos_embed, vim_token_orders

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MODELS = sorted(timm.list_models("vim_*"))
# Measured from the official code (vim_*_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2,
# num_classes=1000).
OFFICIAL_PARAMS = {"vim_tiny": 7_148_008, "vim_small": 25_796_584, "vim_base": 97_598_440}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry():
    assert set(OFFICIAL_PARAMS) <= set(ALL_MODELS) and timm.is_model("test_vim")


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_param_counts(name):
    model = timm.create_model(name, device="meta")
    assert _count(model) == OFFICIAL_PARAMS[name]
    assert model.pyramid is None  # the pyramid exists only for dense use


@pytest.mark.parametrize("name", ALL_MODELS + ["test_vim"])
def test_default_cfg_meta(name):
    model = timm.create_model(name, device="meta")
    cfg = model.pretrained_cfg
    assert not cfg.get("url"), "no URL: official files are converted and loaded with pretrained_cfg_overlay"
    if name != "test_vim":
        assert cfg["origin_url"].startswith("https://huggingface.co/hustvl/Vim-")
    names = dict(model.named_modules())
    assert isinstance(names[cfg["first_conv"]], torch.nn.Conv2d)
    assert names[cfg["classifier"]] is model.get_classifier()
    assert cfg["num_classes"] == model.num_classes == 1000
    assert model.feature_info[-1]["num_chs"] == model.num_features == model.head_hidden_size
    params = dict(model.named_parameters())
    nwd = model.no_weight_decay()
    assert {"pos_embed", "cls_token"} <= nwd <= set(params)
    assert {n.rsplit(".", 1)[-1] for n in nwd} == {"pos_embed", "cls_token", "A_log", "D", "dt_proj_bias"}
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=nwd)
    decayed = {id(p) for p in groups[1]["params"]}
    assert not any(id(params[n]) in decayed for n in nwd)
    assert set(model.group_matcher()) == {"stem", "blocks"}


def test_forward_and_grad_checkpointing():
    torch.manual_seed(0)
    model = timm.create_model("test_vim").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
        model.set_grad_checkpointing(True)
        y2 = model(x)
    assert y.shape == (2, 1000) and torch.isfinite(y).all()
    torch.testing.assert_close(y, y2)


def test_backward_every_param():
    torch.manual_seed(0)
    model = timm.create_model("test_vim", num_classes=42).train()
    model.set_grad_checkpointing(True)
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 42)
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    for n, p in model.named_parameters():
        if n.endswith(("A_log", "dt_proj_bias", "x_proj_weight", "conv_weight")):
            assert (p.grad.abs().sum((1, 2) if p.ndim == 3 else 1) > 0).all(), n  # both directions get signal


def test_default_cfg_forward():
    model = timm.create_model("test_vim").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 16 + 1, model.num_features)  # NLC: 4x4 patches + the class token
        pre = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pre, feats[:, 8])  # the middle class token
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)
        model.reset_classifier(0, "")
        torch.testing.assert_close(model(x), feats)  # unpooled
        model.reset_classifier(7, "avg")
        out = model(x)
        assert out.shape == (2, 7)
        patches = torch.cat([feats[:, :8], feats[:, 9:]], 1).mean(1)
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), patches)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(0, "max")


@pytest.mark.parametrize("size", [(64, 48), (113, 97)], ids=lambda s: "x".join(map(str, s)))
def test_features_only_pyramid(size):
    h, w = size
    model = timm.create_model("test_vim", features_only=True, out_indices=(0, 1, 2, 3)).eval()
    assert model.feature_info.reduction() == [2, 4, 8, 16]  # patch 8: strides 2-16 (patch 16: 4-32)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, h, w))
    assert len(outs) == 4
    gh, gw = -(-h // 8), -(-w // 8)  # the image is padded to a multiple of the patch
    for o, c, s in zip(outs, model.feature_info.channels(), (4, 2, 1, 0.5)):
        assert o.shape[:2] == (1, c)
        assert o.shape[2:] == (int(-(-gh * s // 1)), int(-(-gw * s // 1)))
    sub = timm.create_model("test_vim", features_only=True, out_indices=(1, 3)).eval()
    assert sub.feature_info.reduction() == [4, 16]
    with torch.no_grad():
        assert [o.shape[1] for o in sub(torch.randn(1, 3, 32, 32))] == [32, 32]


def test_features_only_full_size_strides():
    model = timm.create_model("vim_tiny", features_only=True, out_indices=(0, 1, 2, 3), device="meta")
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    assert model.feature_info.channels() == [192] * 4
    assert model.model.pyramid_layers == [5, 11, 17, 23]


def test_pyramid_backward_every_param():
    model = timm.create_model("test_vim", features_only=True).train()
    outs = model(torch.randn(2, 3, 32, 32))
    sum(o.float().pow(2).mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_forward_intermediates():
    model = timm.create_model("test_vim").eval()
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert len(inter) == 4 and all(t.shape == (1, 32, 4, 5) for t in inter)
        only = model.forward_intermediates(x, indices=2, intermediates_only=True, stop_early=True)
        assert len(only) == 2
        torch.testing.assert_close(only[-1], inter[-1])
        nhwc = model.forward_intermediates(x, indices=[0], output_fmt="NHWC", intermediates_only=True)
        torch.testing.assert_close(nhwc[0].permute(0, 3, 1, 2), inter[0])
        normed = model.forward_intermediates(x, norm=True, intermediates_only=True)
        tokens = torch.cat([final[:, :10], final[:, 11:]], 1)  # 4x5 patches, class token at 10
        torch.testing.assert_close(normed[-1], tokens.reshape(1, 4, 5, 32).permute(0, 3, 1, 2))
    model.prune_intermediate_layers(indices=[1], prune_norm=True)
    assert len(model.layers) == 2 and isinstance(model.head, torch.nn.Identity)


def test_pyramid_forward_intermediates_and_prune():
    model = timm.create_model("test_vim", pyramid=True, pyramid_layers=(0, 1, 2, 3)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        _, inter = model.forward_intermediates(x)
        assert [tuple(t.shape[2:]) for t in inter] == [(16, 16), (8, 8), (4, 4), (2, 2)]
        two = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True, stop_early=True)
        torch.testing.assert_close(two[0], inter[1])
        torch.testing.assert_close(two[1], inter[2])
    model.prune_intermediate_layers(indices=[1, 2])
    assert len(model.layers) == 3
    assert isinstance(model.pyramid.levels[0], torch.nn.Identity) and isinstance(model.pyramid.levels[3],
                                                                                  torch.nn.Identity)


SIZES = [(1, 32, 32), (2, 113, 97), (1, 40, 200), (1, 8, 8), (1, 16, 24)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_any_input_size(size):
    b, h, w = size
    model = timm.create_model("test_vim", num_classes=5).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
        feats = model.forward_intermediates(torch.randn(1, 3, h, w), indices=1, intermediates_only=True)
    assert y.shape == (b, 5) and torch.isfinite(y).all()
    assert feats[0].shape == (1, 32, -(-h // 8), -(-w // 8))


# ----------------------------------------------------------------------------------------------------------------
# Position embedding


def test_pos_embed_resample_keeps_class_entry():
    pe = torch.randn(1, 4 * 4 + 1, 8)
    out = resample_vim_pos_embed(pe, (6, 10), (4, 4))
    assert out.shape == (1, 61, 8)
    torch.testing.assert_close(out[:, 30], pe[:, 8])  # the class token's entry moves to the new middle
    same = resample_vim_pos_embed(pe, (4, 4))
    torch.testing.assert_close(same, pe)
    with pytest.raises(ValueError, match="not a square grid"):
        resample_vim_pos_embed(torch.randn(1, 13, 8), (4, 4))


def test_checkpoint_at_another_size():
    """A checkpoint made at 32x32 (4x4 grid) loads into a model made for 64x64 (8x8, as 224 -> 448) and gives what the
    32x32 model gives at 64x64 (where it resamples at run time)."""
    torch.manual_seed(0)
    small = timm.create_model("test_vim").eval()
    large = timm.create_model("test_vim", img_size=64).eval()
    sd = checkpoint_filter_fn({"model": small.state_dict()}, large)
    assert sd["pos_embed"].shape == (1, 65, 32)
    large.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(large(x), small(x))
    # official layout too: the 4x4 (32x32) parity checkpoint into a 6x6 (48x48) model
    cfg, official, _, _ = _load_fixture("parity_vim_even")
    model = Vim(**dict(cfg, img_size=48)).eval()
    model.load_state_dict(checkpoint_filter_fn({"model": official}, model), strict=True)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 48, 48))).all()


# ----------------------------------------------------------------------------------------------------------------
# Scans


class _Renamed:
    """A scan with another name (so the general class-token rule is used instead of the bidirectional shortcut)."""

    def __init__(self, scan):
        self.scan, self.K, self.name = scan, scan.K, "renamed"

    def orders(self, H, W, device=None):
        return self.scan.orders(H, W, device)


@pytest.mark.parametrize("hw", [(1, 2), (2, 2), (5, 5), (3, 4), (7, 6)])
def test_class_token_rule_is_vim_for_bidirectional(hw):
    from vssm.scans import get_scan

    H, W = hw
    bidi = get_scan("bidirectional")
    order, inverse = vim_token_orders(bidi, H, W, H * W // 2)
    L = H * W + 1
    torch.testing.assert_close(order, torch.stack([torch.arange(L), torch.arange(L).flip(0)]))
    general, _ = vim_token_orders(_Renamed(bidi), H, W, H * W // 2)
    torch.testing.assert_close(general, order)
    torch.testing.assert_close(inverse[1], torch.arange(L).flip(0))


def _scan_names():
    from vssm.scans import get_scan, list_scans

    names = []
    for n in list_scans():
        try:
            get_scan(n)
        except (ValueError, TypeError):
            continue
        names.append(n)
    return names


@pytest.mark.parametrize("scan", _scan_names())
def test_every_registered_scan(scan):
    from vssm.scans import get_scan

    K = get_scan(scan).K
    model = timm.create_model("test_vim", scan=scan, depth=1, num_classes=3).eval()
    mixer = model.layers[0].mixer
    assert mixer.K == K
    for n in ("conv_weight", "conv_bias", "x_proj_weight", "dt_proj_weight", "dt_proj_bias", "A_log", "D"):
        assert getattr(mixer, n).shape[0] == K, n
    order, inverse = model._token_orders(model.scans[0], 5, 4, torch.device("cpu"))
    for k in range(K):  # every path visits the class token; skips only at the end of a path
        path = order[k]
        valid = path[path >= 0]
        assert (path[: len(valid)] >= 0).all() and 10 in valid.tolist()
        assert (inverse[k][valid] == torch.arange(len(valid))).all()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 40, 32))
    assert y.shape == (1, 3) and torch.isfinite(y).all()


def test_scan_per_layer():
    model = timm.create_model("test_vim", scan=["bidirectional", "cross", "raster", "bidirectional"], device="meta")
    assert [b.mixer.K for b in model.layers] == [2, 4, 1, 2]


def test_unknown_scan_raises_the_scans_error():
    with pytest.raises(ValueError, match="unknown scan"):
        timm.create_model("test_vim", scan="bidirectionl")


# ----------------------------------------------------------------------------------------------------------------
# Bad input, options


def test_in_chans_and_wrong_channels():
    model = timm.create_model("test_vim", in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"in_chans=1.*3 channels"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="in_chans=1"):
        model.forward_intermediates(torch.randn(1, 2, 32, 32))


def test_drop_path_and_dropouts():
    model = timm.create_model("test_vim", drop_path_rate=0.2, drop_rate=0.1, pos_drop_rate=0.1)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in model.layers]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    y = model.train()(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(y).all()


def test_device_dtype_kwargs():
    model = timm.create_model("test_vim", device="meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    model = timm.create_model("test_vim", dtype=torch.float64).eval()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_bfloat16_keeps_fp32_residual():
    model = timm.create_model("test_vim", dtype=torch.bfloat16).eval()
    with torch.no_grad():
        x, H, W = model._embed(torch.randn(1, 3, 32, 32, dtype=torch.bfloat16))
        assert x.dtype == torch.float32
        y = model(torch.randn(1, 3, 32, 32, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


def _load_fixture(name):
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return json.loads(meta["config"]), sd, tensors["input"], tensors["logits"]


@pytest.mark.parametrize("name", ["parity_vim_even", "parity_vim_odd"])
def test_parity_with_official(name):
    cfg, official, x, logits = _load_fixture(name)
    assert "layers.0.mixer.A_b_log" in official and "layers.0.mixer.conv1d_b.weight" in official
    model = Vim(**cfg).eval()
    sd = checkpoint_filter_fn({"model": {"module." + k: v for k, v in official.items()}}, model)
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), logits, atol=1e-4, rtol=1e-4)


def test_wrong_checkpoint_names_keys_and_shapes():
    model = timm.create_model("test_vim", device="meta")
    _, official, _, _ = _load_fixture("parity_vim_even")  # embed 16 vs 32
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch.*checkpoint \(.*\) vs model \("):
        checkpoint_filter_fn(official, model)
    other = timm.create_model("test_mambavision", device="meta").state_dict()
    msg = r"does not fit test_vim \(Vim\).*missing key\(s\): .*unexpected key\(s\): "
    with pytest.raises(CheckpointMismatchError, match=msg):
        checkpoint_filter_fn(other, model)
    sd = timm.create_model("test_vim").state_dict()
    sd.pop("layers.0.mixer.A_log")
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): layers\.0\.mixer\.A_log"):
        checkpoint_filter_fn({"model": sd}, model)
    # a per-direction key missing from an official checkpoint is named
    cfg, official, _, _ = _load_fixture("parity_vim_even")
    official.pop("layers.1.mixer.x_proj_b.weight")
    with pytest.raises(CheckpointMismatchError, match=r"layers\.1\.mixer\.x_proj_weight"):
        checkpoint_filter_fn(official, Vim(**cfg))


def test_official_checkpoint_needs_two_paths():
    cfg, official, _, _ = _load_fixture("parity_vim_even")
    model = Vim(**dict(cfg, scan="cross"))
    with pytest.raises(CheckpointMismatchError, match=r"A_log: checkpoint \(2, 32, 4\) vs model \(4, 32, 4\)"):
        checkpoint_filter_fn(official, model)


def test_own_state_dict_roundtrip_and_pyramid_fill():
    model = timm.create_model("test_vim").eval()
    dense = timm.create_model("test_vim", pyramid=True).eval()
    sd = checkpoint_filter_fn({"state_dict": model.state_dict()}, dense)  # no pyramid weights: the model's own
    dense.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dense(x), model(x))


def test_ema_weights_on_request():
    model = timm.create_model("test_vim").eval()
    plain = model.state_dict()
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in plain.items()}
    got = checkpoint_filter_fn({"model": plain, "model_ema": ema}, model)
    torch.testing.assert_close(got["norm.weight"], plain["norm.weight"])
    got = checkpoint_filter_fn({"model": plain, "model_ema": ema}, model, use_ema=True)
    torch.testing.assert_close(got["norm.weight"], ema["norm.weight"])


def test_forward_backward_paths_need_no_gather():
    """The direct forwards / backwards conv (Vim's two paths) equals the general gather-along-the-path conv."""
    from vssm.layers.mamba_mixer import PathMamba, path_inverse

    torch.manual_seed(0)
    mixer = PathMamba(16, num_paths=2, d_state=4).double()
    L = 13
    order = torch.stack([torch.arange(L), torch.arange(L).flip(0)])
    inverse = path_inverse(order, L)
    x = torch.randn(2, L, 16, dtype=torch.float64, requires_grad=True)
    fast = mixer(x, order, inverse)
    (g_fast,) = torch.autograd.grad(fast.sum(), x)
    mixer.fast_paths = False
    general = mixer(x, order, inverse)
    (g_general,) = torch.autograd.grad(general.sum(), x)
    torch.testing.assert_close(fast, general)
    torch.testing.assert_close(g_fast, g_general)
