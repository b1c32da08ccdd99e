"""The SSM core of every selective-scan mixer: Mamba's dt-rank rule and initialisation, and the
``x_proj -> dt -> scan`` sequence, once.

Every mixer (SS2D and its atrous / multi-scale variants, Vim's path Mamba, MambaVision's mixer) stacks its
per-path SSM parameters with the path count ``K`` leading: ``x_proj_weight (K, R + 2N, Di)``, ``dt_proj_weight
(K, Di, R)``, ``dt_proj_bias (K, Di)``, ``A_log (K, Di, N)``, ``D (K, Di)``. From the inner activations ``u`` it
computes, per position and path, ``x_dbl = x_proj_k(u)`` split into the rank-``R`` step size, ``B`` and ``C``, the
full step size ``delta = dt_proj_k(dt)`` and one call of :func:`vssm.kernels.selective_scan`.

Layout. The op reads ``delta`` as ``(Bt, L, K, Di)``. Forming it with ``einsum('blkr,kdr->blkd')`` runs a batched
GEMM over the paths, whose ``(K, Bt*L, Di)`` result is then copied into that layout (on CPU the copy cost more
than the GEMM: ~8 % of VMamba-T's forward). Here each path's GEMM writes straight into its strided slice of the
``(Bt*L, K, Di)`` output (BLAS takes a leading dimension), and reads its slice of ``x_dbl`` in place; the backward
does the same for both gradients. With ``u`` shared by the paths, ``x_proj`` is one GEMM over all paths.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from vssm.kernels import selective_scan

__all__ = ["resolve_dt_rank", "init_ssm_parameters", "project_dt", "ssm_inputs", "selective_ssm"]


def resolve_dt_rank(dt_rank: Union[int, str], dim: int) -> int:
    """``'auto'`` gives ``ceil(dim / 16)`` (Mamba's rule, on the block width, not the inner width)."""
    return math.ceil(dim / 16) if dt_rank == "auto" else int(dt_rank)


@torch.no_grad()
def init_ssm_parameters(
        x_proj_weight: torch.Tensor,
        dt_proj_weight: torch.Tensor,
        dt_proj_bias: torch.Tensor,
        A_log: torch.Tensor,
        D: torch.Tensor,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
) -> None:
    """Mamba's initialisation of the stacked (``K``-leading) SSM parameters, the same for every path.

    ``x_proj_weight`` as ``nn.Linear``'s default; ``dt_proj_weight`` uniform in ``+-dt_scale / sqrt(R)``;
    ``dt_proj_bias`` the inverse softplus of a log-uniform dt in ``[dt_min, dt_max]``; ``A_log = log(1..N)``
    (S4D-real); ``D = 1``.
    """
    bound = 1.0 / math.sqrt(x_proj_weight.shape[-1])
    nn.init.uniform_(x_proj_weight, -bound, bound)
    std = dt_proj_weight.shape[-1] ** -0.5 * dt_scale
    if dt_init == "constant":
        nn.init.constant_(dt_proj_weight, std)
    elif dt_init == "random":
        nn.init.uniform_(dt_proj_weight, -std, std)
    else:
        raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
    if dt_proj_bias.device.type != "meta":
        dt = torch.exp(
            torch.rand(dt_proj_bias.shape, device=dt_proj_bias.device) * (math.log(dt_max) - math.log(dt_min))
            + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        dt_proj_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, A_log.shape[-1] + 1, dtype=torch.float32, device=A_log.device)
        A_log.copy_(torch.log(a).expand_as(A_log))
        D.fill_(1.0)


class _PathLowRank(torch.autograd.Function):
    """``out[:, k] = dt[:, k] @ weight[k].T`` for every path, each GEMM into its strided slice (no copies)."""

    @staticmethod
    def forward(ctx, dt: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        M, K, _ = dt.shape
        out = dt.new_empty(M, K, weight.shape[1])
        for k in range(K):
            torch.mm(dt[:, k], weight[k].t(), out=out[:, k])
        ctx.save_for_backward(dt, weight)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        dt, weight = ctx.saved_tensors
        d_dt = d_weight = None
        if ctx.needs_input_grad[0]:
            d_dt = torch.empty(dt.shape, dtype=dt.dtype, device=dt.device)
            for k in range(dt.shape[1]):
                torch.mm(grad[:, k], weight[k], out=d_dt[:, k])
        if ctx.needs_input_grad[1]:
            d_weight = torch.empty_like(weight)
            for k in range(dt.shape[1]):
                torch.mm(grad[:, k].t(), dt[:, k], out=d_weight[k])
        return d_dt, d_weight


def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The autocast dtype active for ``device_type``, or None."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: per-device functions
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
        return torch.get_autocast_gpu_dtype() if device_type == "cuda" and torch.is_autocast_enabled() else None
    return torch.get_autocast_dtype(device_type) if enabled else None


def project_dt(dt: torch.Tensor, dt_proj_weight: torch.Tensor) -> torch.Tensor:
    """Per-path rank-``R`` step-size projection: ``(M, K, R)`` (any strides) x ``(K, Di, R)`` -> ``(M, K, Di)``.

    The same values as ``einsum('mkr,kdr->mkd')``, in the dtype autocast (or type promotion) gives a matmul."""
    dtype = _autocast_dtype(dt.device.type) or torch.promote_types(dt.dtype, dt_proj_weight.dtype)
    return _PathLowRank.apply(dt.to(dtype), dt_proj_weight.to(dtype))


def ssm_inputs(u: torch.Tensor, x_proj_weight: torch.Tensor, dt_proj_weight: torch.Tensor, d_state: int
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``delta (Bt, L, K, Di)``, ``B``, ``C (Bt, L, K, N)`` of the op from ``u`` ``(Bt, L, Di)`` (shared by the
    paths: one GEMM) or ``(Bt, L, K, Di)`` (per path)."""
    K, width, Di = x_proj_weight.shape
    N = d_state
    R = width - 2 * N
    if u.dim() == 3:
        x_dbl = F.linear(u, x_proj_weight.reshape(K * width, Di)).unflatten(-1, (K, width))
    else:
        x_dbl = torch.einsum("blkd,kcd->blkc", u, x_proj_weight)
    Bt, L = x_dbl.shape[:2]
    delta = project_dt(x_dbl[..., :R].reshape(Bt * L, K, R), dt_proj_weight).view(Bt, L, K, Di)
    return delta, x_dbl[..., R:R + N].contiguous(), x_dbl[..., R + N:].contiguous()


def selective_ssm(u: torch.Tensor, x_proj_weight: torch.Tensor, dt_proj_weight: torch.Tensor,
                  dt_proj_bias: torch.Tensor, A_log: torch.Tensor, D: torch.Tensor, order: Optional[torch.Tensor],
                  z: Optional[torch.Tensor] = None, merge: Optional[str] = "sum") -> torch.Tensor:
    """``x_proj -> dt -> scan``: the selective SSM of one mixer over the paths of ``order`` (softplus step size,
    ``A = -exp(A_log)``, all in fp32 inside the op). Returns the op's ``y``."""
    delta, B, C = ssm_inputs(u, x_proj_weight, dt_proj_weight, A_log.shape[-1])
    return selective_scan(u, delta, -torch.exp(A_log.float()), B, C, D=D.float(),
                          delta_bias=dt_proj_bias.float(), delta_softplus=True, order=order, z=z, merge=merge)
