"""The portable backend: the ordered selective scan in plain torch ops, for any device and for export.

A chunked parallel scan, differentiated by autograd and traced by ``torch.export`` / the ONNX exporter / TorchScript:

1. every input is gathered into path order once (``index_select`` with the flat ``(path, position)`` index of
   ``order``; padded steps -- ``-1`` in ``order`` and the tail of the last chunk -- get a zero step size, which
   keeps the state and adds nothing);
2. the ``T`` steps are cut into chunks of ``c`` steps; inside a chunk the states are an inclusive parallel scan
   (Hillis-Steele, ``log2(c)`` rounds of shifted multiply-adds) of the pairs ``(exp(a_t), b_t)`` under
   ``(p, x) o (q, y) = (p q, q x + y)``, with ``a = delta*A`` (<= 0) and ``b = delta*B*u``; across chunks the
   state is carried sequentially: ``h_t = P_t h_0 + X_t``;
3. the outputs are scattered back to spatial order with ``index_add`` (summing the paths for ``merge='sum'``).

Precision: the scan only multiplies decay factors ``exp(a) in [0, 1]`` and adds, never divides by a decay or takes
the difference of two running log-sums, so a long or steep decay (``delta*A`` of -1e4 per step) loses nothing to
cancellation and nothing overflows; a factor that underflows to 0 is the exact limit. Work per step is
``O(log c)`` elementwise operations (a ``(c, c)`` segment-sum form would be ``O(c)``). The chunk length ``c``
depends on ``K * Du * N`` only (one batch element's chunk tensors stay under ~0.5 MB, so they stay in cache), not on
the batch, so a dynamic batch dimension exports. Under autograd (and not while tracing) each chunk is checkpointed:
the backward recomputes its rounds instead of keeping them for every chunk.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ._tracing import is_tracing
from .reference import softplus_thresholded

# elements of one batch element's (K, Du, N, c) chunk tensors: small enough to stay in cache (measured on a 2-core
# x86 CPU at VMamba-T's stages: N = 16 runs 1.3-8x faster at c = 16 than at c = 128), large enough for few Python steps
_CHUNK_BUDGET = 1 << 17
MIN_CHUNK = 16
MAX_CHUNK = 128


def chunk_length(K: int, Du: int, N: int, T: int) -> int:
    """Steps per chunk: the largest power of two in [16, 128] with ``K*Du*N*c <= 2**17`` (16 where none fits), at
    most ``T`` rounded up to a power of two."""
    c = _CHUNK_BUDGET // max(1, K * Du * N)
    c = max(MIN_CHUNK, min(MAX_CHUNK, c))
    c = 1 << (c.bit_length() - 1)
    while c > 1 and c // 2 >= T:
        c //= 2
    return c


def _chunk(h0: torch.Tensor, dt: torch.Tensor, du: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
           c: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """One chunk of ``c`` steps in path order: ``h0 (Bt, K, Du, N)``, ``dt, du = dt*u (Bt, K, c, Du)``,
    ``A (K, Du, N)``, ``B, C (Bt, K, c, N)`` -> ``y (Bt, K, Du, c)`` (the ``<h, C>`` part), the state after it.
    The ``(Bt, K, Du, N, c)`` tensors exist for one chunk at a time."""
    K, Du, N = A.shape
    p = torch.exp(dt.transpose(2, 3).unsqueeze(3) * A.view(1, K, Du, N, 1))   # decay factors, in [0, 1]
    b = du.transpose(2, 3).unsqueeze(3) * B.transpose(2, 3).unsqueeze(2)      # (Bt, K, Du, N, c)
    d = 1
    while d < c:  # after the round of shift d: p_t, b_t combine the steps (t - 2d, t]
        b = torch.cat([b[..., :d], torch.addcmul(b[..., d:], p[..., d:], b[..., :-d])], dim=-1)
        p = torch.cat([p[..., :d], p[..., d:] * p[..., :-d]], dim=-1)
        d *= 2
    h = torch.addcmul(b, p, h0.unsqueeze(-1))
    y = (h * C.transpose(2, 3).unsqueeze(2)).sum(3)                          # (Bt, K, Du, c)
    return y, h[..., -1]


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

    du = dt * ug
    h = torch.zeros(Bt, K, Du, N, dtype=ct, device=dev)
    checkpoint = torch.is_grad_enabled() and not is_tracing()
    ys = []
    for i in range(n_chunks):
        args = (h, dt[:, :, i * c:(i + 1) * c], du[:, :, i * c:(i + 1) * c], Af, Bg[:, :, i * c:(i + 1) * c],
                Cg[:, :, i * c:(i + 1) * c], c)
        if checkpoint:
            from torch.utils.checkpoint import checkpoint as _ckpt

            y, h = _ckpt(_chunk, *args, use_reentrant=False)
        else:
            y, h = _chunk(*args)
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
