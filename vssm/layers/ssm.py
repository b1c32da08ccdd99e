"""The SSM core of every selective-scan mixer: Mamba's dt-rank rule and initialisation, and the
``x_proj -> dt -> scan`` sequence, once.

Every mixer (SS2D and its atrous / multi-scale variants, Vim's path Mamba, MambaVision's mixer) stacks its
per-path SSM parameters with the path count ``K`` leading: ``x_proj_weight (K, R + 2N, Di)``, ``dt_proj_weight
(K, Di, R)``, ``dt_proj_bias (K, Di)``, ``A_log (K, Di, N)``, ``D (K, Di)``. From the inner activations ``u`` it
computes, per position and path, ``x_dbl = x_proj_k(u)`` split into the rank-``R`` step size, ``B`` and ``C``, the
full step size ``delta = dt_proj_k(dt)`` and one call of :func:`vssm.kernels.selective_scan`.

Step size. ``dt_proj`` is not a separate GEMM: the op takes the rank-``R`` ``dt`` (a strided slice of
``x_proj``'s output) with ``dt_proj_weight`` and forms ``delta`` per step and channel tile inside the kernel, so
the ``(Bt, L, K, Di)`` step size (K times the size of ``u``) is never written or read, forward or backward. With
``u`` shared by the paths, ``x_proj`` is one GEMM over all paths.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from vssm.kernels import selective_scan

from .linear import linear

__all__ = ["resolve_dt_rank", "init_ssm_parameters", "ssm_inputs", "selective_ssm"]


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


def ssm_inputs(u: torch.Tensor, x_proj_weight: torch.Tensor, d_state: int
               ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rank-``R`` step size ``dt``, ``B`` and ``C`` ``(Bt, L, K, .)`` from ``u`` ``(Bt, L, Di)`` (shared by the
    paths: one GEMM over all of them) or ``(Bt, L, K, Di)`` (per path). ``dt`` is a strided view of ``x_proj``'s
    output: the op reads it in place."""
    K, width, Di = x_proj_weight.shape
    N = d_state
    R = width - 2 * N
    if u.dim() == 3:
        x_dbl = linear(u, x_proj_weight.reshape(K * width, Di)).unflatten(-1, (K, width))
    else:
        x_dbl = torch.einsum("blkd,kcd->blkc", u, x_proj_weight)
    return x_dbl[..., :R], x_dbl[..., R:R + N], x_dbl[..., R + N:]


def selective_ssm(u: torch.Tensor, x_proj_weight: torch.Tensor, dt_proj_weight: torch.Tensor,
                  dt_proj_bias: torch.Tensor, A_log: torch.Tensor, D: torch.Tensor, order: Optional[torch.Tensor],
                  z: Optional[torch.Tensor] = None, merge: Optional[str] = "sum") -> torch.Tensor:
    """``x_proj -> dt -> scan``: the selective SSM of one mixer over the paths of ``order`` (softplus step size,
    ``A = -exp(A_log)``, all in fp32 inside the op). ``dt_proj`` runs inside the op (``dt_proj_weight=``): the
    full ``(Bt, L, K, Di)`` step size is never materialised. Returns the op's ``y``."""
    dt, B, C = ssm_inputs(u, x_proj_weight, A_log.shape[-1])
    return selective_scan(u, dt, -torch.exp(A_log.float()), B, C, D=D.float(),
                          delta_bias=dt_proj_bias.float(), delta_softplus=True, order=order, z=z, merge=merge,
                          dt_proj_weight=dt_proj_weight.float())
