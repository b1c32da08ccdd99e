"""The Triton kernels compiled for a GPU target without a GPU: registers, spill, shared memory and occupancy.

``triton.compile(ASTSource(kernel, signature, constexprs), target=GPUTarget('cuda', arch, 32))`` builds the cubin
a launch on that GPU would build; triton's bundled ``cuobjdump --dump-resource-usage`` reads its registers per
thread, stack frame (spill) and local memory. :func:`occupancy` turns them into resident warps per SM.
:func:`model_variants` lists the variants the models launch (state size, merge, gate, shared or per-path ``u``,
input dtype; forward and backward), and :func:`report` compiles them. Used by ``tools/benchmark.py kernel
--compile-only`` and tests/kernels/test_triton_compile.py; nothing here runs a kernel.
"""
from __future__ import annotations

import inspect
import itertools
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional

from . import triton_scan

__all__ = ["Variant", "compile_variant", "model_variants", "occupancy", "report", "unsupported",
           "REGISTERS_PER_SM", "SHARED_PER_SM"]

REGISTERS_PER_SM = 65536  # sm_80 / sm_90
SHARED_PER_SM = 228 * 1024  # sm_90 (sm_80: 164 KiB; the kernels use a few KiB)
MAX_BLOCKS_PER_SM = 32
MAX_WARPS_PER_SM = 64
_DTYPES = {"fp32": "*fp32", "bf16": "*bf16", "fp16": "*fp16"}


@dataclass(frozen=True)
class Variant:
    """One compiled kernel: ``kind`` 'fwd' / 'bwd', state size ``N``, ``merge`` (paths summed), ``gate`` (z),
    ``shared_u`` (u shared by the paths), input ``dtype`` of u / delta / B / C / z, ``lowrank`` (the rank-``R``
    step size with ``dt_proj_weight``, formed in the kernel) or the full step size."""

    kind: str
    N: int
    merge: bool
    gate: bool
    shared_u: bool
    dtype: str
    lowrank: bool = True
    K: int = 4
    Du: int = 96
    R: int = 6


def model_variants() -> List[Variant]:
    """Every variant the models launch: N in {1, 2, 4, 8, 16}, merge or not, with / without z, shared / per-path
    u, fp32 / bf16 / fp16 inputs, both step-size forms, forward and backward."""
    grid = itertools.product(("fwd", "bwd"), (1, 2, 4, 8, 16), (True, False), (False, True), (True, False),
                             ("fp32", "bf16", "fp16"), (True, False))
    return [Variant(*v) for v in grid]


def _signature(fn, v: Variant, constexprs: Dict[str, object]) -> Dict[str, str]:
    low = _DTYPES[v.dtype]
    sig = {}
    for name in fn.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name == "order_ptr":
            sig[name] = "*i32"
        elif name in ("u_ptr", "delta_ptr", "B_ptr", "C_ptr", "z_ptr") or (name == "y_ptr" and not v.merge):
            sig[name] = low  # inputs in their dtype; a per-path y is written in the input dtype
        elif name == "dout_ptr":
            sig[name] = low  # the gradient of y arrives in y's dtype, the input dtype by default
        elif name.endswith("_ptr"):
            sig[name] = "*fp32"  # A, D, bias, dt_proj_weight, states, merged y and every gradient
        else:
            sig[name] = "i32"
    return sig


def _cuobjdump() -> str:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    if not os.path.exists(path):
        raise RuntimeError(f"triton's bundled cuobjdump is missing ({path}); a triton wheel with the NVIDIA backend "
                           "is needed to read register use")
    return path


def occupancy(registers: int, shared: int, num_warps: int) -> int:
    """Resident warps per SM: blocks limited by registers (allocated per warp in units of 256), by shared memory,
    by 32 blocks and by 64 warps, times ``num_warps``."""
    per_warp = -(-registers * 32 // 256) * 256
    blocks = min(REGISTERS_PER_SM // (per_warp * num_warps), SHARED_PER_SM // max(shared, 1), MAX_BLOCKS_PER_SM,
                 MAX_WARPS_PER_SM // num_warps)
    return blocks * num_warps


def unsupported() -> Optional[str]:
    """Why this triton cannot compile ahead of time the way :func:`compile_variant` does, or ``None`` when it can:
    ``ASTSource(..., constexprs=...)`` is triton >= 3.3 (3.2 and older take ``constants=`` with another signature
    format), and 3.3's compiler crashes on the rank-R forward at N 2-4 (``triton_scan.lowrank_forward_crashes``;
    the op works around it, a table of every variant cannot). The kernels themselves run on older triton."""
    try:
        import triton
        from triton.compiler import ASTSource
    except ImportError as e:
        return f"triton is not importable ({e})"
    if "constexprs" not in inspect.signature(ASTSource.__init__).parameters or triton_scan.lowrank_forward_crashes(2):
        return f"compiling for a GPU target without a GPU needs triton >= 3.4; this is triton {triton.__version__}"
    return None


def compile_variant(v: Variant, arch: int, max_registers: Optional[int] = None) -> Dict[str, object]:
    """Compiles ``v`` for ``sm_<arch>`` as the launchers do (``max_registers`` overrides their register cap) and
    returns its tiles, registers, spill (stack frame + local memory bytes), shared memory (bytes per block) and
    resident warps per SM."""
    why = unsupported()
    if why is not None:
        raise RuntimeError(f"vssm.kernels.triton_compile: {why}")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    CH, BD, NP = triton_scan.tiles(v.N, v.Du)
    constexprs: Dict[str, object] = dict(KU=1 if v.shared_u else v.K, KZ=1, HAS_Z=v.gate, MERGE=v.merge,
                                         SOFTPLUS=True, LOWRANK=v.lowrank, CH=CH, BD=BD, NP=NP)
    fn = triton_scan._fwd_kernel if v.kind == "fwd" else triton_scan._bwd_kernel
    if v.kind == "fwd":
        constexprs["SAVE_CKPT"] = True
    else:
        constexprs["RP"] = triton.next_power_of_2(v.R) if v.lowrank else 1
    src = ASTSource(fn, _signature(fn, v, constexprs),
                    constexprs={(fn.arg_names.index(k),): val for k, val in constexprs.items()})
    num_warps = triton_scan.NUM_WARPS[v.kind]
    options = dict(num_warps=num_warps, maxnreg=max_registers or triton_scan.MAX_REGISTERS)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(kernel.asm["cubin"])
        out = subprocess.run([_cuobjdump(), "--dump-resource-usage", path], capture_output=True, text=True,
                             check=True).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", out)
    if m is None:
        raise RuntimeError(f"cuobjdump printed no resource line for {v}: {out[:200]!r}")
    regs, stack, static_shared, local = map(int, m.groups())
    shared = max(int(kernel.metadata.shared), static_shared)
    return dict(asdict(v), arch=arch, CH=CH, BD=BD, NP=NP, num_warps=num_warps, registers=regs,
                spill=stack + local, shared=shared, warps_per_sm=occupancy(regs, shared, num_warps))


def report(variants: Iterable[Variant], archs: Iterable[int] = (80, 90)) -> List[Dict[str, object]]:
    """:func:`compile_variant` over ``variants`` x ``archs``."""
    variants = list(variants)
    return [compile_variant(v, a) for a in archs for v in variants]
