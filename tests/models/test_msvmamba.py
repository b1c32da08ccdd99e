"""MSVMamba: parameter counts, the published layout, the multi-scale scan through one op call (with the official
chained down-sampled paths), parity with the official code, scan and checkpoint errors.

timm's model contract (forward, backward, features, cfg, options, own checkpoints; any input size with chained and
independent down-sampled paths) is checked for every family in test_contract.py. Forward checks use the tiny
``test_msvmamba``; the published sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from vssm.kernels import selective_scan_ref
from vssm.scans.multiscale import MultiScaleScan

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
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
def test_official_param_counts(name, meta_model):
    model = meta_model(name)
    assert _count(model) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS + [TEST_MODEL])
def test_published_layout(name, meta_model):
    model = meta_model(name)
    # every block: the multi-scale mixer, 1 full-resolution + 3 down-sampled paths, two parameter sets, d_state 1
    mixers = [m for m in model.modules() if isinstance(m, MultiScaleSS2D)]
    assert len(mixers) == len([b for s in model.stages for b in s.blocks])
    assert all(m.K == 4 and m.x_proj_weight.shape[0] == 2 and m.d_state == 1 for m in mixers)


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
    with pytest.raises(CheckpointError, match=r"MSVMamba.*missing key\(s\): .*conv2d_low"):
        checkpoint_filter_fn(other, model)
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): .*conv_branch"):
        checkpoint_filter_fn(other, model)
    cfg, sd, _ = _load_fixture()
    with pytest.raises(CheckpointError, match=r"ffn\.dwc\.weight: checkpoint \(16, 1, 3, 3\) vs model \(32, 1"):
        checkpoint_filter_fn(sd, model)  # an official checkpoint of another size
    sd = dict(sd)
    sd.pop("layers.0.blocks.0.op.conv2d_b1.weight")
    with pytest.raises(CheckpointError, match=r"missing key\(s\): stages\.0\.blocks\.0\.mixer\.conv2d_low"):
        checkpoint_filter_fn(sd, MSVMamba(**cfg))


