"""Vim: parameter counts, the class-token head, pos-embed resampling, scans, the feature pyramid,
official-checkpoint conversion and parity, checkpoint errors.

timm's model contract (forward, backward, features, cfg, options, own checkpoints) is checked for every family in
test_contract.py. Forward checks use the tiny ``test_vim`` (embed 32, depth 4, patch 8); the registered sizes are
built on the ``meta`` device.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
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
def test_official_param_counts(name, meta_model):
    model = meta_model(name)
    assert _count(model) == OFFICIAL_PARAMS[name]
    assert model.pyramid is None  # the pyramid exists only for dense use


@pytest.mark.parametrize("name", ALL_MODELS + ["test_vim"])
def test_hub_source_and_position_parameters_without_decay(name, meta_model):
    model = meta_model(name)
    if name != "test_vim":
        assert model.pretrained_cfg["hf_hub_id"].startswith("hustvl/Vim-")
    assert {"pos_embed", "cls_token"} <= model.no_weight_decay()


def test_head_reads_the_middle_class_token_or_the_patch_mean():
    model = timm.create_model("test_vim").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 16 + 1, model.num_features)  # NLC: 4x4 patches + the class token
        pre = model.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pre, feats[:, 8])  # the middle class token
        model.reset_classifier(7, "avg")
        patches = torch.cat([feats[:, :8], feats[:, 9:]], 1).mean(1)
        torch.testing.assert_close(model.forward_head(feats, pre_logits=True), patches)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(0, "max")


def test_features_only_pyramid_strides():
    model = timm.create_model("test_vim", features_only=True, out_indices=(0, 1, 2, 3), device="meta")
    assert model.feature_info.reduction() == [2, 4, 8, 16]  # patch 8: strides 2-16 (patch 16: 4-32)
    sub = timm.create_model("test_vim", features_only=True, out_indices=(1, 3), device="meta")
    assert sub.feature_info.reduction() == [4, 16] and sub.feature_info.channels() == [32, 32]


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
# dtype


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
    with pytest.raises(CheckpointError, match=r"shape mismatch.*checkpoint \(.*\) vs model \("):
        checkpoint_filter_fn(official, model)
    other = timm.create_model("test_mambavision", device="meta").state_dict()
    msg = r"does not fit test_vim \(Vim\).*missing key\(s\): .*unexpected key\(s\): "
    with pytest.raises(CheckpointError, match=msg):
        checkpoint_filter_fn(other, model)
    sd = timm.create_model("test_vim").state_dict()
    sd.pop("layers.0.mixer.A_log")
    with pytest.raises(CheckpointError, match=r"missing key\(s\): layers\.0\.mixer\.A_log"):
        checkpoint_filter_fn({"model": sd}, model)
    # a per-direction key missing from an official checkpoint is named
    cfg, official, _, _ = _load_fixture("parity_vim_even")
    official.pop("layers.1.mixer.x_proj_b.weight")
    with pytest.raises(CheckpointError, match=r"layers\.1\.mixer\.x_proj_weight"):
        checkpoint_filter_fn(official, Vim(**cfg))


def test_official_checkpoint_needs_two_paths():
    cfg, official, _, _ = _load_fixture("parity_vim_even")
    model = Vim(**dict(cfg, scan="cross"))
    with pytest.raises(CheckpointError, match=r"A_log: checkpoint \(2, 32, 4\) vs model \(4, 32, 4\)"):
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
