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


@pytest.mark.parametrize("flags, isa", [("fpu sse2 avx avx2 fma", "AVX2"), ("fpu avx2 avx512f avx512bw", "AVX-512"),
                                        ("fp asimd evtstrm", "NEON"), ("fpu sse2", None)])
def test_cpu_name_reads_model_and_vector_isa(tmp_path, flags, isa):
    import os
    import platform

    info = tmp_path / "cpuinfo"
    # two processors, as procfs lists them: the first one's fields are used
    info.write_text(f"processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: {flags}\n\n"
                    f"processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    name = vssm.env.cpu_name(str(info))
    parts = [platform.machine()] + ([isa] if isa else []) + [f"{os.cpu_count()} CPUs"]
    assert name == f"Test CPU 9000 ({', '.join(parts)})"


def test_cpu_name_without_cpuinfo_falls_back_to_platform(tmp_path):
    import platform

    name = vssm.env.cpu_name(str(tmp_path / "missing"))
    assert name.startswith((platform.processor() or "unknown CPU") + " (" + platform.machine())
    assert vssm.backend_info()["devices"][0]["name"] == vssm.env.cpu_name()


def test_environment_variables_are_reported(monkeypatch):
    monkeypatch.setenv("VSSM_BACKEND", "torch")
    info = vssm.backend_info()
    assert info["devices"][0]["backend"] == "torch" and info["devices"][0]["why"] == "VSSM_BACKEND"
    assert info["environment"]["VSSM_BACKEND"] == "torch"
    monkeypatch.setenv("VSSM_BACKEND", "numba")
    bad = vssm.backend_info()["devices"][0]
    assert bad["backend"] is None and "VSSM_BACKEND='numba'; allowed:" in bad["why"]


def test_cpu_gemm_policy_is_reported(monkeypatch):
    from vssm.layers import linear

    monkeypatch.setattr(linear, "_mode", None)  # the environment's policy, whatever a test set before
    monkeypatch.setenv("VSSM_CPU_GEMM", "torch")
    info = vssm.backend_info()
    assert info["cpu_gemm"] == "torch (MKL / OpenBLAS) (policy 'torch')"
    assert info["environment"]["VSSM_CPU_GEMM"] == "torch"
    assert "CPU linear layers (fp32): torch (MKL / OpenBLAS) (policy 'torch')" in vssm.env.format_info(info)
    monkeypatch.setenv("VSSM_CPU_GEMM", "blas")
    assert vssm.backend_info()["cpu_gemm"] == "VSSM_CPU_GEMM: got 'blas'; allowed: 'auto', 'onednn', 'torch'"


def test_command_line():
    out = subprocess.run([sys.executable, "-m", "vssm.env"], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.startswith("selective-scan backend per device:")
    assert f"  cpu      {op.default_backend('cpu')}" in out.stdout
    assert "numba cache:" in out.stdout and "torch " in out.stdout
    assert "RuntimeWarning" not in out.stderr


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vssm.nope  # noqa: B018
