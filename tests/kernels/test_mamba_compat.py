"""selective_scan_mamba: everything mamba_ssm's selective_scan_fn accepts, and the opt-in import shim."""
import importlib
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from vssm.kernels import (
    available_backends,
    bimamba_inner,
    install_mamba_ssm_shim,
    mamba_inner,
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
        for name in [m for m in sys.modules if m.split(".")[0] in ("mamba_ssm", "peer_layer", "causal_conv1d")]:
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
    with pytest.raises(AttributeError, match="provides bimamba_inner_fn, .*selective_scan_ref only; 'selective_state_"):
        ssi.selective_state_update  # noqa: B018
    uninstall_mamba_ssm_shim()
    assert "mamba_ssm" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    with mamba_ssm_shim():
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
        assert selective_scan_fn is selective_scan_mamba
    assert "mamba_ssm" not in sys.modules


PEER_MAMBA = '''
import torch
import torch.nn.functional as F
from mamba_ssm.ops.selective_scan_interface import (bimamba_inner_fn, mamba_inner_fn, mamba_inner_fn_no_out_proj,
                                                    selective_scan_fn)


class Mamba(torch.nn.Module):
    """A Mamba mixer with a bidirectional option, written against mamba_ssm (and Vim's fork) as peers write it: the
    fused functions on the fast path, nn.Conv1d + selective_scan_fn on the slow one."""

    def __init__(self, d_model, d_state=3, d_conv=4, expand=2, bimamba=None, fast=True):
        super().__init__()
        d = expand * d_model
        self.d, self.n, self.r, self.bimamba, self.fast = d, d_state, max(1, d_model // 4), bimamba, fast
        self.in_proj = torch.nn.Linear(d_model, 2 * d, bias=False)
        self.out_proj = torch.nn.Linear(d, d_model)
        for s in ("", "_b") if bimamba else ("",):
            self.add_module("conv1d" + s, torch.nn.Conv1d(d, d, d_conv, groups=d, padding=d_conv - 1))
            self.add_module("x_proj" + s, torch.nn.Linear(d, self.r + 2 * d_state, bias=False))
            self.add_module("dt_proj" + s, torch.nn.Linear(self.r, d))
            self.register_parameter("A_log" + s, torch.nn.Parameter(torch.rand(d, d_state).add(0.5).log()))
            self.register_parameter("D" + s, torch.nn.Parameter(torch.randn(d)))
        if bimamba == "v1":  # one convolution and projection for both directions
            del self.conv1d_b, self.x_proj_b, self.dt_proj_b, self.D_b

    def _slow(self, xz, s, A):
        L = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(getattr(self, "conv1d" + s)(x)[..., :L])
        dt, B, C = torch.split(getattr(self, "x_proj" + s)(x.transpose(1, 2)), [self.r, self.n, self.n], dim=-1)
        dt = (getattr(self, "dt_proj" + s).weight @ dt.transpose(1, 2))
        return selective_scan_fn(x, dt, A, B.transpose(1, 2), C.transpose(1, 2), getattr(self, "D" + s).float(), z=z,
                                 delta_bias=getattr(self, "dt_proj" + s).bias.float(), delta_softplus=True)

    def _fast(self, xz, s, A):
        return mamba_inner_fn_no_out_proj(xz, getattr(self, "conv1d" + s).weight, getattr(self, "conv1d" + s).bias,
                                          getattr(self, "x_proj" + s).weight, getattr(self, "dt_proj" + s).weight, A,
                                          None, None, getattr(self, "D" + s).float(),
                                          delta_bias=getattr(self, "dt_proj" + s).bias.float(), delta_softplus=True)

    def forward(self, h):
        xz = self.in_proj(h).transpose(1, 2)
        A = -torch.exp(self.A_log.float())
        w = (self.conv1d.weight, self.conv1d.bias, self.x_proj.weight, self.dt_proj.weight)
        out = (self.out_proj.weight, self.out_proj.bias)
        if self.bimamba == "v1":
            A_b = -torch.exp(self.A_log_b.float())
            if self.fast:
                return bimamba_inner_fn(xz, *w, *out, A, A_b, None, None, self.D.float(),
                                        delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
            y = self._slow(xz, "", A)
            y_b = self._slow_shared_reverse(xz, A_b)
            return self.out_proj((y + y_b).transpose(1, 2))
        if self.bimamba == "v2":
            A_b = -torch.exp(self.A_log_b.float())
            run = self._fast if self.fast else self._slow
            y = run(xz, "", A) + run(xz.flip([-1]), "_b", A_b).flip([-1])
            return self.out_proj(y.transpose(1, 2))
        if self.fast:
            return mamba_inner_fn(xz, *w, *out, A, None, None, self.D.float(), delta_bias=self.dt_proj.bias.float(),
                                  delta_softplus=True)
        return self.out_proj(self._slow(xz, "", A).transpose(1, 2))

    def _slow_shared_reverse(self, xz, A_b):
        """v1's backward direction: the forward direction's convolution and projections, over the reversed sequence."""
        L = xz.shape[-1]
        x, z = xz.chunk(2, dim=1)
        x = F.silu(self.conv1d(x)[..., :L])
        dt, B, C = torch.split(self.x_proj(x.transpose(1, 2)), [self.r, self.n, self.n], dim=-1)
        dt = self.dt_proj.weight @ dt.transpose(1, 2)
        rev = lambda t: t.flip([-1])  # noqa: E731
        y = selective_scan_fn(rev(x), rev(dt), A_b, rev(B.transpose(1, 2)), rev(C.transpose(1, 2)), self.D.float(),
                              z=rev(z), delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
        return rev(y)
'''


@pytest.mark.parametrize("bimamba", [None, "v1", "v2"])
def test_shim_runs_a_peer_mamba_layer_on_the_fused_functions(clean_modules, tmp_path, monkeypatch, bimamba):
    """mamba_ssm's mamba_inner_fn and Vim's bimamba_inner_fn / mamba_inner_fn_no_out_proj, imported through the shim
    by a peer-style layer: its fast path equals its slow path (nn.Conv1d + selective_scan_fn), output and every
    parameter's gradient, in float64."""
    if importlib.util.find_spec("mamba_ssm") is not None:
        pytest.skip("a real mamba_ssm is installed here")
    (tmp_path / "peer_layer.py").write_text(textwrap.dedent(PEER_MAMBA))
    monkeypatch.syspath_prepend(str(tmp_path))
    with mamba_ssm_shim():
        peer = importlib.import_module("peer_layer")
        torch.manual_seed(0)
        fast = peer.Mamba(8, bimamba=bimamba).double()
        slow = peer.Mamba(8, bimamba=bimamba, fast=False).double()
        slow.load_state_dict(fast.state_dict())
        h = torch.randn(2, 13, 8, dtype=torch.float64)
        y_fast, y_slow = fast(h), slow(h)
        assert y_fast.shape == (2, 13, 8)
        torch.testing.assert_close(y_fast, y_slow, rtol=1e-10, atol=1e-10)
        y_fast.square().sum().backward()
        y_slow.square().sum().backward()
        for (name, p), q in zip(fast.named_parameters(), slow.parameters()):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-7, atol=1e-8, msg=lambda m, name=name: f"{name}: {m}")


INSTALLED_INIT = """
from mamba_ssm.ops.selective_scan_interface import selective_scan_fn, mamba_inner_fn
from mamba_ssm.modules.layer import Layer
"""
INSTALLED_LAYER = """
from mamba_ssm.ops.selective_scan_interface import selective_scan_fn, mamba_inner_fn

try:
    from causal_conv1d import causal_conv1d_fn  # mamba_ssm's layers take the fused path only with it
except ImportError:
    causal_conv1d_fn = None


class Layer:
    fns = (selective_scan_fn, mamba_inner_fn)

    def run(self):
        return selective_scan_fn, mamba_inner_fn
"""


def _installed_package(root, interface_source):
    """A mamba_ssm laid out as the real one is: its __init__ imports the interface and a layer module that binds
    selective_scan_fn and mamba_inner_fn at import."""
    pkg = root / "mamba_ssm"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "modules").mkdir()
    (pkg / "__init__.py").write_text(INSTALLED_INIT)
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "modules" / "__init__.py").write_text("")
    (pkg / "modules" / "layer.py").write_text(INSTALLED_LAYER)
    (pkg / "ops" / "selective_scan_interface.py").write_text(interface_source)


def test_shim_with_an_installed_mamba_ssm(clean_modules, tmp_path, monkeypatch):
    """mamba_ssm 2.x without its CUDA extension imports, and its layers bind the functions when the package is
    imported: the shim replaces them there too, so mamba_ssm's own layers run on vssm's op."""
    _installed_package(tmp_path, "def selective_scan_fn(*a, **k):\n    return 'the installed one'\n\n\n"
                                 "def mamba_inner_fn(*a, **k):\n    return 'the installed one'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="mamba_ssm is installed .*pass replace=True"):
        install_mamba_ssm_shim()
    assert "causal_conv1d" not in sys.modules  # the refused call changed nothing
    install_mamba_ssm_shim(replace=True)
    ssi = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    assert ssi.__file__.startswith(str(tmp_path))  # the installed module, patched in place
    assert ssi.selective_scan_fn is selective_scan_mamba and ssi.mamba_inner_fn is mamba_inner
    import mamba_ssm
    from mamba_ssm.modules import layer

    assert layer.Layer().run() == (selective_scan_mamba, mamba_inner)  # bound before the shim, rebound
    if importlib.util.find_spec("causal_conv1d") is None:  # the stand-in was there when the layer imported
        import vssm.kernels.mamba_block as mamba_block

        assert layer.causal_conv1d_fn is mamba_block.causal_conv1d
    assert mamba_ssm.selective_scan_fn is selective_scan_mamba and mamba_ssm.mamba_inner_fn is mamba_inner
    uninstall_mamba_ssm_shim()
    assert ssi.selective_scan_fn() == "the installed one" and not hasattr(ssi, "selective_scan_ref")
    assert [f() for f in layer.Layer().run()] == ["the installed one"] * 2
    assert mamba_ssm.mamba_inner_fn is ssi.mamba_inner_fn and not hasattr(ssi, "bimamba_inner_fn")


def test_shim_shadows_an_installed_mamba_ssm_that_cannot_import(clean_modules, tmp_path, monkeypatch):
    """Vim's fork imports its CUDA extension unconditionally: a stand-in takes the interface module's place and the
    rest of the package imports for real around it."""
    _installed_package(tmp_path, "import selective_scan_cuda  # the compiled extension, missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError):
        importlib.import_module("mamba_ssm.modules.layer")
    install_mamba_ssm_shim(replace=True)
    from mamba_ssm.ops.selective_scan_interface import bimamba_inner_fn, selective_scan_fn

    assert selective_scan_fn is selective_scan_mamba and bimamba_inner_fn is bimamba_inner
    import mamba_ssm.ops.selective_scan_interface as ssi
    from mamba_ssm.modules.layer import Layer  # the package's own module, on the stand-in

    assert Layer().run() == (selective_scan_mamba, mamba_inner)
    assert not getattr(sys.modules["mamba_ssm"], "__vssm_shim__", False) and ssi.__vssm_shim__
    uninstall_mamba_ssm_shim()
    assert not [m for m in sys.modules if m.startswith("mamba_ssm.modules") or m == "mamba_ssm"]
    with pytest.raises(ImportError):
        importlib.import_module("mamba_ssm.modules.layer")
    with pytest.raises(TypeError, match="replace: got 'yes'"):
        install_mamba_ssm_shim(replace="yes")


def test_shim_provides_causal_conv1d_where_it_cannot_import(clean_modules, tmp_path, monkeypatch):
    """mamba_ssm's layers take their fused path only when causal_conv1d imports, and Vim's fork does not import
    without it: where the package is missing (or broken) the shim provides its two functions; a working one is left
    alone."""
    import vssm.kernels.mamba_block as mamba_block

    if importlib.util.find_spec("causal_conv1d") is not None:
        pytest.skip("a causal_conv1d is installed here")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("causal_conv1d")
    with mamba_ssm_shim():
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update

        assert causal_conv1d_fn is mamba_block.causal_conv1d
        assert causal_conv1d_update is mamba_block.causal_conv1d_update
        with pytest.raises(ImportError):  # mamba_ssm's guarded import of the extension's functions falls back
            importlib.import_module("causal_conv1d.cpp_functions")
        with pytest.raises(AttributeError, match="provides causal_conv1d_fn, causal_conv1d_update only; 'causal_conv1d_"
                                                 "varlen_states' is not provided \\(install the real causal_conv1d"):
            sys.modules["causal_conv1d"].causal_conv1d_varlen_states  # noqa: B018
    assert "causal_conv1d" not in sys.modules
    # broken (no CUDA extension): shadowed while installed
    (tmp_path / "causal_conv1d").mkdir()
    (tmp_path / "causal_conv1d" / "__init__.py").write_text("import causal_conv1d_cuda  # missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with mamba_ssm_shim():
        assert sys.modules["causal_conv1d"].causal_conv1d_fn is mamba_block.causal_conv1d
    assert "causal_conv1d" not in sys.modules
    # working: left alone
    (tmp_path / "causal_conv1d" / "__init__.py").write_text("causal_conv1d_fn = 'the installed one'\n")
    with mamba_ssm_shim():
        from causal_conv1d import causal_conv1d_fn

        assert causal_conv1d_fn == "the installed one"
    assert sys.modules["causal_conv1d"].causal_conv1d_fn == "the installed one"
