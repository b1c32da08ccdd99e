"""The portable backend: the ordered selective scan in plain torch ops, for any device and for export.

A chunked parallel scan, differentiated by autograd and traced by ``torch.export`` / the ONNX exporter / TorchScript:

1. every input is gathered into path order once (``index_select`` with the flat ``(path, position)`` index of
   ``order``; padded steps -- ``-1`` in ``order`` and the tail of the last chunk -- get a zero step size, which
   keeps the state and adds nothing);
2. the ``T`` steps are cut into chunks of ``c`` steps; inside a chunk the states are an inclusive parallel scan
   (Hillis-Steele, ``log2(c)`` rounds of shifted multiply-adds) of the pairs ``(exp(a_t), b_t)`` under
   ``(p, x) o (q, y) = (p q, q x + y)``, with ``a = delta*A`` (<= 0) and ``b = delta*B*u``; across chunks the
   state is carried: ``h_t = P_t h_0 + X_t``. Eagerly the chunks run one after the other (cache-sized tensors).
   While exporting, blocks of chunks (``EXPORT_BLOCK_BUDGET`` elements) run one after the other, and inside a block
   every chunk is scanned at once and the state entering each chunk comes from a second scan of the same kind over
   the chunks' end states: the exported graph grows with the number of blocks, not of chunks;
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

from ._tracing import is_exporting, is_tracing
from .reference import softplus_thresholded

# elements of one batch element's (K, Du, N, c) chunk tensors: small enough to stay in cache (measured on a 2-core
# x86 CPU at VMamba-T's stages: N = 16 runs 1.3-8x faster at c = 16 than at c = 128), large enough for few Python steps
_CHUNK_BUDGET = 1 << 17
MIN_CHUNK = 16
MAX_CHUNK = 128
# elements of one batch element's (K, n, c, Du, N) tensors per block of chunks in the export form: measured with
# onnxruntime on a 2-core x86 CPU, EfficientVMamba-T at 224 (N = 16): one block for the whole sequence 0.61 s per
# image, 2^20 0.19 s (export 64 s), 2^18 0.14 s but a 702 s export (a graph ~4x larger)
EXPORT_BLOCK_BUDGET = 1 << 20


def chunk_length(K: int, Du: int, N: int, T: int) -> int:
    """Steps per chunk: the largest power of two in [16, 128] with ``K*Du*N*c <= 2**17`` (16 where none fits), at
    most ``T`` rounded up to a power of two."""
    c = _CHUNK_BUDGET // max(1, K * Du * N)
    c = max(MIN_CHUNK, min(MAX_CHUNK, c))
    c = 1 << (c.bit_length() - 1)
    while c > 1 and c // 2 >= T:
        c //= 2
    return c


def _inclusive_scan(p: torch.Tensor, b: torch.Tensor, dim: int = -1) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inclusive Hillis-Steele scan along ``dim`` of the pairs ``(p_t, b_t)`` under
    ``(p, x) o (q, y) = (p q, q x + y)``: ``b_t`` becomes the state after step ``t`` from a zero state, ``p_t`` the
    product of the factors so far; ``ceil(log2(n))`` rounds of shifted multiply-adds."""
    n = p.shape[dim]
    d = 1
    while d < n:  # after the round of shift d: p_t, b_t combine the steps (t - 2d, t]
        p_tail, p_prev = p.narrow(dim, d, n - d), p.narrow(dim, 0, n - d)
        b = torch.cat([b.narrow(dim, 0, d), torch.addcmul(b.narrow(dim, d, n - d), p_tail, b.narrow(dim, 0, n - d))],
                      dim=dim)
        p = torch.cat([p.narrow(dim, 0, d), p_tail * p_prev], dim=dim)
        d *= 2
    return p, b


def _chunk(h0: torch.Tensor, dt: torch.Tensor, du: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
           c: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """One chunk of ``c`` steps in path order: ``h0 (Bt, K, Du, N)``, ``dt, du = dt*u (Bt, K, c, Du)``,
    ``A (K, Du, N)``, ``B, C (Bt, K, c, N)`` -> ``y (Bt, K, Du, c)`` (the ``<h, C>`` part), the state after it.
    The ``(Bt, K, Du, N, c)`` tensors exist for one chunk at a time."""
    K, Du, N = A.shape
    p = torch.exp(dt.transpose(2, 3).unsqueeze(3) * A.view(1, K, Du, N, 1))   # decay factors, in [0, 1]
    b = du.transpose(2, 3).unsqueeze(3) * B.transpose(2, 3).unsqueeze(2)      # (Bt, K, Du, N, c)
    p, b = _inclusive_scan(p, b)
    h = torch.addcmul(b, p, h0.unsqueeze(-1))
    y = (h * C.transpose(2, 3).unsqueeze(2)).sum(3)                          # (Bt, K, Du, c)
    return y, h[..., -1]


def _all_chunks(h0: torch.Tensor, dt: torch.Tensor, du: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor, c: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every chunk of a block at once (the export form): the same scan inside each chunk, then a scan of the chunks'
    end states across chunks for the state entering each. ``h0 (Bt, K, Du, N)``, ``dt, du (Bt, K, n*c, Du)``,
    ``B, C (Bt, K, n*c, N)`` -> ``y (Bt, K, n*c, Du)``, the state after the block. The graph has
    ``O(log c + log n)`` operations; the ``(Bt, K, n, c, Du, N)`` tensors are laid out so that the scans' shifts
    slice outer dimensions (contiguous blocks)."""
    Bt, K, T, Du = dt.shape
    n = T // c
    p = torch.exp(dt.unsqueeze(-1) * A.view(1, K, 1, Du, -1)).unflatten(2, (n, c))   # (Bt, K, n, c, Du, N)
    b = (du.unsqueeze(-1) * B.unsqueeze(-2)).unflatten(2, (n, c))
    p, b = _inclusive_scan(p, b, dim=3)                                             # inside each chunk
    decay, ends = _inclusive_scan(p.select(3, c - 1), b.select(3, c - 1), dim=2)   # chunk j's end, from zero
    ends = torch.addcmul(ends, decay, h0.unsqueeze(2))                              # ... from h0
    entering = torch.cat([h0.unsqueeze(2), ends.narrow(2, 0, n - 1)], dim=2)
    h = torch.addcmul(b, p, entering.unsqueeze(3)).flatten(2, 3)                  # (Bt, K, n*c, Du, N)
    return (h * C.unsqueeze(-2)).sum(-1), ends.select(2, n - 1)


def _blocks_in_turn(dt: torch.Tensor, du: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    c: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The export form: blocks of chunks one after the other (at most ``EXPORT_BLOCK_BUDGET`` elements of one batch
    element's ``(K, n, c, Du, N)`` tensors per block, so that they stay in cache), each by :func:`_all_chunks`."""
    Bt, K, Tp, Du = dt.shape
    n = Tp // c
    g = max(1, min(n, EXPORT_BLOCK_BUDGET // (K * Du * A.shape[2] * c)))
    h = dt.new_zeros(Bt, K, Du, A.shape[2])
    ys = []
    for start in range(0, n, g):
        steps = slice(start * c, min(n, start + g) * c)
        y, h = _all_chunks(h, dt[:, :, steps], du[:, :, steps], A, B[:, :, steps], C[:, :, steps], c)
        ys.append(y)
    return torch.cat(ys, dim=2), h


def _chunks_in_turn(dt: torch.Tensor, du: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                    c: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """One chunk after the other (the eager form), the state carried from each to the next, zero initial state;
    under autograd (and not while tracing) each chunk is checkpointed."""
    Bt, K, Tp, _ = dt.shape
    h = dt.new_zeros(Bt, K, A.shape[1], A.shape[2])
    checkpoint = torch.is_grad_enabled() and not is_tracing()
    ys = []
    for i in range(Tp // c):
        steps = slice(i * c, (i + 1) * c)
        args = (h, dt[:, :, steps], du[:, :, steps], A, B[:, :, steps], C[:, :, steps], c)
        if checkpoint:
            from torch.utils.checkpoint import checkpoint as _ckpt

            y, h = _ckpt(_chunk, *args, use_reentrant=False)
        else:
            y, h = _chunk(*args)
        ys.append(y)
    return torch.cat(ys, dim=-1), h


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
    all_chunks: Optional[bool] = None,
):
    """The op's semantics (see ``vssm.kernels.selective_scan``) as a chunked parallel scan in torch ops.

    ``chunk`` overrides the chunk length (tests). ``all_chunks`` takes the export form: blocks of chunks one after
    the other, every chunk of a block scanned at once and the chunks' states by a second scan (a graph that grows
    with the number of blocks, not of chunks), instead of one chunk after the other (cache-sized tensors, the eager
    form); None: while exporting. Arguments are assumed
    checked by ``selective_scan``.
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
    if all_chunks is None:
        all_chunks = is_exporting()
    if all_chunks:
        y, h = _blocks_in_turn(dt, du, Af, Bg, Cg, c)               # (Bt, K, Tp, Du)
    else:
        y, h = _chunks_in_turn(dt, du, Af, Bg, Cg, c)
        y = y.permute(0, 1, 3, 2)
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
