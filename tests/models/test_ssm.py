"""vssm.layers.ssm: the SSM core every mixer calls (dt rank, initialisation, x_proj -> dt -> scan)."""
import math

import pytest
import torch
from vssm.kernels import selective_scan_ref

from vssm.layers import SS2D
from vssm.layers.ssm import init_ssm_parameters, resolve_dt_rank, selective_ssm, ssm_inputs
from vssm.models.efficient_vmamba import AtrousSS2D
from vssm.models.msvmamba import MultiScaleSS2D


def _weights(K, R, N, Di, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(K, R + 2 * N, Di, generator=g, dtype=dtype), torch.randn(K, Di, R, generator=g, dtype=dtype))


def test_dt_rank_rule():
    assert resolve_dt_rank("auto", 96) == 6 and resolve_dt_rank("auto", 97) == 7 and resolve_dt_rank(5, 96) == 5


@pytest.mark.parametrize("shared_u", [True, False])
def test_ssm_inputs_equal_the_per_path_einsum(shared_u):
    K, R, N, Di, Bt, L = 3, 5, 2, 7, 2, 11
    wx, _ = _weights(K, R, N, Di, torch.float64)
    u = torch.randn(Bt, L, Di, dtype=torch.float64) if shared_u else torch.randn(Bt, L, K, Di, dtype=torch.float64)
    x_dbl = torch.einsum("bld,kcd->blkc" if shared_u else "blkd,kcd->blkc", u, wx)
    dt, B, C = ssm_inputs(u, wx, N)
    for got, want in ((dt, x_dbl[..., :R]), (B, x_dbl[..., R:R + N]), (C, x_dbl[..., R + N:])):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert dt.shape == (Bt, L, K, R)
    if shared_u:  # one GEMM; dt is a view into its output, not a copy
        assert dt.stride(-1) == 1 and dt.stride(2) == R + 2 * N


def test_selective_ssm_under_autocast_keeps_fp32_parameter_gradients():
    K, R, N, Di, Bt, L = 2, 3, 2, 8, 2, 9
    wx, wdt = (w.requires_grad_() for w in _weights(K, R, N, Di))
    g = torch.Generator().manual_seed(4)
    bias, A_log, D = torch.randn(K, Di, generator=g), torch.randn(K, Di, N, generator=g), torch.ones(K, Di)
    u = torch.randn(Bt, L, Di, generator=g).bfloat16()  # as the depthwise conv gives it under autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = selective_ssm(u, wx, wdt, bias, A_log, D, order=None, merge="sum")
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert wdt.grad.dtype == torch.float32 and wdt.grad.abs().sum() > 0 and wx.grad.abs().sum() > 0


def test_selective_ssm_is_x_proj_dt_scan():
    K, R, N, Di, Bt, L = 2, 3, 4, 5, 2, 9
    wx, wdt = _weights(K, R, N, Di)
    g = torch.Generator().manual_seed(1)
    bias, A_log, D = torch.randn(K, Di, generator=g), torch.randn(K, Di, N, generator=g), torch.randn(K, Di)
    u = torch.randn(Bt, L, Di, generator=g)
    order = torch.stack([torch.randperm(L, generator=g) for _ in range(K)]).int()
    x_dbl = torch.einsum("bld,kcd->blkc", u, wx)
    expected = selective_scan_ref(u, torch.einsum("blkr,kdr->blkd", x_dbl[..., :R], wdt), -torch.exp(A_log),
                                  x_dbl[..., R:R + N], x_dbl[..., R + N:], D, bias, order=order, merge="sum")
    got = selective_ssm(u, wx, wdt, bias, A_log, D, order=order, merge="sum")
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_init_is_mambas():
    K, R, N, Di = 2, 4, 3, 64
    p = [torch.empty(K, R + 2 * N, Di), torch.empty(K, Di, R), torch.empty(K, Di), torch.empty(K, Di, N),
         torch.empty(K, Di)]
    init_ssm_parameters(*p, dt_min=0.01, dt_max=0.05)
    wx, wdt, bias, A_log, D = p
    assert wx.abs().max() <= 1 / math.sqrt(Di) and wdt.abs().max() <= R ** -0.5
    dt = torch.nn.functional.softplus(bias)
    assert dt.min() >= 0.01 * (1 - 1e-5) and dt.max() <= 0.05 * (1 + 1e-5)
    torch.testing.assert_close(A_log, torch.log(torch.arange(1, N + 1.0)).expand(K, Di, N))
    assert (D == 1).all()
    with pytest.raises(ValueError, match="dt_init"):
        init_ssm_parameters(*p, dt_init="uniform")


@pytest.mark.parametrize("make", [
    lambda: SS2D(16, d_state=2), lambda: AtrousSS2D(16, d_state=2), lambda: MultiScaleSS2D(16, d_state=2),
], ids=["SS2D", "AtrousSS2D", "MultiScaleSS2D"])
def test_mixers_initialise_through_the_core(make):
    """A mixer's SSM reset draws exactly what init_ssm_parameters draws (Mamba's initialisation, defaults)."""
    m = make()
    names = ("x_proj_weight", "dt_proj_weight", "dt_proj_bias", "A_log", "D")
    fresh = [torch.empty_like(getattr(m, n)) for n in names]
    torch.manual_seed(3)
    m.reset_ssm_parameters()
    torch.manual_seed(3)
    init_ssm_parameters(*fresh)
    for n, f in zip(names, fresh):
        torch.testing.assert_close(getattr(m, n), f, rtol=0, atol=0, msg=n)
    assert m.dt_rank == resolve_dt_rank("auto", 16)
