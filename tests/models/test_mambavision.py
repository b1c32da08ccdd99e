"""MambaVision: parameter counts, the published block layout, windows that do not divide the map, scans,
official-checkpoint conversion and parity, checkpoint errors.

timm's model contract (forward, backward, features, cfg, options, own checkpoints; any input size with windows that
do not divide the maps) is checked for every family in test_contract.py. Forward checks use the tiny
``test_mambavision``; the registered sizes are built on the ``meta`` device.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
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
def test_official_param_counts(name, meta_model):
    assert _count(meta_model(name)) == OFFICIAL_PARAMS[name]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_weights_on_the_hub(name, meta_model):
    cfg = meta_model(name).pretrained_cfg
    assert cfg["hf_hub_id"].startswith("nvidia/MambaVision-") and cfg["hf_hub_filename"].endswith(".pth.tar")


def test_published_block_layout(meta_model):
    model = meta_model("mambavision_tiny2")  # stage 3: 11 blocks -> 6 Mamba, 5 attention
    kinds = [[type(b.mixer).__name__ for b in s.blocks] for s in model.stages[2:]]
    assert kinds[0] == ["MambaVisionMixer"] * 6 + ["Attention"] * 5
    assert kinds[1] == ["MambaVisionMixer"] * 2 + ["Attention"] * 2
    assert [s.window_size for s in model.stages[2:]] == [14, 7]
    mixer = model.stages[2].blocks[0].mixer
    assert (mixer.d_state, mixer.d_inner, mixer.conv1d_x.kernel_size, mixer.conv1d_x.bias) == (8, 320, (3,), None)
    base = meta_model("mambavision_base")
    assert base.stages[3].blocks[0].ls1.gamma.shape == (1024,) and base.stages[0].blocks[0].gamma is None


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
    with pytest.raises(CheckpointError, match=r"shape mismatch.*checkpoint \(.*\) vs model \("):
        checkpoint_filter_fn(official, model)
    vim = timm.create_model("test_vim", device="meta").state_dict()
    msg = r"does not fit test_mambavision \(MambaVision\).*missing key\(s\): stem\..*unexpected key\(s\): "
    with pytest.raises(CheckpointError, match=msg):
        checkpoint_filter_fn({"model": vim}, model)
    sd = timm.create_model("test_mambavision").state_dict()
    sd.pop("stages.2.blocks.0.mixer.A_log")
    sd["stages.9.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing key\(s\): stages\.2\.blocks\.0\.mixer\.A_log"):
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
