"""Fast CPU backend of the ordered selective scan: numba-JIT kernels, forward and backward.

Nothing is compiled at install time: numba compiles these loops on first use (and caches them on disk). One job is
a (batch row, channel block) pair, running every path ``k`` of that row and block; the jobs are spread over the CPU
threads with ``prange``. Inside a job the state ``h`` of a channel block lives in a small local array, and each step
reads one contiguous channel-last row at the flat position ``order[k, t]``: the scan order is fused, nothing is
gathered or permuted in memory.

Every inner loop runs over the contiguous channels of one step and vectorises (AVX2: 8 channels per instruction):
the softplus of the step size and the decay ``exp(dt * A)`` are fp32 scalar helpers of plain arithmetic, selects and
a bit cast, inlined into the loops (numba's ``math.exp`` / ``math.log1p`` are scalar libm calls, and were most of the
time), so the decay is computed inside each state's update pass, with no scratch rows; channel indices are unsigned so
that numba's negative-index wrap-around does not block vectorisation. fp64 inputs (gradcheck) use libm.

Why numba rather than a vectorised chunked scan in torch: a scan is a sequential recurrence per channel, so torch
can only vectorise it over channels by materialising ``(.., L, N)`` tensors (cumulative products in log space,
chunked), which costs several full memory passes and loses precision; the JIT loop makes one pass and keeps the
state in cache. ``tools/benchmark.py kernel`` measures the difference.

The backward follows the design's checkpoint rule: the forward keeps the state at the start of every chunk of
``CHUNK`` steps (``(Bt, K, n_chunks, N, Du)``, never the full ``(.., L, N)`` states) and the backward recomputes the
states of one chunk at a time, keeping each step's step size, softplus derivative and decays, then walks it in
reverse without recomputing them.

All math runs in the dtype of the arrays handed in: fp32 for fp32/fp16/bf16 inputs (converted by the caller), fp64
for fp64 inputs (used by gradcheck).
"""
from __future__ import annotations

import math
import os
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only on installs without numba
    numba = None

CHUNK = 64
# steps whose step sizes are formed together: CHUNK is a multiple, and _raw_rows / _lowrank_grads are written out for 4
G = 4


def is_available() -> bool:
    return numba is not None


def _require_numba() -> None:
    if numba is None:
        raise RuntimeError(
            "the 'cpu' selective-scan backend needs numba (pip install numba); "
            "use backend='ref' for the (slow) pure-torch oracle instead"
        )


if numba is not None:
    from llvmlite import ir as llvm_ir
    from numba.extending import intrinsic, overload

    _cache = os.environ.get("VSSM_NUMBA_CACHE", "1") != "0"
    _FAST = {"contract"}
    _FAST_REDUCE = {"contract", "reassoc"}  # the backward's sums over channels vectorise only with reassociation

    # Scalar helpers, inlined into the kernels' channel loops, which LLVM then vectorises: plain arithmetic, selects
    # and an int -> float bit cast (numba's math.exp / math.log1p are scalar libm calls, 5-10x slower per element,
    # and they were most of the kernels' time). Being scalars, they fuse with the rest of a step's arithmetic into
    # one pass over the channels. fp32 gets the vectorised versions; fp64 (used by gradcheck) keeps libm.

    def _exp(x):  # exp(x)
        raise NotImplementedError  # only called from numba code, where the overload below is used

    def _softplus(x):  # softplus(x), threshold 20
        raise NotImplementedError

    def _softplus_grad(x):  # (softplus(x), its derivative sigmoid(x)), threshold 20
        raise NotImplementedError

    @intrinsic
    def _f32_from_bits(typingctx, bits):
        """The float32 whose bit pattern is the low 32 bits of the integer ``bits`` (LLVM ``trunc`` + ``bitcast``;
        numba widens int32 arithmetic to int64)."""
        if not (isinstance(bits, numba.types.Integer) and bits.bitwidth >= 32):
            return None

        def codegen(context, builder, signature, args):
            low = args[0] if bits.bitwidth == 32 else builder.trunc(args[0], llvm_ir.IntType(32))
            return builder.bitcast(low, llvm_ir.FloatType())
        return numba.types.float32(bits), codegen

    # Constants of the fp32 exp: Cody-Waite range reduction x = k ln2 + r, |r| <= ln2 / 2, Taylor polynomial of
    # degree 7 in r, 2^(k-1) from the exponent bits: relative error below 1e-7 on [-86.6, 88.72]. Below -86.6 the
    # result is 0 (libm returns values under 2.5e-38 there), above 88.72 inf (as libm).
    _LOG2E = np.float32(1.4426950408889634)
    _LN2_HI = np.float32(0.693359375)
    _LN2_LO = np.float32(-2.12194440e-4)
    _X_LO = np.float32(-86.6)  # keeps k - 1 >= -126, the smallest exponent the bits can hold
    _X_HI = np.float32(88.72)  # above: exp overflows; the result is inf
    _ZERO = np.float32(0.0)
    _HALF = np.float32(0.5)
    _ONE = np.float32(1.0)
    _TWO = np.float32(2.0)
    _TWENTY = np.float32(20.0)
    _INF = np.float32(np.inf)
    _P = tuple(np.float32(1.0 / math.factorial(i)) for i in range(2, 8))
    # log1p(e) = 2 atanh(s) with s = e / (2 + e) <= 1/3 for e in [0, 1]: the odd series 2 s sum s^2j / (2j + 1),
    # truncated after j = 6 (relative error below 2e-8)
    _Q = tuple(np.float32(1.0 / (2 * j + 1)) for j in range(1, 7))

    @overload(_exp, jit_options={"fastmath": _FAST}, inline="always")
    def _exp_impl(x):
        if x == numba.types.float32:
            c2, c3, c4, c5, c6, c7 = _P

            def fast(x):
                v = min(max(x, _X_LO), _X_HI)
                k = np.floor(v * _LOG2E + _HALF)
                r = v - k * _LN2_HI
                r = r - k * _LN2_LO
                p = _ONE + r * (_ONE + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))
                e = p * _f32_from_bits((np.int32(k) + np.int32(126)) << np.int32(23)) * _TWO  # 2^(k-1): k = 128 ok
                e = _ZERO if x < _X_LO else e
                e = _INF if x > _X_HI else e
                return x if x != x else e  # NaN in, NaN out
            return fast

        def libm(x):
            return math.exp(x)
        return libm

    @overload(_softplus, jit_options={"fastmath": _FAST}, inline="always")
    def _softplus_impl(x):
        if x == numba.types.float32:
            def fast(x):
                return _softplus_grad(x)[0]
            return fast

        def libm(x):
            return x if x > 20.0 else math.log1p(math.exp(x))
        return libm

    @overload(_softplus_grad, jit_options={"fastmath": _FAST}, inline="always")
    def _softplus_grad_impl(x):
        if x == numba.types.float32:
            q1, q2, q3, q4, q5, q6 = _Q

            def fast(x):
                e = _exp(-abs(x))
                s = e / (_TWO + e)
                s2 = s * s
                lg = _TWO * s * (_ONE + s2 * (q1 + s2 * (q2 + s2 * (q3 + s2 * (q4 + s2 * (q5 + s2 * q6))))))
                sg = e / (_ONE + e) if x < _ZERO else _ONE / (_ONE + e)
                big = x > _TWENTY
                return (x if big else max(x, _ZERO) + lg), (_ONE if big else sg)
            return fast

        def libm(x):
            e = math.exp(-abs(x))
            sg = e / (1.0 + e) if x < 0.0 else 1.0 / (1.0 + e)
            big = x > 20.0
            return (x if big else math.log1p(math.exp(x))), (1.0 if big else sg)
        return libm

    # Layout inside a job: the state is (N, channels) so that every inner loop runs over contiguous channels.
    # Channel indices are unsigned (d0u + d): numba wraps negative signed indices, and that select on every load
    # kept LLVM from vectorising the loops (measured: 2x slower).

    @njit(cache=_cache, fastmath=_FAST)
    def _step_group(order, delta, b, k, t0, ng, lowrank, ps, vs):
        """The positions of path ``k``'s steps ``t0 .. t0 + ng - 1`` in ``ps`` (``-1`` past ``ng``) and, for the
        rank-R step size, their ``dt`` as the columns of ``vs`` ``(R, G)`` (0 at skipped steps)."""
        for g in range(G):
            p = order[k, t0 + g] if g < ng else -1
            ps[g] = p
            if lowrank:
                for r in range(vs.shape[0]):
                    vs[r, g] = delta[b, p, k, r] if p >= 0 else 0.0

    @njit(cache=_cache, fastmath=_FAST)
    def _raw_rows(delta, W, bias, b, k, d0u, ndu, lowrank, ps, vs, raws):
        """``raws[g] = delta + bias`` at the group's steps ``ps`` and one channel block. Rank-R (``delta`` is
        ``(Bt, L, K, R)``, ``W`` the ``(K, R, Du)`` projection): ``raws[g] = W_k^T vs[:, g] + bias``, four steps by
        four ranks per pass over the channels, so each load of ``W`` feeds four steps (a row of the group at a time
        re-read the whole ``W_k`` every step, from L2 once it outgrows L1: 147 KiB at VMamba-T's stage 4) and each
        load and store of a row four ranks."""
        if lowrank:
            R = W.shape[1]
            r0 = R % 4
            for d in range(ndu):
                bb = bias[k, d0u + d]
                raws[0, d] = bb
                raws[1, d] = bb
                raws[2, d] = bb
                raws[3, d] = bb
            for r in range(r0):
                a0 = vs[r, 0]
                a1 = vs[r, 1]
                a2 = vs[r, 2]
                a3 = vs[r, 3]
                for d in range(ndu):
                    w = W[k, r, d0u + d]
                    raws[0, d] += a0 * w
                    raws[1, d] += a1 * w
                    raws[2, d] += a2 * w
                    raws[3, d] += a3 * w
            for r in range(r0, R, 4):
                a0, a1, a2, a3 = vs[r, 0], vs[r, 1], vs[r, 2], vs[r, 3]
                b0, b1, b2, b3 = vs[r + 1, 0], vs[r + 1, 1], vs[r + 1, 2], vs[r + 1, 3]
                c0, c1, c2, c3 = vs[r + 2, 0], vs[r + 2, 1], vs[r + 2, 2], vs[r + 2, 3]
                e0, e1, e2, e3 = vs[r + 3, 0], vs[r + 3, 1], vs[r + 3, 2], vs[r + 3, 3]
                for d in range(ndu):
                    w = W[k, r, d0u + d]
                    x = W[k, r + 1, d0u + d]
                    y = W[k, r + 2, d0u + d]
                    z = W[k, r + 3, d0u + d]
                    raws[0, d] += a0 * w + b0 * x + c0 * y + e0 * z
                    raws[1, d] += a1 * w + b1 * x + c1 * y + e1 * z
                    raws[2, d] += a2 * w + b2 * x + c2 * y + e2 * z
                    raws[3, d] += a3 * w + b3 * x + c3 * y + e3 * z
        else:
            for g in range(G):
                p = ps[g]
                if p >= 0:
                    for d in range(ndu):
                        raws[g, d] = delta[b, p, k, d0u + d] + bias[k, d0u + d]

    @njit(cache=_cache, fastmath=_FAST_REDUCE)
    def _lowrank_grads(draws, i0, W, b, k, d0u, ndu, blk, ps, vs, zero, ddelta, dW):
        """The rank-R step size's gradients at a group of steps: ``d(dt)[g] = W_k d(raw)[g]`` (into ``ddelta[blk]``,
        this channel block's share) and ``dW[b, k] += vs d(raw)^T``, from the group's ``d(raw)`` rows
        ``draws[i0 .. i0 + 3]`` (finite; 0 weight at skipped steps). One pass over the channels per rank serves the
        four steps: four dot products and one ``dW`` row update."""
        x0 = draws[i0]
        x1 = draws[i0 + 1]
        x2 = draws[i0 + 2]
        x3 = draws[i0 + 3]
        for r in range(W.shape[1]):
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            v0, v1, v2, v3 = vs[r, 0], vs[r, 1], vs[r, 2], vs[r, 3]
            wr = W[k, r]
            dwr = dW[b, k, r]
            for d in range(ndu):
                w = wr[d0u + d]
                a0 += x0[d] * w
                a1 += x1[d] * w
                a2 += x2[d] * w
                a3 += x3[d] * w
                dwr[d0u + d] += x0[d] * v0 + x1[d] * v1 + x2[d] * v2 + x3[d] * v3
            if ps[0] >= 0:
                ddelta[blk, b, ps[0], k, r] += a0
            if ps[1] >= 0:
                ddelta[blk, b, ps[1], k, r] += a1
            if ps[2] >= 0:
                ddelta[blk, b, ps[2], k, r] += a2
            if ps[3] >= 0:
                ddelta[blk, b, ps[3], k, r] += a3

    @njit(parallel=True, cache=_cache, fastmath=_FAST)
    def _fwd_kernel(u, delta, W, At, B, C, D, bias, zs, order, softplus, lowrank, has_z, merge, nblk, y, last, ckpt):
        Bt, L, K = delta.shape[:3]
        Du = At.shape[2]
        N = At.shape[1]
        T = order.shape[1]
        Ku = u.shape[2]
        Kz = zs.shape[2]
        bs = (Du + nblk - 1) // nblk
        save_ckpt = ckpt.shape[2] > 0
        for job in prange(Bt * nblk):
            b = job // nblk
            d0 = (job % nblk) * bs
            nd = min(d0 + bs, Du) - d0
            d0u = np.uint64(d0)
            ndu = np.uint64(nd)
            h = np.zeros((N, nd), dtype=y.dtype)
            raws = np.empty((G, nd), dtype=y.dtype)
            vs = np.zeros((W.shape[1] if lowrank else 1, G), dtype=y.dtype)
            ps = np.empty(G, dtype=np.int64)
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
                    j = t % G
                    if j == 0:  # the next G steps' step sizes, formed together
                        _step_group(order, delta, b, k, t, min(G, T - t), lowrank, ps, vs)
                        _raw_rows(delta, W, bias, b, k, d0u, ndu, lowrank, ps, vs, raws)
                    p = ps[j]
                    if p < 0:
                        continue
                    raw = raws[j]
                    # the step size goes to its own row: written back over raw, the softplus's "x above 20 stays x"
                    # select became a masked store (vmaskmovps), microcoded and slow on AMD cores
                    if softplus:
                        for d in range(ndu):
                            dts[d] = _softplus(raw[d])
                    else:
                        for d in range(ndu):
                            dts[d] = raw[d]
                    for d in range(ndu):
                        uu = u[b, p, ku, d0u + d]
                        dtu[d] = dts[d] * uu
                        acc[d] = D[k, d0u + d] * uu
                    for n in range(N):
                        Bn = B[b, p, k, n]
                        Cn = C[b, p, k, n]
                        for d in range(ndu):
                            hv = _exp(dts[d] * At[k, n, d0u + d]) * h[n, d] + dtu[d] * Bn
                            h[n, d] = hv
                            acc[d] += hv * Cn
                    if has_z:
                        for d in range(ndu):
                            acc[d] *= zs[b, p, kz, d0u + d]
                    if merge:
                        for d in range(ndu):
                            y[b, p, 0, d0u + d] += acc[d]
                    else:
                        for d in range(ndu):
                            y[b, p, ky, d0u + d] = acc[d]
                last[b, k, :, d0:d0 + nd] = h

    @njit(parallel=True, cache=_cache, fastmath=_FAST_REDUCE)
    def _bwd_kernel(u, delta, W, At, B, C, D, bias, zs, dzs, order, softplus, lowrank, has_z, merge, nblk, ckpt,
                    dout, zero, du, ddelta, dW, dA, dB, dC, dD, dbias, dz):
        """Gradients; dA (N-major), dD, dbias, dW are per batch row and dB, dC per channel block (summed by the
        caller). ``ddelta`` is ``(1, Bt, L, K, Du)`` for the full step size, and for the rank-R one ``(nblk, Bt, L,
        K, R)``: each channel block's share of d(dt), summed by the caller (deterministic, no atomics)."""
        Bt, L, K = delta.shape[:3]
        Du = At.shape[2]
        N = At.shape[1]
        T = order.shape[1]
        Ku = u.shape[2]
        Kz = zs.shape[2]
        bs = (Du + nblk - 1) // nblk
        n_chunks = (T + CHUNK - 1) // CHUNK
        one = zero + np.float32(1.0)  # constants in the compute dtype (a Python float would be float64)
        for job in prange(Bt * nblk):
            b = job // nblk
            blk = job % nblk
            d0 = blk * bs
            nd = min(d0 + bs, Du) - d0
            d0u = np.uint64(d0)
            ndu = np.uint64(nd)
            hs = np.zeros((CHUNK + 1, N, nd), dtype=du.dtype)  # hs[0] = state before the chunk
            decay = np.zeros((CHUNK, N, nd), dtype=du.dtype)  # exp(dt A) of the chunk's steps
            dtc = np.zeros((CHUNK, nd), dtype=du.dtype)  # their step size dt = softplus(raw)
            dsp = np.zeros((CHUNK, nd), dtype=du.dtype)  # and d dt / d raw
            draws = np.zeros((CHUNK if lowrank else 1, nd), dtype=du.dtype)  # d(raw) of the chunk's steps
            raws = np.empty((G, nd), dtype=du.dtype)
            vs = np.zeros((W.shape[1] if lowrank else 1, G), dtype=du.dtype)
            ps = np.empty(G, dtype=np.int64)
            g = np.zeros((N, nd), dtype=du.dtype)
            a_next = np.zeros((N, nd), dtype=du.dtype)
            us = np.empty(nd, dtype=du.dtype)
            dtu = np.empty(nd, dtype=du.dtype)
            dys = np.empty(nd, dtype=du.dtype)
            dtacc = np.empty(nd, dtype=du.dtype)
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
                    # recompute the chunk's states from its checkpoint, keeping each step's dt and decays
                    hs[0] = ckpt[b, k, c, :, d0:d0 + nd]
                    for t in range(t0, t1):
                        i = t - t0
                        j = i % G
                        if j == 0:
                            _step_group(order, delta, b, k, t, min(G, t1 - t), lowrank, ps, vs)
                            _raw_rows(delta, W, bias, b, k, d0u, ndu, lowrank, ps, vs, raws)
                        p = ps[j]
                        if p < 0:
                            hs[i + 1] = hs[i]
                            continue
                        raw = raws[j]
                        if softplus:
                            for d in range(ndu):
                                sp, sg = _softplus_grad(raw[d])
                                dtc[i, d] = sp
                                dsp[i, d] = sg
                        else:
                            for d in range(ndu):
                                dtc[i, d] = raw[d]
                                dsp[i, d] = one
                        for d in range(ndu):
                            dtu[d] = dtc[i, d] * u[b, p, ku, d0u + d]
                        for n in range(N):
                            Bn = B[b, p, k, n]
                            for d in range(ndu):
                                a = _exp(dtc[i, d] * At[k, n, d0u + d])
                                decay[i, n, d] = a
                                hs[i + 1, n, d] = a * hs[i, n, d] + dtu[d] * Bn
                    # walk the chunk in reverse
                    for t in range(t1 - 1, t0 - 1, -1):
                        i = t - t0
                        p = order[k, t]
                        if p < 0:
                            if lowrank:
                                draws[i, :] = 0.0
                            continue
                        for d in range(ndu):
                            us[d] = u[b, p, ku, d0u + d]
                            dys[d] = dout[b, p, ko, d0u + d]
                            dtacc[d] = 0.0
                        if has_z:
                            for d in range(ndu):
                                ypre = D[k, d0u + d] * us[d]
                                for n in range(N):
                                    ypre += hs[i + 1, n, d] * C[b, p, k, n]
                                dz[b, p, kz, d0u + d] += dys[d] * ypre * dzs[b, p, kz, d0u + d]
                                dys[d] = dys[d] * zs[b, p, kz, d0u + d]
                        for d in range(ndu):
                            duu[d] = D[k, d0u + d] * dys[d]
                            dD[b, k, d0u + d] += dys[d] * us[d]
                        for n in range(N):
                            Bn = B[b, p, k, n]
                            Cn = C[b, p, k, n]
                            dBacc = zero
                            dCacc = zero
                            for d in range(ndu):
                                An = At[k, n, d0u + d]
                                a = decay[i, n, d]
                                dt = dtc[i, d]
                                gv = a_next[n, d] * g[n, d] + dys[d] * Cn
                                g[n, d] = gv
                                a_next[n, d] = a
                                ah = a * hs[i, n, d]
                                dtacc[d] += gv * (An * ah + us[d] * Bn)
                                dA[b, k, n, d0u + d] += gv * dt * ah
                                dBacc += gv * dt * us[d]
                                dCacc += dys[d] * hs[i + 1, n, d]
                                duu[d] += gv * dt * Bn
                            dB[blk, b, p, k, n] += dBacc
                            dC[blk, b, p, k, n] += dCacc
                        for d in range(ndu):
                            dtacc[d] *= dsp[i, d]  # d raw = d dt * softplus'(raw)
                        for d in range(ndu):
                            du[b, p, ku, d0u + d] += duu[d]
                            dbias[b, k, d0u + d] += dtacc[d]
                        if lowrank:
                            for d in range(ndu):
                                draws[i, d] = dtacc[d]
                        else:
                            for d in range(ndu):
                                ddelta[0, b, p, k, d0u + d] += dtacc[d]
                    if lowrank:
                        # the chunk's d(dt) = d(raw) W_k^T and dW_k += d(raw)^T dt, four steps at a time; rows past
                        # the chunk's end are zero
                        for i in range(t1 - t0, (t1 - t0 + G - 1) // G * G):
                            draws[i, :] = 0.0
                        for t in range(t0, t1, G):
                            _step_group(order, delta, b, k, t, min(G, t1 - t), lowrank, ps, vs)
                            _lowrank_grads(draws, t - t0, W, b, k, d0u, ndu, blk, ps, vs, zero, ddelta, dW)


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


def _lowrank_weight(W: Optional[torch.Tensor], ct: torch.dtype) -> np.ndarray:
    """The ``(K, Du, R)`` step-size projection as ``(K, R, Du)`` (channels innermost), or a dummy."""
    if W is None:
        return np.zeros((1, 1, 1), dtype=np.float64 if ct == torch.float64 else np.float32)
    return _np(W.detach().to(ct).transpose(1, 2))


def forward(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus: bool, merge: bool, save_ckpt: bool,
            W: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Runs the forward kernel on normalised inputs (see ``vssm.kernels.op``): ``u`` and ``z`` are 4-D; with ``W``
    ``(K, Du, R)``, ``delta`` is the rank-R step size ``(Bt, L, K, R)``.

    Returns ``y`` (compute dtype, ``(Bt, L, K or 1, Du)``), the last state ``(Bt, K, Du, N)`` and the chunk
    checkpoints ``(Bt, K, n_chunks, N, Du)`` (empty unless ``save_ckpt``).
    """
    _require_numba()
    ct = _compute_dtype(u)
    Bt, L, K = delta.shape[:3]
    N = A.shape[-1]
    Du = A.shape[1]
    T = order.shape[1]
    cvt = lambda t: t.detach().to(ct)  # noqa: E731
    y = torch.zeros(Bt, L, 1 if merge else K, Du, dtype=ct)
    last = torch.empty(Bt, K, N, Du, dtype=ct)
    ckpt = torch.empty(Bt, K, (T + CHUNK - 1) // CHUNK if save_ckpt else 0, N, Du, dtype=ct)
    zs = F.silu(cvt(z)) if z is not None else torch.zeros(1, 1, 1, 1, dtype=ct)
    _fwd_kernel(_np(cvt(u)), _np(cvt(delta)), _lowrank_weight(W, ct), _np(cvt(A).transpose(1, 2)), _np(cvt(B)),
                _np(cvt(C)), _np(cvt(D)), _np(cvt(delta_bias)), _np(zs), _np(order), delta_softplus, W is not None,
                z is not None, merge, _blocks(Bt, Du), y.numpy(), last.numpy(), ckpt.numpy())
    return y, last.transpose(2, 3).contiguous(), ckpt


def backward(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus: bool, merge: bool,
             W: Optional[torch.Tensor] = None):
    """Gradients of every tensor input, in the compute dtype: ``(du, ddelta, dA, dB, dC, dD, dbias, dz, dW)``;
    with ``W``, ``ddelta`` is d(dt) ``(Bt, L, K, R)`` and ``dW`` is ``(K, Du, R)`` (else None)."""
    _require_numba()
    ct = _compute_dtype(u)
    Bt, L, K = delta.shape[:3]
    N = A.shape[-1]
    Du = A.shape[1]
    nblk = _blocks(Bt, Du)
    lowrank = W is not None
    cvt = lambda t: t.detach().to(ct)  # noqa: E731
    du = torch.zeros(u.shape, dtype=ct)
    ddelta = torch.zeros((nblk if lowrank else 1,) + tuple(delta.shape), dtype=ct)
    dW = torch.zeros(Bt, K, W.shape[2], Du, dtype=ct) if lowrank else torch.zeros(1, 1, 1, 1, dtype=ct)
    dA = torch.zeros(Bt, K, N, Du, dtype=ct)
    dB = torch.zeros(nblk, Bt, L, K, N, dtype=ct)
    dC = torch.zeros(nblk, Bt, L, K, N, dtype=ct)
    dD = torch.zeros(Bt, K, Du, dtype=ct)
    dbias = torch.zeros(Bt, K, Du, dtype=ct)
    if z is not None:
        zc = cvt(z)
        sg = torch.sigmoid(zc)
        zs, dzs = zc * sg, sg * (1 + zc * (1 - sg))  # silu(z) and its derivative
    else:
        zs = dzs = torch.zeros(1, 1, 1, 1, dtype=ct)
    dz = torch.zeros(zs.shape, dtype=ct)
    zero = np.float64(0.0) if ct == torch.float64 else np.float32(0.0)
    _bwd_kernel(_np(cvt(u)), _np(cvt(delta)), _lowrank_weight(W, ct), _np(cvt(A).transpose(1, 2)), _np(cvt(B)),
                _np(cvt(C)), _np(cvt(D)), _np(cvt(delta_bias)), _np(zs), _np(dzs), _np(order), delta_softplus,
                lowrank, z is not None, merge, nblk, _np(ckpt), _np(cvt(dout)), zero, du.numpy(), ddelta.numpy(),
                dW.numpy(), dA.numpy(), dB.numpy(), dC.numpy(), dD.numpy(), dbias.numpy(), dz.numpy())
    dz = dz if z is not None else None
    ddelta = ddelta.sum(0) if lowrank else ddelta[0]
    dW = dW.sum(0).transpose(1, 2) if lowrank else None
    return du, ddelta, dA.sum(0).transpose(1, 2), dB.sum(0), dC.sum(0), dD.sum(0), dbias.sum(0), dz, dW
