"""MSVMamba: timm's model contract (mirrors timm's tests/test_models.py), the multi-scale scan through one op call
(with the official chained down-sampled paths), any input size, parameter counts, parity with the official code,
bad input.

Forward-heavy checks use the tiny ``test_msvmamba``; the published sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import timm
import torch
from timm.optim import param_groups_weight_decay
from vssm.kernels import selective_scan_ref
from vssm.scans.multiscale import MultiScaleScan

import vssm  # noqa: F401
from vssm.convert import CheckpointMismatchError
from vssm.models.msvmamba import MSVMamba, MultiScaleSS2D, chained_state_correction, checkpoint_filter_fn

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MODELS = ["msvmamba_nano", "msvmamba_micro", "msvmamba_tiny"]
TEST_MODEL = "test_msvmamba"

# Measured from the official code (num_classes=1000).
OFFICIAL_PARAMS = {"msvmamba_nano": 6_864_136, "msvmamba_micro": 11_879_272, "msvmamba_tiny": 33_046_312}


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
    # every block: the multi-scale mixer, 1 full-resolution + 3 down-sampled paths, two parameter sets, d_state 1
    mixers = [m for m in model.modules() if isinstance(m, MultiScaleSS2D)]
    assert len(mixers) == len([b for s in model.stages for b in s.blocks])
    assert all(m.K == 4 and m.x_proj_weight.shape[0] == 2 and m.d_state == 1 for m in mixers)


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


@pytest.mark.parametrize("size,chain", [((2, 97, 113), True), ((1, 40, 72), True), ((1, 35, 29), False)],
                         ids=["2x97x113", "1x40x72", "1x35x29-unchained"])
def test_any_input_size(size, chain):
    b, h, w = size
    model = timm.create_model(TEST_MODEL, num_classes=5, chain_low_paths=chain).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
        feats = model.forward_intermediates(torch.randn(1, 3, h, w), intermediates_only=True)
    assert y.shape == (b, 5) and torch.isfinite(y).all()
    sizes = [(h // 4, w // 4)]
    for _ in range(3):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    assert [tuple(f.shape[2:]) for f in feats] == sizes


def _scan_ref(u, delta, A, B, C, D=None):
    """One raster path through the oracle: u, delta (Bt, L, Du); A (Du, N); B, C (Bt, L, N); D (Du,)."""
    return selective_scan_ref(u, delta[:, :, None], A[None], B[:, :, None], C[:, :, None],
                              D=None if D is None else D[None], delta_softplus=False)[:, :, 0]


def test_chained_correction_equals_one_concatenated_scan():
    """Zero-start paths + the closed-form carried states == the official single scan over the concatenated paths,
    in value and in gradient."""
    torch.manual_seed(0)
    Bt, h, w, Du, N = 2, 3, 4, 3, 2
    L = h * w
    grid = torch.arange(L).reshape(h, w)
    perms = [grid.flatten().flip(0), grid.T.flatten(), grid.T.flatten().flip(0)]  # MSVMamba's three sweeps
    leaves = [torch.randn(Bt, L, Du, dtype=torch.float64), torch.rand(Bt, L, Du, dtype=torch.float64) * 0.5,
              -torch.rand(Du, N, dtype=torch.float64) - 0.2, torch.randn(Bt, L, N, dtype=torch.float64),
              torch.randn(Bt, L, N, dtype=torch.float64)]
    weights = torch.randn(Bt, L, len(perms), Du, dtype=torch.float64)

    def ours(u, delta, A, B, C):
        y0 = torch.stack([_scan_ref(u[:, p], delta[:, p], A, B[:, p], C[:, p])[:, torch.argsort(p)] for p in perms], 2)
        return y0 + chained_state_correction(u, delta, A, B, C, perms)

    def official(u, delta, A, B, C):
        cat = lambda t: torch.cat([t[:, p] for p in perms], dim=1)  # noqa: E731
        y = _scan_ref(cat(u), cat(delta), A, cat(B), cat(C))
        return torch.stack([y[:, i * L:(i + 1) * L][:, torch.argsort(p)] for i, p in enumerate(perms)], 2)

    grads = []
    for fn in (ours, official):
        xs = [t.clone().requires_grad_() for t in leaves]
        y = fn(*xs)
        (y * weights).sum().backward()
        grads.append((y.detach(), [x.grad for x in xs]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for g0, g1 in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g0, g1)


@pytest.mark.parametrize("size", [(8, 6), (7, 9)])
def test_mixer_is_one_op_call_of_the_official_algorithm(size):
    """MultiScaleSS2D (one op call over the concatenated sequence) == MSVMamba's MS2D written with copies: the full
    map scanned row-major with parameter set 1, the half map's three sweeps concatenated and scanned as one sequence
    with set 0, LN per path, the half-resolution sum up-sampled bilinearly, SE, gate, out-projection."""
    H, W = size
    torch.manual_seed(0)
    mixer = MultiScaleSS2D(8, d_state=2).eval()
    with torch.no_grad():
        for p in (mixer.A_log, mixer.D, mixer.dt_proj_bias):
            p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, H, W, 8)
    with torch.no_grad():
        y = mixer(x)
        Di, R, N = mixer.d_inner, mixer.dt_rank, mixer.d_state
        u, z = mixer.in_proj(x).chunk(2, dim=-1)
        uc = u.permute(0, 3, 1, 2)
        full = mixer.act(mixer.conv2d(uc)).flatten(2).transpose(1, 2)  # (2, HW, Di)
        low_map = mixer.act(mixer.conv2d_low(uc))  # (2, Di, h, w)
        h, w = low_map.shape[2:]

        def branch(seq, k):
            dt, Bs, Cs = torch.split(seq @ mixer.x_proj_weight[k].T, [R, N, N], dim=-1)
            delta = torch.nn.functional.softplus(dt @ mixer.dt_proj_weight[k].T + mixer.dt_proj_bias[k])
            return _scan_ref(seq, delta, -torch.exp(mixer.A_log[k]), Bs, Cs, mixer.D[k])

        y_full = mixer.out_norm(branch(full, 1)).reshape(2, H, W, Di)
        sweeps = [low_map.flatten(2).flip(-1), low_map.transpose(2, 3).flatten(2),
                  low_map.transpose(2, 3).flatten(2).flip(-1)]
        y_cat = mixer.out_norm(branch(torch.cat(sweeps, dim=2).transpose(1, 2), 0))  # (2, 3hw, Di)
        n = h * w
        y_low = (y_cat[:, :n].flip(1).reshape(2, h, w, Di)
                 + y_cat[:, n:2 * n].reshape(2, w, h, Di).transpose(1, 2)
                 + y_cat[:, 2 * n:].flip(1).reshape(2, w, h, Di).transpose(1, 2))
        y_low = torch.nn.functional.interpolate(y_low.permute(0, 3, 1, 2), size=(H, W), mode="bilinear",
                                                align_corners=False).permute(0, 2, 3, 1)
        ref = mixer.out_proj(mixer.se(y_full + y_low) * mixer.act(z))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-4)


def test_mixer_rejects_other_scans():
    from vssm.scans import get_scan

    with pytest.raises(ValueError, match="MultiScaleScan"):
        MultiScaleSS2D(8, scan=get_scan("cross"))
    with pytest.raises(ValueError, match="indexes a single map"):
        timm.create_model(TEST_MODEL, scan="cross", device="meta")
    model = timm.create_model(TEST_MODEL, scan={"type": "multiscale", "stride": 3}, device="meta")
    assert model.scan == MultiScaleScan(stride=3) and model.stages[0].blocks[0].mixer.scan is model.scan
    assert timm.create_model(TEST_MODEL, scan="multiscale", device="meta").scan == MultiScaleScan()
    wide = MultiScaleSS2D(8, scan=MultiScaleScan(full_variants=("normal", "reversed"), low_variants=("transposed",)))
    assert wide.K == 3 and wide.x_proj_weight.shape[0] == 3  # set 0 (down-sampled) + one per full path
    assert wide(torch.randn(1, 5, 6, 8)).shape == (1, 5, 6, 8)


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

    with safe_open(str(FIXTURES / "msvmamba.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return json.loads(meta["config"]), sd, tensors


@pytest.mark.parametrize("wrap", ["model", "model_ema", None])
def test_parity_with_official_code(wrap):
    """Official MSVMamba VSSM (multiscale_4scan_12, random weights) -> converted -> same logits (1e-4, fp32), at odd
    maps (11x13 with a 6x7 down-sampled map, ...) and even ones."""
    cfg, sd, t = _load_fixture()
    model = MSVMamba(**cfg).eval()
    ckpt = {wrap: {"module." + k: v for k, v in sd.items()}} if wrap else sd
    model.load_state_dict(checkpoint_filter_fn(ckpt, model), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(t["input"]), t["logits"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(model(t["input_even"]), t["logits_even"], atol=1e-4, rtol=1e-4)


def test_independent_low_paths_are_not_the_official_model():
    cfg, sd, t = _load_fixture()
    model = MSVMamba(**cfg, chain_low_paths=False).eval()
    model.load_state_dict(checkpoint_filter_fn(sd, model), strict=True)
    with torch.no_grad():
        assert not torch.allclose(model(t["input"]), t["logits"], atol=1e-3)


def test_wrong_checkpoint_names_keys_and_shapes():
    model = timm.create_model(TEST_MODEL, device="meta")
    other = timm.create_model("test_efficient_vmamba").state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"MSVMamba.*missing key\(s\): .*conv2d_low"):
        checkpoint_filter_fn(other, model)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected key\(s\): .*conv_branch"):
        checkpoint_filter_fn(other, model)
    cfg, sd, _ = _load_fixture()
    with pytest.raises(CheckpointMismatchError, match=r"ffn\.dwc\.weight: checkpoint \(16, 1, 3, 3\) vs model \(32, 1"):
        checkpoint_filter_fn(sd, model)  # an official checkpoint of another size
    sd = dict(sd)
    sd.pop("layers.0.blocks.0.op.conv2d_b1.weight")
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): stages\.0\.blocks\.0\.mixer\.conv2d_low"):
        checkpoint_filter_fn(sd, MSVMamba(**cfg))


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
