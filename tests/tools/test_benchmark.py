"""tools/bench_models.py's profile breakdown (``benchmark.py models --profile``): each category gets the time of
the ops it names; the shares of a step add up to one."""
import importlib.util
import shutil
from pathlib import Path

import pytest
import timm
import torch
import torch.nn as nn

import vssm  # noqa: F401

BENCH = Path(__file__).resolve().parents[2] / "tools" / "bench_models.py"


@pytest.fixture(scope="module")
def bench_models():
    spec = importlib.util.spec_from_file_location("vssm_tools_bench_models", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Copies(nn.Module):
    def forward(self, x):
        for _ in range(20):
            x = x.transpose(1, 3).contiguous()
        return x


class _Gemm(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3 * 64 * 64, 512))

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_categories_see_their_ops(bench_models):
    cats = list(bench_models.PROFILE_CATEGORIES) + ["elementwise"]
    # 1.5 MiB maps: the copies' own work, not the per-op overhead around them, fills the step whatever state the
    # process's allocator is in (a test run that has tuned malloc makes small copies nearly free)
    copies = bench_models.profile_breakdown(_Copies(), 8, (128, 128), "cpu")
    assert max(cats, key=copies.get) == "copies" and copies["copies"] > 0.5, f"{copies}"
    assert copies["GEMM"] == 0 and copies["scan op"] == 0
    gemm = bench_models.profile_breakdown(_Gemm(), 64, (64, 64), "cpu")
    assert max(cats, key=gemm.get) == "GEMM" and gemm["GEMM"] > 0.5, gemm


@pytest.mark.parametrize("train", [False, True])
def test_gemm_throughput_counts_the_step_gemms(bench_models, train):
    """GEMM GFLOP per step as the analytic count (the weight gradient doubles it in training; the input needs none),
    and GFLOP/s = that over the GEMMs' profiled time; a model without GEMMs reports 0, not a division by zero."""
    r = bench_models.profile_breakdown(_Gemm(), 64, (64, 64), "cpu", train=train)
    forward = 2 * 64 * (3 * 64 * 64) * 512 / 1e9
    assert r["gemm_gflop"] == pytest.approx(forward * (2 if train else 1), rel=1e-9)
    assert r["gemm_gflops"] == pytest.approx(r["gemm_gflop"] / (r["GEMM"] * r["ms"] / 1e3), rel=1e-6)
    r = bench_models.profile_breakdown(nn.Conv2d(3, 3, 3, padding=1), 4, (64, 64), "cpu", train=train)
    assert r["gemm_gflop"] == 0 and r["gemm_gflops"] == 0


@pytest.mark.parametrize("train", [False, True])
def test_vmamba_breakdown_adds_up_and_sees_the_op(bench_models, train):
    r = bench_models.profile_breakdown(timm.create_model("test_vmamba"), 2, (64, 64), "cpu", train=train)
    shares = [r[c] for c in list(bench_models.PROFILE_CATEGORIES) + ["elementwise"]]
    assert sum(shares) == pytest.approx(1.0) and all(s >= 0 for s in shares)
    assert r["scan op"] > 0 and r["GEMM"] > 0 and r["dense conv"] > 0 and r["depthwise conv"] > 0 and r["ms"] > 0


@pytest.mark.parametrize("train", [False, True])
def test_convolutions_split_by_their_weight(bench_models, train):
    """A 3x3 conv with one input channel per group is depthwise, any other dense, forward and backward."""
    depthwise = nn.Conv2d(3, 3, 3, padding=1, groups=3)
    dense = nn.Conv2d(3, 3, 3, padding=1)
    r = bench_models.profile_breakdown(depthwise, 4, (64, 64), "cpu", train=train)
    assert r["depthwise conv"] > 0.3 and r["dense conv"] == 0, r
    r = bench_models.profile_breakdown(dense, 4, (64, 64), "cpu", train=train)
    assert r["dense conv"] > 0.3 and r["depthwise conv"] == 0, r


class _Sleepy(nn.Module):
    """A model whose every forward takes at least ``seconds`` and says when it ran."""

    def __init__(self, name, seconds, log):
        super().__init__()
        self.name, self.seconds, self.log = name, seconds, log
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        import time

        self.log.append(self.name)
        time.sleep(self.seconds)
        return x.mean((1, 2, 3)) * self.w


@pytest.mark.parametrize("train", [False, True])
def test_head_to_head_interleaves_and_reads_the_ratio(bench_models, train):
    log = []
    fast, slow = _Sleepy("a", 0.005, log), _Sleepy("b", 0.04, log)
    r = bench_models.head_to_head(fast, slow, 2, (8, 8), "cpu", warmup=1, iters=4, train=train)
    # one warm-up step each, then rounds in alternating order, so neither model always runs first
    assert log == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert r["ms_a"] >= 5 and r["ms_b"] >= 40
    assert r["ratio"] == pytest.approx(r["ms_b"] / r["ms_a"], rel=0.5)
    assert 2 < r["ratio_lo"] <= r["ratio"] <= r["ratio_hi"]
    same = bench_models.head_to_head(slow, _Sleepy("c", 0.04, log), 2, (8, 8), "cpu", warmup=0, iters=4)
    assert 0.5 < same["ratio"] < 2  # two models that sleep alike


def test_versus_prints_one_row(bench_models, capsys):
    bench_models.main(["--model", "test_vmamba", "--versus", "test_vmamba", "--batch-size", "1", "--img-size",
                       "32", "--iters", "2", "--warmup", "1"])
    out = capsys.readouterr().out
    assert "head to head: inference, batch 1, 32x32" in out
    row = next(line for line in out.splitlines() if line.startswith("| test_vmamba |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == cells[3] == "test_vmamba" and cells[1] == cells[4] and cells[6].endswith("x")
    # the ratio's direction is test_head_to_head_interleaves_and_reads_the_ratio's (sleeping models); here the row
    # must hold the median round inside its middle half (two rounds of real steps are too noisy for more)
    lo, hi = (float(v) for v in cells[7].rstrip("x").split("-"))
    assert float(cells[2]) > 0 and float(cells[5]) > 0 and lo <= float(cells[6][:-1]) <= hi


def test_versus_gemm_policies_per_side(bench_models, capsys):
    """--gemm A,B: each side's steps run under its own CPU GEMM policy, restored after; --versus-vssm-linear puts
    the other model's nn.Linear layers on vssm's Linear."""
    from vssm.layers import linear

    seen = []
    before = linear.get_cpu_gemm()
    step = bench_models._under_gemm(lambda: seen.append(linear.get_cpu_gemm()), "torch")
    step()
    assert seen == ["torch"] and linear.get_cpu_gemm() == before
    bench_models.main(["--model", "test_vmamba", "--versus", "deit_tiny_patch16_224", "--versus-vssm-linear",
                       "--gemm", "auto,torch", "--batch-size", "1", "--img-size", "32", "--iters", "2",
                       "--warmup", "0"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| test_vmamba |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "auto" and cells[3] == "deit_tiny_patch16_224 (vssm Linear)" and cells[4] == "torch"
    with pytest.raises(SystemExit, match=r"--gemm: got 'mkl'; allowed: one or two of auto, onednn, torch"):
        bench_models.main(["--model", "test_vmamba", "--versus", "test_vmamba", "--gemm", "mkl"])


def test_convert_linears_keeps_parameters_and_takes_the_policy():
    from vssm.layers.linear import Linear, convert_linears

    model = timm.create_model("deit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, num_classes=3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    n_linear = sum(type(m) is nn.Linear for m in model.modules())
    assert n_linear > 0 and convert_linears(model) == n_linear
    assert all(type(m) is not nn.Linear for m in model.modules())
    assert sum(type(m) is Linear for m in model.modules()) == n_linear
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-5)


def test_kernel_lowrank_row_compares_equal_computations():
    """benchmark.py kernel's fused-vs-einsum row times two computations of the same y (checked in the row)."""
    spec = importlib.util.spec_from_file_location("vssm_tools_benchmark", BENCH.parent / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    row = module._lowrank_row(0, 2, 49, 4, 40, 1, repeat=1)
    assert row[4] == "3"  # R = ceil(40 / 16)
    assert float(row[-1]) < 1e-4
    assert all(float(c.rstrip("x")) > 0 for c in row[5:11])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mamba_block_row_compares_equal_computations(bidirectional):
    """benchmark.py mamba-block times mamba_inner / bimamba_inner against the unfused block (the full step size from
    a matmul; two scans over flipped copies) on the same inputs; the row checks they give the same y."""
    spec = importlib.util.spec_from_file_location("vssm_tools_benchmark", BENCH.parent / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    t = module._block_inputs(2, 24, 17, 4, 3, bidirectional, "cpu", torch.Generator().manual_seed(0))
    y_unfused, y_fused = module._unfused_block(t, "ref"), module._fused_block(t, "ref")
    assert y_fused.shape == (2, 17, 12)
    torch.testing.assert_close(y_fused, y_unfused, rtol=1e-5, atol=1e-5)
    t_other = dict(t, A_b=t["A"]) if not bidirectional else {k: v for k, v in t.items() if k != "A_b"}
    assert (module._fused_block(t_other, "ref") - y_fused).abs().max() > 1e-3  # the backward direction counts
    row = module._mamba_block_row("x", 2, 24, 17, 4, 3, bidirectional, "cpu", "cpu", repeat=1)
    assert float(row[-1]) < 1e-5 and all(float(c.rstrip("x")) > 0 for c in row[2:8])


def _has_commit(rev):
    import subprocess

    if shutil.which("git") is None:
        return False
    return subprocess.run(["git", "-C", str(BENCH.parents[1]), "cat-file", "-e", f"{rev}^{{commit}}"],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_commit("HEAD"), reason="needs git and a checkout git can read")
def test_kernel_against_a_revision_loads_its_kernels_beside_ours():
    """kernel --against REV: REV's kernels/cpu.py is imported as a module of its own; any two correct versions agree
    (a version against itself exactly), and the row holds positive times; a revision git does not know, or one
    before the rank-R kernels, is a one-line error naming it."""
    import subprocess

    from vssm.kernels import cpu as ours

    spec = importlib.util.spec_from_file_location("vssm_tools_benchmark", BENCH.parent / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    theirs, folder = module.cpu_kernels_at("HEAD")
    try:
        head = subprocess.run(["git", "-C", str(BENCH.parents[1]), "show", "HEAD:kernels/cpu.py"], check=True,
                              capture_output=True, text=True).stdout
        assert Path(theirs.__file__).read_text() == head and Path(theirs.__file__).parent == folder
        assert theirs._fwd_kernel is not ours._fwd_kernel
        (row,) = module.kernel_ab_rows(theirs, ours, [(0, (40, 49))], rounds=2)
        assert row[:4] == ["1", "40", "49", "3"]
        assert all(float(c.rstrip("x")) > 0 for c in row[4:10])
        assert float(row[10]) < 1e-4 and float(row[11]) < 1e-4
        (same,) = module.kernel_ab_rows(theirs, theirs, [(0, (40, 49))], rounds=2)
        assert float(same[10]) == 0 and float(same[11]) == 0
    finally:
        shutil.rmtree(folder)
    with pytest.raises(ValueError, match="--against: got 'no-such-revision'; allowed: a git revision"):
        module.cpu_kernels_at("no-such-revision")
    if _has_commit("cf28515"):  # the commit before the rank-R kernels (a shallow checkout may lack it)
        with pytest.raises(ValueError, match="--against: got 'cf28515'; allowed: a revision whose kernels take"):
            module.cpu_kernels_at("cf28515")


def test_flops_table_prints_ours_beside_the_published():
    import subprocess
    import sys

    tool = BENCH.parent / "benchmark.py"
    out = subprocess.run([sys.executable, str(tool), "flops", "--models", "efficient_vmamba_tiny", "test_vmamba"],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    rows = {line.split("|")[1].strip(" `"): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.splitlines() if line.startswith("| `")}
    from vssm.utils.flops import count

    ours = count(timm.create_model("efficient_vmamba_tiny")).gflops
    size, convention, params, gflops, published, diff = rows["efficient_vmamba_tiny"][:6]
    assert (size, convention, published) == ("224", "fvcore", "0.8")
    assert float(gflops) == pytest.approx(ours, abs=1e-3)
    assert float(diff) == pytest.approx(100 * (ours - 0.8) / 0.8, abs=0.06)
    assert rows["test_vmamba"][4] == "-"  # no published figure
