"""selective_scan_mamba: everything mamba_ssm's selective_scan_fn accepts, and the opt-in import shim."""
import importlib
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from vssm.kernels import (
    available_backends,
    install_mamba_ssm_shim,
    mamba_ssm_shim,
    selective_scan_mamba,
    uninstall_mamba_ssm_shim,
)

BACKENDS = [b for b in ("cpu", "torch", "ref") if b in available_backends()]
Bt, DM, L, N = 2, 6, 11, 3
# how B / C are given: time-invariant (D, N), shared (Bt, N, L), grouped (Bt, G, N, L)
KINDS = ["invariant", "shared", "groups2", "groups3"]


def _bc(kind, gen, dtype=torch.float64):
    if kind == "invariant":
        return torch.randn(DM, N, generator=gen, dtype=dtype)
    if kind == "shared":
        return torch.randn(Bt, N, L, generator=gen, dtype=dtype)
    G = int(kind[-1])
    return torch.randn(Bt, G, N, L, generator=gen, dtype=dtype)


def _inputs(bkind, ckind, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    return dict(u=r(Bt, DM, L), delta=r(Bt, DM, L) * 0.5, A=-torch.rand(DM, N, generator=gen, dtype=dtype) - 0.2,
                B=_bc(bkind, gen, dtype), C=_bc(ckind, gen, dtype), D=r(DM), z=r(Bt, DM, L), delta_bias=r(DM) * 0.3)


def _per_channel(X, dtype):
    """Any accepted B / C form as (Bt, D, N, L): the row each channel reads at each step."""
    X = X.to(dtype)
    if X.dim() == 2:
        return X[None, :, :, None].expand(Bt, DM, N, L)
    if X.dim() == 3:
        X = X.unsqueeze(1)
    return X.repeat_interleave(DM // X.shape[1], dim=1)


def _oracle(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, dtype=torch.float64):
    """mamba_ssm's selective_scan_ref semantics, step by step per channel, computed in ``dtype``."""
    u, delta, A = u.to(dtype), delta.to(dtype), A.to(dtype)
    Bc, Cc = _per_channel(B, dtype), _per_channel(C, dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = u.new_zeros(Bt, DM, N)
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * Bc[..., t]
        ys.append((h * Cc[..., t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + D.to(dtype)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y, h


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bkind", KINDS)
@pytest.mark.parametrize("ckind", KINDS)
def test_every_b_c_form_matches_the_oracle_forward_and_gradients(backend, bkind, ckind):
    t = _inputs(bkind, ckind, seed=10 * KINDS.index(bkind) + KINDS.index(ckind))
    leaves = {k: v.requires_grad_(True) for k, v in t.items()}
    y, last = selective_scan_mamba(**leaves, delta_softplus=True, return_last_state=True, backend=backend)
    y_ref, last_ref = _oracle(**leaves, delta_softplus=True)
    assert y.dtype == torch.float64 and y.shape == (Bt, DM, L) and last.shape == (Bt, DM, N)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(last.double(), last_ref.detach(), rtol=1e-5, atol=1e-6)  # the state is returned fp32
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    names = list(leaves)
    g = torch.autograd.grad(y, [leaves[n] for n in names], dy)
    g_ref = torch.autograd.grad(y_ref, [leaves[n] for n in names], dy)
    for n, a, b in zip(names, g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8, msg=f"d{n} ({bkind} B, {ckind} C, {backend})")


@pytest.mark.parametrize("backend", BACKENDS)
def test_optional_arguments_and_defaults(backend):
    t = _inputs("invariant", "groups2", seed=5)
    # mamba_ssm's defaults: no D, no gate, no bias, no softplus (delta used as given: keep it positive)
    delta = t["delta"].abs()
    y = selective_scan_mamba(t["u"], delta, t["A"], t["B"], t["C"], backend=backend)
    y_ref, _ = _oracle(t["u"], delta, t["A"], t["B"], t["C"])
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-9)
    # positional order of mamba_ssm: (u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    y2, last = selective_scan_mamba(t["u"], delta, t["A"], t["B"], t["C"], t["D"], t["z"], t["delta_bias"], True,
                                    True, backend=backend)
    y2_ref, last_ref = _oracle(t["u"], delta, t["A"], t["B"], t["C"], t["D"], t["z"], t["delta_bias"], True)
    torch.testing.assert_close(y2, y2_ref, rtol=1e-9, atol=1e-9)
    assert last.dtype == torch.float32
    torch.testing.assert_close(last.double(), last_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_inputs_as_close_to_float64_as_mamba_ssm_reference(dtype, backend):
    """mamba_ssm's reference upcasts u / delta / B / C to fp32, scans in fp32 and casts y back to the input dtype.
    Ours must be at least as close to the float64 result as that, and return the same dtypes."""
    worst = {"ours": 0.0, "mamba_ref": 0.0}
    for seed in range(4):
        t64 = _inputs("shared", "groups3", seed=100 + seed)
        t = {k: (v.to(dtype) if k in ("u", "delta", "B", "C", "z") else v.float()) for k, v in t64.items()}
        y, last = selective_scan_mamba(**t, delta_softplus=True, return_last_state=True, backend=backend)
        assert y.dtype == dtype and last.dtype == torch.float32
        exact, _ = _oracle(**t, delta_softplus=True)  # the rounded inputs, computed in float64
        mamba_ref = _oracle(**t, delta_softplus=True, dtype=torch.float32)[0].to(dtype)
        scale = exact.abs().max()
        err_ours = float((y.double() - exact).abs().max() / scale)
        err_ref = float((mamba_ref.double() - exact).abs().max() / scale)
        worst["ours"], worst["mamba_ref"] = max(worst["ours"], err_ours), max(worst["mamba_ref"], err_ref)
        assert err_ours <= err_ref + 1e-6, (seed, err_ours, err_ref)
    assert worst["ours"] < (4e-3 if dtype == torch.float16 else 2e-2), worst


def test_bad_input_is_named():
    t = _inputs("shared", "shared", seed=1)
    with pytest.raises(TypeError, match="A: got complex dtype"):
        selective_scan_mamba(t["u"], t["delta"], t["A"].to(torch.complex64), t["B"], t["C"])
    with pytest.raises(ValueError, match=r"B: got shape \(2, 4, 3, 11\).*G dividing D=6"):
        selective_scan_mamba(t["u"], t["delta"], t["A"], torch.zeros(Bt, 4, N, L, dtype=torch.float64), t["C"])
    with pytest.raises(ValueError, match=r"C: got shape \(6, 4\); allowed: \(D, N\)=\(6, 3\)"):
        selective_scan_mamba(t["u"], t["delta"], t["A"], t["B"], torch.zeros(DM, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"delta: got shape \(2, 6, 10\)"):
        selective_scan_mamba(t["u"], t["delta"][..., :10], t["A"], t["B"], t["C"])
    with pytest.raises(ValueError, match=r"u: got shape \(2, 6\); allowed: \(Bt, D, L\)"):
        selective_scan_mamba(t["u"][..., 0], t["delta"], t["A"], t["B"], t["C"])
    with pytest.raises(ValueError, match=r"D: got shape \(5,\); allowed: None or a \(6,\) tensor"):
        selective_scan_mamba(t["u"], t["delta"], t["A"], t["B"], t["C"], D=torch.ones(5))
    with pytest.raises(ValueError, match="backend='cuda'"):
        selective_scan_mamba(t["u"], t["delta"], t["A"], t["B"], t["C"], backend="cuda")


# ----------------------------------------------------------------------------------------------------------------
# the shim

PEER_LAYER = '''
import torch
from mamba_ssm.ops.selective_scan_interface import selective_scan_fn


class S6(torch.nn.Module):
    """A layer written against mamba_ssm, as peers write them."""

    def __init__(self, d, n):
        super().__init__()
        self.A_log = torch.nn.Parameter(torch.randn(d, n).abs().log())
        self.D = torch.nn.Parameter(torch.ones(d))
        self.dt_bias = torch.nn.Parameter(torch.zeros(d))

    def forward(self, x, dt, B, C, z):
        return selective_scan_fn(x, dt, -torch.exp(self.A_log.float()), B, C, self.D.float(), z=z,
                                 delta_bias=self.dt_bias.float(), delta_softplus=True)
'''


@pytest.fixture
def clean_modules():
    """Forget every mamba_ssm module and the peer module before and after a test; uninstall the shim."""
    def forget():
        for name in [m for m in sys.modules if m == "mamba_ssm" or m.startswith("mamba_ssm.") or m == "peer_layer"]:
            del sys.modules[name]
    uninstall_mamba_ssm_shim()
    forget()
    yield
    uninstall_mamba_ssm_shim()
    forget()


def test_shim_runs_code_written_against_mamba_ssm(clean_modules, tmp_path, monkeypatch):
    pytest.importorskip("numpy")
    if importlib.util.find_spec("mamba_ssm") is not None:
        pytest.skip("a real mamba_ssm is installed here")
    (tmp_path / "peer_layer.py").write_text(textwrap.dedent(PEER_LAYER))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("peer_layer")
    install_mamba_ssm_shim()
    install_mamba_ssm_shim()  # a second call changes nothing
    peer = importlib.import_module("peer_layer")
    from mamba_ssm.ops import selective_scan_interface as ssi

    assert peer.selective_scan_fn is selective_scan_mamba and ssi.selective_scan_fn is selective_scan_mamba
    torch.manual_seed(0)
    layer = peer.S6(DM, N).double()
    t = _inputs("shared", "groups2", seed=9)
    y = layer(t["u"], t["delta"], t["B"], t["C"], t["z"])
    y_ref, _ = _oracle(t["u"], t["delta"], -torch.exp(layer.A_log.detach()), t["B"], t["C"], layer.D.detach(),
                       t["z"], layer.dt_bias.detach(), True)
    torch.testing.assert_close(y.detach(), y_ref, rtol=1e-6, atol=1e-6)  # the layer casts its weights to fp32
    y.sum().backward()
    assert layer.A_log.grad is not None and layer.A_log.grad.abs().sum() > 0
    # the reference slot runs the oracle
    y2 = ssi.selective_scan_ref(t["u"], t["delta"], t["A"], t["B"], t["C"], delta_softplus=True)
    torch.testing.assert_close(y2, _oracle(t["u"], t["delta"], t["A"], t["B"], t["C"], delta_softplus=True)[0])
    with pytest.raises(AttributeError, match="provides selective_scan_fn, selective_scan_ref only; 'mamba_inner_fn'"):
        ssi.mamba_inner_fn  # noqa: B018
    uninstall_mamba_ssm_shim()
    assert "mamba_ssm" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    with mamba_ssm_shim():
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        assert selective_scan_fn is selective_scan_mamba
    assert "mamba_ssm" not in sys.modules


def _installed_package(root, interface_source):
    pkg = root / "mamba_ssm"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "ops" / "selective_scan_interface.py").write_text(interface_source)


def test_shim_with_an_installed_mamba_ssm(clean_modules, tmp_path, monkeypatch):
    _installed_package(tmp_path, "def selective_scan_fn(*a, **k):\n    return 'the installed one'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="mamba_ssm is installed .*pass replace=True"):
        install_mamba_ssm_shim()
    install_mamba_ssm_shim(replace=True)
    ssi = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    assert ssi.__file__.startswith(str(tmp_path))  # the installed module, patched in place
    assert ssi.selective_scan_fn is selective_scan_mamba
    uninstall_mamba_ssm_shim()
    assert ssi.selective_scan_fn() == "the installed one" and not hasattr(ssi, "selective_scan_ref")


def test_shim_shadows_an_installed_mamba_ssm_that_cannot_import(clean_modules, tmp_path, monkeypatch):
    _installed_package(tmp_path, "import selective_scan_cuda  # the compiled extension, missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError):
        importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    install_mamba_ssm_shim(replace=True)
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    assert selective_scan_fn is selective_scan_mamba
    uninstall_mamba_ssm_shim()
    assert not getattr(sys.modules.get("mamba_ssm"), "__vssm_shim__", False)
    with pytest.raises(TypeError, match="replace: got 'yes'"):
        install_mamba_ssm_shim(replace="yes")
