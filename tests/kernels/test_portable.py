"""The portable ``torch`` backend (vssm.kernels.portable) against the float64 oracle, forward and every gradient;
its precision at extreme step sizes and decays; how a backend is chosen (VSSM_BACKEND, strict mode, exporting)."""
import warnings

import pytest
import torch
from vssm.kernels import op as op_module
from vssm.kernels import portable, selective_scan, selective_scan_ref
from vssm.kernels.portable import MAX_CHUNK, MIN_CHUNK, chunk_length, selective_scan_torch


def _inputs(Bt, L, K, Du, N, *, shared_u=True, gate=False, R=0, dtype=torch.float64, scale=0.5, a_scale=0.5,
            seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    t = dict(u=r(Bt, L, Du) if shared_u else r(Bt, L, K, Du),
             delta=r(Bt, L, K, R or Du) * scale - (0 if R else 1.0),
             A=-torch.exp(r(K, Du, N) * a_scale), B=r(Bt, L, K, N), C=r(Bt, L, K, N), D=r(K, Du),
             delta_bias=r(K, Du) * 0.3)
    if gate:
        t["z"] = r(Bt, L, Du) if shared_u else r(Bt, L, K, Du)
    if R:
        t["dt_proj_weight"] = r(K, Du, R) * 0.5
    return {k: v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v for k, v in t.items()}


def _order(K, L, seed=0, skips=True):
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randperm(L, generator=g) for _ in range(K)]
    order = torch.stack(rows).to(torch.int32)
    if skips and K > 1:
        order[1, L // 2:] = -1  # a shorter path: positions it never visits get 0 from it
    return order


def _oracle(t, **kw):
    t = dict(t)
    W = t.pop("dt_proj_weight", None)
    if W is not None:
        t["delta"] = torch.einsum("blkr,kdr->blkd", t["delta"].double(), W.double())
    return selective_scan_ref(**{k: v.double() for k, v in t.items()}, **kw)


@pytest.mark.parametrize("chunk", [1, 3, 16, None])
@pytest.mark.parametrize("case", [
    dict(Bt=2, L=23, K=2, Du=5, N=4),
    dict(Bt=1, L=17, K=4, Du=3, N=1, gate=True),
    dict(Bt=2, L=12, K=2, Du=4, N=2, shared_u=False, gate=True),
    dict(Bt=2, L=19, K=3, Du=4, N=3, R=2),
])
@pytest.mark.parametrize("merge", [None, "sum"])
@pytest.mark.parametrize("all_chunks,block", [(False, 0), (True, 0), (True, 2)],
                         ids=["in-turn", "all-chunks", "blocks-of-2"])
def test_forward_and_every_gradient_match_the_oracle(case, chunk, merge, all_chunks, block, monkeypatch):
    case = dict(case)
    if block:  # the export form in blocks of `block` chunks carried one to the next (the last one shorter)
        c = chunk or chunk_length(case["K"], case["Du"], case["N"], case["L"])
        monkeypatch.setattr(portable, "EXPORT_BLOCK_BUDGET", block * case["K"] * case["Du"] * case["N"] * c)
    dims = {k: case.pop(k) for k in ("Bt", "L", "K", "Du", "N")}
    t = _inputs(**dims, **case)
    order = _order(dims["K"], dims["L"])
    leaves = {k: v.clone().requires_grad_(True) for k, v in t.items()}
    y, last = selective_scan_torch(**leaves, order=order, merge=merge, chunk=chunk, return_last_state=True,
                                   all_chunks=all_chunks)
    ref_leaves = {k: v.clone().requires_grad_(True) for k, v in t.items()}
    y_ref, last_ref = _oracle(ref_leaves, order=order, merge=merge, return_last_state=True)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(last, last_ref, rtol=1e-6, atol=1e-6)
    w = torch.randn_like(y_ref)
    gs = torch.autograd.grad((y * w).sum(), list(leaves.values()))
    gs_ref = torch.autograd.grad((y_ref * w).sum(), list(ref_leaves.values()))
    for name, g, g_ref in zip(leaves, gs, gs_ref):
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"d{n}: {m}")


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.bfloat16, 2e-2), (torch.float16, 5e-3)])
def test_low_precision_inputs_against_float64(dtype, tol):
    t = _inputs(2, 40, 4, 8, 4, gate=True, dtype=dtype)
    order = _order(4, 40)
    y = selective_scan(**t, order=order, merge="sum", backend="torch", out_dtype=torch.float32)
    y_ref = _oracle(t, order=order, merge="sum")
    err = (y.double() - y_ref).abs().max() / y_ref.abs().max()
    assert err < tol, (dtype, float(err))


@pytest.mark.parametrize("scale,a_scale", [(6.0, 2.5), (0.05, 0.1), (12.0, 4.0)])
@pytest.mark.parametrize("all_chunks", [False, True], ids=["in-turn", "all-chunks"])
def test_extreme_step_sizes_and_decays_keep_fp32_precision(scale, a_scale, all_chunks):
    """Steep decays (delta*A down to about -1e4 per step) over a long path: the segment sums of a log-space form
    built from differences of running sums lose their digits here; ours are sums of their own terms."""
    L = 300
    t = _inputs(1, L, 2, 6, 4, scale=scale, a_scale=a_scale, dtype=torch.float32, seed=3)
    with torch.no_grad():
        a = (torch.nn.functional.softplus(t["delta"].double() + t["delta_bias"][None, None]).unsqueeze(-1)
             * t["A"][None, None])
    y = selective_scan_torch(**t, merge="sum", all_chunks=all_chunks)
    y_ref = _oracle(t, merge="sum")
    assert torch.isfinite(y).all()
    err = (y.double() - y_ref).abs().max() / y_ref.abs().max()
    assert err < 1e-5, (float(a.min()), float(err))


def test_chunk_length():
    for K, Du, N in [(4, 96, 1), (4, 192, 16), (4, 768, 1), (2, 16, 16), (1, 1, 1)]:
        c = chunk_length(K, Du, N, 10_000)
        assert MIN_CHUNK <= c <= MAX_CHUNK and c & (c - 1) == 0
        assert K * Du * N * c <= 1 << 17 or c == MIN_CHUNK
        assert c == MAX_CHUNK or K * Du * N * c * 2 > 1 << 17  # the largest that fits
    assert chunk_length(4, 96, 1, 5) == 8  # no longer than the path needs
    assert chunk_length(4, 96, 1, 3136) == 128
    assert chunk_length(4, 96, 16, 3136) == 16 and chunk_length(4, 768, 16, 49) == 16


def test_dispatch_by_name_and_device():
    t = _inputs(1, 9, 2, 3, 2, dtype=torch.float32)
    torch.testing.assert_close(selective_scan(**t, backend="torch"), selective_scan(**t, backend="ref"),
                               rtol=1e-5, atol=1e-5)
    assert op_module.default_backend(torch.device("meta")) == "torch"
    assert "torch" in op_module.available_backends()


def test_vssm_backend_environment(monkeypatch):
    monkeypatch.setenv("VSSM_BACKEND", "torch")
    assert op_module.default_backend(torch.device("cpu")) == "torch"
    monkeypatch.setenv("VSSM_BACKEND", "trch")
    with pytest.raises(ValueError, match=r"VSSM_BACKEND='trch'; allowed: triton, cpu, torch, ref \(did you mean "
                                         r"'torch'\?\)"):
        op_module.default_backend(torch.device("cpu"))


def test_fallback_warns_once_and_strict_mode_raises(monkeypatch):
    monkeypatch.setattr(op_module._cpu, "is_available", lambda: False)
    monkeypatch.setattr(op_module, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert op_module.default_backend(torch.device("cpu")) == "torch"
        assert op_module.default_backend(torch.device("cpu")) == "torch"
    msgs = [str(w.message) for w in caught if "portable 'torch' backend" in str(w.message)]
    assert len(msgs) == 1 and "numba is not installed" in msgs[0]
    monkeypatch.setenv("VSSM_STRICT_BACKEND", "1")
    with pytest.raises(RuntimeError, match="VSSM_STRICT_BACKEND is set"):
        op_module.default_backend(torch.device("cpu"))


def test_tracing_takes_the_portable_backend():
    t = _inputs(1, 8, 2, 3, 2, dtype=torch.float32)

    def fn(u, delta, B, C):
        return selective_scan(u, delta, t["A"], B, C, t["D"], t["delta_bias"], merge="sum")

    args = (t["u"], t["delta"], t["B"], t["C"])
    traced = torch.jit.trace(fn, args, check_trace=False)
    assert "vssm" not in str(traced.graph)  # plain torch ops, no custom op
    torch.testing.assert_close(traced(*args), fn(*args), rtol=1e-5, atol=1e-5)

    def forced(u, delta, B, C):
        return selective_scan(u, delta, t["A"], B, C, merge="sum", backend="cpu")

    with pytest.raises(ValueError, match="backend='cpu' cannot be exported or traced.*allowed while exporting: "
                                         "backend='torch'"):
        torch.jit.trace(forced, args, check_trace=False)


def test_export_graph_does_not_grow_with_the_length():
    """While exporting, every chunk is scanned at once and the chunks' states by a second scan: 8x the length adds
    only the rounds of that second scan (3 more), not the operations of 14 more chunks."""
    t = _inputs(1, 8, 2, 3, 2, dtype=torch.float32)

    class Op(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("A", "D", "delta_bias"):  # buffers: torch < 2.7 does not export closed-over tensors
                self.register_buffer(name, t[name])

        def forward(self, u, delta, B, C):
            return selective_scan(u, delta, self.A, B, C, self.D, self.delta_bias, merge="sum")

    counts = {}
    for L in (256, 2048):
        x = _inputs(1, L, 2, 3, 2, dtype=torch.float32, seed=L)
        args = (x["u"], x["delta"], x["B"], x["C"])
        program = torch.export.export(Op(), args)
        counts[L] = len(program.graph.nodes)
        torch.testing.assert_close(program.module()(*args), Op()(*args), rtol=1e-5, atol=1e-5)
    assert chunk_length(2, 3, 2, 256) == 128  # so 2 chunks against 16
    assert counts[2048] - counts[256] <= 3 * 12, counts  # a round: slices, a multiply, a multiply-add, two cats
