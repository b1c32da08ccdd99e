"""Parity with the official VMamba / LocalMamba code: converted official state dicts give the official logits.

The fixtures (``fixtures/*.safetensors``, see ``fixtures/README.md``) hold, for tiny configurations with random
weights, the official-format state dict (``sd.*``), an input, the logits the official code computed on CPU, and
this project's model arguments (metadata ``config``). Tolerance: 1e-4 (fp32).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.models.vmamba import VMamba, checkpoint_filter_fn

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
CASES = ["vmamba_v2_s1l", "vmamba_v2_gated", "vmamba_v0", "localvmamba",
         "vmamba_standalone_v01", "vmamba_standalone_v05noz"]  # the last two: the root vmamba.py


def _load(name, extra=False):
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    out = json.loads(meta["config"]), sd, tensors["input"], tensors["logits"]
    return out + (tensors,) if extra else out


def _check(cfg, official_sd, x, logits, wrap="model"):
    model = VMamba(**cfg).eval()
    sd = checkpoint_filter_fn({wrap: official_sd} if wrap else official_sd, model)
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_parity(name):
    cfg, sd, x, logits = _load(name)
    _check(cfg, sd, x, logits)


def test_parity_localvmamba_partial_windows():
    """45x45 input: every stage has partial windows; LocalMamba's zero padding is reproduced (window_padding)."""
    cfg, sd, _, _, tensors = _load("localvmamba", extra=True)
    assert cfg["window_padding"]
    _check(cfg, sd, tensors["input_odd"], tensors["logits_odd"])
    model = VMamba(**dict(cfg, window_padding=False)).eval()
    model.load_state_dict(checkpoint_filter_fn(sd, model))
    with torch.no_grad():
        partial = model(tensors["input_odd"])
    assert (partial - tensors["logits_odd"]).abs().max() > 1e-3  # the scan's own partial windows differ there


def test_parity_conv_form_weights():
    """Channel-first checkpoints may store linear weights as 1x1 convs (O, I, 1, 1)."""
    cfg, sd, x, logits = _load("vmamba_v2_s1l")
    conv = {k: (v[:, :, None, None] if v.ndim == 2 and k.endswith(("proj.weight", "fc1.weight", "fc2.weight"))
                else v) for k, v in sd.items()}
    assert any(v.ndim == 4 and k.endswith("in_proj.weight") for k, v in conv.items())
    _check(cfg, conv, x, logits, wrap="model_ema")


def test_parity_legacy_v0_names():
    """First-release names: patch_embed.proj/norm, ln_1, self_attention, top-level norm / head."""
    cfg, sd, x, logits = _load("vmamba_v0")
    legacy = {}
    for k, v in sd.items():
        k = k.replace("patch_embed.0.", "patch_embed.proj.").replace("patch_embed.2.", "patch_embed.norm.")
        k = k.replace(".norm.", ".ln_1.") if ".blocks." in k else k
        k = k.replace(".op.", ".self_attention.")
        k = k.replace("classifier.norm.", "norm.").replace("classifier.head.", "head.")
        legacy[k] = v
    assert any(".ln_1." in k for k in legacy) and "head.weight" in legacy
    _check(cfg, legacy, x, logits, wrap="state_dict")


def test_convert_cli_and_timm_pretrained(tmp_path):
    """tools/convert_checkpoint.py -> safetensors -> timm.create_model(pretrained=True, file=...) -> same logits."""
    cfg, sd, x, logits = _load("vmamba_v2_s1l")
    src = tmp_path / "official.pth"
    torch.save({"model": sd, "epoch": 3}, src)
    out = tmp_path / "converted.safetensors"
    cmd = [sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--model", "test_vmamba",
           "--model-kwargs", json.dumps(cfg), str(src), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    model = timm.create_model("test_vmamba", pretrained=True, **cfg,
                              pretrained_cfg_overlay=dict(file=str(out), num_classes=cfg["num_classes"])).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), logits, atol=1e-4, rtol=1e-4)


def test_convert_cli_fails_with_one_line(tmp_path):
    cfg, sd, _, _ = _load("vmamba_v0")
    src = tmp_path / "v0.pth"
    torch.save({"model": sd}, src)
    cmd = [sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), "--model", "test_vmamba", str(src),
           str(tmp_path / "out.safetensors")]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "mismatch" in lines[0]
    assert not (tmp_path / "out.safetensors").exists()
