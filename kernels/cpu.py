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
``CHUNK`` steps (``(Bt, K, n_chunks, N, Du)``, never the full ``(.., L, N)`` states) and the backward recomputes the
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
        # threshold 20, as torch.nn.functional.softplus and mamba_ssm. log(1 + e) with the sum in float64 is as
        # accurate as log1p for float32 inputs and several times faster than libm's log1p.
        return x if x > 20.0 else math.log(1.0 + math.exp(x))

    @njit(inline="always")
    def _dsoftplus(x):
        return 1.0 if x > 20.0 else 1.0 / (1.0 + math.exp(-x))

    # Layout inside a job: the state is (N, channels) so that every inner loop runs over contiguous channels.

    @njit(parallel=True, cache=_cache, fastmath={"contract"})
    def _fwd_kernel(u, delta, At, B, C, D, bias, z, order, softplus, has_z, merge, nblk, y, last, ckpt):
        Bt, L, K, Du = delta.shape
        N = At.shape[1]
        T = order.shape[1]
        Ku = u.shape[2]
        Kz = z.shape[2]
        bs = (Du + nblk - 1) // nblk
        save_ckpt = ckpt.shape[2] > 0
        for job in prange(Bt * nblk):
            b = job // nblk
            d0 = (job % nblk) * bs
            nd = min(d0 + bs, Du) - d0
            h = np.zeros((N, nd), dtype=y.dtype)
            dts = np.empty(nd, dtype=y.dtype)
            dtu = np.empty(nd, dtype=y.dtype)
            acc = np.empty(nd, dtype=y.dtype)
            for k in range(K):
                ku = k if Ku > 1 else 0
                kz = k if Kz > 1 else 0
                ky = 0 if merge else k
                h[:, :] = 0.0
                for t in range(T):
                    if save_ckpt and t % CHUNK == 0:
                        ckpt[b, k, t // CHUNK, :, d0:d0 + nd] = h
                    p = order[k, t]
                    if p < 0:
                        continue
                    for d in range(nd):
                        dt = delta[b, p, k, d0 + d] + bias[k, d0 + d]
                        if softplus:
                            dt = _softplus(dt)
                        uu = u[b, p, ku, d0 + d]
                        dts[d] = dt
                        dtu[d] = dt * uu
                        acc[d] = D[k, d0 + d] * uu
                    for n in range(N):
                        Bn = B[b, p, k, n]
                        Cn = C[b, p, k, n]
                        for d in range(nd):
                            hv = math.exp(dts[d] * At[k, n, d0 + d]) * h[n, d] + dtu[d] * Bn
                            h[n, d] = hv
                            acc[d] += hv * Cn
                    for d in range(nd):
                        out = acc[d]
                        if has_z:
                            zz = z[b, p, kz, d0 + d]
                            out = out * zz / (1.0 + math.exp(-zz))
                        if merge:
                            y[b, p, 0, d0 + d] += out
                        else:
                            y[b, p, ky, d0 + d] = out
                last[b, k, :, d0:d0 + nd] = h

    @njit(parallel=True, cache=_cache, fastmath={"contract"})
    def _bwd_kernel(u, delta, At, B, C, D, bias, z, order, softplus, has_z, merge, nblk, ckpt, dout,
                    du, ddelta, dA, dB, dC, dD, dbias, dz):
        """Gradients; dA (N-major), dD, dbias are per batch row and dB, dC per channel block (summed by the caller)."""
        Bt, L, K, Du = delta.shape
        N = At.shape[1]
        T = order.shape[1]
        Ku = u.shape[2]
        Kz = z.shape[2]
        bs = (Du + nblk - 1) // nblk
        n_chunks = (T + CHUNK - 1) // CHUNK
        for job in prange(Bt * nblk):
            b = job // nblk
            blk = job % nblk
            d0 = blk * bs
            nd = min(d0 + bs, Du) - d0
            hs = np.zeros((CHUNK + 1, N, nd), dtype=du.dtype)  # hs[0] = state before the chunk
            g = np.zeros((N, nd), dtype=du.dtype)
            a_next = np.zeros((N, nd), dtype=du.dtype)
            dts = np.empty(nd, dtype=du.dtype)
            raws = np.empty(nd, dtype=du.dtype)
            us = np.empty(nd, dtype=du.dtype)
            dys = np.empty(nd, dtype=du.dtype)
            ddt = np.empty(nd, dtype=du.dtype)
            duu = np.empty(nd, dtype=du.dtype)
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
                    hs[0] = ckpt[b, k, c, :, d0:d0 + nd]
                    for t in range(t0, t1):
                        i = t - t0
                        p = order[k, t]
                        if p < 0:
                            hs[i + 1] = hs[i]
                            continue
                        for d in range(nd):
                            dt = delta[b, p, k, d0 + d] + bias[k, d0 + d]
                            if softplus:
                                dt = _softplus(dt)
                            dts[d] = dt
                            us[d] = dt * u[b, p, ku, d0 + d]
                        for n in range(N):
                            Bn = B[b, p, k, n]
                            for d in range(nd):
                                hs[i + 1, n, d] = math.exp(dts[d] * At[k, n, d0 + d]) * hs[i, n, d] + us[d] * Bn
                    # walk the chunk in reverse
                    for t in range(t1 - 1, t0 - 1, -1):
                        i = t - t0
                        p = order[k, t]
                        if p < 0:
                            continue
                        for d in range(nd):
                            raw = delta[b, p, k, d0 + d] + bias[k, d0 + d]
                            raws[d] = raw
                            dts[d] = _softplus(raw) if softplus else raw
                            us[d] = u[b, p, ku, d0 + d]
                            dys[d] = dout[b, p, ko, d0 + d]
                            ddt[d] = 0.0
                        if has_z:
                            for d in range(nd):
                                ypre = D[k, d0 + d] * us[d]
                                for n in range(N):
                                    ypre += hs[i + 1, n, d] * C[b, p, k, n]
                                zz = z[b, p, kz, d0 + d]
                                sg = 1.0 / (1.0 + math.exp(-zz))
                                dz[b, p, kz, d0 + d] += dys[d] * ypre * sg * (1.0 + zz * (1.0 - sg))
                                dys[d] = dys[d] * zz * sg
                        for d in range(nd):
                            duu[d] = D[k, d0 + d] * dys[d]
                        for n in range(N):
                            Bn = B[b, p, k, n]
                            Cn = C[b, p, k, n]
                            dBacc = 0.0
                            dCacc = 0.0
                            for d in range(nd):
                                An = At[k, n, d0 + d]
                                a = math.exp(dts[d] * An)
                                gv = a_next[n, d] * g[n, d] + dys[d] * Cn
                                g[n, d] = gv
                                a_next[n, d] = a
                                ah = a * hs[i, n, d]
                                ddt[d] += gv * (An * ah + us[d] * Bn)
                                dA[b, k, n, d0 + d] += gv * dts[d] * ah
                                dBacc += gv * dts[d] * us[d]
                                dCacc += dys[d] * hs[i + 1, n, d]
                                duu[d] += gv * dts[d] * Bn
                            dB[blk, b, p, k, n] += dBacc
                            dC[blk, b, p, k, n] += dCacc
                        for d in range(nd):
                            du[b, p, ku, d0 + d] += duu[d]
                            dD[b, k, d0 + d] += dys[d] * us[d]
                            draw = ddt[d] * _dsoftplus(raws[d]) if softplus else ddt[d]
                            ddelta[b, p, k, d0 + d] = draw
                            dbias[b, k, d0 + d] += draw


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
    checkpoints ``(Bt, K, n_chunks, N, Du)`` (empty unless ``save_ckpt``).
    """
    _require_numba()
    ct = _compute_dtype(u)
    Bt, L, K, Du = delta.shape
    N = A.shape[-1]
    T = order.shape[1]
    cvt = lambda t: t.detach().to(ct)  # noqa: E731
    y = torch.zeros(Bt, L, 1 if merge else K, Du, dtype=ct)
    last = torch.empty(Bt, K, N, Du, dtype=ct)
    ckpt = torch.empty(Bt, K, (T + CHUNK - 1) // CHUNK if save_ckpt else 0, N, Du, dtype=ct)
    zz = cvt(z) if z is not None else torch.zeros(1, 1, 1, 1, dtype=ct)
    _fwd_kernel(_np(cvt(u)), _np(cvt(delta)), _np(cvt(A).transpose(1, 2)), _np(cvt(B)), _np(cvt(C)), _np(cvt(D)),
                _np(cvt(delta_bias)), _np(zz), _np(order), delta_softplus, z is not None, merge,
                _blocks(Bt, Du), y.numpy(), last.numpy(), ckpt.numpy())
    return y, last.transpose(2, 3).contiguous(), ckpt


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
    dA = torch.zeros(Bt, K, N, Du, dtype=ct)
    dB = torch.zeros(nblk, Bt, L, K, N, dtype=ct)
    dC = torch.zeros(nblk, Bt, L, K, N, dtype=ct)
    dD = torch.zeros(Bt, K, Du, dtype=ct)
    dbias = torch.zeros(Bt, K, Du, dtype=ct)
    zz = cvt(z) if z is not None else torch.zeros(1, 1, 1, 1, dtype=ct)
    dz = torch.zeros(zz.shape, dtype=ct)
    _bwd_kernel(_np(cvt(u)), _np(cvt(delta)), _np(cvt(A).transpose(1, 2)), _np(cvt(B)), _np(cvt(C)), _np(cvt(D)),
                _np(cvt(delta_bias)), _np(zz), _np(order), delta_softplus, z is not None, merge, nblk,
                _np(ckpt), _np(cvt(dout)), du.numpy(), ddelta.numpy(), dA.numpy(), dB.numpy(), dC.numpy(),
                dD.numpy(), dbias.numpy(), dz.numpy())
    dz = dz if z is not None else None
    return du, ddelta, dA.sum(0).transpose(1, 2), dB.sum(0), dC.sum(0), dD.sum(0), dbias.sum(0), dz
