"""Fast CPU backend of the ordered selective scan: numba-JIT kernels, forward and backward.

Nothing is compiled at install time: numba compiles these loops on first use (and caches them on disk). One job is
a (batch row, channel block) pair, running every path ``k`` of that row and block; the jobs are spread over the CPU
threads with ``prange``. Inside a job the state ``h`` of a channel block lives in a small local array, and each step
reads one contiguous channel-last row at the flat position ``order[k, t]``: the scan order is fused, nothing is
gathered or permuted in memory.

Why numba rather than a vectorised chunked scan in torch: a scan is a sequential recurrence per channel, so torch
can only vectorise it over channels by materialising ``(.., L, N)`` tensors (cumulative products in log space,
chunked), which costs several full memory passes and loses precision; the JIT loop makes one pass and keeps the
state in cache. ``tools/benchmark.py kernel`` measures the difference.

The backward follows the design's checkpoint rule: the forward keeps the state at the start of every chunk of
``CHUNK`` steps (``(Bt, K, Du, N, n_chunks)``, never the full ``(.., L, N)`` states) and the backward recomputes the
states of one chunk at a time, then walks it in reverse.

All math runs in the dtype of the arrays handed in: fp32 for fp32/fp16/bf16 inputs (converted by the caller), fp64
for fp64 inputs (used by gradcheck).
"""
from __future__ import annotations

import math
import os
from typing import Optional, Tuple

import numpy as np
import torch

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only on installs without numba
    numba = None

CHUNK = 64


def is_available() -> bool:
    return numba is not None


def _require_numba() -> None:
    if numba is None:
        raise RuntimeError(
            "the 'cpu' selective-scan backend needs numba (pip install numba); "
            "use backend='ref' for the (slow) pure-torch oracle instead"
        )


if numba is not None:
    _cache = os.environ.get("VSSM_NUMBA_CACHE", "1") != "0"

    @njit(inline="always")
    def _softplus(x):
        # threshold 20, as torch.nn.functional.softplus and mamba_ssm
        return x if x > 20.0 else math.log1p(math.exp(x))

    @njit(inline="always")
    def _dsoftplus(x):
        return 1.0 if x > 20.0 else 1.0 / (1.0 + math.exp(-x))

    @njit(parallel=True, cache=_cache)
    def _fwd_kernel(u, delta, A, B, C, D, bias, z, order, softplus, has_z, merge, nblk, y, last, ckpt):
        Bt, L, K, Du = delta.shape
        N = A.shape[2]
        T = order.shape[1]
        Ku = u.shape[2]
        Kz = z.shape[2]
        bs = (Du + nblk - 1) // nblk
        save_ckpt = ckpt.shape[4] > 0
        for job in prange(Bt * nblk):
            b = job // nblk
            d0 = (job % nblk) * bs
            d1 = min(d0 + bs, Du)
            h = np.zeros((d1 - d0, N), dtype=y.dtype)
            for k in range(K):
                ku = k if Ku > 1 else 0
                kz = k if Kz > 1 else 0
                ky = 0 if merge else k
                h[:, :] = 0.0
                for t in range(T):
                    if save_ckpt and t % CHUNK == 0:
                        for d in range(d0, d1):
                            for n in range(N):
                                ckpt[b, k, d, n, t // CHUNK] = h[d - d0, n]
                    p = order[k, t]
                    if p < 0:
                        continue
                    for d in range(d0, d1):
                        dt = delta[b, p, k, d] + bias[k, d]
                        if softplus:
                            dt = _softplus(dt)
                        uu = u[b, p, ku, d]
                        dtu = dt * uu
                        acc = 0.0
                        for n in range(N):
                            hv = math.exp(dt * A[k, d, n]) * h[d - d0, n] + dtu * B[b, p, k, n]
                            h[d - d0, n] = hv
                            acc += hv * C[b, p, k, n]
                        out = acc + D[k, d] * uu
                        if has_z:
                            zz = z[b, p, kz, d]
                            out = out * zz / (1.0 + math.exp(-zz))
                        if merge:
                            y[b, p, 0, d] += out
                        else:
                            y[b, p, ky, d] = out
                for d in range(d0, d1):
                    for n in range(N):
                        last[b, k, d, n] = h[d - d0, n]

    @njit(parallel=True, cache=_cache)
    def _bwd_kernel(u, delta, A, B, C, D, bias, z, order, softplus, has_z, merge, nblk, ckpt, dout,
                    du, ddelta, dA, dB, dC, dD, dbias, dz):
        """Gradients; dA, dD, dbias are per batch row (summed by the caller), dB, dC per channel block."""
        Bt, L, K, Du = delta.shape
        N = A.shape[2]
        T = order.shape[1]
        Ku = u.shape[2]
        Kz = z.shape[2]
        bs = (Du + nblk - 1) // nblk
        n_chunks = (T + CHUNK - 1) // CHUNK
        for job in prange(Bt * nblk):
            b = job // nblk
            blk = job % nblk
            d0 = blk * bs
            d1 = min(d0 + bs, Du)
            nd = d1 - d0
            hs = np.zeros((CHUNK + 1, nd, N), dtype=du.dtype)  # hs[0] = state before the chunk
            g = np.zeros((nd, N), dtype=du.dtype)
            a_next = np.zeros((nd, N), dtype=du.dtype)
            for k in range(K):
                ku = k if Ku > 1 else 0
                kz = k if Kz > 1 else 0
                ko = 0 if merge else k
                g[:, :] = 0.0
                a_next[:, :] = 0.0
                for c in range(n_chunks - 1, -1, -1):
                    t0 = c * CHUNK
                    t1 = min(t0 + CHUNK, T)
                    # recompute the chunk's states from its checkpoint
                    for d in range(nd):
                        for n in range(N):
                            hs[0, d, n] = ckpt[b, k, d0 + d, n, c]
                    for t in range(t0, t1):
                        i = t - t0
                        p = order[k, t]
                        if p < 0:
                            hs[i + 1, :, :] = hs[i, :, :]
                            continue
                        for d in range(nd):
                            dt = delta[b, p, k, d0 + d] + bias[k, d0 + d]
                            if softplus:
                                dt = _softplus(dt)
                            dtu = dt * u[b, p, ku, d0 + d]
                            for n in range(N):
                                hs[i + 1, d, n] = math.exp(dt * A[k, d0 + d, n]) * hs[i, d, n] + dtu * B[b, p, k, n]
                    # walk the chunk in reverse
                    for t in range(t1 - 1, t0 - 1, -1):
                        i = t - t0
                        p = order[k, t]
                        if p < 0:
                            continue
                        for d in range(nd):
                            dd = d0 + d
                            raw = delta[b, p, k, dd] + bias[k, dd]
                            dt = _softplus(raw) if softplus else raw
                            uu = u[b, p, ku, dd]
                            go = dout[b, p, ko, dd]
                            if has_z:
                                zz = z[b, p, kz, dd]
                                sg = 1.0 / (1.0 + math.exp(-zz))
                                ypre = D[k, dd] * uu
                                for n in range(N):
                                    ypre += hs[i + 1, d, n] * C[b, p, k, n]
                                dz[b, p, kz, dd] += go * ypre * sg * (1.0 + zz * (1.0 - sg))
                                dy = go * zz * sg
                            else:
                                dy = go
                            ddt = 0.0
                            duu = D[k, dd] * dy
                            for n in range(N):
                                a = math.exp(dt * A[k, dd, n])
                                gv = a_next[d, n] * g[d, n] + dy * C[b, p, k, n]
                                g[d, n] = gv
                                a_next[d, n] = a
                                hprev = hs[i, d, n]
                                ah = a * hprev
                                ddt += gv * (A[k, dd, n] * ah + uu * B[b, p, k, n])
                                dA[b, k, dd, n] += gv * dt * ah
                                dB[blk, b, p, k, n] += gv * dt * uu
                                dC[blk, b, p, k, n] += dy * hs[i + 1, d, n]
                                duu += gv * dt * B[b, p, k, n]
                            du[b, p, ku, dd] += duu
                            dD[b, k, dd] += dy * uu
                            draw = ddt * _dsoftplus(raw) if softplus else ddt
                            ddelta[b, p, k, dd] = draw
                            dbias[b, k, dd] += draw


def _blocks(Bt: int, Du: int) -> int:
    """Channel blocks per batch row: enough jobs to keep every thread busy, blocks of at least 16 channels."""
    threads = numba.get_num_threads()
    if Bt >= threads:
        return 1
    return max(1, min(-(-threads // Bt), Du // 16))


def _np(t: Optional[torch.Tensor]) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def forward(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus: bool, merge: bool, save_ckpt: bool
            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Runs the forward kernel on normalised inputs (see ``kernels.op``): ``u`` and ``z`` are 4-D.

    Returns ``y`` (compute dtype, ``(Bt, L, K or 1, Du)``), the last state ``(Bt, K, Du, N)`` and the chunk
    checkpoints ``(Bt, K, Du, N, n_chunks)`` (empty unless ``save_ckpt``).
    """
    _require_numba()
    ct = _compute_dtype(u)
    Bt, L, K, Du = delta.shape
    N = A.shape[-1]
    T = order.shape[1]
    cvt = lambda t: t.detach().to(ct)  # noqa: E731
    y = torch.zeros(Bt, L, 1 if merge else K, Du, dtype=ct)
    last = torch.empty(Bt, K, Du, N, dtype=ct)
    ckpt = torch.empty(Bt, K, Du, N, (T + CHUNK - 1) // CHUNK if save_ckpt else 0, dtype=ct)
    zz = cvt(z) if z is not None else torch.zeros(1, 1, 1, 1, dtype=ct)
    _fwd_kernel(_np(cvt(u)), _np(cvt(delta)), _np(cvt(A)), _np(cvt(B)), _np(cvt(C)), _np(cvt(D)),
                _np(cvt(delta_bias)), _np(zz), _np(order), delta_softplus, z is not None, merge,
                _blocks(Bt, Du), y.numpy(), last.numpy(), ckpt.numpy())
    return y, last, ckpt


def backward(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus: bool, merge: bool):
    """Gradients of every tensor input, in the compute dtype: ``(du, ddelta, dA, dB, dC, dD, dbias, dz)``."""
    _require_numba()
    ct = _compute_dtype(u)
    Bt, L, K, Du = delta.shape
    N = A.shape[-1]
    nblk = _blocks(Bt, Du)
    cvt = lambda t: t.detach().to(ct)  # noqa: E731
    du = torch.zeros(u.shape, dtype=ct)
    ddelta = torch.zeros(delta.shape, dtype=ct)
    dA = torch.zeros(Bt, K, Du, N, dtype=ct)
    dB = torch.zeros(nblk, Bt, L, K, N, dtype=ct)
    dC = torch.zeros(nblk, Bt, L, K, N, dtype=ct)
    dD = torch.zeros(Bt, K, Du, dtype=ct)
    dbias = torch.zeros(Bt, K, Du, dtype=ct)
    zz = cvt(z) if z is not None else torch.zeros(1, 1, 1, 1, dtype=ct)
    dz = torch.zeros(zz.shape, dtype=ct)
    _bwd_kernel(_np(cvt(u)), _np(cvt(delta)), _np(cvt(A)), _np(cvt(B)), _np(cvt(C)), _np(cvt(D)),
                _np(cvt(delta_bias)), _np(zz), _np(order), delta_softplus, z is not None, merge, nblk,
                _np(ckpt), _np(cvt(dout)), du.numpy(), ddelta.numpy(), dA.numpy(), dB.numpy(), dC.numpy(),
                dD.numpy(), dbias.numpy(), dz.numpy())
    return du, ddelta, dA.sum(0), dB.sum(0), dC.sum(0), dD.sum(0), dbias.sum(0), (dz if z is not None else None)
