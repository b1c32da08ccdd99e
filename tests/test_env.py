"""vssm.backend_info() / python -m vssm.env: the backend per device and why, versions, the numba cache."""
import subprocess
import sys

import pytest
from vssm.kernels import op

import vssm


def test_backend_info_names_the_choice_per_device():
    info = vssm.backend_info()
    cpu = next(r for r in info["devices"] if r["device"] == "cpu")
    assert cpu["backend"] == op.default_backend("cpu")
    assert "numba" in cpu["why"] or "torch" in cpu["why"]
    assert info["available"] == op.available_backends()
    import timm
    import torch

    assert info["versions"]["torch"] == torch.__version__ and info["versions"]["timm"] == timm.__version__
    assert info["numba_cache_warm"] in (True, False, None)


def test_environment_variables_are_reported(monkeypatch):
    monkeypatch.setenv("VSSM_BACKEND", "torch")
    info = vssm.backend_info()
    assert info["devices"][0]["backend"] == "torch" and info["devices"][0]["why"] == "VSSM_BACKEND"
    assert info["environment"]["VSSM_BACKEND"] == "torch"
    monkeypatch.setenv("VSSM_BACKEND", "numba")
    bad = vssm.backend_info()["devices"][0]
    assert bad["backend"] is None and "VSSM_BACKEND='numba'; allowed:" in bad["why"]


def test_command_line():
    out = subprocess.run([sys.executable, "-m", "vssm.env"], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.startswith("selective-scan backend per device:")
    assert f"  cpu      {op.default_backend('cpu')}" in out.stdout
    assert "numba cache:" in out.stdout and "torch " in out.stdout
    assert "RuntimeWarning" not in out.stderr


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vssm.nope  # noqa: B018
