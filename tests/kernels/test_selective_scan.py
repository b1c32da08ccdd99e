"""The selective-scan op against its oracle: forward, last state and every gradient, on fresh random inputs.

Backends under test: ``cpu`` (numba) and ``triton`` (through Triton's interpreter on CPU, at small sizes; on a GPU
at real sizes when one is present). The oracle itself is checked against a closed form and by gradcheck.
"""
import itertools
import math

import pytest
import torch
from vssm.kernels import available_backends, selective_scan, selective_scan_mamba, selective_scan_ref

HAS_CUDA = torch.cuda.is_available()
TOL = {torch.float32: (6e-4, 2e-3), torch.float64: (1e-9, 1e-9), torch.bfloat16: (3e-2, 5e-2),
       torch.float16: (1e-2, 2e-2)}
NAMES = ("u", "delta", "A", "B", "C", "D", "delta_bias", "z")


def make_inputs(Bt, L, K, Du, N, *, dtype=torch.float32, shared_u=True, has_D=True, has_bias=True, has_z=False,
                shared_z=True, device="cpu", gen=None):
    """Random inputs in the ranges the models produce (delta around softplus's knee, A negative)."""
    g = gen or torch.Generator().manual_seed(torch.seed() % (2**31))
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    t = dict(
        u=r(Bt, L, Du) if shared_u else r(Bt, L, K, Du),
        delta=r(Bt, L, K, Du) * 0.5 - 1.0,
        A=-torch.exp(r(K, Du, N) * 0.5),
        B=r(Bt, L, K, N),
        C=r(Bt, L, K, N),
        D=r(K, Du) if has_D else None,
        delta_bias=r(K, Du) * 0.3 if has_bias else None,
        z=(r(Bt, L, Du) if shared_z else r(Bt, L, K, Du)) if has_z else None,
    )
    fp32_only = ("A", "D", "delta_bias")

    def cast(k, v):
        return v.to(device=device, dtype=torch.float32 if k in fp32_only and dtype != torch.float64 else dtype)

    return {k: None if v is None else cast(k, v) for k, v in t.items()}


def random_order(K, L, gen, ragged=False):
    order = torch.stack([torch.randperm(L, generator=gen) for _ in range(K)]).int()
    if ragged and L > 2:
        order[0, L // 3: L // 2 + 1] = -1  # a gap inside a path
        order = torch.cat([order, torch.full((K, 3), -1, dtype=torch.int32)], 1)  # padding at the end
    return order


def run(fn, inputs, **kw):
    """Calls ``fn`` on leaf copies of ``inputs`` with a fixed random output gradient; returns (y, last, grads)."""
    leaves = {k: None if v is None else v.detach().clone().requires_grad_() for k, v in inputs.items()}
    y, last = fn(**leaves, return_last_state=True, **kw)
    gen = torch.Generator().manual_seed(1234)
    gy = torch.randn(y.shape, generator=gen).to(y)
    (y.float() * gy.float()).sum().backward()
    return y, last, {k: v.grad for k, v in leaves.items() if v is not None}


def assert_close(actual, expected, dtype, what):
    rtol, atol = TOL[dtype]
    scale = expected.detach().float().abs().max().item() + 1e-6
    err = (actual.detach().float() - expected.detach().float()).abs().max().item()
    assert err <= atol * max(scale, 1.0) + rtol * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})"


def check_against_ref(backend, inputs, order, dtype, merge=None, out_dtype=None, device="cpu"):
    kw = dict(order=None if order is None else order.to(device), merge=merge, out_dtype=out_dtype)
    y, last, grads = run(selective_scan, inputs, backend=backend, **kw)
    # the oracle computes in fp32 (fp64 for fp64) from the same, already rounded inputs
    ref_inputs = {k: None if v is None else v.detach().cpu() for k, v in inputs.items()}
    ry, rlast, rgrads = run(selective_scan_ref, ref_inputs, **kw)
    assert y.dtype == (out_dtype or inputs["u"].dtype)
    assert y.shape == ry.shape
    assert_close(y.cpu(), ry, dtype if out_dtype is None else out_dtype, "y")
    assert last.dtype == torch.float32 and not last.requires_grad
    assert_close(last.cpu(), rlast, torch.float32 if dtype != torch.float64 else dtype, "last state")
    assert set(grads) == set(rgrads)
    for name in grads:
        assert grads[name].dtype == inputs[name].dtype, name
        assert_close(grads[name].cpu(), rgrads[name], dtype if name not in ("A", "D", "delta_bias") else
                     (torch.float32 if dtype != torch.float64 else dtype), f"d{name}")


# ---------------------------------------------------------------------------------------------------------------
# the oracle


def closed_form(u, delta, A, B, C, D, delta_bias, order):
    """y_t = sum_{s<=t} (prod_{s<r<=t} exp(dt_r A)) dt_s B_s u_s . C_t + D u_t along each path, unrolled."""
    Bt, L, K, Du = delta.shape
    dt = torch.nn.functional.softplus(delta + delta_bias)
    u4 = u.unsqueeze(2).expand(Bt, L, K, Du) if u.dim() == 3 else u
    y = torch.zeros(Bt, L, K, Du, dtype=torch.float64)
    for k in range(K):
        path = [p for p in order[k].tolist() if p >= 0]
        for i, p in enumerate(path):
            acc = torch.zeros(Bt, Du, A.shape[-1], dtype=torch.float64)
            for j in range(i + 1):
                s = path[j]
                decay = torch.ones(Bt, Du, A.shape[-1], dtype=torch.float64)
                for r in path[j + 1: i + 1]:
                    decay = decay * torch.exp(dt[:, r, k, :, None] * A[k])
                acc = acc + decay * (dt[:, s, k] * u4[:, s, k])[..., None] * B[:, s, k, None, :]
            y[:, p, k] = (acc * C[:, p, k, None, :]).sum(-1) + D[k] * u4[:, p, k]
    return y


@pytest.mark.parametrize("K,L,N", [(1, 5, 1), (2, 6, 3), (3, 4, 2)])
def test_ref_matches_closed_form(K, L, N):
    gen = torch.Generator().manual_seed(0)
    t = make_inputs(2, L, K, 3, N, dtype=torch.float64, gen=gen)
    order = random_order(K, L, gen)
    order[K - 1, 1] = -1
    y = selective_scan_ref(**t, order=order)
    expected = closed_form(t["u"], t["delta"], t["A"], t["B"], t["C"], t["D"], t["delta_bias"], order)
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["ref", "cpu"])
def test_gradcheck_float64(backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} backend unavailable")
    gen = torch.Generator().manual_seed(1)
    t = make_inputs(1, 5, 2, 2, 2, dtype=torch.float64, has_z=True, gen=gen)
    t["A"], t["D"], t["delta_bias"] = (t[k].double() for k in ("A", "D", "delta_bias"))
    order = random_order(2, 5, gen)
    names = list(t)

    def f(*args):
        return selective_scan(**dict(zip(names, args)), order=order, backend=backend)

    args = tuple(t[k].requires_grad_() for k in names)
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# fast backends against the oracle

CPU_CASES = [
    # (N, K, L, dtype, shared_u, D, bias, z, merge)
    *[(N, K, L, torch.float32, (N + K + L) % 2 == 0, True, K != 2, L % 2 == 1, "sum" if L == 49 else None)
      for N, K, L in itertools.product((1, 4, 16), (1, 2, 4), (1, 7, 49))],
    (1, 4, 196, torch.float32, True, True, True, False, "sum"),
    (16, 2, 372, torch.float32, False, True, True, True, None),
    (4, 4, 196, torch.bfloat16, True, True, True, True, "sum"),
    (16, 2, 49, torch.float16, False, False, False, True, None),
    (1, 4, 49, torch.bfloat16, True, False, True, False, None),
]


def _case_id(c):
    N, K, L, dt, su, D, b, z, m = c
    return f"N{N}-K{K}-L{L}-{str(dt)[6:]}-{'shared' if su else 'perpath'}u" + "-D" * D + "-bias" * b + "-z" * z + \
        f"-{m}" * bool(m)


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
@pytest.mark.parametrize("case", CPU_CASES, ids=_case_id)
def test_cpu_backend_matches_ref(case):
    N, K, L, dtype, shared_u, has_D, has_bias, has_z, merge = case
    gen = torch.Generator().manual_seed(hash(case) % 1000)
    t = make_inputs(2, L, K, 6, N, dtype=dtype, shared_u=shared_u, has_D=has_D, has_bias=has_bias, has_z=has_z,
                    shared_z=not shared_u, gen=gen)
    check_against_ref("cpu", t, random_order(K, L, gen, ragged=L > 5), dtype, merge=merge)


TRITON_CASES = [
    (1, 4, 7, torch.float32, True, True, True, True, "sum"),
    (4, 2, 49, torch.float32, False, True, True, True, None),
    (16, 1, 1, torch.float32, True, False, False, False, None),
    (2, 2, 49, torch.bfloat16, True, True, True, False, "sum"),
    (1, 4, 20, torch.float16, False, True, False, True, None),
]


@pytest.mark.skipif("triton" not in available_backends(), reason="triton not installed")
@pytest.mark.parametrize("case", TRITON_CASES, ids=_case_id)
def test_triton_backend_matches_ref(case):
    """Interpreted on CPU (TRITON_INTERPRET=1, set in conftest) or compiled on a GPU."""
    N, K, L, dtype, shared_u, has_D, has_bias, has_z, merge = case
    device = "cuda" if HAS_CUDA else "cpu"
    gen = torch.Generator().manual_seed(hash(case) % 1000)
    # Du=36: a full channel tile of 32 plus a partial one
    t = make_inputs(2, L, K, 36 if L < 40 else 5, N, dtype=dtype, shared_u=shared_u, has_D=has_D,
                    has_bias=has_bias, has_z=has_z, shared_z=shared_u, device=device, gen=gen)
    check_against_ref("triton", t, random_order(K, L, gen, ragged=L > 5), dtype, merge=merge, device=device)


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_fp32_output_from_half_inputs(backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} backend unavailable")
    gen = torch.Generator().manual_seed(3)
    t = make_inputs(1, 9, 2, 4, 4, dtype=torch.float16, gen=gen)
    check_against_ref(backend, t, None, torch.float16, out_dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# orders


def gather_scan_scatter(inputs, order):
    """The copy-based way every peer does it, built explicitly: gather each path, 1-D raster scan, scatter back."""
    u, delta, B, C, z = (inputs[k] for k in ("u", "delta", "B", "C", "z"))
    Bt, L, K, Du = delta.shape
    out = torch.zeros(Bt, L, K, Du)
    for k in range(K):
        idx = order[k][order[k] >= 0].long()

        def sl(t, idx=idx, k=k):
            return None if t is None else (t[:, idx] if t.dim() == 3 else t[:, idx, k])

        yk = selective_scan_ref(
            sl(u), delta[:, idx, k:k + 1], inputs["A"][k:k + 1], B[:, idx, k:k + 1], C[:, idx, k:k + 1],
            None if inputs["D"] is None else inputs["D"][k:k + 1],
            None if inputs["delta_bias"] is None else inputs["delta_bias"][k:k + 1],
            z=None if z is None else sl(z).unsqueeze(2) if sl(z).dim() == 3 else sl(z),
        )
        out[:, idx, k] = yk[:, :, 0]
    return out


def _orders(H, W, K):
    L = H * W
    gen = torch.Generator().manual_seed(5)
    raster = torch.arange(L).expand(K, L)
    yield "raster", raster
    yield "reversed", raster.flip(1)
    yield "permutation", random_order(K, L, gen)
    ragged = random_order(K, L, gen, ragged=True)
    ragged[-1, ::2] = -1
    yield "ragged", ragged


@pytest.mark.parametrize("backend", ["cpu", "triton"])
def test_fused_order_equals_gather_scan_scatter(backend):
    if backend not in available_backends():
        pytest.skip(f"{backend} backend unavailable")
    H, W, K = 5, 7, 3
    for name, order in _orders(H, W, K):
        gen = torch.Generator().manual_seed(len(name))
        t = make_inputs(2, H * W, K, 5, 4, has_z=True, gen=gen)
        y = selective_scan(**t, order=order.int(), backend=backend)
        torch.testing.assert_close(y, gather_scan_scatter(t, order), rtol=6e-4, atol=1e-4, msg=name)
        # positions a path never visits get 0 from it
        for k in range(K):
            unvisited = torch.ones(H * W, dtype=torch.bool)
            unvisited[order[k][order[k] >= 0].long()] = False
            assert torch.all(y[:, unvisited, k] == 0), name


def test_every_registered_scan_through_the_op():
    scans = pytest.importorskip("vssm.scans")
    H, W = 6, 9
    for name in scans.list_scans():
        spec = "cross+hilbert+atrous" if name == "combine" else name  # combine needs its parts
        order = scans.get_scan(spec).orders(H, W)
        K = order.shape[0]
        gen = torch.Generator().manual_seed(7)
        t = make_inputs(1, H * W, K, 4, 2, gen=gen)
        y = selective_scan(**t, order=order, merge="sum")
        expected = gather_scan_scatter(t, order).sum(2)
        torch.testing.assert_close(y, expected, rtol=6e-4, atol=1e-4, msg=name)


# ---------------------------------------------------------------------------------------------------------------
# wrappers, compile, bad input


def test_mamba_layout_wrapper_matches_per_group_scan():
    gen = torch.Generator().manual_seed(11)
    Bt, Dm, L, N, G = 2, 6, 13, 4, 2
    u, delta, z = (torch.randn(Bt, Dm, L, generator=gen) for _ in range(3))
    A = -torch.rand(Dm, N, generator=gen) - 0.1
    B, C = torch.randn(Bt, G, N, L, generator=gen), torch.randn(Bt, G, N, L, generator=gen)
    D, bias = torch.randn(Dm, generator=gen), torch.randn(Dm, generator=gen)
    y, last = selective_scan_mamba(u, delta, A, B, C, D, z, bias, delta_softplus=True, return_last_state=True)
    # mamba_ssm's reference semantics, written out per channel with that channel's group of B/C
    dt = torch.nn.functional.softplus(delta + bias[:, None])
    h = torch.zeros(Bt, Dm, N)
    ys = []
    Bc = B.repeat_interleave(Dm // G, dim=1)  # (Bt, Dm, N, L)
    Cc = C.repeat_interleave(Dm // G, dim=1)
    for t in range(L):
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * Bc[..., t]
        ys.append((h * Cc[..., t]).sum(-1) + D * u[:, :, t])
    expected = torch.stack(ys, -1) * torch.nn.functional.silu(z)
    torch.testing.assert_close(y, expected, rtol=6e-4, atol=1e-4)
    torch.testing.assert_close(last, h, rtol=6e-4, atol=1e-4)


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
def test_custom_op_schema_and_fake_tensor():
    gen = torch.Generator().manual_seed(2)
    t = make_inputs(1, 8, 2, 4, 2, gen=gen)
    args = (t["u"].unsqueeze(2), t["delta"], t["A"], t["B"], t["C"], t["D"], t["delta_bias"], None,
            torch.arange(8, dtype=torch.int32).expand(2, 8).contiguous(), True, False, True, "cpu", torch.float32, None)
    torch.library.opcheck(torch.ops.vssm.selective_scan_fwd, args, test_utils=("test_schema", "test_faketensor"))
    # the rank-R step size (R = 3) with its (K, Du, R) projection
    lowrank = args[:1] + (torch.randn(1, 8, 2, 3, generator=gen),) + args[2:-1] + (torch.randn(2, 4, 3, generator=gen),)
    torch.library.opcheck(torch.ops.vssm.selective_scan_fwd, lowrank, test_utils=("test_schema", "test_faketensor"))


def _fake_outputs(op, args):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        return op(*[mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args])


def _layout(t):
    """Shape, dtype and the strides that matter (a dimension of size 1 has no meaningful stride)."""
    return tuple(t.shape), t.dtype, tuple(st for st, n in zip(t.stride(), t.shape) if n > 1)


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
@pytest.mark.parametrize("lowrank", [False, True], ids=["full_delta", "rank_R"])
@pytest.mark.parametrize("merge", [False, True], ids=["per_path", "merged"])
def test_custom_ops_return_the_fake_kernels_layout(lowrank, merge):
    """Every output of the real ops has the shape, dtype and strides of the fake kernel's: inductor asserts them
    (the CPU kernels once returned dA, d(dt_proj_weight) and the last state as transposed views, and
    torch.compile(model) failed in the backward)."""
    gen = torch.Generator().manual_seed(9)
    Bt, L, K, Du, N, R = 2, 9, 2, 5, 3, 2
    t = make_inputs(Bt, L, K, Du, N, gen=gen, has_z=True)
    delta = torch.randn(Bt, L, K, R, generator=gen) if lowrank else t["delta"]
    W = torch.randn(K, Du, R, generator=gen) if lowrank else None
    fwd_args = (t["u"].unsqueeze(2), delta, t["A"], t["B"], t["C"], t["D"], t["delta_bias"], t["z"].unsqueeze(2),
                random_order(K, L, gen), True, merge, True, "cpu", torch.float32, W)
    real = torch.ops.vssm.selective_scan_fwd(*fwd_args)
    assert [_layout(r) for r in real] == [_layout(f) for f in _fake_outputs(torch.ops.vssm.selective_scan_fwd,
                                                                            fwd_args)]
    y, _, ckpt = real
    bwd_args = (torch.randn(y.shape, generator=gen),) + fwd_args[:9] + (ckpt, True, merge, "cpu", W)
    real = torch.ops.vssm.selective_scan_bwd(*bwd_args)
    fake = _fake_outputs(torch.ops.vssm.selective_scan_bwd, bwd_args)
    names = ["du", "ddelta", "dA", "dB", "dC", "dD", "ddelta_bias", "dz", "dW"]
    for name, r, f in zip(names, real, fake):
        assert _layout(r) == _layout(f), name


@pytest.mark.skipif("cpu" not in available_backends(), reason="numba not installed")
def test_torch_compile_sees_one_node():
    gen = torch.Generator().manual_seed(4)
    t = make_inputs(2, 10, 2, 4, 2, gen=gen)
    order = random_order(2, 10, gen)

    def f(u, delta):
        return selective_scan(u, delta, t["A"], t["B"], t["C"], t["D"], t["delta_bias"], order=order, merge="sum")

    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(f, backend=backend, fullgraph=True)
    y = compiled(t["u"], t["delta"])
    torch.testing.assert_close(y, f(t["u"], t["delta"]))
    targets = [n.target for gm in graphs for n in gm.graph.nodes if n.op == "call_function"]
    assert any("selective_scan_fwd" in str(tg) for tg in targets), targets


def test_torch_compile_training_gradients_equal_eager():
    """The compiled op's gradients are eager's (torch 2.8-2.11's dynamo once handed its backward a zero gradient)."""
    gen = torch.Generator().manual_seed(6)
    t = make_inputs(2, 10, 2, 4, 2, gen=gen)
    order = random_order(2, 10, gen)
    names = ["u", "delta", "A", "B", "C", "D", "delta_bias"]

    def f(*args):
        return selective_scan(*args, order=order, merge="sum").square().sum()

    def grads(fn):
        args = [t[k].detach().clone().requires_grad_() for k in names]
        fn(*args).backward()
        return args

    torch._dynamo.reset()
    eager, compiled = grads(f), grads(torch.compile(f, backend="eager", fullgraph=True))
    for name, a, b in zip(names, eager, compiled):
        assert a.grad.abs().sum() > 0, name
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"d{n}: {m}")


def _valid():
    return make_inputs(2, 6, 2, 3, 2, gen=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "change,exc,words",
    [
        (dict(u=torch.randn(2, 6, 4)), ValueError, ["u", "(2, 6, 4)", "(Bt, L, Du)"]),
        (dict(delta=torch.randn(2, 6, 3)), ValueError, ["delta", "(Bt, L, K, Du)"]),
        (dict(A=torch.randn(2, 3, 2).half()), TypeError, ["A", "float16", "float32"]),
        (dict(A=torch.randn(3, 3, 2)), ValueError, ["A", "K=2"]),
        (dict(B=torch.randn(2, 6, 2, 3)), ValueError, ["B", "(2, 6, 2, 3)", "N)=(2, 6, 2, 2)"]),
        (dict(u=torch.ones(2, 6, 3, dtype=torch.int64)), TypeError, ["u", "int64"]),
        (dict(u=torch.ones(2, 6, 3, dtype=torch.complex64)), TypeError, ["u", "complex64"]),
        (dict(D=torch.randn(3)), ValueError, ["D", "(K, Du)"]),
        (dict(order=torch.tensor([[0, 1, 2, 3, 4, 6], [0, 1, 2, 3, 4, 5]])), ValueError, ["order", "6", "[0, 5]"]),
        (dict(order=torch.tensor([[0, 1, 1, 3, 4, 5], [0, 1, 2, 3, 4, 5]])), ValueError, ["order", "path 0", "1"]),
        (dict(order=torch.tensor([[0, -2, 1], [0, 1, 2]])), ValueError, ["order", "-2"]),
        (dict(order=torch.tensor([[0.0, 1.0]] * 2)), TypeError, ["order", "float32"]),
        (dict(order=torch.arange(6)), ValueError, ["order", "(K, T)"]),
        (dict(merge="mean"), ValueError, ["merge", "'mean'", "'sum'"]),
        (dict(backend="cuda"), ValueError, ["backend", "'cuda'", "triton"]),
        (dict(backend="cpuu"), ValueError, ["did you mean 'cpu'"]),
    ],
)
def test_bad_input_names_argument_value_and_allowed(change, exc, words):
    kw = _valid()
    kw.update(change)
    with pytest.raises(exc) as info:
        selective_scan(**kw)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


@pytest.mark.parametrize("backend", ["cpu", "ref"])
def test_non_contiguous_and_empty_inputs(backend):
    gen = torch.Generator().manual_seed(9)
    t = make_inputs(2, 12, 2, 4, 3, shared_u=False, gen=gen)
    nc = {k: None if v is None else v.transpose(0, -1).contiguous().transpose(0, -1) for k, v in t.items()}
    assert not nc["delta"].is_contiguous()
    torch.testing.assert_close(selective_scan(**nc, backend=backend), selective_scan_ref(**t), rtol=6e-4, atol=1e-4)
    # empty batch and L = 0: correct empty results that still backpropagate
    for Bt, L in ((0, 12), (2, 0)):
        e = make_inputs(Bt, L, 2, 4, 3, gen=gen)
        e = {k: None if v is None else v.requires_grad_() for k, v in e.items()}
        y = selective_scan(**e, backend=backend, merge="sum")
        assert y.shape == (Bt, L, 4)
        y.sum().backward()
        assert e["u"].grad is not None and e["u"].grad.shape == e["u"].shape


@pytest.mark.gpu
@pytest.mark.parametrize("Du,L,N", [(96, 3136, 1), (192, 784, 1), (384, 196, 16), (768, 49, 16)])
def test_triton_real_sizes_on_gpu(Du, L, N):
    """VMamba-T stage shapes, bf16 and fp32, against the oracle run on the GPU in fp32."""
    gen = torch.Generator().manual_seed(Du)
    for dtype in (torch.float32, torch.bfloat16):
        t = make_inputs(2, L, 4, Du, N, dtype=dtype, has_z=False, device="cuda", gen=gen)
        side = int(math.isqrt(L))
        order = torch.stack([torch.arange(L), torch.arange(L).view(side, side).t().reshape(-1),
                             torch.arange(L).flip(0), torch.arange(L).view(side, side).t().reshape(-1).flip(0)])
        y = selective_scan(**t, order=order.int().cuda(), merge="sum")
        ry = gather_scan_scatter({k: None if v is None else v.float().cpu() for k, v in t.items()}, order).sum(2)
        assert_close(y.float().cpu(), ry, dtype, f"y {dtype}")
