"""The portable backend: the ordered selective scan in plain torch ops, for any device and for export.

A chunked parallel scan, differentiated by autograd and traced by ``torch.export`` / the ONNX exporter / TorchScript:

1. every input is gathered into path order once (``index_select`` with the flat ``(path, position)`` index of
   ``order``; padded steps -- ``-1`` in ``order`` and the tail of the last chunk -- get a zero step size, which
   keeps the state and adds nothing);
2. the ``T`` steps are cut into chunks of ``c`` steps; inside a chunk the state is a closed form,
   ``h_t = exp(sum_{r<=t} a_r) h_0 + sum_{s<=t} exp(sum_{s<r<=t} a_r) b_s`` with ``a = delta*A`` (<= 0) and
   ``b = delta*B*u``; across chunks the state is carried sequentially;
3. the outputs are scattered back to spatial order with ``index_add`` (summing the paths for ``merge='sum'``).

Precision: the segment sums ``sum_{s<r<=t} a_r`` are cumulative sums of the masked ``(c, c)`` matrix of log-decays
(each one a sum of its own terms), never differences of two running sums, so a long or steep decay
(``delta*A`` of -1e4 per step) loses nothing to cancellation; the masked entries are ``-inf`` before the ``exp``,
so every factor is in ``[0, 1]`` and nothing overflows. The chunk length ``c`` depends on ``K * Du * N`` only (the
``(c, c)`` matrices of one batch element stay under ~8 MB), not on the batch, so a dynamic batch dimension exports.
Under autograd (and not while tracing) each chunk is checkpointed: the backward recomputes its matrices instead of
keeping ``T / c`` of them.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .reference import softplus_thresholded

# elements of one batch element's (K, Du, N, c, c) segment-sum tensor
_CHUNK_BUDGET = 1 << 21
MAX_CHUNK = 64


def chunk_length(K: int, Du: int, N: int, T: int) -> int:
    """Steps per chunk: the largest power of two <= 64 with ``K*Du*N*c*c <= 2**21``, at most ``T`` rounded up."""
    c = int(math.sqrt(_CHUNK_BUDGET / max(1, K * Du * N)))
    c = max(1, min(MAX_CHUNK, c))
    c = 1 << (c.bit_length() - 1)
    while c > 1 and c // 2 >= T:
        c //= 2
    return c


def _segsum(a: torch.Tensor) -> torch.Tensor:
    """``out[..., t, s] = sum_{s<r<=t} a[..., r]`` for ``s <= t``, ``-inf`` above the diagonal."""
    c = a.shape[-1]
    x = a.unsqueeze(-1).expand(*a.shape, c)  # x[..., r, s] = a[..., r]
    below = torch.ones(c, c, dtype=torch.bool, device=a.device).tril(-1)
    x = x.masked_fill(~below, 0.0)
    seg = torch.cumsum(x, dim=-2)  # sum over r <= t of a_r [r > s]
    keep = torch.ones(c, c, dtype=torch.bool, device=a.device).tril(0)
    return seg.masked_fill(~keep, float("-inf"))


def _chunk(h0: torch.Tensor, a: torch.Tensor, b: torch.Tensor, C: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """One chunk. ``h0 (Bt, K, Du, N)``, ``a, b (Bt, K, Du, N, c)``, ``C (Bt, K, 1, N, c)`` -> ``y (Bt, K, Du, c)``
    (the ``<h, C>`` part), the state after the chunk."""
    decay = torch.exp(_segsum(a))                              # (Bt, K, Du, N, c, c), in [0, 1]
    h = torch.einsum("...ts,...s->...t", decay, b)             # (Bt, K, Du, N, c)
    h = h + torch.exp(torch.cumsum(a, dim=-1)) * h0.unsqueeze(-1)
    y = (h * C).sum(3)                                         # (Bt, K, Du, c)
    return y, h[..., -1]


def _tracing() -> bool:
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, "compiler", None)
    for name in ("is_exporting", "is_compiling"):
        fn = getattr(compiler, name, None)
        if fn is not None and fn():
            return True
    onnx = getattr(torch, "onnx", None)
    return bool(onnx is not None and getattr(onnx, "is_in_onnx_export", lambda: False)())


def selective_scan_torch(
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
    dt_proj_weight: Optional[torch.Tensor] = None,
    chunk: Optional[int] = None,
):
    """The op's semantics (see ``vssm.kernels.selective_scan``) as a chunked parallel scan in torch ops.

    ``chunk`` overrides the chunk length (tests); arguments are assumed checked by ``selective_scan``.
    """
    out_dtype = out_dtype or u.dtype
    ct = torch.float64 if u.dtype == torch.float64 else torch.float32
    Bt, L, K = delta.shape[:3]
    Du, N = A.shape[1], A.shape[2]
    dev = u.device
    if dt_proj_weight is not None:  # the rank-R step size: the projection is part of the traced graph
        delta = torch.einsum("blkr,kdr->blkd", delta.to(ct), dt_proj_weight.to(ct))
    if order is None:
        order = torch.arange(L, device=dev, dtype=torch.int64).expand(K, L)
    T = order.shape[1]
    c = chunk or chunk_length(K, Du, N, T)
    n_chunks = -(-T // c)
    Tp = n_chunks * c
    order = order.to(device=dev, dtype=torch.int64)
    if Tp != T:
        order = torch.cat([order, order.new_full((K, Tp - T), -1)], dim=1)
    valid = order >= 0                                              # (K, Tp)
    pos = order.clamp(min=0)
    flat = (pos * K + torch.arange(K, device=dev).unsqueeze(1)).reshape(-1)  # index into (L*K)
    pos_flat = pos.reshape(-1)

    def gather(x: torch.Tensor, per_path: bool) -> torch.Tensor:
        """(Bt, L, K, X) or (Bt, L, X) -> (Bt, K, Tp, X) in path order."""
        if per_path:
            g = x.reshape(Bt, L * K, x.shape[-1]).index_select(1, flat)
        else:
            g = x.index_select(1, pos_flat)
        return g.reshape(Bt, K, Tp, x.shape[-1])

    dt = delta.to(ct)
    if delta_bias is not None:
        dt = dt + delta_bias.to(ct)
    if delta_softplus:
        dt = softplus_thresholded(dt)
    dt = gather(dt, True)
    dt = torch.where(valid.view(1, K, Tp, 1), dt, torch.zeros((), dtype=ct, device=dev))  # padded steps: no-ops
    ug = gather(u.to(ct), u.dim() == 4)
    Bg = gather(B.to(ct), True)
    Cg = gather(C.to(ct), True)
    Af = A.to(ct)

    # (Bt, K, Du, N, Tp) layout: the chunk's steps last
    a = dt.permute(0, 1, 3, 2).unsqueeze(3) * Af.view(1, K, Du, N, 1)
    b = (dt * ug).permute(0, 1, 3, 2).unsqueeze(3) * Bg.permute(0, 1, 3, 2).unsqueeze(2)
    Cl = Cg.permute(0, 1, 3, 2).unsqueeze(2)                      # (Bt, K, 1, N, Tp)

    h = torch.zeros(Bt, K, Du, N, dtype=ct, device=dev)
    checkpoint = torch.is_grad_enabled() and not _tracing()
    ys = []
    for i in range(n_chunks):
        s = slice(i * c, (i + 1) * c)
        if checkpoint:
            from torch.utils.checkpoint import checkpoint as _ckpt

            y, h = _ckpt(_chunk, h, a[..., s], b[..., s], Cl[..., s], use_reentrant=False)
        else:
            y, h = _chunk(h, a[..., s], b[..., s], Cl[..., s])
        ys.append(y)
    y = torch.cat(ys, dim=-1).permute(0, 1, 3, 2)                  # (Bt, K, Tp, Du)
    if D is not None:
        y = y + ug * D.to(ct).view(1, K, 1, Du)
    if z is not None:
        y = y * F.silu(gather(z.to(ct), z.dim() == 4))
    y = torch.where(valid.view(1, K, Tp, 1), y, torch.zeros((), dtype=ct, device=dev))
    y = y.reshape(Bt, K * Tp, Du)
    if merge == "sum":
        out = torch.zeros(Bt, L, Du, dtype=ct, device=dev).index_add(1, pos_flat, y)
    else:
        out = torch.zeros(Bt, L * K, Du, dtype=ct, device=dev).index_add(1, flat, y).view(Bt, L, K, Du)
    out = out.to(out_dtype)
    if return_last_state:
        return out, h.detach().float()
    return out
