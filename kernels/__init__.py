"""The selective-scan op: one autograd op over three backends (triton on CUDA, numba on CPU, a torch oracle).

Public API:
    selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, order=None, z=None,
                   merge=None, out_dtype=None, return_last_state=False, backend=None)
    selective_scan_ref(...)         the pure-torch oracle with the same signature (no ``backend``)
    selective_scan_mamba(...)       mamba_ssm's (Bt, D, L) layout with grouped B/C
    available_backends() / default_backend(device)
"""
from .op import available_backends, default_backend, selective_scan, selective_scan_mamba
from .reference import selective_scan_ref

__all__ = ["selective_scan", "selective_scan_ref", "selective_scan_mamba", "available_backends", "default_backend"]
