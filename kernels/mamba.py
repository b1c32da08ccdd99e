"""mamba_ssm's ``selective_scan_fn`` on vssm's op: the same arguments, layouts and output dtypes, and an opt-in shim.

``selective_scan_mamba(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
return_last_state=False)`` takes what ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn`` takes:

- ``u``, ``delta``, ``z``: ``(Bt, D, L)``; ``A``: ``(D, N)`` real; ``D``, ``delta_bias``: ``(D,)``;
- ``B`` and ``C`` each, independently: time-invariant ``(D, N)``, ``(Bt, N, L)`` shared by every channel, or
  grouped ``(Bt, G, N, L)`` (channel ``d`` reads group ``d // (D / G)``);
- it returns ``y`` in the dtype of ``u`` (math and state in fp32, fp64 for fp64 inputs) and, with
  ``return_last_state``, the last state ``(Bt, D, N)`` in fp32, as mamba_ssm does.

The mapping onto the op: the channels that share their ``B`` and ``C`` rows form one path of the op (``K = G``,
``Du = D / G``), all in raster order; a time-invariant ``B`` or ``C`` differs per channel, so then every channel is
its own path (``K = D``, ``Du = 1``) and the ``(D, N)`` matrix is broadcast over the sequence. ``G`` is the least
common multiple of the groupings of ``B`` and ``C`` (``D`` for a time-invariant one).

``install_mamba_ssm_shim()`` makes ``from mamba_ssm.ops.selective_scan_interface import selective_scan_fn`` (and
``selective_scan_ref``) resolve to this function, and ``mamba_inner_fn`` (and Vim's ``mamba_inner_fn_no_out_proj``
/ ``bimamba_inner_fn``) to ``kernels/mamba_block.py``'s, so a peer's model code written against mamba_ssm runs on
vssm's op without compiling anything. It is a function call that edits ``sys.modules`` for this process only; nothing
named ``mamba_ssm`` is ever installed. ``uninstall_mamba_ssm_shim()`` (or leaving ``with mamba_ssm_shim():``)
restores what was there.
"""
from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import math
import sys
import types
from typing import Dict, Optional

import torch

from .mamba_block import (
    bimamba_inner,
    bimamba_inner_ref,
    causal_conv1d,
    causal_conv1d_update,
    mamba_inner,
    mamba_inner_no_out_proj,
    mamba_inner_ref,
)
from .op import selective_scan

_NAME = "selective_scan_mamba"


def _err(arg: str, got: str, allowed: str) -> ValueError:
    return ValueError(f"{_NAME}: {arg}: got {got}; allowed: {allowed}")


def _groups(name: str, X: torch.Tensor, Bt: int, Dm: int, N: int, L: int) -> int:
    """How many channel groups share one row of ``X`` (``Dm`` for a time-invariant ``(D, N)`` matrix)."""
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"{_NAME}: {name}: got {type(X).__name__}; allowed: a torch.Tensor")
    if X.is_complex():
        raise TypeError(f"{_NAME}: {name}: got complex dtype {X.dtype}; allowed: real float tensors (vssm's op "
                        "has no complex state)")
    allowed = f"(D, N)=({Dm}, {N}), (Bt, N, L)=({Bt}, {N}, {L}) or (Bt, G, N, L) with G dividing D={Dm}"
    if X.dim() == 2:
        if tuple(X.shape) != (Dm, N):
            raise _err(name, f"shape {tuple(X.shape)}", allowed)
        return Dm
    if X.dim() == 3:
        if tuple(X.shape) != (Bt, N, L):
            raise _err(name, f"shape {tuple(X.shape)}", allowed)
        return 1
    if X.dim() == 4:
        if X.shape[0] != Bt or tuple(X.shape[2:]) != (N, L) or X.shape[1] < 1 or Dm % X.shape[1]:
            raise _err(name, f"shape {tuple(X.shape)}", allowed)
        return X.shape[1]
    raise _err(name, f"shape {tuple(X.shape)}", allowed)


def _per_path(X: torch.Tensor, G: int, Bt: int, L: int) -> torch.Tensor:
    """``X`` as the op's ``(Bt, L, G, N)``: path ``g`` holds the row its channels read."""
    if X.dim() == 2:  # (D, N), one row per channel: G == D paths, the same row at every step
        return X.unsqueeze(0).unsqueeze(0).expand(Bt, L, G, X.shape[1])
    if X.dim() == 3:
        X = X.unsqueeze(1)
    Xl = X.permute(0, 3, 1, 2)  # (Bt, L, Gx, N)
    rep = G // X.shape[1]
    return Xl if rep == 1 else Xl.repeat_interleave(rep, dim=2)


def selective_scan_mamba(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: Optional[str] = None,
):
    """``mamba_ssm``'s ``selective_scan_fn`` (same positional order and defaults) on vssm's op.

    Args:
        u, delta: ``(Bt, D, L)``; z: optional ``(Bt, D, L)`` gate (``y *= silu(z)``).
        A: ``(D, N)`` real (``-exp(A_log)``).
        B, C: ``(D, N)`` time-invariant, ``(Bt, N, L)``, or ``(Bt, G, N, L)`` grouped; each independently.
        D, delta_bias: optional ``(D,)``.
        delta_softplus: softplus (threshold 20) on ``delta + delta_bias`` (mamba_ssm's default: off).
        return_last_state: also return the last state ``(Bt, D, N)`` (fp32).
        backend: vssm's backend (default by device, see ``vssm.kernels.default_backend``).

    Returns:
        ``y (Bt, D, L)`` in the dtype of ``u``, or ``(y, last_state)``.
    """
    for name, t in (("u", u), ("delta", delta), ("A", A)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{_NAME}: {name}: got {type(t).__name__}; allowed: a torch.Tensor")
    if u.dim() != 3:
        raise _err("u", f"shape {tuple(u.shape)}", "(Bt, D, L)")
    Bt, Dm, L = u.shape
    if delta.shape != u.shape:
        raise _err("delta", f"shape {tuple(delta.shape)}", f"(Bt, D, L)={tuple(u.shape)}, the shape of u")
    if A.is_complex():
        raise TypeError(f"{_NAME}: A: got complex dtype {A.dtype}; allowed: real float32 / float64 (vssm's op has "
                        "no complex state)")
    if A.dim() != 2 or A.shape[0] != Dm or A.shape[1] < 1:
        raise _err("A", f"shape {tuple(A.shape)}", f"(D, N) with D={Dm}, the channels of u")
    N = A.shape[1]
    G = math.lcm(_groups("B", B, Bt, Dm, N, L), _groups("C", C, Bt, Dm, N, L))
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (Dm,)):
            got = f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise _err(name, got, f"None or a ({Dm},) tensor")
    if z is not None and (not isinstance(z, torch.Tensor) or z.shape != u.shape):
        got = f"shape {tuple(z.shape)}" if isinstance(z, torch.Tensor) else type(z).__name__
        raise _err("z", got, f"None or (Bt, D, L)={tuple(u.shape)}, the shape of u")
    Dg = Dm // G
    wt = torch.float64 if A.dtype == torch.float64 else torch.float32

    def cl(t):  # (Bt, D, L) -> (Bt, L, G, D/G): each group of channels is one path
        return None if t is None else t.transpose(1, 2).reshape(Bt, L, G, Dg)

    def per_group(t):  # (D,) -> (G, D/G)
        return None if t is None else t.to(wt).reshape(G, Dg)

    y, last = selective_scan(
        cl(u), cl(delta), A.to(wt).reshape(G, Dg, N), _per_path(B, G, Bt, L), _per_path(C, G, Bt, L),
        per_group(D), per_group(delta_bias), bool(delta_softplus), None, cl(z), None, u.dtype, True, backend,
    )
    y = y.reshape(Bt, L, Dm).transpose(1, 2)
    return (y, last.reshape(Bt, Dm, N)) if return_last_state else y


def selective_scan_mamba_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                             return_last_state=False):
    """``selective_scan_mamba`` on the sequential oracle (mamba_ssm's ``selective_scan_ref`` slot)."""
    return selective_scan_mamba(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                                backend="ref")


# ----------------------------------------------------------------------------------------------------------------
# the opt-in shim

_INTERFACE = "mamba_ssm.ops.selective_scan_interface"
_SHIM_MODULES = ("mamba_ssm", "mamba_ssm.ops", _INTERFACE)
_PROVIDED = {
    "selective_scan_fn": selective_scan_mamba,
    "selective_scan_ref": selective_scan_mamba_ref,
    "mamba_inner_fn": mamba_inner,
    "mamba_inner_ref": mamba_inner_ref,
    "mamba_inner_fn_no_out_proj": mamba_inner_no_out_proj,  # Vim's fork of mamba_ssm
    "bimamba_inner_fn": bimamba_inner,
    "bimamba_inner_ref": bimamba_inner_ref,
}
_CC = "causal_conv1d"
_saved: Dict[str, object] = {}  # what install replaced: sys.modules entries, or the real module's attributes
_state: Dict[str, object] = {}


def _shim_module(name: str, package: bool) -> types.ModuleType:
    mod = types.ModuleType(name, f"vssm's stand-in for {name} (vssm.kernels.install_mamba_ssm_shim)")
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    mod.__vssm_shim__ = True
    if package:
        mod.__path__ = []
    return mod


def _interface_standin() -> types.ModuleType:
    """The stand-in interface module: the provided functions; any other name raises a clear AttributeError."""
    mod = _shim_module(_INTERFACE, False)
    mod.__dict__.update(_PROVIDED)
    mod.__getattr__ = _missing(_INTERFACE)
    return mod


def _missing(name: str, provided: Optional[str] = None):
    provided = provided or ", ".join(sorted(_PROVIDED))
    package = name.split(".")[0]

    def __getattr__(attr):
        raise AttributeError(f"vssm's mamba_ssm shim ({name}) provides {provided} only; {attr!r} is not provided "
                             f"(install the real {package} for it)")
    return __getattr__


def _real_mamba_ssm() -> bool:
    mod = sys.modules.get("mamba_ssm")
    if mod is not None:
        return not getattr(mod, "__vssm_shim__", False)
    return importlib.util.find_spec("mamba_ssm") is not None


def _mamba_ssm_modules() -> Dict[str, types.ModuleType]:
    return {n: m for n, m in list(sys.modules.items()) if n == "mamba_ssm" or n.startswith("mamba_ssm.")}


def install_mamba_ssm_shim(replace: bool = False) -> None:
    """Route ``mamba_ssm.ops.selective_scan_interface``'s ``selective_scan_fn`` / ``selective_scan_ref``,
    ``mamba_inner_fn`` / ``mamba_inner_ref`` and Vim's ``mamba_inner_fn_no_out_proj`` / ``bimamba_inner_fn`` /
    ``bimamba_inner_ref`` to vssm's op.

    Without mamba_ssm installed, stand-in modules ``mamba_ssm``, ``mamba_ssm.ops`` and ``mamba_ssm.ops.
    selective_scan_interface`` are put in ``sys.modules`` (other names in them raise a clear ``AttributeError``).
    Where mamba_ssm is installed, ``replace=True`` is needed. When its interface module imports (mamba_ssm 2.x
    without its CUDA extension does), those functions are replaced in it and in the mamba_ssm modules that already
    bound them (``import mamba_ssm`` imports ``mamba_simple``, which binds ``selective_scan_fn`` and
    ``mamba_inner_fn``), so ``mamba_ssm.Mamba`` runs on vssm's op. When it cannot be imported (Vim's fork imports
    its CUDA extension unconditionally), a stand-in takes the interface module's place and the rest of the package
    imports for real around it. Other code that did ``from mamba_ssm... import selective_scan_fn`` before the call
    keeps what it imported. Where the ``causal_conv1d`` package cannot be imported, a stand-in provides its
    ``causal_conv1d_fn`` / ``causal_conv1d_update`` (in torch), so mamba_ssm's layers take their fused path
    (``mamba_inner_fn``) and Vim's fork (whose fallback for a missing causal_conv1d raises) imports.
    Calling it again is a no-op; ``uninstall_mamba_ssm_shim()`` restores the previous state.
    """
    if not isinstance(replace, bool):
        raise TypeError(f"install_mamba_ssm_shim: replace: got {replace!r}; allowed: True or False")
    if _state:
        return
    if _real_mamba_ssm() and not replace:
        spec = importlib.util.find_spec("mamba_ssm") if "mamba_ssm" not in sys.modules else None
        where = spec.origin if spec is not None else "already imported"
        raise RuntimeError(f"install_mamba_ssm_shim: mamba_ssm is installed ({where}); pass replace=True to "
                           "route its selective_scan_fn / mamba_inner_fn (and the rest) to vssm's op")
    _install_causal_conv1d()  # first: importing an installed mamba_ssm below binds causal_conv1d_fn in its layers
    _install_mamba_ssm()


def _install_causal_conv1d() -> None:
    """A stand-in ``causal_conv1d`` where the package cannot be imported (absent, or without its CUDA extension);
    a working one is left alone."""
    if _CC in sys.modules:
        return
    try:
        importlib.import_module(_CC)
        return
    except ImportError:
        pass
    mod = _shim_module(_CC, False)
    mod.causal_conv1d_fn, mod.causal_conv1d_update = causal_conv1d, causal_conv1d_update
    mod.__getattr__ = _missing(_CC, "causal_conv1d_fn, causal_conv1d_update")
    sys.modules[_CC] = mod
    _state["causal_conv1d"] = mod


def _install_mamba_ssm() -> None:
    if _real_mamba_ssm():
        try:
            real = importlib.import_module(_INTERFACE)
        except ImportError:  # installed but its interface cannot import (no CUDA extension): shadow that module
            real = None
        if real is not None:
            originals = {attr: real.__dict__.get(attr) for attr in _PROVIDED}
            rebound = []
            for mod in _mamba_ssm_modules().values():
                for attr, fn in _PROVIDED.items():
                    if mod is real or originals[attr] is not None and mod.__dict__.get(attr) is originals[attr]:
                        rebound.append((mod, attr, mod.__dict__.get(attr, _saved)))
                        setattr(mod, attr, fn)
            _state["rebound"] = rebound
            return
        # a stand-in takes the interface module's place; the package and its other modules import for real
        # around it when the caller imports them (nothing more of the package is run here)
        mod = _interface_standin()
        _state["before"] = set(_mamba_ssm_modules())
        _state["rebound"] = []
        ops = sys.modules.get("mamba_ssm.ops")  # the failed import may have loaded the parent package
        if ops is not None:
            _state["rebound"].append((ops, "selective_scan_interface",
                                      ops.__dict__.get("selective_scan_interface", _saved)))
            ops.selective_scan_interface = mod
        sys.modules[_INTERFACE] = mod
        _state["modules"] = {_INTERFACE: mod}
        return
    for name in _SHIM_MODULES:
        if name in sys.modules:
            _saved[name] = sys.modules[name]
    mods = {name: _shim_module(name, True) for name in _SHIM_MODULES[:2]}
    mods[_INTERFACE] = _interface_standin()
    mods["mamba_ssm"].ops = mods["mamba_ssm.ops"]
    mods["mamba_ssm.ops"].selective_scan_interface = mods[_INTERFACE]
    sys.modules.update(mods)
    _state["modules"] = mods


def uninstall_mamba_ssm_shim() -> None:
    """Undo ``install_mamba_ssm_shim`` (a no-op when it is not installed). mamba_ssm modules first imported around a
    stand-in interface are forgotten, so that a later import loads them as they are without the shim."""
    for mod, attr, old in reversed(_state.get("rebound", [])):
        if old is _saved:
            delattr(mod, attr)
        else:
            setattr(mod, attr, old)
    if "before" in _state:
        for name in set(_mamba_ssm_modules()) - _state["before"]:
            del sys.modules[name]
    if "causal_conv1d" in _state and sys.modules.get(_CC) is _state["causal_conv1d"]:
        del sys.modules[_CC]
    for name, mod in _state.get("modules", {}).items():
        if sys.modules.get(name) is mod:
            del sys.modules[name]
        if name in _saved:
            sys.modules[name] = _saved.pop(name)
    _state.clear()


@contextlib.contextmanager
def mamba_ssm_shim(replace: bool = False):
    """``install_mamba_ssm_shim`` for the ``with`` block."""
    install_mamba_ssm_shim(replace)
    try:
        yield
    finally:
        uninstall_mamba_ssm_shim()
