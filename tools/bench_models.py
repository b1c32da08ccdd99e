#!/usr/bin/env python3
"""Model benchmark: img/s and peak memory of VMamba with every scan next to timm's references and the other families.

Prints markdown tables:

1. ``vmamba_tiny`` with each registered scan (that builds without arguments), then the ``--compare`` models
   (default: ConvNeXt-T, Swin-T, DeiT-S, Vim-S, MambaVision-T, MLLA-T, EfficientVMamba-S, MSVMamba-T) at one
   resolution (default: batch 8, 224x224, fp32, inference);
2. throughput and peak memory against resolution (default 224 -> 1024) for ``--model`` and the same models.

``--versus MODEL`` instead times ``--model`` and MODEL head to head, their steps interleaved, and prints the speed
ratio with its spread over the rounds (the way to read a ratio off a shared, noisy machine); with ``--gemm A,B``
each side runs under its own CPU GEMM policy (``vssm.layers.linear``: the same model on oneDNN against torch's BLAS),
and ``--versus-vssm-linear`` puts MODEL's ``nn.Linear`` layers on vssm's ``Linear`` (both models on the same GEMM).
``--profile`` prints the share of each op category.

Used as ``python tools/benchmark.py models`` (``add_args`` / ``run``) or on its own. Peak memory is the CUDA
allocator's peak on GPU, and on CPU the peak resident-set growth of the process while the model runs (sampled).
"""
from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

# timm's references (DeiT-S is the Vim paper's own comparison for Vim-S), then the other vssm families
REFERENCE_MODELS = ("convnext_tiny", "swin_tiny_patch4_window7_224", "deit_small_patch16_224")
FAMILY_MODELS = ("vim_small", "mambavision_tiny", "mlla_tiny", "efficient_vmamba_small", "msvmamba_tiny")


def add_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds this benchmark's options to ``parser``."""
    g = parser.add_argument_group("models benchmark")
    g.add_argument("--model", default="vmamba_tiny", help="vssm model to run with every scan")
    g.add_argument("--scans", nargs="*", default=None, help="scans to run (default: every registered scan)")
    g.add_argument("--compare", nargs="*", default=list(REFERENCE_MODELS + FAMILY_MODELS),
                   help="timm models to compare with (default: ConvNeXt-T, Swin-T, DeiT-S and the other families)")
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--img-size", type=int, default=224)
    g.add_argument("--resolutions", type=int, nargs="*", default=[224, 384, 512, 768, 1024],
                   help="resolutions of the throughput-vs-resolution table (empty: skip it)")
    g.add_argument("--res-batch-size", type=int, default=1, help="batch size of the resolution table")
    g.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first (the allocator's heap settles in a few: tools/benchmark.py tunes malloc "
                        "as the launchers do, vssm.utils.allocator)")
    g.add_argument("--iters", type=int, default=3, help="timed iterations (the median is reported)")
    g.add_argument("--device", default="cpu")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--train", action="store_true", help="time forward + backward instead of inference")
    g.add_argument("--zoo", action="store_true",
                   help="time every model of the model zoo (vssm.zoo) at its pretrained cfg's input size and write "
                        "--json for tools/model_zoo.py (batch --batch-size; use 1)")
    g.add_argument("--json", default=None, help="with --zoo: where to write the results (default: print only)")
    g.add_argument("--versus", default=None, metavar="MODEL",
                   help="only time --model against MODEL head to head: their steps alternate (A B B A ...) in "
                        "one process, so both see the same machine; prints the speed ratio "
                        "(e.g. swin_tiny_patch4_window7_224)")
    g.add_argument("--gemm", default=None, metavar="POLICY[,POLICY]",
                   help="with --versus: the CPU GEMM policy of vssm's linear layers (vssm.layers.linear: auto, "
                        "onednn, torch) under which --model's steps run, then MODEL's (one value: both; e.g. "
                        "--versus vmamba_tiny --gemm onednn,torch times the same model both ways)")
    g.add_argument("--versus-vssm-linear", action="store_true",
                   help="with --versus: MODEL's nn.Linear layers become vssm's Linear (convert_linears), so both "
                        "models' linear layers run the same CPU GEMM")
    g.add_argument("--profile", action="store_true",
                   help="only profile --model (and the first --compare model): share of time in GEMMs, dense and "
                        "depthwise convolutions, the scan op, copies and elementwise ops")
    return parser


#: Profiler op names by category; whatever is not listed is elementwise / reduction work (norms, activations, ...).
#: Convolutions are dense (the stems and strided downsamplers, which oneDNN runs as GEMM-shaped compute) unless they
#: run inside a depthwise conv module (one input channel per group: memory-bound, VMamba's 3x3 mixer conv), forward
#: or backward (see profile_breakdown).
PROFILE_CATEGORIES = {
    "GEMM": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::_addmm_activation",
             "mkldnn::_linear_pointwise"),  # the last: vssm.layers.linear's oneDNN path
    "dense conv": ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d",
                   "aten::_nnpack_spatial_convolution", "aten::convolution_backward", "aten::_convolution"),
    "depthwise conv": (),  # the convolutions above, run by a depthwise conv module
    "scan op": ("vssm::",),
    "copies": ("aten::copy_", "aten::clone", "aten::contiguous", "aten::cat", "aten::index", "aten::gather",
               "aten::index_add_", "aten::scatter_add_", "aten::constant_pad_nd", "aten::fill_", "aten::zero_"),
}
#: GEMM-shaped compute: the rest of a step is what the profile calls "non-GEMM"
COMPUTE_CATEGORIES = ("GEMM", "dense conv")
_DEPTHWISE_RANGE = "vssm.bench.depthwise_conv"


def _mark_depthwise_convs(model: Any) -> List[Any]:
    """Wraps the forward of every depthwise conv module of ``model`` in a profiler range (hook handles returned).

    Shapes recorded by the profiler would tell the convolutions apart too, but recording them allocates beside
    every op and keeps glibc's heap from settling: the step's large tensors then fault in fresh pages each time
    (measured: 25-42k page faults per VMamba-T step with ``record_shapes``, 1 without).
    """
    import torch
    import torch.nn as nn

    def enter(module, args):
        module._vssm_bench_range = torch.profiler.record_function(_DEPTHWISE_RANGE)
        module._vssm_bench_range.__enter__()

    def leave(module, args, out):
        module._vssm_bench_range.__exit__(None, None, None)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd) and m.weight.shape[1] == 1:
            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    return handles


def _categorise(events: Sequence[Any]) -> Dict[str, float]:
    """Self CPU time per category of a profile's events. A forward convolution is depthwise when it runs inside a
    depthwise range; a backward one when its autograd node (``ConvolutionBackward*``) has the sequence number of
    such a forward convolution."""
    def ancestors(ev):
        p = ev.cpu_parent
        while p is not None:
            yield p
            p = p.cpu_parent

    depthwise_seq = {ev.sequence_nr for ev in events if ev.name == "aten::convolution" and ev.sequence_nr >= 0
                     and any(a.name == _DEPTHWISE_RANGE for a in ancestors(ev))}
    totals = {k: 0.0 for k in PROFILE_CATEGORIES}
    totals["elementwise"] = 0.0
    for ev in events:
        if ev.name.startswith(("ProfilerStep", "autograd::engine", "[memory]")) or ev.name == _DEPTHWISE_RANGE:
            continue
        cat = next((c for c, names in PROFILE_CATEGORIES.items() if names and ev.name.startswith(names)),
                   "elementwise")
        if cat == "dense conv":
            for a in ancestors(ev):
                if a.name == _DEPTHWISE_RANGE or (a.name.startswith("ConvolutionBackward")
                                                  and a.sequence_nr in depthwise_seq):
                    cat = "depthwise conv"
                    break
        totals[cat] += ev.self_cpu_time_total
    return totals


def _step_fn(model: Any, batch: int, size: Tuple[int, int], device: str, train: bool) -> Callable[[], None]:
    """One inference (no grad) or training (forward + backward of the mean) step of ``model`` on a fixed random
    batch, the unit both the profile and the throughput measurement time."""
    import torch

    x = torch.randn(batch, 3, *size, device=device)
    model = model.to(device).train(train)

    def step() -> None:
        if train:
            model(x).float().mean().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(x)

    return step


def profile_breakdown(model: Any, batch: int, size: Tuple[int, int], device: str, train: bool = False,
                      iters: int = 2, warmup: int = 3) -> Dict[str, float]:
    """Share of self CPU time per category (PROFILE_CATEGORIES, 'elementwise' for the rest) over ``iters`` steps
    after ``warmup`` untimed ones, as fractions summing to 1, plus ``ms`` per step."""
    from torch.profiler import ProfilerActivity, profile

    step = _step_fn(model, batch, size, device, train)
    handles = _mark_depthwise_convs(model)
    try:
        for _ in range(warmup):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                step()
    finally:
        for h in handles:
            h.remove()
    totals = _categorise(prof.events())
    whole = sum(totals.values()) or 1.0
    out = {k: v / whole for k, v in totals.items()}
    out["ms"] = whole / 1e3 / iters
    # the GEMMs' throughput: their FLOPs per step, counted in one more step, over their profiled time per step
    out["gemm_gflop"] = _gemm_gflop(step)
    gemm_s = totals["GEMM"] / 1e6 / iters
    out["gemm_gflops"] = out["gemm_gflop"] / gemm_s if gemm_s > 0 else 0.0
    return out


#: the profile's GEMM ops as the FLOP counter names them (aten overload packets)
_GEMM_FLOP_OPS = tuple(name.split("::")[-1] for name in PROFILE_CATEGORIES["GEMM"])


def _gemm_gflop(step: Callable[[], None]) -> float:
    """GFLOP of the GEMM ops (``_GEMM_FLOP_OPS``, 2 per multiply-add) in one call of ``step``, backward included,
    from torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    counts = counter.get_flop_counts().get("Global", {})
    return sum(n for op, n in counts.items() if getattr(op, "__name__", str(op)).split(".")[-1] in _GEMM_FLOP_OPS
               ) / 1e9


def run_profile(args: argparse.Namespace) -> Dict[str, Any]:
    """``--profile``: the category breakdown of ``--model`` and of the first ``--compare`` model, one table."""
    import torch

    import vssm  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    names = [args.model] + list(args.compare[:1])
    print(f"profile: {'forward + backward' if args.train else 'forward'}, batch {args.batch_size}, "
          f"{args.img_size}x{args.img_size}, fp32, {args.device}, torch threads {torch.get_num_threads()}, "
          f"{_cpu(args.device)}load average {_loadavg()}; share of self CPU time\n")
    cats = list(PROFILE_CATEGORIES) + ["elementwise"]
    rows, results = [], {}
    for name in names:
        r = profile_breakdown(_create(name), args.batch_size, (args.img_size, args.img_size), args.device,
                              args.train, iters=max(2, args.iters), warmup=args.warmup)
        results[name] = r
        rows.append([name, f"{r['ms']:.0f}"] + [f"{100 * r[c]:.1f} %" for c in cats] +
                    [f"{100 * (1 - sum(r[c] for c in COMPUTE_CATEGORIES)):.1f} %", f"{r['gemm_gflops']:.0f}"])
    print(_table(["model", "ms per step"] + cats + ["non-GEMM (not GEMM or dense conv)", "GEMM GFLOP/s"], rows))
    return results


def run_zoo(args: argparse.Namespace) -> Dict[str, Any]:
    """``--zoo``: img/s and peak memory of each model of the model zoo at its cfg's input size; one table, and the
    JSON that ``tools/model_zoo.py --bench`` writes into README.md."""
    import json

    import timm
    import torch

    import vssm  # noqa: F401
    from vssm.env import cpu_name
    from vssm.layers.linear import cpu_gemm_backend
    from vssm.zoo import releases

    if args.threads:
        torch.set_num_threads(args.threads)
    meta = dict(device=args.device, machine=cpu_name(), torch=torch.__version__,
                threads=torch.get_num_threads(), batch=args.batch_size, warmup=args.warmup, iters=args.iters,
                train=args.train, date=time.strftime("%Y-%m-%d"), load=_loadavg(), cpu_gemm=cpu_gemm_backend())
    print(f"model zoo: {'train' if args.train else 'inference'}, batch {args.batch_size}, fp32, {args.device}, "
          f"torch {torch.__version__}, threads {meta['threads']}, load average {meta['load']}\n")
    models: Dict[str, Any] = {}
    rows = []
    for name in dict.fromkeys(r["model"] for r in releases(params=False)):
        model = timm.create_model(name)
        side = model.pretrained_cfg["input_size"][-1]
        r = bench_one(model, args.batch_size, (side, side), args.device, args.warmup, args.iters, args.train)
        models[name] = dict(size=side, **r)
        rows.append([name, side, f"{r['img_s']:.2f}", f"{r['img_s_best']:.2f}", f"{r['peak_mib']:.0f}"])
        print(f"  {name}: {r['img_s']:.2f} img/s", flush=True)
        del model
        gc.collect()
    print(_table(["model", "size", "img/s (median)", "img/s (best)", "peak mem (MiB)"], rows))
    out = dict(meta=meta, models=models)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


def _release_free_memory() -> None:
    """Returns freed heap pages to the OS (glibc ``malloc_trim``) so that RSS growth measures the next model only."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # pragma: no cover - non-Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _PeakRSS:
    """Samples the resident set size in a thread; ``peak`` is the largest growth over the start value."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> _PeakRSS:
        self.start = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes() - self.start)
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes() - self.start)


def bench_one(model: Any, batch: int, size: Tuple[int, int], device: str, warmup: int, iters: int,
              train: bool = False) -> Dict[str, float]:
    """Times ``model`` on random images.

    Returns:
        ``img_s`` from the median iteration time (robust on a shared machine), ``img_s_best`` from the fastest, and
        ``peak_mib``: the CUDA allocator's peak, or on CPU the peak resident-set growth over the process's size
        before the first call (freed heap returned to the OS first; warm-up included, so memory the allocator
        keeps between calls is counted once).
    """
    import torch

    step = _step_fn(model, batch, size, device, train)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    _release_free_memory()
    times = []
    with _PeakRSS() as rss:
        for _ in range(warmup):
            step()
        for _ in range(iters):
            times.append(_timed(step, cuda))
    times.sort()
    median = times[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() if cuda else rss.peak
    return {"img_s": batch / median, "img_s_best": batch / times[0], "peak_mib": peak / 2 ** 20}


def _timed(step: Callable[[], None], cuda: bool) -> float:
    """Seconds one call of ``step`` takes (the GPU's queue drained before the clock stops)."""
    import torch

    t0 = time.perf_counter()
    step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def head_to_head(model_a: Any, model_b: Any, batch: int, size: Tuple[int, int], device: str, warmup: int,
                 iters: int, train: bool = False, gemm: Tuple[str, str] | None = None) -> Dict[str, float]:
    """Times two models' steps interleaved, A B B A A B ..., so that a shared machine's slow spells fall on both
    alike (timing one model after the other let VMamba-T's ratio to Swin-T swing 0.72-0.86x between two runs on
    one machine). A round is one step of each; its ratio is B's step time over A's (A's speed relative to B's).
    ``gemm``: the CPU GEMM policy (``vssm.layers.linear.set_cpu_gemm``) each model's steps run under.
    Returns each model's median step time (``ms_a``, ``ms_b``), the median of the rounds' ratios (``ratio``) and
    their 25th and 75th percentiles (``ratio_lo`` / ``ratio_hi``)."""
    steps = (_step_fn(model_a, batch, size, device, train), _step_fn(model_b, batch, size, device, train))
    if gemm is not None:
        steps = tuple(_under_gemm(step, policy) for step, policy in zip(steps, gemm))
    cuda = device.startswith("cuda")
    for _ in range(warmup):
        for step in steps:
            step()
    times: Tuple[List[float], List[float]] = ([], [])
    for i in range(iters):
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            times[j].append(_timed(steps[j], cuda))
    per_round = sorted(b / a for a, b in zip(*times))
    med_a, med_b = (sorted(t)[len(t) // 2] for t in times)
    q = lambda f: per_round[min(len(per_round) - 1, int(f * len(per_round)))]  # noqa: E731
    return {"ms_a": 1e3 * med_a, "ms_b": 1e3 * med_b, "ratio": q(0.5), "ratio_lo": q(0.25),
            "ratio_hi": q(0.75)}


def _under_gemm(step: Callable[[], None], policy: str) -> Callable[[], None]:
    """``step`` run with vssm's CPU GEMM policy set to ``policy`` (the previous one restored after)."""
    from vssm.layers.linear import set_cpu_gemm

    def run() -> None:
        previous = set_cpu_gemm(policy)
        try:
            step()
        finally:
            set_cpu_gemm(previous)

    return run


def run_versus(args: argparse.Namespace) -> Dict[str, Any]:
    """``--versus``: ``--model`` against one other model, interleaved (:func:`head_to_head`); one table row."""
    import torch

    import vssm  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    size = (args.img_size, args.img_size)
    print(f"head to head: {'train' if args.train else 'inference'}, batch {args.batch_size}, {args.img_size}x"
          f"{args.img_size}, fp32, {args.device}, torch threads {torch.get_num_threads()}, {_cpu(args.device)}"
          f"{args.iters} rounds, load average {_loadavg()}\n")
    from vssm.layers.linear import CPU_GEMM_MODES, convert_linears, get_cpu_gemm

    policies = [p.strip().lower() for p in (args.gemm or get_cpu_gemm()).split(",")]
    if len(policies) not in (1, 2) or any(p not in CPU_GEMM_MODES for p in policies):
        raise SystemExit(f"--gemm: got {args.gemm!r}; allowed: one or two of {', '.join(CPU_GEMM_MODES)}, "
                         "comma-separated")
    policies = policies * (3 - len(policies))
    model_b = _create(args.versus, args.img_size)
    if args.versus_vssm_linear:
        convert_linears(model_b)
    r = head_to_head(_create(args.model, args.img_size), model_b, args.batch_size, size, args.device, args.warmup,
                     args.iters, args.train, gemm=tuple(policies))
    label_b = args.versus + (" (vssm Linear)" if args.versus_vssm_linear else "")
    print(_table(["model", "CPU GEMM", "ms per step", "versus", "CPU GEMM", "ms per step",
                  "speed ratio (median round)", "middle half of rounds"],
                 [[args.model, policies[0], f"{r['ms_a']:.1f}", label_b, policies[1], f"{r['ms_b']:.1f}",
                   f"{r['ratio']:.2f}x", f"{r['ratio_lo']:.2f}-{r['ratio_hi']:.2f}x"]]))
    return r


def _cpu(device: str) -> str:
    """The CPU's name for a CPU run's header (CPU figures move with the CPU), else nothing."""
    from vssm.env import cpu_name

    return f"{cpu_name()}, " if device == "cpu" else ""


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:  # pragma: no cover
        return "n/a"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * len(headers)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _create(name: str, img_size: int | None = None, **kwargs: Any) -> Any:
    import timm

    if img_size is not None and name.startswith(("swin", "deit", "vit")):
        kwargs["img_size"] = img_size  # Swin's window tables and ViT / DeiT position embeddings are sized at build
    return timm.create_model(name, **kwargs)


def _scan_names(requested: List[str] | None) -> List[str]:
    from vssm.scans import get_scan, list_scans

    if requested:
        return list(requested)
    names = []
    for n in list_scans():
        try:
            get_scan(n)
        except (ValueError, TypeError):  # needs arguments
            continue
        names.append(n)
    return names


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Runs the benchmark described by ``args`` (see :func:`add_args`), prints markdown, returns the numbers."""
    import torch
    from vssm.kernels import available_backends, default_backend

    import vssm  # noqa: F401

    if args.threads:
        torch.set_num_threads(args.threads)
    size = (args.img_size, args.img_size)
    backend = default_backend(torch.device(args.device))
    print(f"device {args.device}, selective-scan backend {backend} (available: {', '.join(available_backends())}), "
          f"torch threads {torch.get_num_threads()}, batch {args.batch_size}, {args.img_size}x{args.img_size}, "
          f"fp32, {'train' if args.train else 'inference'}, {_cpu(args.device)}load average {_loadavg()}\n")
    results: Dict[str, Any] = {"scans": [], "resolution": []}
    rows = []
    for scan in _scan_names(args.scans):
        model = _create(args.model, scan=scan)
        r = bench_one(model, args.batch_size, size, args.device, args.warmup, args.iters, args.train)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        rows.append([f"{args.model} ({scan}, K={model.stages[0].blocks[0].mixer.K})", f"{params:.2f}",
                     f"{r['img_s']:.2f}", f"{r['img_s_best']:.2f}", f"{r['peak_mib']:.0f}"])
        results["scans"].append(dict(model=args.model, scan=scan, **r))
        del model
    for name in args.compare:
        model = _create(name)
        r = bench_one(model, args.batch_size, size, args.device, args.warmup, args.iters, args.train)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        rows.append([name, f"{params:.2f}", f"{r['img_s']:.2f}", f"{r['img_s_best']:.2f}", f"{r['peak_mib']:.0f}"])
        results["scans"].append(dict(model=name, scan="", **r))
        del model
    print(_table(["model", "params (M)", "img/s (median)", "img/s (best)", "peak mem (MiB)"], rows))

    if args.resolutions:
        names = [args.model] + list(args.compare)
        res_rows = []
        for name in names:
            row = [name]
            for res in args.resolutions:
                try:
                    model = _create(name, img_size=res)
                    r = bench_one(model, args.res_batch_size, (res, res), args.device, args.warmup,
                                  args.iters, args.train)
                    row.append(f"{r['img_s']:.2f} / {r['peak_mib']:.0f}")
                    results["resolution"].append(dict(model=name, res=res, **r))
                except Exception as e:  # noqa: BLE001 - a model that cannot run a size gets a cell, not a crash
                    row.append(f"n/a ({type(e).__name__})")
                gc.collect()
            res_rows.append(row)
        print(f"\nthroughput vs resolution (median img/s / peak MiB, batch {args.res_batch_size})\n")
        print(_table(["model"] + [f"{r}x{r}" for r in args.resolutions], res_rows))
    return results


def main(argv: List[str] | None = None) -> None:
    args = add_args(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args(argv)
    from vssm.utils.allocator import tune_cpu_allocator

    tune_cpu_allocator()
    (run_profile if args.profile else run_zoo if args.zoo else run_versus if args.versus else run)(args)


if __name__ == "__main__":
    main()
