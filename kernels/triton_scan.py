"""Triton backend of the ordered selective scan: forward and backward kernels with the scan order fused in.

One program owns one (batch row, path ``k``, channel tile) and walks path ``k`` in chunks of ``CH`` steps. For a
chunk it loads ``CH`` entries of ``order[k]`` and gathers the channel-last rows of ``u``, ``delta``, ``B``, ``C`` at
those flat positions (each row a contiguous load over the channel tile), runs the recurrence over the chunk with
``tl.associative_scan`` and writes ``y`` back at the same positions. Nothing is permuted in memory: every scan order
costs what the raster order costs.

State is fp32 whatever the input dtype. The forward never writes the ``(.., N)`` states: it keeps only the state
at the start of every chunk (``ckpt``, ``(Bt, K, n_chunks, Du, N)``) when a backward will follow. The backward walks
the chunks in reverse, recomputes the chunk's states from its checkpoint, and runs the adjoint recurrence
``g_t = a_{t+1} g_{t+1} + dy_t C_t`` as a reverse associative scan. ``dB`` / ``dC`` are reduced over the channel tile
before their atomic add; ``dA`` / ``D`` / ``delta_bias`` gradients are reduced over the whole path in registers and
written once per (batch row, path, tile) for a deterministic sum on the host.

Under ``TRITON_INTERPRET=1`` (set before this module is imported) the same kernels run on CPU tensors; the test
suite uses that to check them against the oracle without a GPU.
"""
from __future__ import annotations

from typing import Tuple

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is not installed
    triton = None


def is_available() -> bool:
    return triton is not None


def lowrank_forward_crashes(N: int) -> bool:
    """Whether this triton's compiler crashes on the rank-R forward kernel at state size ``N``: triton 3.3 dies
    (SIGSEGV in an MLIR pass) on it when the padded state is 2 or 4, for sm_80 and sm_90 alike (measured with 3.3.1,
    the triton of torch 2.7; 3.4 to 3.7 compile it). ``selective_scan`` then forms the step size outside the kernel."""
    return triton is not None and triton.__version__.startswith("3.3.") and triton.next_power_of_2(N) in (2, 4)


def _require_triton() -> None:
    if triton is None:
        raise RuntimeError(
            "the 'triton' selective-scan backend needs triton (pip install triton) for CUDA tensors; "
            "move the tensors to CPU or pass backend='ref'"
        )


#: Warps per program: the backward holds twice the forward's tensors per chunk, so it spreads them over 8 warps.
NUM_WARPS = {"fwd": 4, "bwd": 8}
#: Register cap per thread (PTX ``.maxnreg``): 128 keeps >= 16 warps resident per SM at 4 or 8 warps per block.
#: Without it ptxas aims at a higher occupancy and spills a few bytes in some variants (64-80 registers + 8 bytes
#: of stack at N = 1, sm_80); with it every variant the models launch compiles without spill.
MAX_REGISTERS = 128
#: Elements of one (CH, BD, NP) chunk tile. The chunk's tensors (decays, inputs, scanned states; the backward's
#: adjoints too) live in registers: at 512 elements (4 warps forward, 8 backward) the variants the models launch
#: compile for sm_80 / sm_90 within MAX_REGISTERS without spill, i.e. >= 16 resident warps per SM (measured with
#: ``tools/benchmark.py kernel --compile-only``; tests/kernels/test_triton_compile.py keeps it so). The earlier
#: 4096-element tiles needed 150-255 registers and spilled in the backward: 8 resident warps, latency-bound.
TILE_ELEMENTS = 512


def tiles(N: int, Du: int) -> Tuple[int, int, int]:
    """(CH, BD, NP): steps per chunk, channels per tile, padded state size, with CH * BD * NP <= TILE_ELEMENTS.

    Wider channel tiles for small states (coalesced row loads of 32 channels at N = 1), narrower for N = 16; the
    chunk length follows from the state size alone, so a narrow ``Du`` only shrinks the tile."""
    NP = triton.next_power_of_2(N)
    bd_full = 32 if NP == 1 else 16 if NP <= 8 else 8
    CH = max(2, TILE_ELEMENTS // (bd_full * NP))
    BD = min(bd_full, triton.next_power_of_2(Du))
    return CH, BD, NP


if triton is not None:

    @triton.jit
    def _combine(a1, b1, a2, b2):
        return a1 * a2, b1 * a2 + b2

    @triton.jit
    def _softplus(x):
        return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(tl.minimum(x, 20.0))))

    @triton.jit
    def _step_size(delta_ptr, W_ptr, b, p, valid, k, d, dmask, m2, bias, L, K, Du, R, s_b, s_l, s_k,
                   LOWRANK: tl.constexpr, CH: tl.constexpr, BD: tl.constexpr):
        """delta + delta_bias of one chunk (CH, BD). With LOWRANK, ``delta`` is the rank-R step size (strides
        s_b, s_l, s_k, 1) and the (K, Du, R) projection ``W`` forms the full step size here, never in memory."""
        if LOWRANK:
            off = b.to(tl.int64) * s_b + tl.maximum(p, 0).to(tl.int64) * s_l + k * s_k  # (CH,)
            raw = tl.zeros((CH, BD), dtype=tl.float32) + bias[None, :]
            for r in range(R):
                x = tl.load(delta_ptr + off + r, mask=valid, other=0.0).to(tl.float32)
                w = tl.load(W_ptr + (k * Du + d) * R + r, mask=dmask, other=0.0).to(tl.float32)
                raw += x[:, None] * w[None, :]
        else:
            off = ((b.to(tl.int64) * L + tl.maximum(p, 0).to(tl.int64)) * K + k) * Du
            raw = tl.load(delta_ptr + off[:, None] + d[None, :], mask=m2, other=0.0).to(tl.float32)
            raw = raw + bias[None, :]
        return raw

    @triton.jit
    def _fwd_kernel(
        u_ptr, delta_ptr, W_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, z_ptr, order_ptr,
        y_ptr, last_ptr, ckpt_ptr,
        L, K, Du, N, T, n_chunks, R, s_b, s_l, s_k,
        KU: tl.constexpr, KZ: tl.constexpr, HAS_Z: tl.constexpr, MERGE: tl.constexpr,
        SOFTPLUS: tl.constexpr, SAVE_CKPT: tl.constexpr, LOWRANK: tl.constexpr, CH: tl.constexpr, BD: tl.constexpr,
        NP: tl.constexpr,
    ):
        pid = tl.program_id(0)
        b = pid // K
        k = pid % K
        d = tl.program_id(1) * BD + tl.arange(0, BD)
        n = tl.arange(0, NP)
        dmask = d < Du
        nmask = n < N
        ku = 0
        if KU > 1:
            ku = k
        kz = 0
        if KZ > 1:
            kz = k
        A = tl.load(A_ptr + (k * Du + d[:, None]) * N + n[None, :], mask=dmask[:, None] & nmask[None, :], other=0.0)
        A = A.to(tl.float32)
        Dk = tl.load(D_ptr + k * Du + d, mask=dmask, other=0.0).to(tl.float32)
        bias = tl.load(bias_ptr + k * Du + d, mask=dmask, other=0.0).to(tl.float32)
        h = tl.zeros((BD, NP), dtype=tl.float32)
        tt = tl.arange(0, CH)
        for c in range(n_chunks):
            if SAVE_CKPT:
                off = (((b * K + k) * n_chunks + c) * Du + d[:, None]) * N + n[None, :]
                tl.store(ckpt_ptr + off, h, mask=dmask[:, None] & nmask[None, :])
            t = c * CH + tt
            p = tl.load(order_ptr + k * T + t, mask=t < T, other=-1)
            valid = p >= 0
            row = b.to(tl.int64) * L + tl.maximum(p, 0).to(tl.int64)  # (CH,)
            m2 = valid[:, None] & dmask[None, :]
            mn = valid[:, None] & nmask[None, :]
            u = tl.load(u_ptr + (row[:, None] * KU + ku) * Du + d[None, :], mask=m2, other=0.0).to(tl.float32)
            dt = _step_size(delta_ptr, W_ptr, b, p, valid, k, d, dmask, m2, bias, L, K, Du, R, s_b, s_l, s_k,
                            LOWRANK, CH, BD)
            if SOFTPLUS:
                dt = _softplus(dt)
            dt = tl.where(m2, dt, 0.0)
            Bv = tl.load(B_ptr + (row[:, None] * K + k) * N + n[None, :], mask=mn, other=0.0).to(tl.float32)
            Cv = tl.load(C_ptr + (row[:, None] * K + k) * N + n[None, :], mask=mn, other=0.0).to(tl.float32)
            dA = tl.exp(dt[:, :, None] * A[None, :, :])  # (CH, BD, NP); 1 where dt = 0 (skipped rows)
            dBu = (dt * u)[:, :, None] * Bv[:, None, :]
            aa, hh = tl.associative_scan((dA, dBu), 0, _combine)
            hs = hh + aa * h[None, :, :]
            y = tl.sum(hs * Cv[:, None, :], 2) + Dk[None, :] * u
            if HAS_Z:
                z = tl.load(z_ptr + (row[:, None] * KZ + kz) * Du + d[None, :], mask=m2, other=0.0).to(tl.float32)
                y = y * z * tl.sigmoid(z)
            if MERGE:
                tl.atomic_add(y_ptr + row[:, None] * Du + d[None, :], y, mask=m2)
            else:
                yp = y_ptr + (row[:, None] * K + k) * Du + d[None, :]
                tl.store(yp, y.to(y_ptr.dtype.element_ty), mask=m2)
            h = tl.sum(tl.where((tt == CH - 1)[:, None, None], hs, 0.0), 0)
        tl.store(last_ptr + ((b * K + k) * Du + d[:, None]) * N + n[None, :], h, mask=dmask[:, None] & nmask[None, :])

    @triton.jit
    def _bwd_kernel(
        u_ptr, delta_ptr, W_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, z_ptr, order_ptr, ckpt_ptr, dout_ptr,
        du_ptr, ddelta_ptr, dW_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr, dz_ptr,
        L, K, Du, N, T, n_chunks, R, s_b, s_l, s_k, n_rows,
        KU: tl.constexpr, KZ: tl.constexpr, HAS_Z: tl.constexpr, MERGE: tl.constexpr,
        SOFTPLUS: tl.constexpr, LOWRANK: tl.constexpr, CH: tl.constexpr, BD: tl.constexpr, NP: tl.constexpr,
        RP: tl.constexpr,
    ):
        pid = tl.program_id(0)
        b = pid // K
        k = pid % K
        d = tl.program_id(1) * BD + tl.arange(0, BD)
        n = tl.arange(0, NP)
        dmask = d < Du
        nmask = n < N
        dn_mask = dmask[:, None] & nmask[None, :]
        ku = 0
        if KU > 1:
            ku = k
        kz = 0
        if KZ > 1:
            kz = k
        A = tl.load(A_ptr + (k * Du + d[:, None]) * N + n[None, :], mask=dn_mask, other=0.0).to(tl.float32)
        Dk = tl.load(D_ptr + k * Du + d, mask=dmask, other=0.0).to(tl.float32)
        bias = tl.load(bias_ptr + k * Du + d, mask=dmask, other=0.0).to(tl.float32)
        tt = tl.arange(0, CH)
        g_carry = tl.zeros((BD, NP), dtype=tl.float32)
        dA_acc = tl.zeros((BD, NP), dtype=tl.float32)
        dD_acc = tl.zeros((BD,), dtype=tl.float32)
        dbias_acc = tl.zeros((BD,), dtype=tl.float32)
        rr = tl.arange(0, RP)
        dW_acc = tl.zeros((BD, RP), dtype=tl.float32)
        for ci in range(n_chunks):
            c = n_chunks - 1 - ci
            t = c * CH + tt
            p = tl.load(order_ptr + k * T + t, mask=t < T, other=-1)
            valid = p >= 0
            row = b.to(tl.int64) * L + tl.maximum(p, 0).to(tl.int64)
            m2 = valid[:, None] & dmask[None, :]
            mn = valid[:, None] & nmask[None, :]
            u = tl.load(u_ptr + (row[:, None] * KU + ku) * Du + d[None, :], mask=m2, other=0.0).to(tl.float32)
            raw = _step_size(delta_ptr, W_ptr, b, p, valid, k, d, dmask, m2, bias, L, K, Du, R, s_b, s_l, s_k,
                             LOWRANK, CH, BD)
            dt = raw
            if SOFTPLUS:
                dt = _softplus(raw)
            dt = tl.where(m2, dt, 0.0)
            Bv = tl.load(B_ptr + (row[:, None] * K + k) * N + n[None, :], mask=mn, other=0.0).to(tl.float32)
            Cv = tl.load(C_ptr + (row[:, None] * K + k) * N + n[None, :], mask=mn, other=0.0).to(tl.float32)
            # recompute the chunk's states from its checkpoint
            h0 = tl.load(ckpt_ptr + (((b * K + k) * n_chunks + c) * Du + d[:, None]) * N + n[None, :],
                         mask=dn_mask, other=0.0)
            dA = tl.exp(dt[:, :, None] * A[None, :, :])
            dBu = (dt * u)[:, :, None] * Bv[:, None, :]
            aa, hh = tl.associative_scan((dA, dBu), 0, _combine)
            hs = hh + aa * h0[None, :, :]
            ah = hs - dBu  # a_t * h_{t-1}
            # output gradient, through the gate
            if MERGE:
                go = tl.load(dout_ptr + row[:, None] * Du + d[None, :], mask=m2, other=0.0).to(tl.float32)
            else:
                go = tl.load(dout_ptr + (row[:, None] * K + k) * Du + d[None, :], mask=m2, other=0.0).to(tl.float32)
            if HAS_Z:
                z = tl.load(z_ptr + (row[:, None] * KZ + kz) * Du + d[None, :], mask=m2, other=0.0).to(tl.float32)
                sg = tl.sigmoid(z)
                ypre = tl.sum(hs * Cv[:, None, :], 2) + Dk[None, :] * u
                dz = go * ypre * sg * (1.0 + z * (1.0 - sg))
                dzp = dz_ptr + (row[:, None] * KZ + kz) * Du + d[None, :]
                if KZ > 1:
                    tl.store(dzp, dz, mask=m2)
                else:
                    tl.atomic_add(dzp, dz, mask=m2)
                dy = go * z * sg
            else:
                dy = go
            # a_{t+1}: the decay of the next step of the path (1 past the end or at a skipped step)
            tn = t + 1
            pn = tl.load(order_ptr + k * T + tn, mask=tn < T, other=-1)
            vn = pn >= 0
            mn2 = vn[:, None] & dmask[None, :]
            rawn = _step_size(delta_ptr, W_ptr, b, pn, vn, k, d, dmask, mn2, bias, L, K, Du, R, s_b, s_l, s_k,
                              LOWRANK, CH, BD)
            dtn = rawn
            if SOFTPLUS:
                dtn = _softplus(rawn)
            dtn = tl.where(mn2, dtn, 0.0)
            a_next = tl.exp(dtn[:, :, None] * A[None, :, :])
            dyC = dy[:, :, None] * Cv[:, None, :]
            ga, gg = tl.associative_scan((a_next, dyC), 0, _combine, reverse=True)
            g = gg + ga * g_carry[None, :, :]
            g_carry = tl.sum(tl.where((tt == 0)[:, None, None], g, 0.0), 0)
            # gradients of this chunk
            ddt = tl.sum(g * (A[None, :, :] * ah + u[:, :, None] * Bv[:, None, :]), 2)
            draw = ddt
            if SOFTPLUS:
                draw = tl.where(raw > 20.0, ddt, ddt * tl.sigmoid(raw))
            draw = tl.where(m2, draw, 0.0)
            if LOWRANK:
                # d(dt) = W_k^T d(raw), this channel tile's share (summed over tiles on the host: deterministic);
                # d(W) accumulates over the path in registers
                off = b.to(tl.int64) * s_b + tl.maximum(p, 0).to(tl.int64) * s_l + k * s_k
                prt = ((tl.program_id(1) * n_rows + row) * K + k) * R
                for r in range(R):
                    w = tl.load(W_ptr + (k * Du + d) * R + r, mask=dmask, other=0.0).to(tl.float32)
                    tl.store(ddelta_ptr + prt + r, tl.sum(draw * w[None, :], 1), mask=valid)
                    x = tl.load(delta_ptr + off + r, mask=valid, other=0.0).to(tl.float32)
                    dW_acc += tl.where((rr == r)[None, :], tl.sum(draw * x[:, None], 0)[:, None], 0.0)
            else:
                tl.store(ddelta_ptr + (row[:, None] * K + k) * Du + d[None, :], draw, mask=m2)
            dbias_acc += tl.sum(draw, 0)
            dA_acc += tl.sum(g * dt[:, :, None] * ah, 0)
            du = tl.sum(g * Bv[:, None, :], 2) * dt + Dk[None, :] * dy
            dup = du_ptr + (row[:, None] * KU + ku) * Du + d[None, :]
            if KU > 1:
                tl.store(dup, du, mask=m2)
            else:
                tl.atomic_add(dup, du, mask=m2)
            dD_acc += tl.sum(dy * u, 0)
            dBt = tl.sum(g * (dt * u)[:, :, None], 1)  # reduced over the channel tile: (CH, NP)
            dCt = tl.sum(dy[:, :, None] * hs, 1)
            tl.atomic_add(dB_ptr + (row[:, None] * K + k) * N + n[None, :], dBt, mask=mn)
            tl.atomic_add(dC_ptr + (row[:, None] * K + k) * N + n[None, :], dCt, mask=mn)
        tl.store(dA_ptr + ((b * K + k) * Du + d[:, None]) * N + n[None, :], dA_acc, mask=dn_mask)
        tl.store(dD_ptr + (b * K + k) * Du + d, dD_acc, mask=dmask)
        tl.store(dbias_ptr + (b * K + k) * Du + d, dbias_acc, mask=dmask)
        if LOWRANK:
            tl.store(dW_ptr + ((b * K + k) * Du + d[:, None]) * R + rr[None, :], dW_acc,
                     mask=dmask[:, None] & (rr < R)[None, :])


def ckpt_chunks(T: int, N: int, Du: int) -> int:
    CH = tiles(N, Du)[0]
    return -(-T // CH)


def _lowrank_args(delta, W):
    """(W, R, s_b, s_l, s_k) kernel arguments: the rank-R step size is read through its strides (last one 1)."""
    if W is None:
        return delta, 1, 0, 0, 0
    return W, W.shape[2], delta.stride(0), delta.stride(1), delta.stride(2)


def forward(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus: bool, merge: bool, save_ckpt: bool,
            out_dtype: torch.dtype, W=None):
    """Forward launcher on normalised, contiguous inputs (``u``/``z`` 4-D; with ``W`` ``(K, Du, R)``, ``delta`` is
    the rank-R step size ``(Bt, L, K, R)``, any strides with the last one 1). Returns ``(y, last, ckpt)``."""
    _require_triton()
    Bt, L, K = delta.shape[:3]
    N = A.shape[-1]
    Du = A.shape[1]
    T = order.shape[1]
    CH, BD, NP = tiles(N, Du)
    n_chunks = -(-T // CH)
    dev = u.device
    y = torch.zeros(Bt, L, 1, Du, device=dev, dtype=torch.float32) if merge else \
        torch.zeros(Bt, L, K, Du, device=dev, dtype=out_dtype)
    last = torch.empty(Bt, K, Du, N, device=dev, dtype=torch.float32)
    ckpt = torch.empty(Bt, K, n_chunks if save_ckpt else 0, Du, N, device=dev, dtype=torch.float32)
    Wp, R, s_b, s_l, s_k = _lowrank_args(delta, W)
    grid = (Bt * K, triton.cdiv(Du, BD))
    _fwd_kernel[grid](
        u, delta, Wp, A, B, C, D, delta_bias, z if z is not None else u, order, y, last, ckpt,
        L, K, Du, N, T, n_chunks, R, s_b, s_l, s_k,
        KU=u.shape[2], KZ=z.shape[2] if z is not None else 1, HAS_Z=z is not None, MERGE=merge,
        SOFTPLUS=delta_softplus, SAVE_CKPT=save_ckpt, LOWRANK=W is not None, CH=CH, BD=BD, NP=NP,
        num_warps=NUM_WARPS["fwd"], maxnreg=MAX_REGISTERS,
    )
    return y, last, ckpt


def backward(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus: bool, merge: bool, W=None):
    """Backward launcher. Returns fp32 ``(du, ddelta, dA, dB, dC, dD, dbias, dz, dW)``; with ``W``, ``ddelta`` is
    d(dt) ``(Bt, L, K, R)`` (each channel tile's share summed here, in a fixed order) and ``dW`` ``(K, Du, R)``."""
    _require_triton()
    Bt, L, K = delta.shape[:3]
    N = A.shape[-1]
    Du = A.shape[1]
    T = order.shape[1]
    CH, BD, NP = tiles(N, Du)
    n_chunks = ckpt.shape[2]
    dev = u.device
    f32 = dict(device=dev, dtype=torch.float32)
    n_tiles = triton.cdiv(Du, BD)
    Wp, R, s_b, s_l, s_k = _lowrank_args(delta, W)
    du = torch.zeros(u.shape, **f32)
    if W is None:
        ddelta = torch.zeros(delta.shape, **f32)  # positions a path never visits get no gradient from it
        dW = ddelta
    else:
        ddelta = torch.zeros((n_tiles, Bt, L, K, R), **f32)
        dW = torch.empty(Bt, K, Du, R, **f32)
    dA = torch.empty(Bt, K, Du, N, **f32)
    dB = torch.zeros(Bt, L, K, N, **f32)
    dC = torch.zeros(Bt, L, K, N, **f32)
    dD = torch.empty(Bt, K, Du, **f32)
    dbias = torch.empty(Bt, K, Du, **f32)
    dz = torch.zeros(z.shape, **f32) if z is not None else None
    grid = (Bt * K, n_tiles)
    _bwd_kernel[grid](
        u, delta, Wp, A, B, C, D, delta_bias, z if z is not None else u, order, ckpt, dout.contiguous(),
        du, ddelta, dW, dA, dB, dC, dD, dbias, dz if dz is not None else du,
        L, K, Du, N, T, n_chunks, R, s_b, s_l, s_k, Bt * L,
        KU=u.shape[2], KZ=z.shape[2] if z is not None else 1, HAS_Z=z is not None, MERGE=merge,
        SOFTPLUS=delta_softplus, LOWRANK=W is not None, CH=CH, BD=BD, NP=NP, RP=triton.next_power_of_2(R),
        num_warps=NUM_WARPS["bwd"], maxnreg=MAX_REGISTERS,
    )
    if W is None:
        return du, ddelta, dA.sum(0), dB, dC, dD.sum(0), dbias.sum(0), dz, None
    return du, ddelta.sum(0), dA.sum(0), dB, dC, dD.sum(0), dbias.sum(0), dz, dW.sum(0)
