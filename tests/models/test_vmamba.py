"""VMamba / LocalVMamba: timm's model contract (mirrors timm's tests/test_models.py), configs, scans, bad input.

Forward-heavy checks use the tiny ``test_*`` variants (and ``vmamba_micro``); every registered entrypoint is built
on the ``meta`` device for its configuration, parameter count and cfg checks (cheap).
"""
from __future__ import annotations

import pytest
import timm
import torch
from timm.optim import param_groups_weight_decay
from vssm.kernels import available_backends

import vssm  # noqa: F401
from vssm.convert import CheckpointMismatchError
from vssm.models.vmamba import checkpoint_filter_fn

ALL_MODELS = sorted(
    set(timm.list_models("vmamba*") + timm.list_models("vanilla_vmamba*") + timm.list_models("localvmamba*"))
)
TEST_MODELS = ["test_vmamba", "test_localvmamba"]
FAST_CPU = "cpu" in available_backends()

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
def test_official_param_counts(name):
    model = timm.create_model(name, device="meta")
    assert _count(model) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS + TEST_MODELS)
def test_default_cfg_meta(name):
    """Config consistency without a forward: cfg names exist, feature_info, no_weight_decay, group_matcher."""
    model = timm.create_model(name, device="meta")
    cfg = model.pretrained_cfg
    assert not cfg.get("url"), "no URL: official files are converted and loaded with pretrained_cfg_overlay"
    names = dict(model.named_modules())
    assert cfg["first_conv"] in names and isinstance(names[cfg["first_conv"]], torch.nn.Conv2d)
    assert cfg["classifier"] in names and names[cfg["classifier"]] is model.get_classifier()
    assert cfg["num_classes"] == model.num_classes == 1000
    assert [f["num_chs"] for f in model.feature_info][-1] == model.num_features
    params = dict(model.named_parameters())
    nwd = model.no_weight_decay()
    assert nwd and nwd <= set(params)
    assert {n.rsplit(".", 1)[-1] for n in nwd} == {"A_log", "D", "dt_proj_bias"}
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=nwd)
    decayed = {id(p) for p in groups[1]["params"]}
    assert not any(id(params[n]) in decayed for n in nwd)
    matcher = model.group_matcher()
    assert set(matcher) == {"stem", "blocks"}


@pytest.mark.parametrize("name", TEST_MODELS + ["vmamba_micro"])
def test_forward_and_grad_checkpointing(name):
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 1000)
        assert torch.isfinite(y).all()
        model.set_grad_checkpointing(True)
        y2 = model(x)
    torch.testing.assert_close(y, y2)


@pytest.mark.parametrize("name", TEST_MODELS)
def test_backward_every_param(name):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=42)
    model.train()
    y = model(torch.randn(2, 3, 64, 64))  # the last stage is 2x2: a 1x1 map would give A no gradient
    assert y.shape == (2, 42)
    y.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    # the SSM parameters really get signal
    for n, p in model.named_parameters():
        if n.endswith(("A_log", "dt_proj_bias", "x_proj_weight")):
            assert p.grad.abs().sum() > 0, n


@pytest.mark.parametrize("name", TEST_MODELS)
def test_default_cfg_forward(name):
    model = timm.create_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.ndim == 4 and feats.shape[-1] == model.num_features  # NHWC, unpooled
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.head_hidden_size)
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)
        model.reset_classifier(0, "")
        out = model(x)
        assert out.ndim == 4 and out.shape == feats.shape  # unpooled NHWC
        torch.testing.assert_close(out, feats)
        model.reset_classifier(7, "avg")
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize("name", TEST_MODELS)
def test_features_only(name):
    model = timm.create_model(name, features_only=True).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == len(model.feature_info.channels())
    for o, c, r in zip(outs, model.feature_info.channels(), model.feature_info.reduction()):
        assert o.shape[1] == c  # NCHW
        assert o.shape[2] == 64 // r and o.shape[3] == 96 // r
    sub = timm.create_model(name, features_only=True, out_indices=(1, 3)).eval()
    assert sub.feature_info.channels() == [model.feature_info.channels()[i] for i in (1, 3)]


@pytest.mark.parametrize("name", TEST_MODELS)
def test_forward_intermediates(name):
    model = timm.create_model(name).eval()
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
    assert len(model.stages) == 2 and model.num_classes == 0
    with torch.no_grad():
        pruned = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    torch.testing.assert_close(pruned[1], inter[1])


SIZES = [(1, 32, 32), (2, 113, 97), (1, 64, 48), (1, 40, 200)]
if FAST_CPU:
    SIZES += [(1, 224, 224), (1, 256, 256), (1, 512, 512)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", TEST_MODELS)
def test_any_input_size(name, size):
    b, h, w = size
    model = timm.create_model(name, num_classes=5).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
        feats = model.forward_intermediates(torch.randn(1, 3, h, w), intermediates_only=True)
    assert y.shape == (b, 5) and torch.isfinite(y).all()
    assert all(f.ndim == 4 for f in feats)


def test_in_chans_and_wrong_channels():
    model = timm.create_model("test_vmamba", in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"in_chans=1.*3 channels"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="in_chans=1"):
        model.forward_intermediates(torch.randn(1, 2, 32, 32))


def test_drop_path_and_dropouts():
    model = timm.create_model("test_vmamba", drop_path_rate=0.2, drop_rate=0.1)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for s in model.stages for b in s.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    model.train()
    y = model(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(y).all()


def test_device_dtype_kwargs():
    model = timm.create_model("test_vmamba", device="meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    model = timm.create_model("test_vmamba", dtype=torch.float64).eval()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


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
def test_every_registered_scan(scan):
    from vssm.scans import get_scan

    K = get_scan(scan).K
    ref = timm.create_model("test_vmamba", device="meta")
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


def test_localvmamba_scans_are_the_searched_ones():
    from vssm.models.vmamba import LOCALVMAMBA_SMALL_DIRECTIONS, LOCALVMAMBA_TINY_DIRECTIONS

    for name, dirs in (("localvmamba_tiny", LOCALVMAMBA_TINY_DIRECTIONS),
                       ("localvmamba_small", LOCALVMAMBA_SMALL_DIRECTIONS)):
        model = timm.create_model(name, device="meta")
        got = [tuple(b.mixer.scan.directions) for s in model.stages for b in s.blocks]
        assert got == [tuple(d) for d in dirs]
        assert all(b.mixer.path_attn is not None for s in model.stages for b in s.blocks)


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


def test_wrong_checkpoint_names_keys_and_shapes():
    small = timm.create_model("test_vmamba", device="meta")
    other = timm.create_model("test_localvmamba").state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch.*checkpoint \(.*\) vs model \("):
        checkpoint_filter_fn(other, small)
    sd = timm.create_model("test_vmamba").state_dict()
    sd.pop("stages.0.blocks.0.mixer.A_log")
    sd["stages.9.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): stages\.0\.blocks\.0\.mixer\.A_log"):
        checkpoint_filter_fn({"model": sd}, small)


def test_own_state_dict_roundtrip():
    model = timm.create_model("test_vmamba").eval()
    sd = checkpoint_filter_fn({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, model)
    fresh = timm.create_model("test_vmamba").eval()
    fresh.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))


@pytest.mark.parametrize("pool", ["avg", "max", "avgmax"])
def test_global_pool(pool):
    model = timm.create_model("test_vmamba", global_pool=pool, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    model = timm.create_model("test_vmamba", global_pool="", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).ndim == 4


def test_group_matcher_with_timm():
    from timm.models import group_parameters

    model = timm.create_model("test_vmamba", device="meta")
    groups = group_parameters(model, model.group_matcher(coarse=False))
    named = {n for names in groups.values() for n in names}
    assert named == {n for n, _ in model.named_parameters()}
    coarse = group_parameters(model, model.group_matcher(coarse=True))
    assert len(coarse) < len(groups)


def test_pretrained_file_with_new_head(tmp_path):
    from safetensors.torch import save_file

    src = timm.create_model("test_vmamba").eval()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = timm.create_model("test_vmamba", pretrained=True, num_classes=5,
                              pretrained_cfg_overlay=dict(file=str(path))).eval()
    for k, v in src.state_dict().items():
        if not k.startswith("head."):
            torch.testing.assert_close(model.state_dict()[k], v)
    assert model.get_classifier().out_features == 5
