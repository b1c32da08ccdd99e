"""The Triton kernels compiled for sm_80 and sm_90 without a GPU (vssm.kernels.triton_compile).

Every variant the models launch must compile without spill and keep at least 16 warps resident per SM. The
compilation runs in a subprocess without ``TRITON_INTERPRET`` (the test session interprets the kernels on CPU, and
an interpreted kernel cannot be compiled).
"""
import json
import os
import subprocess
import sys

import pytest
from vssm.kernels.triton_compile import model_variants, occupancy, unsupported

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_aot = pytest.mark.skipif(unsupported() is not None, reason=str(unsupported()))


def _compile(code: str) -> list:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_occupancy_arithmetic():
    # 128 regs x 32 threads = 4096 per warp; 65536 / (4096 x 8) = 2 blocks of 8 warps
    assert occupancy(128, 4096, 8) == 16
    # 129 regs round up to 4352 per warp (units of 256): 65536 // (4352 x 8) = 1 block
    assert occupancy(129, 4096, 8) == 8
    # 93 regs -> 2976 -> 3072 per warp; 65536 // (3072 x 4) = 5 blocks of 4 warps
    assert occupancy(93, 4096, 4) == 20
    # few registers: the 64-warp limit binds (16 blocks of 4 warps), not the 32-block limit
    assert occupancy(16, 0, 4) == 64
    # 1 warp per block, few registers: the 32-block limit binds
    assert occupancy(16, 0, 1) == 32
    # shared memory binds: 100 KiB per block, 228 KiB per SM -> 2 blocks
    assert occupancy(32, 100 * 1024, 4) == 8


def test_model_variants_cover_the_grid():
    vs = model_variants()
    assert len(vs) == len(set(vs)) == 2 * 5 * 2 * 2 * 2 * 3 * 2
    assert {v.N for v in vs} == {1, 2, 4, 8, 16}
    assert {v.dtype for v in vs} == {"fp32", "bf16", "fp16"}
    assert {v.lowrank for v in vs} == {True, False}


@needs_aot
def test_the_measurement_sees_spill():
    """Capped at 32 registers, the N = 16 backward must spill: the resource reading is not blind to it."""
    rows = _compile(
        "import json; from vssm.kernels.triton_compile import Variant, compile_variant;"
        "print(json.dumps([compile_variant(Variant('bwd', 16, True, True, True, 'bf16'), 90, max_registers=32),"
        "compile_variant(Variant('bwd', 16, True, True, True, 'bf16'), 90)]))")
    capped, default = rows
    assert capped["registers"] <= 32 and capped["spill"] > 0
    assert default["registers"] > 32 and default["spill"] == 0


def _ci_variants() -> list:
    """Every (kind, N, step-size form) cell with 3 of its 24 (merge, gate, u, dtype) combinations, rotating so that
    each flag value and dtype appears in every cell's column: 120 compiles (about 2 minutes here) instead of
    960. ``VSSM_FULL_COMPILE=1`` compiles the whole grid (``tools/benchmark.py kernel --compile-only`` prints it)."""
    vs = model_variants()
    if os.environ.get("VSSM_FULL_COMPILE") == "1":
        return vs
    cells = {}
    for v in vs:
        cells.setdefault((v.kind, v.N, v.lowrank), []).append(v)
    picked = []
    for i, (_, group) in enumerate(sorted(cells.items())):
        picked += [group[(i + j * 8) % len(group)] for j in range(3)]
    return picked


def test_ci_variants_cover_every_cell_and_flag():
    vs = _ci_variants()
    assert {(v.kind, v.N, v.lowrank) for v in vs} == {(v.kind, v.N, v.lowrank) for v in model_variants()}
    for field, values in (("merge", {True, False}), ("gate", {True, False}), ("shared_u", {True, False}),
                          ("dtype", {"fp32", "bf16", "fp16"})):
        assert {getattr(v, field) for v in vs} == values, field


@pytest.mark.slow
@needs_aot
def test_model_variants_compile_without_spill_at_16_warps():
    variants = _ci_variants()
    code = ("import json; from vssm.kernels.triton_compile import Variant, report;"
            f"print(json.dumps(report([Variant(**v) for v in {[v.__dict__ for v in variants]!r}])))")
    rows = _compile(code)
    assert len(rows) == 2 * len(variants)
    assert {r["arch"] for r in rows} == {80, 90}
    bad = [r for r in rows if r["spill"] or r["warps_per_sm"] < 16 or r["registers"] <= 0]
    assert not bad, f"{len(bad)} variants spill or keep < 16 warps resident per SM: {bad[:4]}"
