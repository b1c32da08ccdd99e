"""Pure-torch sequential oracle for the ordered selective scan.

Semantics are those of ``mamba_ssm.ops.selective_scan_interface.selective_scan_ref`` (delta + delta_bias, softplus,
``h <- exp(delta * A) * h + delta * B * u``, ``y = <h, C> + D * u``, optional ``y *= silu(z)``), extended with scan
orders: path ``k`` visits the flat positions ``order[k, 0], order[k, 1], ...`` (``-1`` entries are skipped) and its
outputs are written back at those positions. Positions a path never visits get 0 from that path.

This file is written to be read: one Python loop over the steps of each path, math in fp32 (or fp64 when the
inputs are fp64), autograd for the gradients. It is the oracle the fast backends are tested against and the
export-friendly fallback.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F


def softplus_thresholded(x: torch.Tensor) -> torch.Tensor:
    """softplus with the threshold of 20 that torch and mamba_ssm use (identity above it)."""
    return F.softplus(x, beta=1.0, threshold=20.0)


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = True,
    order: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    merge: Optional[str] = None,
    out_dtype: Optional[torch.dtype] = None,
    return_last_state: bool = False,
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Ordered selective scan, computed step by step.

    Args:
        u: ``(Bt, L, Du)`` shared by all paths, or ``(Bt, L, K, Du)`` one per path; spatial order, channel-last.
        delta: ``(Bt, L, K, Du)``.
        A: ``(K, Du, N)``, real.
        B: ``(Bt, L, K, N)``.
        C: ``(Bt, L, K, N)``.
        D: optional ``(K, Du)`` skip weight.
        delta_bias: optional ``(K, Du)`` added to ``delta`` before the softplus.
        delta_softplus: apply softplus (threshold 20) to ``delta + delta_bias``.
        order: ``(K, T)`` integer flat positions (``-1`` = skip); ``None`` = raster order for every path.
        z: optional gate, ``(Bt, L, Du)`` or ``(Bt, L, K, Du)``: ``y *= silu(z)``.
        merge: ``None`` returns ``(Bt, L, K, Du)``; ``'sum'`` sums the paths into ``(Bt, L, Du)``.
        out_dtype: dtype of ``y``; defaults to the dtype of ``u``.
        return_last_state: also return each path's final state ``(Bt, K, Du, N)`` (fp32, no gradient).

    Returns:
        ``y``, or ``(y, last_state)`` with ``return_last_state``.
    """
    out_dtype = out_dtype or u.dtype
    ctype = torch.float64 if u.dtype == torch.float64 else torch.float32
    Bt, L, K, Du = delta.shape
    N = A.shape[-1]
    if order is None:
        order = torch.arange(L, device=u.device, dtype=torch.int32).expand(K, L)
    u = u.to(ctype)
    u = u.unsqueeze(2).expand(Bt, L, K, Du) if u.dim() == 3 else u
    delta = delta.to(ctype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(ctype)
    if delta_softplus:
        delta = softplus_thresholded(delta)
    A, B, C = A.to(ctype), B.to(ctype), C.to(ctype)
    if z is not None:
        z = z.to(ctype)
        z = z.unsqueeze(2).expand(Bt, L, K, Du) if z.dim() == 3 else z

    ys = []
    last_states = []
    for k in range(K):
        y_k = u.new_zeros(Bt, L, Du)
        h = u.new_zeros(Bt, Du, N)
        for p in order[k].tolist():
            if p < 0:
                continue
            dA = torch.exp(delta[:, p, k, :, None] * A[k])  # (Bt, Du, N)
            dBu = (delta[:, p, k] * u[:, p, k])[:, :, None] * B[:, p, k, None, :]  # (Bt, Du, N)
            h = dA * h + dBu
            y = (h * C[:, p, k, None, :]).sum(-1)  # (Bt, Du)
            if D is not None:
                y = y + D[k].to(ctype) * u[:, p, k]
            if z is not None:
                y = y * F.silu(z[:, p, k])
            y_k = y_k.index_copy(1, torch.tensor([p], device=u.device), y[:, None])
        ys.append(y_k)
        last_states.append(h.detach())
    y = torch.stack(ys, dim=2)  # (Bt, L, K, Du)
    if merge == "sum":
        y = y.sum(2)
    y = y.to(out_dtype)
    if return_last_state:
        return y, torch.stack(last_states, dim=1).float()
    return y
