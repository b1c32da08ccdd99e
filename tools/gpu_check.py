#!/usr/bin/env python3
"""One-shot GPU check: correctness, op bandwidth and model throughput in one run, one markdown table, one JSON.

    PYTHONPATH=. python tools/gpu_check.py [--json gpu_check.json] [--budget 480]

Runs from a source checkout with nothing installed but torch >= 2.6, triton, timm and numba (pytest is used when
present). In order, each section bounded by what is left of ``--budget`` seconds:

1. correctness: the Triton op against the fp32 oracle on fresh random inputs (forward, last state and every
   gradient; fp32 / bf16, N 1 / 16, shared / per-path u, gate, merge, ragged orders), then ``pytest -m gpu`` and the
   Triton cases of tests/kernels when pytest is installed;
2. the op at VMamba-T's four stage shapes (batch 128, K 4, N 1, merge='sum', bf16): forward and forward+backward
   as GB/s against a device-to-device copy of the same bytes (the backward moves three times the forward's bytes);
3. the fused order (order=) against gather -> raster scan -> scatter, at stage 1;
4. every registered scan against raster, per path, at stage 1;
5. VMamba-T inference and training (bf16 autocast, channels-last, batch 128) against timm's Swin-T, img/s.

``--smoke`` runs every section at toy sizes (on CPU through Triton's interpreter when there is no GPU): it checks
this script, not the GPU, and is what tests/tools/test_gpu_check.py runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = [(96, 3136), (192, 784), (384, 196), (768, 49)]  # VMamba-T (Du, L) per stage
TARGETS = {"op fwd": 0.60, "op fwd+bwd": 0.40, "train": 0.8, "infer": 1.4}  # issue 14's GPU targets


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default="gpu_check.json", help="where to write the results (default: %(default)s)")
    p.add_argument("--budget", type=float, default=480.0, help="seconds for the whole run (default: %(default)s)")
    p.add_argument("--batch", type=int, default=128, help="batch of the op and model sections (default: 128)")
    p.add_argument("--smoke", action="store_true", help="toy sizes; runs on CPU (interpreted Triton) without a GPU")
    return p.parse_args(argv)


class Check:
    """Collects rows (section, case, value, reference, ratio, target) and keeps the time budget."""

    def __init__(self, budget: float, judge: bool = True):
        self.t0 = time.perf_counter()
        self.judge = judge  # toy sizes (--smoke) are not held to the GPU targets
        self.budget = budget
        self.rows: List[Dict[str, object]] = []

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def add(self, section: str, case: str, value: str, reference: str = "", ratio: float | None = None,
            target: float | None = None, ok: bool | None = None) -> None:
        if not self.judge:
            target = None
        if ok is None and ratio is not None and target is not None:
            ok = ratio >= target
        row = dict(section=section, case=case, value=value, reference=reference, ratio=ratio, target=target, ok=ok)
        self.rows.append(row)
        print("  " + " | ".join("" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)
                                for v in row.values()), flush=True)

    def table(self) -> str:
        head = ["section", "case", "value", "reference", "ratio", "target", "ok"]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for r in self.rows:
            cells = [r["section"], r["case"], r["value"], r["reference"],
                     "" if r["ratio"] is None else f"{r['ratio']:.2f}",
                     "" if r["target"] is None else f">= {r['target']:.2f}",
                     "" if r["ok"] is None else ("yes" if r["ok"] else "NO")]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        return "\n".join(lines)


def _timer(device: str) -> Callable[[Callable[[], object]], float]:
    import torch

    if device == "cuda":
        import triton.testing

        return lambda fn: triton.testing.do_bench(fn, warmup=10, rep=40, return_mode="median") / 1e3

    def bench(fn):
        fn()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    del torch
    return bench


def _inputs(Bt, L, K, Du, N, device, dtype, shared_u=True, gate=False, grad=False, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    t = dict(u=r(Bt, L, Du) if shared_u else r(Bt, L, K, Du), delta=r(Bt, L, K, Du) * 0.5 - 1.0,
             A=-torch.exp(r(K, Du, N) * 0.5), B=r(Bt, L, K, N), C=r(Bt, L, K, N), D=r(K, Du),
             delta_bias=r(K, Du) * 0.3, z=r(Bt, L, Du) if gate and shared_u else r(Bt, L, K, Du) if gate else None)
    low = ("u", "delta", "B", "C", "z")
    return {k: None if v is None else v.to(device=device, dtype=dtype if k in low else torch.float32)
            .requires_grad_(grad) for k, v in t.items()}


def _order(K, L, device, ragged, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    o = torch.stack([torch.randperm(L, generator=g) for _ in range(K)]).int()
    if ragged:
        o[0, L // 3: L // 2] = -1
    return o.to(device)


def correctness(chk: Check, device: str, smoke: bool) -> None:
    """The Triton op against the fp32 oracle (selective_scan_ref on CPU): forward, last state and every gradient."""
    import itertools

    import torch
    from vssm.kernels import selective_scan, selective_scan_ref

    tol = {torch.float32: 2e-3, torch.bfloat16: 5e-2}
    L, Du = (20, 36) if smoke else (777, 200)
    cases = list(itertools.product((1, 16), (torch.float32, torch.bfloat16), (True, False)))
    if smoke:
        cases = cases[:2]
    for i, (N, dtype, shared_u) in enumerate(cases):
        gate, merge, ragged = i % 2 == 0, "sum" if shared_u else None, i % 3 == 0
        t = _inputs(2, L, 4, Du, N, device, dtype, shared_u=shared_u, gate=gate, seed=i)
        order = _order(4, L, device, ragged, seed=i)
        worst = 0.0
        outs = []
        for fn, dev in ((selective_scan, device), (selective_scan_ref, "cpu")):
            leaves = {k: None if v is None else v.detach().to(dev).clone().requires_grad_() for k, v in t.items()}
            kw = dict(order=order.to(dev), merge=merge, return_last_state=True)
            if fn is selective_scan:
                kw["backend"] = "triton"
            y, last = fn(**leaves, **kw)
            gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(7)).to(y)
            (y.float() * gy.float()).sum().backward()
            outs.append([y, last] + [leaves[k].grad for k in sorted(leaves) if leaves[k] is not None])
        for a, b in zip(*outs):
            scale = b.detach().float().abs().max().item() + 1e-6
            worst = max(worst, (a.detach().cpu().float() - b.detach().float()).abs().max().item() / max(scale, 1.0))
        bound = tol[dtype]
        chk.add("correctness", f"N{N} {str(dtype)[6:]} {'shared' if shared_u else 'per-path'} u"
                f"{' z' if gate else ''}{' sum' if merge else ''}{' ragged' if ragged else ''} L{L} Du{Du}",
                f"max rel err {worst:.1e}", f"bound {bound:.0e}", ok=worst <= bound)
    if importlib.util.find_spec("pytest") is None:
        chk.add("correctness", "pytest -m gpu", "pytest not installed: skipped")
        return
    tests = ["tests/kernels/test_selective_scan.py", "tests/kernels/test_mamba_inner.py",
             "tests/scans/test_invariants.py"]
    sel = ["-k", "triton or gpu or cuda"]  # the gpu-marked tests and every Triton case
    timeout = max(30.0, min(240.0, chk.left() * 0.4))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *sel, *tests],
                         cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    summary = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
    chk.add("correctness", "pytest (triton / gpu tests)", summary, ok=run.returncode == 0)


def op_bandwidth(chk: Check, device: str, batch: int, smoke: bool) -> None:
    bench = _timer(device)
    for si, (Du, L) in enumerate([(8, 16)] if smoke else STAGES):
        if chk.left() < 60:
            chk.add("op", f"stage {si + 1}", "skipped: out of time")
            continue
        _op_stage(chk, bench, device, si, batch, L, Du, first=si == 0)


def _op_stage(chk: Check, bench, device: str, si: int, batch: int, L: int, Du: int, first: bool) -> None:
    import torch
    from vssm.kernels import selective_scan

    K, N = 4, 1
    side = int(L ** 0.5)
    grid = torch.arange(L, device=device).view(side, side)
    cross = torch.stack([grid.reshape(-1), grid.t().reshape(-1), grid.reshape(-1).flip(0),
                         grid.t().reshape(-1).flip(0)]).int()
    t = _inputs(batch, L, K, Du, N, device, torch.bfloat16)
    tg = _inputs(batch, L, K, Du, N, device, torch.bfloat16, grad=True)
    nbytes = 2 * (batch * L * Du + batch * L * K * Du + 2 * batch * L * K * N + batch * L * Du)
    src = torch.empty(nbytes // 2, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    t_copy = bench(lambda: dst.copy_(src))  # reads nbytes/2 and writes nbytes/2

    def fb():
        y = selective_scan(**tg, order=cross, merge="sum", backend="triton")
        y.backward(torch.ones_like(y))

    t_f = bench(lambda: selective_scan(**t, order=cross, merge="sum", backend="triton"))
    t_fb = bench(fb)
    shape = f"stage {si + 1} Bt{batch} L{L} Du{Du} N{N} bf16"
    copy = f"copy {nbytes / t_copy / 1e9:.0f} GB/s"
    chk.add("op fwd", shape, f"{nbytes / t_f / 1e9:.0f} GB/s ({t_f * 1e3:.2f} ms)", copy, t_copy / t_f,
            TARGETS["op fwd"])
    chk.add("op fwd+bwd", shape, f"{3 * nbytes / t_fb / 1e9:.0f} GB/s ({t_fb * 1e3:.2f} ms)", copy,
            3 * t_copy / t_fb, TARGETS["op fwd+bwd"])
    if first:
        fused_vs_copies(chk, bench, t, cross, batch, L, K, Du, N)
        scans_vs_raster(chk, bench, t["u"], batch, side, Du, N, device)


def fused_vs_copies(chk, bench, t, cross, Bt, L, K, Du, N) -> None:
    """What peers do: K gathered copies, a raster scan of each, scatter back and sum; against order= in the kernel."""
    import torch
    from vssm.kernels import selective_scan

    idx = cross.long()

    def copy_based():
        u4 = t["u"][:, idx.reshape(-1)].view(Bt, K, L, Du).transpose(1, 2).contiguous()
        g = lambda x, n: torch.gather(x, 1, idx.t()[None, :, :, None].expand(Bt, L, K, n))  # noqa: E731
        y = selective_scan(u4, g(t["delta"], Du), t["A"], g(t["B"], N), g(t["C"], N), t["D"], t["delta_bias"],
                           backend="triton")
        out = torch.zeros(Bt, L, Du, device=y.device, dtype=y.dtype)
        for k in range(K):
            out.index_add_(1, idx[k], y[:, :, k])
        return out

    t_fused = bench(lambda: selective_scan(**t, order=cross, merge="sum", backend="triton"))
    t_copies = bench(copy_based)
    chk.add("fused order", f"stage 1 cross, Bt{Bt}", f"{t_fused * 1e3:.2f} ms",
            f"gather+scan+scatter {t_copies * 1e3:.2f} ms", t_copies / t_fused)


def scans_vs_raster(chk, bench, u, Bt, side, Du, N, device) -> None:
    import vssm.scans as scans
    from vssm.kernels import selective_scan

    base = None
    for name in ["raster"] + [s for s in scans.list_scans() if s != "raster"]:
        if chk.left() < 60:
            chk.add("scan", name, "skipped: out of time")
            continue
        spec = "cross+hilbert" if name == "combine" else name
        order = scans.get_scan(spec).orders(side, side, device=device)
        Kc = order.shape[0]
        tk = dict(_inputs(Bt, side * side, Kc, Du, N, device, u.dtype), u=u)
        per_path = bench(lambda tk=tk, order=order: selective_scan(**tk, order=order, merge="sum",
                                                                   backend="triton")) / Kc
        base = base or per_path
        chk.add("scan", f"{name} (K={Kc}) per path", f"{per_path * 1e3:.3f} ms", "raster", base / per_path)


def _images_per_second(name: str, train: bool, device: str, batch: int, size: int, iters: int) -> float:
    """img/s of one timm model under bf16 autocast, channels-last: inference, or SGD training steps."""
    import timm
    import torch

    import vssm  # noqa: F401  (registers the models)

    model = timm.create_model(name, num_classes=1000).to(device).to(memory_format=torch.channels_last)
    model.train(train)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3) if train else None

    def step():
        if opt is not None:
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = model(x).float().logsumexp(-1).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
                model(x)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    step()
    step()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return batch * iters / (time.perf_counter() - t0)


def models(chk: Check, device: str, batch: int, smoke: bool) -> None:
    import torch

    names = ("test_vmamba", "resnet18") if smoke else ("vmamba_tiny", "swin_tiny_patch4_window7_224")
    size = 64 if smoke else 224
    res: Dict[str, Dict[str, float]] = {}
    for mode in ("infer", "train"):
        for name in names:
            if chk.left() < 45:
                chk.add("model", f"{name} {mode}", "skipped: out of time")
                continue
            res.setdefault(name, {})[mode] = _images_per_second(name, mode == "train", device, batch, size,
                                                                iters=2 if smoke else 10)
            if device == "cuda":
                torch.cuda.empty_cache()
    ours, ref = names
    for mode in ("infer", "train"):
        if mode in res.get(ours, {}) and mode in res.get(ref, {}):
            a, b = res[ours][mode], res[ref][mode]
            chk.add(f"model {mode}", f"{ours} bf16 channels-last Bt{batch} {size}px", f"{a:.0f} img/s",
                    f"{ref} {b:.0f} img/s", a / b, TARGETS[mode])


def main(argv=None) -> int:
    args = _args(argv)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); --smoke runs it on CPU at toy sizes",
              file=sys.stderr)
        return 2
    if not cuda:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before vssm.kernels defines the kernels
    device = "cuda" if cuda else "cpu"
    batch = 2 if args.smoke else args.batch
    import triton

    name = torch.cuda.get_device_name() if cuda else f"CPU {platform.machine()} (smoke, interpreted Triton)"
    print(f"## vssm GPU check: {name}; torch {torch.__version__}, triton {triton.__version__}", flush=True)
    chk = Check(args.budget, judge=not args.smoke)
    for section in (lambda: correctness(chk, device, args.smoke),
                    lambda: op_bandwidth(chk, device, batch, args.smoke),
                    lambda: models(chk, device, batch, args.smoke)):
        try:
            section()
        except (RuntimeError, subprocess.TimeoutExpired, torch.cuda.OutOfMemoryError) as e:
            chk.add("error", type(e).__name__, str(e).splitlines()[0][:200], ok=False)
    took = time.perf_counter() - chk.t0
    print(f"\n## vssm GPU check: {name}; torch {torch.__version__}, triton {triton.__version__}; {took:.0f} s\n")
    print(chk.table())
    with open(args.json, "w") as f:
        json.dump(dict(device=name, torch=torch.__version__, triton=triton.__version__, seconds=took,
                       rows=chk.rows), f, indent=1)
    print(f"\nwrote {args.json}")
    return 1 if any(r["ok"] is False and r["section"] in ("correctness", "error") for r in chk.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
