"""mamba_inner / mamba_inner_no_out_proj / bimamba_inner: mamba_ssm's (and Vim's) fused Mamba-block functions on
vssm's op, against a float64 oracle written out step by step here (the convolution tap by tap, the projections, the
recurrence), forward and every gradient."""
import pytest
import torch
import torch.nn.functional as F
import vssm.kernels.mamba_block as mamba_block
from vssm.kernels import available_backends, bimamba_inner, mamba_inner, mamba_inner_no_out_proj

BACKENDS = [b for b in ("cpu", "torch", "ref") if b in available_backends()]
Bt, DM, L, N, R, W, DOUT = 2, 6, 9, 3, 2, 4, 5
# B and C: projected from x (None) or given time-invariant (D, N)
KINDS = [("projected", "projected"), ("given", "projected"), ("projected", "given"), ("given", "given")]
FNS = ["mamba_inner", "mamba_inner_no_out_proj", "bimamba_inner"]


def _args(kinds, seed, dtype=torch.float64, bidirectional=False):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    rows = R + N * sum(k == "projected" for k in kinds)
    t = dict(xz=r(Bt, 2 * DM, L), conv1d_weight=r(DM, 1, W) * 0.5, conv1d_bias=r(DM) * 0.3,
             x_proj_weight=r(rows, DM) * 0.5, delta_proj_weight=r(DM, R) * 0.5,
             A=-torch.rand(DM, N, generator=gen, dtype=dtype) - 0.2,
             B=r(DM, N) if kinds[0] == "given" else None, C=r(DM, N) if kinds[1] == "given" else None,
             D=r(DM), delta_bias=r(DM) * 0.3)
    if bidirectional:
        t["A_b"] = -torch.rand(DM, N, generator=gen, dtype=dtype) - 0.2
    return t, dict(out_proj_weight=r(DOUT, DM), out_proj_bias=r(DOUT))


def _rms(v, w, eps=1e-6):
    return v / torch.sqrt((v * v).mean(-1, keepdim=True) + eps) * w


def _oracle(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A, B=None, C=None, D=None,
            delta_bias=None, A_b=None, B_proj_bias=None, C_proj_bias=None, delta_softplus=True, b_rms_weight=None,
            c_rms_weight=None, dt_rms_weight=None):
    """The block before its output projection, in float64: ``(Bt, D, L)``."""
    f = lambda t: None if t is None else t.double()  # noqa: E731
    xz, cw, cb, xw, dw, A, A_b, B, C, D, db = map(f, (xz, conv1d_weight, conv1d_bias, x_proj_weight,
                                                       delta_proj_weight, A, A_b, B, C, D, delta_bias))
    x, z = xz[:, :DM], xz[:, DM:]
    xc = torch.zeros_like(x)
    for t in range(L):  # causal: output t sees inputs t - W + 1 .. t (tap W - 1 is the current step)
        acc = cb[None, :].clone() if cb is not None else torch.zeros(Bt, DM, dtype=x.dtype)
        for k in range(W):
            s = t - (W - 1) + k
            if s >= 0:
                acc = acc + cw[None, :, 0, k] * x[:, :, s]
        xc[:, :, t] = acc
    xc = xc * torch.sigmoid(xc)
    x_dbl = torch.einsum("ed,bdl->ble", xw, xc)
    dt, off = x_dbl[..., :R], R
    if B is None:
        Bs = x_dbl[..., off:off + N] + (0 if B_proj_bias is None else f(B_proj_bias))
        Bs = Bs if b_rms_weight is None else _rms(Bs, f(b_rms_weight))
        Bs, off = Bs[:, None].expand(Bt, DM, L, N), off + N
    else:
        Bs = B[None, :, None].expand(Bt, DM, L, N)
    if C is None:
        Cs = x_dbl[..., off:off + N] + (0 if C_proj_bias is None else f(C_proj_bias))
        Cs = (Cs if c_rms_weight is None else _rms(Cs, f(c_rms_weight)))[:, None].expand(Bt, DM, L, N)
    else:
        Cs = C[None, :, None].expand(Bt, DM, L, N)
    delta = torch.einsum("dr,blr->bld", dw, dt)
    delta = (delta if dt_rms_weight is None else _rms(delta, f(dt_rms_weight))).transpose(1, 2)
    delta = delta + (0 if db is None else db[:, None])
    delta = F.softplus(delta) if delta_softplus else delta

    def scan(A_, steps):
        h, y = torch.zeros(Bt, DM, N, dtype=x.dtype), torch.zeros_like(xc)
        for t in steps:
            h = torch.exp(delta[:, :, t, None] * A_) * h + (delta[:, :, t] * xc[:, :, t])[..., None] * Bs[:, :, t]
            y[:, :, t] = (h * Cs[:, :, t]).sum(-1) + (0 if D is None else D * xc[:, :, t])
        return y * F.silu(z)

    y = scan(A, range(L))
    return y if A_b is None else y + scan(A_b, reversed(range(L)))


def _call(fn, t, out, backend, **kw):
    if fn == "mamba_inner":
        return mamba_inner(t["xz"], t["conv1d_weight"], t["conv1d_bias"], t["x_proj_weight"], t["delta_proj_weight"],
                           out["out_proj_weight"], out["out_proj_bias"], t["A"], t["B"], t["C"], t["D"],
                           t["delta_bias"], backend=backend, **kw)
    if fn == "mamba_inner_no_out_proj":
        return mamba_inner_no_out_proj(t["xz"], t["conv1d_weight"], t["conv1d_bias"], t["x_proj_weight"],
                                       t["delta_proj_weight"], t["A"], t["B"], t["C"], t["D"], t["delta_bias"],
                                       backend=backend, **kw)
    return bimamba_inner(t["xz"], t["conv1d_weight"], t["conv1d_bias"], t["x_proj_weight"], t["delta_proj_weight"],
                         out["out_proj_weight"], out["out_proj_bias"], t["A"], t["A_b"], t["B"], t["C"], t["D"],
                         t["delta_bias"], backend=backend, **kw)


def _expected(fn, t, out, **kw):
    y = _oracle(**t, **kw)
    if fn == "mamba_inner_no_out_proj":
        return y
    return F.linear(y.transpose(1, 2), out["out_proj_weight"].double(), out["out_proj_bias"].double())


def _leaves(*dicts):
    return {k: v for d in dicts for k, v in d.items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kinds", KINDS, ids=["-".join(k) for k in KINDS])
@pytest.mark.parametrize("fn", FNS)
def test_forward_and_every_gradient_match_the_float64_oracle(fn, kinds, backend):
    seed = 7 * FNS.index(fn) + KINDS.index(kinds)
    t, out = _args(kinds, seed, bidirectional=fn == "bimamba_inner")
    leaves = _leaves(t, out)
    for v in leaves.values():
        v.requires_grad_(True)
    y = _call(fn, t, out, backend)
    shape = (Bt, DM, L) if fn == "mamba_inner_no_out_proj" else (Bt, L, DOUT)
    assert y.shape == shape and y.dtype == torch.float64
    ref = _expected(fn, t, out)
    torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-9)
    g = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64)
    got = torch.autograd.grad(y, list(leaves.values()), g, allow_unused=True)
    want = torch.autograd.grad(ref, list(leaves.values()), g, allow_unused=True)
    for name, a, b in zip(leaves, got, want):
        if b is None:  # out_proj of the function without it
            assert a is None, name
            continue
        assert a is not None and b.abs().sum() > 0, name
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9, msg=lambda m, name=name: f"d{name}: {m}")


@pytest.mark.skipif("triton" not in available_backends(), reason="needs triton")
@pytest.mark.parametrize("kinds", KINDS[:2], ids=["-".join(k) for k in KINDS[:2]])
@pytest.mark.parametrize("fn", FNS)
def test_triton_backend_in_float32(fn, kinds):
    """The Triton kernels (interpreted on CPU, compiled on a GPU) compute in fp32: the block on them against the
    float64 oracle, forward and every gradient; the step size's rank-R form is read through stride-0 paths."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    seed = 7 * FNS.index(fn) + KINDS.index(kinds) + 500
    t64, out64 = _args(kinds, seed, bidirectional=fn == "bimamba_inner")
    t = {k: None if v is None else v.float().to(device).requires_grad_(True) for k, v in t64.items()}
    out = {k: v.float().to(device).requires_grad_(True) for k, v in out64.items()}
    leaves = _leaves(t, out)
    y = _call(fn, t, out, "triton")
    ref = _expected(fn, {k: None if v is None else v.detach().cpu() for k, v in t.items()},
                    {k: v.detach().cpu() for k, v in out.items()})
    scale = ref.abs().max()
    tol = 1e-5 if device == "cpu" else 2e-3  # on a GPU, cuDNN may run the fp32 convolution in TF32
    assert float((y.detach().cpu().double() - ref).abs().max() / scale) < tol
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    got = torch.autograd.grad(y, list(leaves.values()), g.float().to(device), allow_unused=True)
    ref_leaves = {k: v.detach().cpu().double().requires_grad_(True) for k, v in leaves.items()}
    ref = _expected(fn, {k: ref_leaves.get(k) if v is not None else None for k, v in t.items()},
                    {k: ref_leaves[k] for k in out})
    want = torch.autograd.grad(ref, list(ref_leaves.values()), g, allow_unused=True)
    for name, a, b in zip(leaves, got, want):
        if b is None:
            assert a is None, name
            continue
        err = float((a.cpu().double() - b).abs().max() / b.abs().max())
        assert err < 10 * tol, (name, err)


@pytest.mark.parametrize("backend", BACKENDS)
def test_projection_biases_rms_norms_and_softplus_off(backend):
    t, out = _args(KINDS[0], seed=31)
    gen = torch.Generator().manual_seed(32)
    kw = dict(B_proj_bias=torch.randn(N, generator=gen, dtype=torch.float64),
              C_proj_bias=torch.randn(N, generator=gen, dtype=torch.float64),
              b_rms_weight=torch.rand(N, generator=gen, dtype=torch.float64) + 0.5,
              c_rms_weight=torch.rand(N, generator=gen, dtype=torch.float64) + 0.5,
              dt_rms_weight=torch.rand(DM, generator=gen, dtype=torch.float64) * 0.3 + 0.1)
    t["delta_bias"] = t["delta_bias"].abs() + 1.0  # delta stays positive without the softplus
    leaves = _leaves(t, out, kw)
    for v in leaves.values():
        v.requires_grad_(True)
    for softplus in (True, False):
        y = _call("mamba_inner", t, out, backend, delta_softplus=softplus, **kw)
        ref = _expected("mamba_inner", t, out, delta_softplus=softplus, **kw)
        torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-9)
        got = torch.autograd.grad(y.square().sum(), list(leaves.values()))
        want = torch.autograd.grad(ref.square().sum(), list(leaves.values()))
        for name, a, b in zip(leaves, got, want):
            assert b.abs().sum() > 0, name
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9, msg=lambda m, name=name: f"d{name}: {m}")
    # the functions without these arguments in mamba_ssm's signature do not take them either
    with pytest.raises(TypeError):
        _call("bimamba_inner", {**t, "A_b": t["A"]}, out, backend, dt_rms_weight=kw["dt_rms_weight"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fn", ["mamba_inner", "bimamba_inner"])
def test_low_precision_inputs(fn, dtype):
    """As mamba_ssm's layers call it: xz and the projection weights in the input dtype, A / D / delta_bias and the
    convolution in fp32. The output keeps the input dtype and is as close to float64 (on the rounded inputs) as the
    dtype's own rounding of the projections allows."""
    worst = 0.0
    for seed in range(3):
        t64, out64 = _args(KINDS[0], seed=50 + seed, bidirectional=fn == "bimamba_inner")
        low = ("xz", "x_proj_weight", "delta_proj_weight")
        t = {k: (v.to(dtype) if k in low else v.float()) if v is not None else None for k, v in t64.items()}
        out = {k: v.to(dtype) for k, v in out64.items()}
        y = _call(fn, t, out, None)
        assert y.dtype == dtype
        ref = _expected(fn, t, out)
        worst = max(worst, float((y.double() - ref).abs().max() / ref.abs().max()))
    assert worst < {torch.float32: 2e-6, torch.bfloat16: 1.5e-2, torch.float16: 2e-3}[dtype], worst


@pytest.mark.parametrize("fn", FNS)
def test_the_step_size_is_never_materialised(fn, monkeypatch):
    """The op gets the rank-R step size and dt_proj's weight (the (Bt, L, D) step size is formed in the kernel);
    the bidirectional block is one op call with a raster and a reversed path summed in the kernel."""
    calls = []
    real = mamba_block.selective_scan

    def spy(u, delta, A, B, C, D, delta_bias, delta_softplus, order, z, merge, out_dtype, last, backend, W):
        calls.append(dict(delta=delta.shape, W=None if W is None else W.shape, order=order, merge=merge))
        return real(u, delta, A, B, C, D, delta_bias, delta_softplus, order, z, merge, out_dtype, last, backend, W)

    monkeypatch.setattr(mamba_block, "selective_scan", spy)
    t, out = _args(KINDS[0], seed=3, bidirectional=fn == "bimamba_inner")
    _call(fn, t, out, "cpu")
    paths = 2 if fn == "bimamba_inner" else 1
    assert len(calls) == 1
    c = calls[0]
    assert c["delta"] == (Bt, L, paths, R) and c["W"] == (paths, DM, R) and c["merge"] == "sum"
    if fn == "bimamba_inner":
        assert c["order"].tolist() == [list(range(L)), list(range(L))[::-1]]
    else:
        assert c["order"] is None
    calls.clear()  # a norm over the channels needs the full step size first
    _call("mamba_inner", t, out, "cpu", dt_rms_weight=torch.ones(DM, dtype=torch.float64))
    assert calls[0]["W"] is None and calls[0]["delta"] == (Bt, L, 1, DM)


def test_the_reversed_order_is_checked_once(monkeypatch):
    """The op's order check waits for the device; bimamba_inner hands it one cached order per (paths, length,
    device), made outside inference mode, so a block that first ran under inference mode still trains."""
    import vssm.kernels.op as op

    checks = []
    real = op._check_order
    monkeypatch.setattr(op, "_check_order", lambda order, K, L: (checks.append(order), real(order, K, L)))
    monkeypatch.setattr(mamba_block, "_ORDERS", {})
    t, out = _args(KINDS[0], seed=8, dtype=torch.float32, bidirectional=True)
    with torch.inference_mode():
        y0 = _call("bimamba_inner", t, out, "cpu")
    leaves = _leaves(t, out)
    for v in leaves.values():
        v.requires_grad_(True)
    y = _call("bimamba_inner", t, out, "cpu")
    y.square().sum().backward()
    assert all(v.grad is not None for v in leaves.values())
    torch.testing.assert_close(y.detach(), y0)
    _call("bimamba_inner", t, out, "cpu")
    assert len(checks) == 3 and all(o is checks[0] for o in checks)  # one tensor: the op checks it once
    assert not checks[0].is_inference()


def test_checkpoint_levels_give_the_same_result():
    t, out = _args(KINDS[0], seed=4)
    y0 = _call("mamba_inner", t, out, "cpu", checkpoint_lvl=0)
    y1 = _call("mamba_inner", t, out, "cpu", checkpoint_lvl=1)
    torch.testing.assert_close(y0, y1, rtol=0, atol=0)


def test_bad_input_is_named():
    t, out = _args(KINDS[0], seed=5)

    def call(fn="mamba_inner", out=out, **kw):
        return _call(fn, {**t, **kw}, out, "cpu")

    with pytest.raises(ValueError, match=r"mamba_inner: xz: got shape \(2, 11, 9\); allowed: \(Bt, 2\*D, L\)"):
        call(xz=t["xz"][:, :11])
    with pytest.raises(ValueError, match=r"conv1d_weight: got shape \(6, 4\); allowed: \(D, 1, W\)=\(6, 1, W\)"):
        call(conv1d_weight=t["conv1d_weight"][:, 0])
    with pytest.raises(ValueError, match=r"x_proj_weight: got shape \(7, 6\); allowed: \(8, 6\) = \(R \+ N for each"):
        call(x_proj_weight=t["x_proj_weight"][:7])
    with pytest.raises(ValueError, match=r"x_proj_weight: got shape \(8, 6\); allowed: \(2, 6\)"):
        call(B=torch.ones(DM, N, dtype=torch.float64), C=torch.ones(DM, N, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"delta_proj_weight: got shape \(6,\); allowed: \(D, R\)=\(6, R\)"):
        call(delta_proj_weight=t["delta_proj_weight"][:, 0])
    with pytest.raises(TypeError, match="A: got complex dtype torch.complex128"):
        call(A=t["A"].to(torch.complex128))
    with pytest.raises(ValueError, match=r"B: got shape \(2, 3, 9\); allowed: None \(projected from x"):
        call(B=torch.ones(Bt, N, L, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"D: got shape \(5,\); allowed: None or \(6,\)"):
        call(D=torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"checkpoint_lvl: got 2; allowed: 0 or 1"):
        _call("mamba_inner", t, out, "cpu", checkpoint_lvl=2)
    with pytest.raises(ValueError, match=r"B_proj_bias: got a tensor while B is given"):
        _call("mamba_inner", {**t, "B": torch.ones(DM, N, dtype=torch.float64),
                              "x_proj_weight": t["x_proj_weight"][:R + N]}, out, "cpu",
              B_proj_bias=torch.ones(N, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"out_proj_weight: got shape \(5, 4\); allowed: \(D_out, D\) with D=6"):
        call(out={**out, "out_proj_weight": out["out_proj_weight"][:, :4]})
    with pytest.raises(ValueError, match=r"bimamba_inner: A_b: got shape \(6, 2\); allowed: \(D, N\)=\(6, 3\)"):
        call("bimamba_inner", A_b=t["A"][:, :2])
    with pytest.raises(TypeError, match="bimamba_inner: A_b: got None"):
        call("bimamba_inner", A_b=None)
    with pytest.raises(TypeError, match="delta_softplus: got 1; allowed: True or False"):
        _call("mamba_inner", t, out, "cpu", delta_softplus=1)


# ----------------------------------------------------------------------------------------------------------------
# causal_conv1d's functions (the stand-in the shim provides where the package cannot import)


def _conv_oracle(x, weight, bias, initial, activation):
    """Tap by tap in float64: output t sees inputs t - W + 1 .. t, the ones before the sequence from ``initial``."""
    x, weight = x.double(), weight.double()
    Bt_, D_, L_ = x.shape
    W_ = weight.shape[1]
    hist = torch.zeros(Bt_, D_, W_ - 1, dtype=torch.float64) if initial is None else initial.double()
    full = torch.cat([hist, x], dim=-1)
    y = torch.stack([(full[..., t:t + W_] * weight).sum(-1) for t in range(L_)], dim=-1)
    y = y if bias is None else y + bias.double()[:, None]
    return F.silu(y) if activation else y


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("with_initial", [False, True])
def test_causal_conv1d_fn_matches_the_oracle(width, with_initial):
    gen = torch.Generator().manual_seed(width + 10 * with_initial)
    x = torch.randn(2, 5, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, width, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    init = torch.randn(2, 5, width - 1, generator=gen, dtype=torch.float64, requires_grad=True) if with_initial \
        else None
    for activation in (None, "silu", "swish"):
        y, last = mamba_block.causal_conv1d(x, w, b, None, init, True, None, activation)
        ref = _conv_oracle(x, w, b, init, activation is not None)
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
        leaves = [t for t in (x, w, b, init) if t is not None]
        g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
        for a, r in zip(torch.autograd.grad(y, leaves, g), torch.autograd.grad(ref, leaves, g)):
            torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)
        want_last = torch.cat([init if init is not None else torch.zeros(2, 5, width - 1, dtype=torch.float64),
                               x], -1)[..., 7:]
        torch.testing.assert_close(last, want_last)  # the last W - 1 inputs: the state to continue from
    # a short sequence: the state reaches back into the initial states (or the zeros)
    y2, last2 = mamba_block.causal_conv1d(x[..., :1], w, b, initial_states=init, return_final_states=True)
    assert last2.shape == (2, 5, width - 1)
    torch.testing.assert_close(y2, _conv_oracle(x[..., :1], w, b, init, False))
    # bf16 input: fp32 math, output in bf16
    yb = mamba_block.causal_conv1d(x.detach().bfloat16(), w.detach(), b.detach(), activation="silu")
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.double(), _conv_oracle(x.detach().bfloat16(), w, b, None, True), rtol=1e-2,
                               atol=1e-2)


def test_causal_conv1d_update_continues_the_sequence():
    """Decoding step by step (and a few steps at a time) with the state gives the whole sequence's convolution; the
    state is updated in place."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 9, generator=gen, dtype=torch.float64)
    w, b = torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    whole = mamba_block.causal_conv1d(x, w, b, activation="silu")
    for state_len in (3, 6):
        state = torch.zeros(2, 5, state_len, dtype=torch.float64)
        ys = [mamba_block.causal_conv1d_update(x[..., t], state, w, b, "silu") for t in range(4)]
        ys.append(mamba_block.causal_conv1d_update(x[..., 4:], state, w, b, "silu"))
        torch.testing.assert_close(torch.cat([torch.stack(ys[:4], -1), ys[4]], -1), whole)
        torch.testing.assert_close(state, x[..., 9 - state_len:])
    with pytest.raises(ValueError, match=r"conv_state: got shape \(2, 5, 2\); allowed: \(Bt, D, S\)=\(2, 5, S\) "
                                         r"with S >= W - 1 = 3"):
        mamba_block.causal_conv1d_update(x[..., 0], torch.zeros(2, 5, 2, dtype=torch.float64), w)
    with pytest.raises(NotImplementedError, match="cache_seqlens: got shape"):
        mamba_block.causal_conv1d_update(x[..., 0], torch.zeros(2, 5, 3), w, cache_seqlens=torch.zeros(2))
    with pytest.raises(NotImplementedError, match="seq_idx: got shape"):
        mamba_block.causal_conv1d(x, w, seq_idx=torch.zeros(2, 9, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"activation: got 'relu'; allowed: None, 'silu' or 'swish'"):
        mamba_block.causal_conv1d(x, w, activation="relu")
    with pytest.raises(ValueError, match=r"weight: got shape \(5, 1, 4\); allowed: \(D, W\)=\(5, W\)"):
        mamba_block.causal_conv1d(x, w[:, None])
    with pytest.raises(ValueError, match=r"initial_states: got shape \(2, 5, 2\); allowed: None or \(Bt, D, W - 1\)"):
        mamba_block.causal_conv1d(x, w, initial_states=torch.zeros(2, 5, 2))


@pytest.mark.parametrize("fn", ["mamba_inner", "bimamba_inner"])
def test_compiles_in_one_graph(fn):
    """torch.compile(fullgraph=True) traces the block through the op's custom ops: no graph break, same output
    and gradients as eager."""
    t, out = _args(KINDS[0], seed=9, dtype=torch.float32, bidirectional=fn == "bimamba_inner")

    def run(t, out):
        return _call(fn, t, out, None)

    leaves = _leaves(t, out)
    for v in leaves.values():
        v.requires_grad_(True)
    y = run(t, out)
    want = torch.autograd.grad(y.square().sum(), list(leaves.values()))
    torch._dynamo.reset()
    compiled = torch.compile(run, backend="aot_eager", fullgraph=True)
    y2 = compiled(t, out)
    got = torch.autograd.grad(y2.square().sum(), list(leaves.values()))
    torch.testing.assert_close(y2, y, rtol=1e-6, atol=1e-6)
    for name, a, b in zip(leaves, got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"d{name}: {m}")
