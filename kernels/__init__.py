"""The selective-scan op: one autograd op over four backends (triton on CUDA, numba on CPU, portable torch, oracle).

Public API:
    selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, order=None, z=None,
                   merge=None, out_dtype=None, return_last_state=False, backend=None, dt_proj_weight=None)
    selective_scan_ref(...)         the pure-torch oracle with the same signature (no ``backend``)
    selective_scan_mamba(...)       mamba_ssm's ``selective_scan_fn``: (Bt, D, L) layout, time-invariant or grouped B/C
    mamba_inner(...)                mamba_ssm's ``mamba_inner_fn``: conv, x_proj, fused rank-R step size, scan, out_proj
    mamba_inner_no_out_proj(...) / bimamba_inner(...)
                                    Vim's ``mamba_inner_fn_no_out_proj`` / ``bimamba_inner_fn``
    install_mamba_ssm_shim() / uninstall_mamba_ssm_shim() / mamba_ssm_shim()
                                    opt-in: mamba_ssm's selective_scan_fn / mamba_inner_fn (and Vim's) imports resolve
                                    to these
    available_backends() / default_backend(device)
"""
from .mamba import install_mamba_ssm_shim, mamba_ssm_shim, selective_scan_mamba, uninstall_mamba_ssm_shim
from .mamba_block import bimamba_inner, mamba_inner, mamba_inner_no_out_proj
from .op import available_backends, default_backend, selective_scan
from .reference import selective_scan_ref

__all__ = ["selective_scan", "selective_scan_ref", "selective_scan_mamba", "mamba_inner",
           "mamba_inner_no_out_proj", "bimamba_inner", "install_mamba_ssm_shim",
           "uninstall_mamba_ssm_shim", "mamba_ssm_shim", "available_backends", "default_backend"]
