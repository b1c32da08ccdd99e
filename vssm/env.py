"""What runs where: ``python -m vssm.env`` prints it, ``vssm.backend_info()`` returns it.

For each device torch can use here (CPU, each CUDA device, MPS), the selective-scan backend that ``selective_scan``
would pick and why; the versions of torch, triton, numba, timm, onnxruntime and the OpenMMLab stack; whether the
numba kernels are already compiled in numba's on-disk cache (the first CPU call compiles them otherwise, about a
minute); what the linear layers' fp32 CPU products run on (oneDNN or torch's BLAS, ``vssm.layers.linear``); and the
environment variables that change the choices (``VSSM_BACKEND``, ``VSSM_STRICT_BACKEND``, ``VSSM_CPU_GEMM``).

``cpu_name()`` names the CPU and its vector instruction set; the benchmarks print it in their headers, because CPU
figures (and the ratios between models) move with the CPU: VMamba-T's inference speed measured 0.97x Swin-T's on
one 2-core cloud machine and 0.72-0.86x on another (an AMD EPYC, AVX2) two days later, with the same model code.
"""
from __future__ import annotations

import importlib
import os
import platform
import warnings
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

__all__ = ["backend_info", "cpu_info", "cpu_name", "format_info"]

_PACKAGES = ("torch", "triton", "numba", "timm", "onnxruntime", "onnxscript", "mmengine", "mmcv", "mmdet",
             "mmseg")


def _version(name: str) -> Optional[str]:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return getattr(module, "__version__", "unknown")


def cpu_info(cpuinfo: str = "/proc/cpuinfo") -> Tuple[Optional[str], Optional[str], FrozenSet[str]]:
    """The CPU's model name, vendor (``'GenuineIntel'``, ``'AuthenticAMD'``, ...) and feature flags, read from
    ``cpuinfo`` (Linux's ``/proc/cpuinfo``); ``None`` / empty where it cannot be read (not Linux, no procfs)."""
    model = vendor = None
    flags: FrozenSet[str] = frozenset()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if model is None and key in ("model name", "Model", "cpu model") and value.strip():
                    model = value.strip()
                elif vendor is None and key == "vendor_id" and value.strip():
                    vendor = value.strip()
                elif not flags and key in ("flags", "Features"):
                    flags = frozenset(value.split())
    except OSError:  # not Linux, or no procfs
        pass
    return model, vendor, flags


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model and vector ISA, e.g. ``'AMD EPYC (x86_64, AVX2, 2 CPUs)'``: from ``cpuinfo`` (Linux's
    ``/proc/cpuinfo``) where it can be read, else ``platform.processor()``."""
    model, _, flags = cpu_info(cpuinfo)
    model = model or platform.processor() or "unknown CPU"
    isa = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "AVX" if "avx" in flags
           else "NEON" if "asimd" in flags else None)
    return f"{model} ({', '.join([platform.machine()] + ([isa] if isa else []) + [f'{os.cpu_count()} CPUs'])})"


def _numba_cache_warm() -> Optional[bool]:
    """True when numba's cache holds compiled kernels of vssm.kernels.cpu (None without numba)."""
    from .kernels import cpu

    if not cpu.is_available():
        return None
    import numba

    dirs = [Path(cpu.__file__).parent / "__pycache__"]
    cache_dir = getattr(numba.config, "CACHE_DIR", "") or os.environ.get("NUMBA_CACHE_DIR", "")
    if cache_dir:
        dirs.append(Path(cache_dir))
    return any(any(d.rglob("cpu.*.nbi")) for d in dirs if d.is_dir())


def _why(device_type: str, backend: str) -> str:
    if os.environ.get("VSSM_BACKEND", "").strip():
        return "VSSM_BACKEND"
    return {
        ("cuda", "triton"): "CUDA tensors: the Triton kernels (compiled at first use)",
        ("cuda", "torch"): "triton is not installed: the portable torch backend",
        ("cpu", "cpu"): "CPU tensors: the numba kernels",
        ("cpu", "torch"): "numba is not installed: the portable torch backend",
    }.get((device_type, backend), "no fast kernel for this device: the portable torch backend")


def _cpu_gemm() -> str:
    """What vssm's linear layers run fp32 CPU products with (``vssm.layers.linear``), and why."""
    from .layers import linear

    try:
        backend = linear.cpu_gemm_backend()
    except (RuntimeError, ValueError) as e:  # a bad VSSM_CPU_GEMM, or 'onednn' where it does not work: say so
        return str(e)
    mode = linear.get_cpu_gemm()
    why = {"torch": "policy 'torch'", "onednn": "policy 'onednn'"}.get(mode)
    if why is None:
        why = ("policy 'auto': AVX-512 CPU that MKL runs with AVX2" if backend == "onednn"
               else "policy 'auto': torch's default BLAS on this CPU")
    return f"{'oneDNN' if backend == 'onednn' else 'torch (MKL / OpenBLAS)'} ({why})"


def backend_info() -> Dict[str, Any]:
    """The backend per device (``devices``: a list of ``device``, ``backend``, ``why``), ``available`` backends,
    package ``versions`` (None when missing), ``numba_cache_warm``, ``cpu_gemm`` (what the linear layers' fp32 CPU
    products run on, ``vssm.layers.linear``), the relevant ``environment`` variables."""
    import torch

    from .kernels import op

    devices: List[str] = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    rows = []
    for dev in devices:
        kind = torch.device(dev).type
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fallback warning: reported here as 'why'
            try:
                backend = op.default_backend(torch.device(dev))
                why = _why(kind, backend)
            except (RuntimeError, ValueError) as e:  # strict mode or a bad VSSM_BACKEND: say so
                backend, why = None, str(e)
        name = (torch.cuda.get_device_name(torch.device(dev)) if kind == "cuda" else cpu_name() if kind == "cpu"
                else kind)
        rows.append(dict(device=dev, name=name, backend=backend, why=why))
    return dict(
        devices=rows,
        available=op.available_backends(),
        versions={p: _version(p) for p in _PACKAGES},
        python=platform.python_version(),
        numba_cache_warm=_numba_cache_warm(),
        cpu_gemm=_cpu_gemm(),
        environment={k: os.environ.get(k) for k in ("VSSM_BACKEND", "VSSM_STRICT_BACKEND", "TRITON_INTERPRET",
                                                    "VSSM_NUMBA_CACHE", "NUMBA_CACHE_DIR", "VSSM_CPU_GEMM")},
    )


def format_info(info: Optional[Dict[str, Any]] = None) -> str:
    """``backend_info()`` as text."""
    info = info or backend_info()
    lines = ["selective-scan backend per device:"]
    for r in info["devices"]:
        lines.append(f"  {r['device']:<8} {r['backend'] or '-':<7} {r['why']}  [{r['name']}]")
    lines.append(f"available backends: {', '.join(info['available'])}")
    warm = info["numba_cache_warm"]
    lines.append("numba cache: " + ("no numba" if warm is None else "warm" if warm else
                                    "cold (the first CPU call compiles the kernels)"))
    lines.append(f"CPU linear layers (fp32): {info['cpu_gemm']}")
    lines.append(f"python {info['python']}; " + ", ".join(f"{k} {v or '-'}" for k, v in info["versions"].items()))
    env = {k: v for k, v in info["environment"].items() if v is not None}
    lines.append("environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "none of VSSM_BACKEND, "
                                    "VSSM_STRICT_BACKEND, TRITON_INTERPRET, VSSM_NUMBA_CACHE, NUMBA_CACHE_DIR, "
                                    "VSSM_CPU_GEMM set"))
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_info())
