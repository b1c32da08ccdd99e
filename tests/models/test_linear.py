"""vssm.layers.linear: the oneDNN CPU path against the float64 oracle, forward and every gradient; the policy; the
calls that must stay on F.linear (tracers, dispatch modes, autocast)."""
import pytest
import torch
import torch.nn.functional as F
from timm.layers import Mlp as TimmMlp
from torch import nn

import vssm.env
from vssm.layers import linear as lin

ONEDNN = lin._onednn_works() is None
needs_onednn = pytest.mark.skipif(not ONEDNN, reason="torch has no working oneDNN linear op here")


@pytest.fixture
def policy():
    """Sets the policy for one test and restores the previous one."""
    previous = lin._mode
    yield lin.set_cpu_gemm
    lin._mode = previous


def _op_names(fn):
    """The names of the ops ``fn()`` ran (torch's profiler)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events()}


def _onednn_ran(fn) -> bool:
    return "mkldnn::_linear_pointwise" in _op_names(fn)


@needs_onednn
@pytest.mark.parametrize("x_shape,out,bias,layout", [
    ((37, 24), 16, True, "contiguous"),          # weight grad: both sides < 192, torch's mm
    ((3, 11, 200), 64, True, "contiguous"),      # out < in: oneDNN, the weight's rows as rows
    ((2, 5, 7, 48), 256, False, "contiguous"),   # out > in: oneDNN, the transposed way; no bias
    ((6, 40, 200), 192, True, "permuted"),       # a non-contiguous input (reshape copies it)
])
def test_onednn_linear_matches_float64_oracle_forward_and_every_gradient(policy, x_shape, out, bias, layout):
    policy("onednn")
    g = torch.Generator().manual_seed(sum(x_shape) + out)
    x64 = torch.randn(*x_shape, generator=g, dtype=torch.float64)
    if layout == "permuted":
        x64 = x64.transpose(0, 1).contiguous().transpose(0, 1)
    w64 = torch.randn(out, x_shape[-1], generator=g, dtype=torch.float64) / x_shape[-1] ** 0.5
    b64 = torch.randn(out, generator=g, dtype=torch.float64) if bias else None
    leaves = [t.float().requires_grad_() if t is not None else None for t in (x64, w64, b64)]
    if layout == "permuted":
        leaves[0] = x64.float().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
        assert not leaves[0].is_contiguous()
    y = None

    def step():
        nonlocal y
        y = lin.linear(*leaves)

    assert _onednn_ran(step)
    oracle = [t.clone().requires_grad_() if t is not None else None for t in (x64, w64, b64)]
    y64 = F.linear(*oracle)
    dy = torch.randn(y64.shape, generator=g, dtype=torch.float64)
    y.backward(dy.float())
    y64.backward(dy)
    assert y.shape == y64.shape and y.dtype == torch.float32
    torch.testing.assert_close(y.double(), y64, rtol=1e-5, atol=1e-5)
    for name, got, want in zip(("x", "weight", "bias"), leaves, oracle):
        if want is not None:
            torch.testing.assert_close(got.grad.double(), want.grad, rtol=1e-5, atol=1e-4,
                                       msg=lambda m, name=name: f"d{name}: {m}")


@needs_onednn
@pytest.mark.parametrize("needs", ["x", "weight"])
def test_onednn_linear_one_leaf_needing_grad(policy, needs):
    """A frozen weight (fine-tuning heads) or a constant input: only the gradient asked for, and it is right."""
    policy("onednn")
    x = torch.randn(50, 256, dtype=torch.float64)
    w = torch.randn(300, 256, dtype=torch.float64) / 16
    xf, wf = x.float().requires_grad_(needs == "x"), w.float().requires_grad_(needs == "weight")
    lin.linear(xf, wf).square().sum().backward()
    x.requires_grad_(needs == "x")
    w.requires_grad_(needs == "weight")
    F.linear(x, w).square().sum().backward()
    got, want = (xf.grad, x.grad) if needs == "x" else (wf.grad, w.grad)
    assert (wf.grad if needs == "x" else xf.grad) is None
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_onednn_linear_double_backward(policy):
    """create_graph: the backward is built from differentiable ops, so gradient penalties work."""
    policy("onednn")
    x = torch.randn(9, 33, dtype=torch.float64)
    w = torch.randn(200, 33, dtype=torch.float64) / 6
    b = torch.randn(200, dtype=torch.float64)
    results = []
    for fn, dtype in ((lin.linear, torch.float32), (F.linear, torch.float64)):
        xs, ws, bs = (t.to(dtype).requires_grad_() for t in (x, w, b))
        (gx,) = torch.autograd.grad(fn(xs, ws, bs).tanh().sum(), xs, create_graph=True)
        gx.square().sum().backward()
        results.append((gx, ws.grad, bs.grad))
    for got, want in zip(*results):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_policy_torch_is_f_linear_bitwise_and_onednn_is_taken_when_asked(policy):
    x, w, b = torch.randn(64, 96), torch.randn(128, 96), torch.randn(128)
    policy("torch")
    assert lin.cpu_gemm_backend() == "torch"
    assert not _onednn_ran(lambda: lin.linear(x, w, b))
    assert torch.equal(lin.linear(x, w, b), F.linear(x, w, b))
    policy("onednn")
    assert lin.cpu_gemm_backend() == "onednn" and lin.get_cpu_gemm() == "onednn"
    assert _onednn_ran(lambda: lin.linear(x, w, b))
    assert _onednn_ran(lambda: lin.linear(x.requires_grad_(), w, b).sum().backward())


@needs_onednn
def test_tracers_modes_and_autocast_see_f_linear(policy):
    """What the FLOP counter, autocast, TorchScript and bf16 / other dtypes see is F.linear's result."""
    policy("onednn")
    m = lin.Linear(32, 48)
    x = torch.randn(4, 32)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        assert not _onednn_ran(lambda: m(x))
    assert counter.get_total_flops() == 2 * 4 * 32 * 48
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == torch.bfloat16
    traced = torch.jit.trace(m, (x,))
    assert "mkldnn" not in str(traced.graph) and "linear" in str(traced.graph)
    assert torch.equal(m.to(torch.float64)(x.double()), F.linear(x.double(), m.weight, m.bias))


def test_bad_policy_names_the_argument_and_keeps_the_setting(policy, monkeypatch):
    before = lin.get_cpu_gemm()
    with pytest.raises(ValueError, match=r"set_cpu_gemm mode: got 'mkl'; allowed: 'auto', 'onednn', 'torch'"):
        policy("mkl")
    assert lin.get_cpu_gemm() == before
    lin._mode = None
    monkeypatch.setenv("VSSM_CPU_GEMM", "fast")
    with pytest.raises(ValueError, match=r"VSSM_CPU_GEMM: got 'fast'; allowed: 'auto', 'onednn', 'torch'"):
        lin.linear(torch.randn(2, 3), torch.randn(4, 3))
    monkeypatch.setenv("VSSM_CPU_GEMM", "torch")
    assert lin.cpu_gemm_backend() == "torch"
    assert lin.set_cpu_gemm("auto") is None  # returns the previous setting: none, the environment's


@pytest.mark.parametrize("vendor,flags,machine,prefers", [
    ("AuthenticAMD", "fpu sse avx2 avx512f avx512bw", "x86_64", True),
    ("GenuineIntel", "fpu sse avx2 avx512f avx512bw", "x86_64", False),  # MKL runs AVX-512 there
    ("AuthenticAMD", "fpu sse avx2", "x86_64", False),                   # not measured: torch's default
    ("AuthenticAMD", "fpu sse avx2 avx512f", "aarch64", False),
])
def test_auto_policy_rule(monkeypatch, tmp_path, vendor, flags, machine, prefers):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    real = vssm.env.cpu_info
    monkeypatch.setattr(vssm.env, "cpu_info", lambda path=str(info): real(path))
    monkeypatch.setattr(lin.platform, "machine", lambda: machine)
    assert lin._auto_prefers_onednn() is prefers


def test_linear_and_mlp_keep_nn_linear_and_timm_mlp_state_dicts():
    a, b = lin.Linear(8, 5), nn.Linear(8, 5)
    assert isinstance(a, nn.Linear) and a.state_dict().keys() == b.state_dict().keys()
    ours, theirs = lin.Mlp(12, 40, act_layer=nn.GELU), TimmMlp(12, 40, act_layer=nn.GELU)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(3, 7, 12)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_onednn_unavailable_is_an_error_when_asked_and_a_warning_under_auto(policy, monkeypatch):
    """Where torch has no working oneDNN linear op: 'onednn' raises and keeps the setting; 'auto' on a CPU that
    would prefer it warns once and runs torch's BLAS."""
    monkeypatch.setattr(lin, "_onednn_op", lambda: None)
    monkeypatch.setattr(lin, "_resolved", {})
    policy("torch")
    with pytest.raises(RuntimeError, match=r"cpu gemm: got 'onednn'; torch has no oneDNN linear op here .*; "
                                           r"allowed here: 'auto' or 'torch'"):
        policy("onednn")
    assert lin.get_cpu_gemm() == "torch"
    monkeypatch.setattr(lin, "_auto_prefers_onednn", lambda: True)
    lin._mode = "auto"
    with pytest.warns(RuntimeWarning, match="CPU linear layers use torch's BLAS: torch has no oneDNN linear op"):
        assert lin.cpu_gemm_backend() == "torch"
    x, w = torch.randn(3, 4), torch.randn(5, 4)
    assert torch.equal(lin.linear(x, w), F.linear(x, w))


@needs_onednn
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_mlp_inference_runs_gelu_inside_fc1_and_matches_the_oracle(policy, approximate):
    policy("onednn")
    torch.manual_seed(3)
    ours = lin.Mlp(96, 384, act_layer=lambda: nn.GELU(approximate=approximate)).eval()
    oracle = TimmMlp(96, 384, act_layer=lambda: nn.GELU(approximate=approximate)).double().eval()
    oracle.load_state_dict(ours.state_dict())
    x = torch.randn(2, 7, 5, 96)
    with torch.no_grad():
        names = _op_names(lambda: ours(x))
        y = ours(x)
        want = oracle(x.double())
    assert "mkldnn::_linear_pointwise" in names and "aten::gelu" not in names
    torch.testing.assert_close(y.double(), want, rtol=1e-5, atol=1e-5)
    # training: the GELU stays a module of its own (its backward needs the pre-activation), gradients right
    xg = x.clone().requires_grad_()
    names = _op_names(lambda: ours(xg).square().sum().backward())
    assert "aten::gelu" in names and "aten::gelu_backward" in names
    x64 = x.double().requires_grad_()
    oracle(x64).square().sum().backward()
    torch.testing.assert_close(xg.grad.double(), x64.grad, rtol=1e-5, atol=1e-4)
    policy("torch")
    with torch.no_grad():
        assert "aten::gelu" in _op_names(lambda: ours(x))
