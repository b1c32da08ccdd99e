"""The fused low-rank step size: ``selective_scan(..., delta=dt (Bt, L, K, R), dt_proj_weight=W (K, Du, R))``.

Every backend is checked against the oracle run on the full step size ``einsum('blkr,kdr->blkd', dt, W)`` (formed
in float64 or float32 and differentiated by autograd): forward, last state and every gradient, ``d(dt)`` and ``dW``
included, on fresh random inputs; ragged orders, shared and per-path ``u``, gates, merge, fp32 / bf16 / fp16.
``dt`` is passed as a strided slice of a wider ``x_proj`` output, as the models do.
"""
import itertools

import pytest
import torch
from test_selective_scan import assert_close, make_inputs, random_order
from vssm.kernels import available_backends, selective_scan, selective_scan_ref

HAS_CUDA = torch.cuda.is_available()


def lowrank_inputs(Bt, L, K, Du, N, R, *, dtype=torch.float32, device="cpu", gen=None, **kw):
    """The op's inputs with ``delta`` replaced by a rank-R step size: a strided (Bt, L, K, R) slice of a
    (Bt, L, K, R + 2N) tensor, and W (K, Du, R) in fp32 (fp64 for fp64)."""
    t = make_inputs(Bt, L, K, Du, N, dtype=dtype, device=device, gen=gen, **kw)
    g = gen or torch.Generator().manual_seed(torch.seed() % (2**31))
    x_dbl = torch.randn(Bt, L, K, R + 2 * N, generator=g)
    t["delta"] = x_dbl.to(device=device, dtype=dtype)[..., :R]
    wdt = torch.float64 if dtype == torch.float64 else torch.float32
    t["dt_proj_weight"] = (torch.randn(K, Du, R, generator=g) * R ** -0.5).to(device=device, dtype=wdt)
    return t


def run(fn, inputs, **kw):
    """Leaf copies of ``inputs`` (keeping ``delta``'s strides), a fixed output gradient: (y, last, grads)."""
    leaves = {}
    for k, v in inputs.items():
        if v is None:
            leaves[k] = None
        elif k == "delta":  # a slice of a leaf, so the op sees the strides the models hand it
            wide = torch.zeros(v.shape[:3] + (v.stride(2),), dtype=v.dtype, device=v.device)
            wide[..., :v.shape[3]] = v.detach()
            base = wide.requires_grad_()
            leaves["_base"] = base
            leaves[k] = base[..., :v.shape[3]]
        else:
            leaves[k] = v.detach().clone().requires_grad_()
    base = leaves.pop("_base", None)
    y, last = fn(**leaves, return_last_state=True, **kw)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1234)).to(y)
    (y.float() * gy.float()).sum().backward()
    grads = {k: v.grad for k, v in leaves.items() if v is not None and k != "delta"}
    if base is not None:
        grads["delta"] = base.grad[..., :inputs["delta"].shape[3]]
    return y, last, grads


def oracle(u, delta, dt_proj_weight, **kw):
    """The full step size formed outside, then the sequential oracle; autograd differentiates both."""
    ct = torch.float64 if u.dtype == torch.float64 else torch.float32
    full = torch.einsum("blkr,kdr->blkd", delta.to(ct), dt_proj_weight.to(ct))
    return selective_scan_ref(u, full, **kw)


def check(backend, t, order, dtype, merge=None, device="cpu"):
    kw = dict(order=None if order is None else order.to(device), merge=merge)
    y, last, grads = run(selective_scan, t, backend=backend, **kw)
    ref_t = {k: None if v is None else v.detach().cpu() for k, v in t.items()}
    ry, rlast, rgrads = run(oracle, ref_t, **kw)
    assert y.shape == ry.shape and y.dtype == t["u"].dtype
    assert_close(y.cpu(), ry, dtype, "y")
    assert_close(last.cpu(), rlast, torch.float32 if dtype != torch.float64 else dtype, "last state")
    assert set(grads) == set(rgrads) and "dt_proj_weight" in grads and "delta" in grads
    fp32_params = ("A", "D", "delta_bias", "dt_proj_weight")
    for name in grads:
        assert grads[name].dtype == t[name].dtype, name
        assert_close(grads[name].cpu(), rgrads[name],
                     (torch.float32 if dtype != torch.float64 else dtype) if name in fp32_params else dtype,
                     f"d{name}")


CASES = [
    # (N, K, L, R, dtype, shared_u, z, merge)
    *[(N, K, L, R, torch.float32, (N + K + L) % 2 == 0, L == 7, "sum" if K == 4 else None)
      for N, K, L, R in itertools.product((1, 4, 16), (1, 2, 4), (7, 49), (1, 6))],
    (1, 4, 196, 6, torch.float32, True, False, "sum"),
    (4, 4, 49, 6, torch.bfloat16, True, True, "sum"),
    (16, 2, 49, 3, torch.float16, False, True, None),
    (1, 4, 49, 12, torch.bfloat16, True, False, None),
    # the cpu kernels form the step size four steps by four ranks at a time: two chunks of 64 steps and a partial
    # group of four, with one rank outside the blocks of four
    (2, 2, 131, 9, torch.float32, False, True, None),
]


def _id(c):
    N, K, L, R, dt, su, z, m = c
    return f"N{N}-K{K}-L{L}-R{R}-{str(dt)[6:]}-{'shared' if su else 'perpath'}u" + "-z" * z + f"-{m}" * bool(m)


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_cpu_lowrank_matches_oracle(case):
    N, K, L, R, dtype, shared_u, has_z, merge = case
    gen = torch.Generator().manual_seed(hash(case) % 1000)
    t = lowrank_inputs(2, L, K, 20, N, R, dtype=dtype, shared_u=shared_u, has_z=has_z, shared_z=not shared_u,
                       gen=gen)
    check("cpu", t, random_order(K, L, gen, ragged=True), dtype, merge=merge)


TRITON_CASES = [
    (1, 4, 7, 6, torch.float32, True, True, "sum"),
    (4, 2, 20, 3, torch.float32, False, True, None),
    (16, 1, 5, 1, torch.float32, True, False, None),
    (2, 2, 20, 6, torch.bfloat16, True, False, "sum"),
    (1, 4, 12, 5, torch.float16, False, True, None),
]


@pytest.mark.skipif("triton" not in available_backends(), reason="triton not installed")
@pytest.mark.parametrize("case", TRITON_CASES, ids=_id)
def test_triton_lowrank_matches_oracle(case):
    """Interpreted on CPU (TRITON_INTERPRET=1, set in conftest) or compiled on a GPU; Du = 36: a full channel
    tile plus a partial one, so d(dt) is summed over two tiles."""
    N, K, L, R, dtype, shared_u, has_z, merge = case
    device = "cuda" if HAS_CUDA else "cpu"
    gen = torch.Generator().manual_seed(hash(case) % 1000)
    t = lowrank_inputs(2, L, K, 36, N, R, dtype=dtype, shared_u=shared_u, has_z=has_z, shared_z=shared_u,
                       device=device, gen=gen)
    check("triton", t, random_order(K, L, gen, ragged=True), dtype, merge=merge, device=device)


@pytest.mark.skipif("triton" not in available_backends(), reason="triton not installed")
def test_triton_lowrank_without_the_fused_forward_matches_oracle(monkeypatch):
    """Where triton's compiler crashes on the rank-R forward (triton 3.3 at N 2-4), the op forms the step size
    outside the kernel: still the oracle's forward and every gradient, d(dt) and dW from autograd."""
    import vssm.kernels.triton_scan as triton_scan

    calls = []
    monkeypatch.setattr(triton_scan, "lowrank_forward_crashes", lambda N: calls.append(N) or True)
    device = "cuda" if HAS_CUDA else "cpu"
    gen = torch.Generator().manual_seed(21)
    t = lowrank_inputs(2, 12, 2, 36, 2, 3, dtype=torch.float32, has_z=True, device=device, gen=gen)
    check("triton", t, random_order(2, 12, gen, ragged=True), torch.float32, merge="sum", device=device)
    assert calls and set(calls) == {2}


def test_lowrank_forward_crash_rule(monkeypatch):
    import vssm.kernels.triton_scan as triton_scan

    if triton_scan.triton is None:
        pytest.skip("triton not installed")
    monkeypatch.setattr(triton_scan.triton, "__version__", "3.3.1")
    assert [N for N in range(1, 17) if triton_scan.lowrank_forward_crashes(N)] == [2, 3, 4]
    for version in ("3.2.0", "3.4.0", "3.6.0", "3.30.0"):
        monkeypatch.setattr(triton_scan.triton, "__version__", version)
        assert not any(triton_scan.lowrank_forward_crashes(N) for N in range(1, 17)), version


@pytest.mark.parametrize("backend", ["cpu", "ref"])
def test_lowrank_gradcheck_float64(backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} backend unavailable")
    gen = torch.Generator().manual_seed(5)
    t = lowrank_inputs(1, 5, 2, 3, 2, 2, dtype=torch.float64, has_z=True, gen=gen)
    t["delta"] = t["delta"].contiguous()
    t["A"], t["D"], t["delta_bias"] = (t[k].double() for k in ("A", "D", "delta_bias"))
    order = random_order(2, 5, gen, ragged=True)
    names = list(t)

    def f(*args):
        return selective_scan(**dict(zip(names, args)), order=order, backend=backend)

    args = tuple(t[k].requires_grad_() for k in names)
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6)


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
def test_lowrank_equals_full_form_and_is_deterministic():
    """The fused form computes what the full-delta form computes from einsum(dt, W); two backward passes give
    bit-identical d(dt) and dW (the per-block partial sums are reduced in a fixed order)."""
    gen = torch.Generator().manual_seed(11)
    t = lowrank_inputs(3, 49, 4, 40, 1, 6, gen=gen)
    order = random_order(4, 49, gen, ragged=True)
    W = t.pop("dt_proj_weight")
    full = torch.einsum("blkr,kdr->blkd", t["delta"], W)
    y_full = selective_scan(**{**t, "delta": full}, order=order, merge="sum", backend="cpu")
    runs = [run(selective_scan, {**t, "dt_proj_weight": W}, order=order, merge="sum", backend="cpu")
            for _ in range(2)]
    torch.testing.assert_close(runs[0][0], y_full, rtol=1e-5, atol=1e-5)
    for name in ("delta", "dt_proj_weight", "u", "B"):
        assert torch.equal(runs[0][2][name], runs[1][2][name]), name


def _valid():
    return lowrank_inputs(2, 6, 2, 3, 2, 4, gen=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "change,exc,words",
    [
        (dict(dt_proj_weight=torch.randn(2, 3)), ValueError, ["dt_proj_weight", "(2, 3)", "(K, Du, R)"]),
        (dict(dt_proj_weight=torch.randn(2, 3, 0)), ValueError, ["dt_proj_weight", "R >= 1"]),
        (dict(dt_proj_weight=torch.randn(2, 3, 5)), ValueError, ["delta", "(2, 6, 2, 4)", "R=5"]),
        (dict(dt_proj_weight=torch.randn(3, 3, 4)), ValueError, ["delta", "K=3"]),
        (dict(dt_proj_weight=torch.randn(2, 5, 4)), ValueError, ["u", "Du)=(2, 6, 5)", "dt_proj_weight"]),
        (dict(dt_proj_weight=torch.randn(2, 3, 4).bfloat16()), TypeError, ["dt_proj_weight", "bfloat16",
                                                                           "float32"]),
        (dict(dt_proj_weight=[[1.0]]), TypeError, ["dt_proj_weight", "list", "(K, Du, R)"]),
    ],
)
def test_lowrank_bad_input(change, exc, words):
    kw = _valid()
    kw.update(change)
    with pytest.raises(exc) as info:
        selective_scan(**kw)
    for w in words:
        assert w in str(info.value), (w, str(info.value))

