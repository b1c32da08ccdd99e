"""Benchmarks that print tables to paste into notes. Ratios are taken inside one run (the machine is shared).

    python tools/benchmark.py kernel [--quick] [--device cpu|cuda]   selective-scan op
    python tools/benchmark.py kernel --compile-only [--quick]         Triton kernels compiled for sm_80 / sm_90
    python tools/benchmark.py kernel --against REV [--quick]         numba kernels of git REV vs the working tree
    python tools/benchmark.py mamba-block [--quick] [--device ...]   mamba_inner / bimamba_inner vs unfused
    python tools/benchmark.py scans                                   order generation at 1024x1024
    python tools/benchmark.py models [...]                            model throughput (tools/bench_models.py)
    python tools/benchmark.py flops [--models ...] [--dense]          GFLOPs, ours beside the published
    python tools/benchmark.py deploy [--models ...]                   eager vs onnxruntime img/s

Kernel shapes are VMamba-T (s1l8) stages: Bt=8, K=4, (Du, L) = (96, 3136), (192, 784), (384, 196), (768, 49),
with N=1 (VMamba v2) and N=16 (v0 / Mamba), u shared by the paths and merge='sum', as the SS2D mixer calls it.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable, List, Sequence, Tuple

import torch

STAGES = [(96, 3136), (192, 784), (384, 196), (768, 49)]


def cpu_name() -> str:
    """The CPU's model and vector ISA for the tables' headers (CPU figures move with the CPU)."""
    from vssm.env import cpu_name as name

    return name()


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1,
           sync: Callable[[], None] = lambda: None) -> float:
    """Median wall time of ``fn`` in seconds."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def make_scan_inputs(Bt: int, L: int, K: int, Du: int, N: int, device: str, dtype=torch.float32, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    t = dict(u=r(Bt, L, Du), delta=r(Bt, L, K, Du) * 0.5 - 1.0, A=-torch.exp(r(K, Du, N) * 0.5),
             B=r(Bt, L, K, N), C=r(Bt, L, K, N), D=r(K, Du), delta_bias=r(K, Du) * 0.3)
    out = {}
    for k, v in t.items():
        v = v.to(device=device, dtype=dtype if k in ("u", "delta", "B", "C") else torch.float32)
        out[k] = v.requires_grad_(requires_grad)
    return out


def op_bytes(Bt: int, L: int, K: int, Du: int, N: int, elt: int = 4) -> int:
    """Bytes the op must move at least: read u, delta, B, C; write y (merged)."""
    return elt * (Bt * L * Du + Bt * L * K * Du + 2 * Bt * L * K * N + Bt * L * Du)


def table(rows: List[List[str]], header: List[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cpu_row(si: int, Bt: int, L: int, K: int, Du: int, N: int, repeat: int) -> List[str]:
    from vssm.kernels import selective_scan

    t = make_scan_inputs(Bt, L, K, Du, N, "cpu")
    tg = make_scan_inputs(Bt, L, K, Du, N, "cpu", requires_grad=True)

    def fwd(be):
        return selective_scan(**t, merge="sum", backend=be)

    def fwdbwd(be):
        selective_scan(**tg, merge="sum", backend=be).sum().backward()

    nbytes = op_bytes(Bt, L, K, Du, N)
    src = torch.randn(nbytes // 8)
    dst = torch.empty_like(src)
    t_copy = timeit(lambda: dst.copy_(src), repeat=10)  # reads and writes nbytes // 2 each: nbytes moved
    t_cpu = timeit(lambda: fwd("cpu"), repeat=repeat)
    t_cpu_fb = timeit(lambda: fwdbwd("cpu"), repeat=repeat)
    t_ref = timeit(lambda: fwd("ref"), repeat=1, warmup=0)
    # the oracle's autograd graph keeps one (Bt, L, Du) output per step: L^2 memory, 30 GB at stage 1
    ref_graph_bytes = 4 * Bt * L * L * Du * K
    t_ref_fb = timeit(lambda: fwdbwd("ref"), repeat=1, warmup=0) if ref_graph_bytes < 2**31 else None
    ref_fb = ("-", "-") if t_ref_fb is None else (f"{t_ref_fb * 1e3:.0f}", f"{t_ref_fb / t_cpu_fb:.0f}x")
    return [f"{si + 1}", f"{Du}", f"{L}", f"{N}", f"{t_ref * 1e3:.0f}", f"{t_cpu * 1e3:.1f}", f"{t_ref / t_cpu:.0f}x",
            ref_fb[0], f"{t_cpu_fb * 1e3:.1f}", ref_fb[1], f"{t_copy * 1e3:.2f}", f"{t_cpu / t_copy:.1f}x"]


def _lowrank_row(si: int, Bt: int, L: int, K: int, Du: int, N: int, repeat: int) -> List[str]:
    """Today's path (dt einsum, then the op on the full step size) against the fused rank-R step size."""
    from vssm.kernels import selective_scan

    R = -(-Du // 16)  # VMamba-T (ssm_ratio 1): dt_rank = ceil(C / 16) with C = Du
    g = torch.Generator().manual_seed(1)
    base = make_scan_inputs(Bt, L, K, Du, N, "cpu")
    base.pop("delta")
    x_dbl = torch.randn(Bt, L, K, R + 2 * N, generator=g)
    W = torch.randn(K, Du, R, generator=g) * R ** -0.5
    leaves = [base["u"], x_dbl, W]

    def full():
        delta = torch.einsum("blkr,kdr->blkd", x_dbl[..., :R], W)
        return selective_scan(**base, delta=delta, merge="sum", backend="cpu")

    def fused():
        return selective_scan(**base, delta=x_dbl[..., :R], dt_proj_weight=W, merge="sum", backend="cpu")

    def fb(fn):
        for x in leaves:
            x.requires_grad_(True)
            x.grad = None
        fn().sum().backward()
        for x in leaves:
            x.requires_grad_(False)

    err = (full() - fused()).abs().max().item()
    t_full, t_fused = timeit(full, repeat=repeat), timeit(fused, repeat=repeat)
    t_full_fb, t_fused_fb = timeit(lambda: fb(full), repeat=repeat), timeit(lambda: fb(fused), repeat=repeat)
    return [f"{si + 1}", f"{Du}", f"{L}", f"{N}", f"{R}", f"{t_full * 1e3:.1f}", f"{t_fused * 1e3:.1f}",
            f"{t_full / t_fused:.2f}x", f"{t_full_fb * 1e3:.1f}", f"{t_fused_fb * 1e3:.1f}",
            f"{t_full_fb / t_fused_fb:.2f}x", f"{err:.1e}"]


def _portable_row(si: int, Bt: int, L: int, K: int, Du: int, N: int, repeat: int) -> List[str]:
    """The portable torch backend against the oracle (ref) and the numba kernels (cpu), forward and f+b."""
    from vssm.kernels import selective_scan
    from vssm.kernels.portable import chunk_length

    t = make_scan_inputs(Bt, L, K, Du, N, "cpu")
    tg = make_scan_inputs(Bt, L, K, Du, N, "cpu", requires_grad=True)

    def fwd(be):
        return selective_scan(**t, merge="sum", backend=be)

    def fwdbwd(be):
        selective_scan(**tg, merge="sum", backend=be).sum().backward()

    err = (fwd("torch") - fwd("cpu")).abs().max().item()
    t_torch, t_torch_fb = timeit(lambda: fwd("torch"), repeat=repeat), timeit(lambda: fwdbwd("torch"), repeat=repeat)
    t_cpu, t_cpu_fb = timeit(lambda: fwd("cpu"), repeat=repeat), timeit(lambda: fwdbwd("cpu"), repeat=repeat)
    t_ref = timeit(lambda: fwd("ref"), repeat=1, warmup=0)
    return [f"{si + 1}", f"{Du}", f"{L}", f"{N}", f"{chunk_length(K, Du, N, L)}", f"{t_ref * 1e3:.0f}",
            f"{t_torch * 1e3:.1f}", f"{t_ref / t_torch:.1f}x", f"{t_cpu * 1e3:.1f}", f"{t_torch / t_cpu:.1f}x",
            f"{t_torch_fb * 1e3:.1f}", f"{t_cpu_fb * 1e3:.1f}", f"{t_torch_fb / t_cpu_fb:.1f}x", f"{err:.1e}"]


def bench_portable(args, Bt: int = 8, K: int = 4) -> None:
    print(f"\n## portable torch backend (chunked parallel scan) vs ref (sequential oracle) and cpu (numba); Bt={Bt} "
          f"K={K} merge='sum', fp32, {torch.get_num_threads()} threads")
    rows = []
    for N in (1, 16):
        for si, (Du, L) in enumerate(STAGES):
            if args.quick and si > 1:
                continue
            rows.append(_portable_row(si, Bt, L, K, Du, N, args.repeat))
            print("  " + " ".join(rows[-1]), flush=True)
    print(table(rows, ["stage", "Du", "L", "N", "chunk", "ref fwd ms", "torch fwd ms", "torch vs ref", "cpu fwd ms",
                       "torch / cpu", "torch f+b ms", "cpu f+b ms", "torch / cpu f+b", "max |torch - cpu|"]))


def bench_kernel_cpu(args) -> None:
    if args.portable_only:
        bench_portable(args)
        return
    Bt, K = 8, 4
    print(f"## selective scan, CPU ({cpu_name()}, {torch.get_num_threads()} threads,"
          f" torch {torch.__version__}); Bt={Bt} K={K} merge='sum', fp32; times are medians")
    rows = []
    for N in (1, 16):
        for si, (Du, L) in enumerate(STAGES):
            if args.quick and si > 1:
                continue
            rows.append(_cpu_row(si, Bt, L, K, Du, N, args.repeat))
            print("  " + " ".join(rows[-1]), flush=True)
    print(table(rows, ["stage", "Du", "L", "N", "ref fwd ms", "cpu fwd ms", "cpu vs ref", "ref f+b ms",
                       "cpu f+b ms", "cpu vs ref f+b", "copy ms", "cpu fwd / copy"]))
    print(f"\n## fused rank-R step size (dt_proj_weight=) vs dt einsum + full-delta op, cpu backend; Bt={Bt} K={K} "
          "merge='sum', fp32, R = ceil(Du / 16)")
    rows = []
    for si, (Du, L) in enumerate(STAGES):
        if args.quick and si > 1:
            continue
        rows.append(_lowrank_row(si, Bt, L, K, Du, 1, args.repeat))
        print("  " + " ".join(rows[-1]), flush=True)
    print(table(rows, ["stage", "Du", "L", "N", "R", "einsum+op fwd ms", "fused fwd ms", "fused speed-up",
                       "einsum+op f+b ms", "fused f+b ms", "fused speed-up f+b", "max |diff|"]))
    bench_portable(args)


# the mamba_ssm block functions: (name, Bt, d_inner, L, N, R, bidirectional)
BLOCKS = [("Vim-S mixer (v1, both directions)", 8, 768, 197, 16, 24, True),
          ("Mamba-130m mixer", 1, 1536, 1024, 16, 48, False),
          ("MambaVision-T stage 3 mixer", 8, 320, 196, 8, 20, False)]


def _block_inputs(Bt, Dm, L, N, R, bidirectional, device, gen):
    r = lambda *s: torch.randn(*s, generator=gen).to(device)  # noqa: E731
    t = dict(xz=r(Bt, 2 * Dm, L), conv1d_weight=r(Dm, 1, 4) * 0.5, conv1d_bias=r(Dm) * 0.1,
             x_proj_weight=r(R + 2 * N, Dm) * Dm ** -0.5, delta_proj_weight=r(Dm, R) * R ** -0.5,
             out_proj_weight=r(Dm // 2, Dm) * Dm ** -0.5, out_proj_bias=None,
             A=-torch.exp(r(Dm, N) * 0.5), D=r(Dm), delta_bias=r(Dm) * 0.3 - 2.0)
    if bidirectional:
        t["A_b"] = -torch.exp(r(Dm, N) * 0.5)
    return t


def _unfused_block(t, backend):
    """The block as a peer's slow path writes it: the full (Bt, D, L) step size from a matmul, then the scan
    (twice over flipped copies for the bidirectional block, as Vim's reference does)."""
    import torch.nn.functional as F
    from vssm.kernels import selective_scan_mamba

    L = t["xz"].shape[-1]
    R = t["delta_proj_weight"].shape[1]
    x, z = t["xz"].chunk(2, dim=1)
    width = t["conv1d_weight"].shape[-1]
    x = F.silu(F.conv1d(x, t["conv1d_weight"], t["conv1d_bias"], padding=width - 1, groups=x.shape[1])[..., :L])
    dt, B, C = torch.split(F.linear(x.transpose(1, 2), t["x_proj_weight"]), [R, *[t["A"].shape[1]] * 2], dim=-1)
    delta = t["delta_proj_weight"] @ dt.transpose(1, 2)
    B, C = B.transpose(1, 2), C.transpose(1, 2)
    kw = dict(D=t["D"], delta_bias=t["delta_bias"], delta_softplus=True, backend=backend)
    y = selective_scan_mamba(x, delta, t["A"], B, C, z=z, **kw)
    if "A_b" in t:
        f = lambda v: v.flip([-1])  # noqa: E731
        y = y + f(selective_scan_mamba(f(x), f(delta), t["A_b"], f(B), f(C), z=f(z), **kw))
    return F.linear(y.transpose(1, 2), t["out_proj_weight"], t["out_proj_bias"])


def _fused_block(t, backend):
    from vssm.kernels import bimamba_inner, mamba_inner

    a = dict(t)
    A_b = a.pop("A_b", None)
    fixed = (a.pop("xz"), a.pop("conv1d_weight"), a.pop("conv1d_bias"), a.pop("x_proj_weight"),
             a.pop("delta_proj_weight"), a.pop("out_proj_weight"), a.pop("out_proj_bias"), a.pop("A"))
    if A_b is not None:
        return bimamba_inner(*fixed, A_b, **a, backend=backend)
    return mamba_inner(*fixed, **a, backend=backend)


def _mamba_block_row(name, Bt, Dm, L, N, R, bi, dev, backend, repeat) -> List[str]:
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    t = _block_inputs(Bt, Dm, L, N, R, bi, dev, torch.Generator().manual_seed(0))
    leaves = [v for v in t.values() if isinstance(v, torch.Tensor)]

    def fb(fn):
        for v in leaves:
            v.requires_grad_(True)
            v.grad = None
        fn(t, backend).square().mean().backward()
        for v in leaves:
            v.requires_grad_(False)

    with torch.no_grad():
        ref, got = _unfused_block(t, backend), _fused_block(t, backend)
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    tu = timeit(lambda: _unfused_block(t, backend), repeat=repeat, sync=sync)
    tf = timeit(lambda: _fused_block(t, backend), repeat=repeat, sync=sync)
    tu_fb = timeit(lambda: fb(_unfused_block), repeat=repeat, sync=sync)
    tf_fb = timeit(lambda: fb(_fused_block), repeat=repeat, sync=sync)
    return [name, f"{Bt}x{Dm}x{L}, N={N}, R={R}", f"{tu * 1e3:.1f}", f"{tf * 1e3:.1f}", f"{tu / tf:.2f}x",
            f"{tu_fb * 1e3:.1f}", f"{tf_fb * 1e3:.1f}", f"{tu_fb / tf_fb:.2f}x", f"{err:.1e}"]


def bench_mamba_block(args) -> None:
    """mamba_inner / bimamba_inner (the rank-R step size formed in the op; both directions in one call) against the
    unfused composition a peer's slow path runs, same convolution and projections, same backend."""
    dev = args.device
    backend = "triton" if dev == "cuda" else "cpu"
    where = torch.cuda.get_device_name() if dev == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"## mamba_ssm block functions, {backend} backend ({where}, torch {torch.__version__}); fp32, "
          "times are medians")
    rows = []
    for name, Bt, Dm, L, N, R, bi in BLOCKS[:1] if args.quick else BLOCKS:
        if args.quick:
            Bt, L = 2, 49
        rows.append(_mamba_block_row(name, Bt, Dm, L, N, R, bi, dev, backend, args.repeat))
        print("  " + " | ".join(rows[-1]), flush=True)
    print(table(rows, ["block", "Bt x D x L", "unfused fwd ms", "fused fwd ms", "speed-up", "unfused f+b ms",
                       "fused f+b ms", "speed-up f+b", "max |diff| / max |y|"]))


def _cross_order(L: int, device: str) -> torch.Tensor:
    side = int(L ** 0.5)
    grid = torch.arange(L, device=device).view(side, side)
    rows, cols = grid.reshape(-1), grid.t().reshape(-1)
    return torch.stack([rows, cols, rows.flip(0), cols.flip(0)]).int()


def cpu_kernels_at(rev: str) -> Tuple[Any, Path]:
    """``kernels/cpu.py`` as it is at git revision ``rev`` of this checkout, imported as a module of its own beside
    the working tree's (numba compiles both), and the temporary folder that holds it (the caller removes it).
    ``ValueError`` for a revision git does not know or whose kernels take other arguments."""
    import importlib.util
    import inspect
    import shutil
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    try:
        src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:kernels/cpu.py"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        why = getattr(e, "stderr", None) or str(e)
        raise ValueError(f"--against: got {rev!r}; allowed: a git revision of {root} that has kernels/cpu.py "
                         f"(git: {why.strip()})") from None
    folder = Path(tempfile.mkdtemp(prefix="vssm-kernels-"))
    path = folder / "vssm_cpu_kernels_at_rev.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if "W" not in inspect.signature(module.forward).parameters:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValueError(f"--against: got {rev!r}; allowed: a revision whose kernels take the rank-R step size "
                         "(kernels/cpu.py forward(..., W=...), since commit 222482d)")
    return module, folder


def kernel_ab_rows(theirs: Any, ours: Any, stages: Sequence[Tuple[int, Tuple[int, int]]], rounds: int, Bt: int = 8,
                   K: int = 4, N: int = 1) -> List[List[str]]:
    """Forward and backward of two versions of the numba kernels (``theirs`` first) at ``stages``, ``(index, (Du, L))``
    pairs, as SS2D calls them in VMamba-T (u shared, merge='sum', softplus, rank-R step size with R = ceil(Du / 16),
    cross orders); rounds alternate A B / B A in one process. Rows: median times per side, speed-ups (A / B) and the
    largest differences of ``y`` and of the gradients (relative to each gradient's largest value)."""
    rows = []
    for si, (Du, L) in stages:
        R = -(-Du // 16)
        g = torch.Generator().manual_seed(si)
        u, dt, A, B, C, D, bias, W = (torch.randn(*shape, generator=g) for shape in (
            (Bt, L, 1, Du), (Bt, L, K, R), (K, Du, N), (Bt, L, K, N), (Bt, L, K, N), (K, Du), (K, Du), (K, Du, R)))
        args = (u, dt, -torch.exp(A * 0.5), B, C, D, bias * 0.3, None, _cross_order(L, "cpu"))
        W = W * R ** -0.5
        sides = []
        for m in (theirs, ours):
            y, _, ckpt = m.forward(*args, True, True, True, W=W)
            dout = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
            sides.append(dict(m=m, y=y, ckpt=ckpt, dout=dout, grads=m.backward(dout, *args, ckpt, True, True, W=W),
                              fwd=[], bwd=[]))
        for rd in range(rounds):
            for s in (sides if rd % 2 == 0 else sides[::-1]):
                t0 = time.perf_counter()
                s["m"].forward(*args, True, True, True, W=W)
                t1 = time.perf_counter()
                s["m"].backward(s["dout"], *args, s["ckpt"], True, True, W=W)
                s["fwd"].append(t1 - t0)
                s["bwd"].append(time.perf_counter() - t1)
        a, b = sides
        dy = (a["y"] - b["y"]).abs().max().item()
        dg = max(((ga - gb).abs().max() / ga.abs().max().clamp_min(1e-30)).item()
                 for ga, gb in zip(a["grads"], b["grads"]) if ga is not None)
        med = lambda v: sorted(v)[len(v) // 2] * 1e3  # noqa: E731
        fa, fb, ba, bb = med(a["fwd"]), med(b["fwd"]), med(a["bwd"]), med(b["bwd"])
        rows.append([f"{si + 1}", f"{Du}", f"{L}", f"{R}", f"{fa:.2f}", f"{fb:.2f}", f"{fa / fb:.2f}x", f"{ba:.2f}",
                     f"{bb:.2f}", f"{ba / bb:.2f}x", f"{dy:.1e}", f"{dg:.1e}"])
    return rows


def bench_kernel_against(args) -> None:
    """``kernel --against REV``: the numba kernels of git revision REV against the working tree's, interleaved."""
    import shutil

    from vssm.kernels import cpu as ours

    theirs, folder = cpu_kernels_at(args.against)
    try:
        stages = [(si, s) for si, s in enumerate(STAGES) if not (args.quick and si > 1)]
        rounds = max(2, args.repeat)
        print(f"## numba kernels: {args.against} (A) against the working tree (B), CPU ({cpu_name()}, "
              f"{torch.get_num_threads()} threads); Bt=8 K=4 N=1, u shared, merge='sum', rank-R step size, cross "
              f"orders; {rounds} rounds alternating A B / B A, medians")
        rows = kernel_ab_rows(theirs, ours, stages, rounds)
        print(table(rows, ["stage", "Du", "L", "R", "A fwd ms", "B fwd ms", "fwd A / B", "A bwd ms", "B bwd ms",
                           "bwd A / B", "max |y diff|", "max rel grad diff"]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cuda_row(bench, si: int, Bt: int, L: int, K: int, Du: int, N: int, dtype: torch.dtype) -> List[str]:
    from vssm.kernels import selective_scan

    t = make_scan_inputs(Bt, L, K, Du, N, "cuda", dtype)
    tg = make_scan_inputs(Bt, L, K, Du, N, "cuda", dtype, requires_grad=True)
    cross = _cross_order(L, "cuda")
    nbytes = op_bytes(Bt, L, K, Du, N, torch.finfo(dtype).bits // 8)
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)

    def fb():
        y = selective_scan(**tg, order=cross, merge="sum")
        y.backward(torch.ones_like(y))

    def copy_based():  # what peers do: K permuted copies, a raster scan, scatter back and sum
        idx = cross.long()
        u4 = t["u"][:, idx.reshape(-1)].view(Bt, K, L, Du).transpose(1, 2).contiguous()
        dl = torch.gather(t["delta"], 1, idx.t()[None, :, :, None].expand(Bt, L, K, Du))
        Bg = torch.gather(t["B"], 1, idx.t()[None, :, :, None].expand(Bt, L, K, N))
        Cg = torch.gather(t["C"], 1, idx.t()[None, :, :, None].expand(Bt, L, K, N))
        y = selective_scan(u4, dl, t["A"], Bg, Cg, t["D"], t["delta_bias"])
        out = torch.zeros(Bt, L, Du, device="cuda", dtype=y.dtype)
        for k in range(K):
            out.index_add_(1, idx[k], y[:, :, k])
        return out

    t_copy = bench(lambda: dst.copy_(src))
    t_f = bench(lambda: selective_scan(**t, order=cross, merge="sum"))
    t_fb = bench(fb)
    t_copyscan = bench(copy_based)
    gbs = lambda sec: nbytes / sec / 1e9  # noqa: E731
    return [f"{si + 1}", f"{Du}", f"{L}", f"{N}", str(dtype)[6:], f"{t_f * 1e3:.3f}", f"{gbs(t_f):.0f}",
            f"{gbs(t_copy):.0f}", f"{t_copy / t_f:.0%}", f"{t_fb * 1e3:.3f}", f"{3 * t_copy / t_fb:.0%}",
            f"{t_copyscan / t_f:.2f}x"]


def _cuda_scan_row(bench, spec: str, u: torch.Tensor, Bt: int, side: int, Du: int, N: int) -> List[object]:
    import vssm.scans as scans
    from vssm.kernels import selective_scan

    order = scans.get_scan(spec).orders(side, side, device="cuda")
    Kc = order.shape[0]
    tk = make_scan_inputs(Bt, side * side, Kc, Du, N, "cuda", torch.bfloat16)
    tk["u"] = u
    return [Kc, bench(lambda: selective_scan(**tk, order=order, merge="sum")) / Kc]  # per path


def bench_kernel_cuda(args) -> None:
    import triton.testing
    import vssm.scans as scans

    Bt, K = 8, 4
    name = torch.cuda.get_device_name()
    print(f"## selective scan, {name}, torch {torch.__version__}; Bt={Bt} K={K} merge='sum'; "
          "triton.testing.do_bench medians")

    def bench(fn):
        return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") / 1e3

    rows = []
    for N in (1, 16):
        for si, (Du, L) in enumerate(STAGES):
            for dtype in (torch.float32, torch.bfloat16):
                rows.append(_cuda_row(bench, si, Bt, L, K, Du, N, dtype))
                print("  " + " ".join(rows[-1]), flush=True)
    print(table(rows, ["stage", "Du", "L", "N", "dtype", "fwd ms", "fwd GB/s", "copy GB/s", "fwd vs copy",
                       "f+b ms", "f+b vs copy (moves 3x fwd bytes)", "gather+scan+scatter / fused"]))
    # every registered scan against raster, per path, stage-1 shapes
    Du, L = STAGES[0]
    rows = []
    for N in (1, 16):
        u = make_scan_inputs(Bt, L, 1, Du, N, "cuda", torch.bfloat16)["u"]
        base = None
        for sname in ["raster"] + [s for s in scans.list_scans() if s != "raster"]:
            spec = "cross+hilbert" if sname == "combine" else sname
            Kc, sec = _cuda_scan_row(bench, spec, u, Bt, int(L ** 0.5), Du, N)
            base = base or sec
            rows.append([sname, f"{N}", f"{Kc}", f"{sec * 1e3:.4f}", f"{sec / base:.2f}"])
    print(table(rows, ["scan", "N", "K", "ms per path", "vs raster"]))


def kernel_compile_table(args) -> None:
    """Every Triton kernel variant the models launch, compiled for sm_80 and sm_90 without a GPU: registers, stack
    (spill) bytes, shared memory and resident warps per SM (vssm.kernels.triton_compile)."""
    from vssm.kernels.triton_compile import model_variants, report

    variants = model_variants()
    if args.quick:  # VMamba's launches: bf16, merged, shared u
        variants = [v for v in variants if v.dtype == "bf16" and v.merge and v.shared_u]
    rows = report(variants)
    print(f"## Triton kernels compiled for the GPU without one (triton, {len(rows)} variants); Du=96 K=4; resident "
          "warps = blocks per SM x warps per block (65536 registers, 228 KiB shared, 32 blocks, 64 warps per SM)")
    body = [[r["kind"], f"{r['N']}", "sum" if r["merge"] else "-", "z" if r["gate"] else "-",
             "shared" if r["shared_u"] else "per-path", r["dtype"], f"rank {r['R']}" if r["lowrank"] else "full",
             f"sm_{r['arch']}",
             f"{r['CH']}x{r['BD']}x{r['NP']}", f"{r['num_warps']}", f"{r['registers']}", f"{r['spill']}",
             f"{r['shared']}", f"{r['warps_per_sm']}"] for r in rows]
    print(table(body, ["kernel", "N", "merge", "gate", "u", "dtype", "dt", "arch", "CHxBDxNP", "warps", "registers",
                       "stack B", "smem B", "resident warps/SM"]))
    low = [r for r in rows if r["warps_per_sm"] < 16 or r["spill"]]
    print(f"\n{len(rows) - len(low)} of {len(rows)} variants: no stack/spill and >= 16 resident warps per SM")


def bench_scans(args) -> None:
    import vssm.scans as scans

    rows = []
    for name in scans.list_scans():
        sc = scans.get_scan("cross+hilbert" if name == "combine" else name)
        t0 = time.perf_counter()
        order = sc.orders(1024, 1024)
        dt = time.perf_counter() - t0
        rows.append([name, f"{order.shape[0]}", f"{dt * 1e3:.0f}"])
    print(f"## scan order generation, 1024x1024, uncached, {cpu_name()}")
    print(table(rows, ["scan", "K", "ms"]))


def flops_rows(names: List[str] | None = None) -> List[dict]:
    """Every vssm entrypoint with a published GFLOPs figure (or ``names``), counted at its cfg's input size under
    its family's convention and the exact one."""
    import timm

    import vssm  # noqa: F401
    from vssm.utils.flops import count

    rows = []
    if names is None:
        names = [n for n in timm.list_models(module=list(FLOP_FAMILIES)) if not n.startswith("test_")]
    for name in names:
        model = timm.create_model(name)
        cfg = model.pretrained_cfg
        size = tuple(cfg.get("input_size", (3, 224, 224)))
        off = count(model, size)
        ex = count(model, size, convention="exact")
        pub = cfg.get("gflops")
        rows.append(dict(model=name, size=size[-1], convention=off.convention, params=sum(p.numel() for p in
                         model.parameters()), gflops=off.gflops, scan=off.scan / 1e9, exact=ex.gflops,
                         published=pub, diff=None if not pub else 100 * (off.gflops - pub) / pub))
        del model
    return rows


def dense_flops_rows(configs: List[str] | None = None) -> List[dict]:
    """The detection / segmentation configs whose header names the published GFLOPs ('(50M params, 271G FLOPs)'),
    counted as VMamba's tables count them: Mask R-CNN at (3, 1280, 800), UperNet at (3, 512, 2048), batch 1."""
    import re
    from pathlib import Path

    from vssm.mm.flops import count_config

    root = Path(__file__).resolve().parents[1] / "configs"
    paths = [Path(c) for c in configs] if configs else sorted(root.glob("*/*.py"))
    rows = []
    for path in paths:
        header = path.read_text().split("_base_")[0].replace("\n# ", " ")
        m = re.search(r"(\d+)G FLOPs", header)
        one_x = [path.with_name(path.name.replace("ms-crop-3x", b)) for b in ("ms-crop-1x", "1x")]
        if m is None or not configs and "3x" in path.name and any(p.is_file() for p in one_x):
            continue  # a 3x config's model is its 1x sibling's
        shape = (3, 1280, 800) if path.parent.name == "detection" else (3, 512, 2048)
        r = count_config(path, shape)
        rows.append(dict(config=path.name, input=f"{shape[1]}x{shape[2]}", convention=r.convention,
                         gflops=r.gflops, published=float(m.group(1)), unhandled=r.unhandled))
    return rows


FLOP_FAMILIES = ("vmamba", "vim", "mambavision", "mlla", "efficient_vmamba", "msvmamba", "mobilemamba")


def bench_flops(args) -> None:
    rows = flops_rows(args.models or None)
    out = [[f"`{r['model']}`", str(r["size"]), r["convention"], f"{r['params'] / 1e6:.1f}M", f"{r['gflops']:.3f}",
            "-" if r["published"] is None else f"{r['published']}",
            "-" if r["diff"] is None else f"{r['diff']:+.1f}", f"{r['scan']:.3f}", f"{r['exact']:.2f}"]
           for r in rows]
    print(f"GFLOPs per image, batch 1 (torch {torch.__version__}); 'ours' under the family's convention "
          "(vssm.utils.flops), 'exact': 2 per multiply-add and every op counted\n")
    print(table(out, ["model", "size", "convention", "params", "GFLOPs ours", "published", "diff %",
                      "scan term", "exact GFLOPs"]))
    if args.dense:
        print()
        rows = dense_flops_rows()
        print(table([[r["config"], r["input"], r["convention"], f"{r['gflops']:.1f}", f"{r['published']:.0f}",
                      f"{100 * (r['gflops'] - r['published']) / r['published']:+.1f}"] for r in rows],
                    ["config", "input", "convention", "GFLOPs ours", "published", "diff %"]))


def bench_deploy(args) -> None:
    """Eager (the op's cpu backend) against onnxruntime (the exported graph, portable backend), CPU img/s."""
    import tempfile

    import onnxruntime as ort
    import timm

    import vssm  # noqa: F401

    print(f"## eager vs onnxruntime, CPU ({cpu_name()}, {torch.get_num_threads()} torch threads, onnxruntime "
          f"{ort.__version__}); batch {args.batch_size}, fp32, median of {args.repeat}\n")
    rows = []
    for name in args.models:
        model = timm.create_model(name).eval()
        side = args.img_size or model.pretrained_cfg["input_size"][-1]
        x = torch.randn(args.batch_size, 3, side, side)
        with torch.no_grad():
            t_eager = timeit(lambda m=model, x=x: m(x), repeat=args.repeat)
            ref = model(x)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/{name}.onnx"
            torch.onnx.export(model, (x,), dynamo=True, opset_version=18, verbose=False).save(path)
            t_export = time.perf_counter() - t0
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: x.numpy()}
            out = sess.run(None, feed)[0]
            t_ort = timeit(lambda s=sess, f=feed: s.run(None, f), repeat=args.repeat)
        err = float((torch.from_numpy(out) - ref).abs().max())
        b = args.batch_size
        rows.append([name, f"{side}", f"{b / t_eager:.2f}", f"{b / t_ort:.2f}", f"{t_eager / t_ort:.2f}x",
                     f"{t_export:.0f}", f"{err:.1e}"])
        print("  " + " ".join(rows[-1]), flush=True)
    print(table(rows, ["model", "size", "eager img/s", "onnxruntime img/s", "ort / eager", "export s",
                       "max |diff|"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    k = sub.add_parser("kernel", help="selective-scan op")
    k.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    k.add_argument("--quick", action="store_true", help="stages 1-2 only")
    k.add_argument("--repeat", type=int, default=5)
    k.add_argument("--portable-only", action="store_true", help="only the portable torch backend's table (CPU)")
    k.add_argument("--against", metavar="REV", default=None,
                   help="CPU: the numba kernels of git revision REV against the working tree's, interleaved")
    k.add_argument("--compile-only", action="store_true",
                   help="compile the Triton kernels for sm_80 / sm_90 (no GPU needed) and print their resource use")
    b = sub.add_parser("mamba-block", help="mamba_inner / bimamba_inner vs the unfused block")
    b.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    b.add_argument("--quick", action="store_true", help="the first block, at a small size")
    b.add_argument("--repeat", type=int, default=5)
    sub.add_parser("scans", help="order generation speed")
    d = sub.add_parser("deploy", help="eager vs onnxruntime img/s (CPU)")
    d.add_argument("--models", nargs="*", default=["vmamba_tiny", "efficient_vmamba_tiny", "mambavision_tiny"])
    d.add_argument("--batch-size", type=int, default=1)
    d.add_argument("--img-size", type=int, default=0, help="0: the pretrained cfg's")
    d.add_argument("--repeat", type=int, default=5)
    f = sub.add_parser("flops", help="GFLOPs of every entrypoint beside the published numbers")
    f.add_argument("--models", nargs="*", default=None, help="entrypoints (default: every vssm one)")
    f.add_argument("--dense", action="store_true", help="also VMamba's Mask R-CNN / UperNet configs")
    m = sub.add_parser("models", help="model throughput")
    try:
        import bench_models
    except ImportError:
        bench_models = None
    if bench_models is not None:
        bench_models.add_args(m)
    args = parser.parse_args(argv)
    from vssm.utils.allocator import tune_cpu_allocator

    tune_cpu_allocator()  # as the launchers: benchmarks measure what they run
    if args.what == "kernel" and args.compile_only:
        from vssm.kernels.triton_compile import unsupported

        why = unsupported()
        if why is not None:
            parser.error(f"kernel --compile-only: {why}")
        kernel_compile_table(args)
    elif args.what == "kernel" and args.against:
        try:
            bench_kernel_against(args)
        except ValueError as e:
            parser.error(str(e))
    elif args.what == "kernel":
        (bench_kernel_cuda if args.device == "cuda" else bench_kernel_cpu)(args)
    elif args.what == "mamba-block":
        bench_mamba_block(args)
    elif args.what == "scans":
        bench_scans(args)
    elif args.what == "flops":
        bench_flops(args)
    elif args.what == "deploy":
        bench_deploy(args)
    else:
        if bench_models is None:
            parser.error("models: tools/bench_models.py is missing")
        (bench_models.run_profile if args.profile else bench_models.run_zoo if args.zoo
         else bench_models.run_versus if args.versus else bench_models.run)(args)


if __name__ == "__main__":
    main()
