"""The CPU backend's vectorised fp32 exp, softplus and softplus' derivative against float64 numpy, over their whole
range and the special values, and the float64 versions (libm) exactly.

The kernels call these helpers for every (channel, state, step), so an error here is an error in every output.
"""
import math

import numpy as np
import pytest
from vssm.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.is_available(), reason="the cpu backend needs numba")

if cpu.is_available():
    from numba import njit

    @njit
    def _exp(x):
        out = np.empty_like(x)
        for i in range(x.shape[0]):  # a channel loop, as in the kernels
            out[i] = cpu._exp(x[i])
        return out

    @njit
    def _softplus(x):
        """softplus, then softplus and its derivative from the helper the backward uses."""
        out = np.empty_like(x)
        both = np.empty_like(x)
        grad = np.empty_like(x)
        for i in range(x.shape[0]):
            out[i] = cpu._softplus(x[i])
            both[i], grad[i] = cpu._softplus_grad(x[i])
        return out, both, grad


def _grid(lo, hi, n=200_001, seed=None):
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.linspace(lo, hi, n), rng.uniform(lo, hi, n)]).astype(np.float32)
    return x[rng.permutation(x.size)]  # row boundaries of the vector loops fall on every kind of value


def _softplus64(x):
    x = x.astype(np.float64)
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def test_fp32_exp_is_accurate_on_its_whole_range():
    x = _grid(-86.6, 88.72)
    got = _exp(x).astype(np.float64)
    want = np.exp(x.astype(np.float64))
    rel = np.abs(got / want - 1)
    assert rel.max() < 2e-7, (rel.max(), x[rel.argmax()])


def test_fp32_exp_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72, 88.8, 100.0, -86.6, -86.7, -100.0, 1e-30, -1e-30],
                 dtype=np.float32)
    got = _exp(x)
    want = np.exp(x.astype(np.float64))
    assert np.isnan(got[0])
    assert got[1] == np.inf and got[2] == 0.0
    assert got[3] == 1.0 and got[4] == 1.0
    assert np.isfinite(got[5]) and abs(got[5] / want[5] - 1) < 2e-7  # finite up to fp32's largest exp
    assert got[6] == np.inf and got[7] == np.inf  # overflow is inf, as libm
    assert abs(got[8] / want[8] - 1) < 2e-7
    assert got[9] == 0.0 and got[10] == 0.0  # below -86.6: 0 (libm gives values under 2.5e-38)
    assert got[11] == 1.0 and got[12] == 1.0


@pytest.mark.parametrize("lo,hi", [(-90.0, 25.0), (-1.0, 1.0), (15.0, 25.0)])
def test_fp32_softplus_is_accurate(lo, hi):
    x = _grid(lo, hi)
    got, both, grad = _softplus(x)
    want = _softplus64(x)
    err = np.abs(got.astype(np.float64) - want) - 3e-7 * want
    assert err.max() <= 2.5e-38, (err.max(), x[err.argmax()])  # relative 3e-7, or under exp's flush to 0
    assert np.array_equal(got[x > 20], x[x > 20])  # softplus' threshold: the identity above 20, exactly
    assert np.array_equal(both, got)
    x64 = x.astype(np.float64)
    sig = np.where(x64 > 20, 1.0, 1 / (1 + np.exp(-x64)))  # the derivative, with the same threshold
    assert np.allclose(grad, sig, rtol=3e-7, atol=2.5e-38), np.abs(grad - sig).max()
    assert np.all(grad[x > 20] == 1.0)


def test_fp32_softplus_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 20.0, 20.5], dtype=np.float32)
    got, _, grad = _softplus(x)
    assert np.isnan(got[0]) and np.isnan(grad[0])
    assert grad[1] == 1.0 and grad[2] == 0.0 and grad[3] == 0.5
    assert got[1] == np.inf and got[2] == 0.0
    assert abs(got[3] - math.log(2.0)) < 1e-7
    assert abs(got[4] - math.log1p(math.exp(20.0))) < 2e-6 and got[5] == np.float32(20.5)


def test_fp64_versions_are_libm():
    """The float64 helpers are the C library's exp / log1p bit for bit. The reference is Python's ``math`` (libm);
    NumPy's own vectorised exp is not libm (NumPy 2.4 differs from it in the last bit for ~4 % of these inputs)."""
    x = np.random.default_rng().uniform(-50, 30, 10_001)
    got, both, grad = _softplus(x)
    assert np.array_equal(_exp(x), np.array([math.exp(v) for v in x]))
    assert np.array_equal(got, np.array([v if v > 20 else math.log1p(math.exp(v)) for v in x]))
    assert np.array_equal(both, got)

    def sigmoid(v):
        e = math.exp(-abs(v))
        return 1.0 if v > 20 else e / (1 + e) if v < 0 else 1 / (1 + e)
    assert np.array_equal(grad, np.array([sigmoid(v) for v in x]))
