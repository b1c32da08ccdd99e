"""Linear layers whose fp32 CPU matrix products can run through oneDNN instead of torch's BLAS.

Why. torch's x86 wheels multiply fp32 matrices (``aten::addmm`` / ``mm``, what ``nn.Linear`` calls) with MKL. MKL
picks its kernels by CPU vendor: on AMD processors it runs its AVX2 code even where the CPU has AVX-512. oneDNN, which
torch ships too (it runs torch's CPU convolutions), picks by the instruction set. On the project's 2-core machine
(AMD EPYC, Zen 5, AVX-512, torch 2.12) MKL's fp32 GEMMs run at 170-220 GFLOP/s at the shapes of VMamba-T's linear
layers, oneDNN's at 340-500 (forward and input gradient), and GEMMs are about three quarters of a VMamba-T training
step there.

What. :class:`Linear` is ``nn.Linear`` (same parameters, state dict, initialisation, ``isinstance``) whose forward
calls :func:`linear`; :class:`Mlp` is timm's ``Mlp`` (same keys: ``fc1``, ``fc2``) built from it, and where no
autograd is needed it runs a GELU inside fc1's oneDNN GEMM (oneDNN's post-op, no extra pass). :func:`linear`
takes oneDNN (``torch.ops.mkldnn._linear_pointwise``, the op torch.compile's CPU backend uses for linear layers
when it freezes the weights) when the policy says so and the call is a plain eager fp32 CPU call; otherwise it is
``F.linear``. Its backward forms the input gradient with oneDNN and the weight gradient with oneDNN or torch's
``mm``, whichever measured faster for the shape class (``_onednn_weight_grad``); under ``create_graph`` it uses
differentiable torch ops.

Policy (:func:`set_cpu_gemm`, or ``VSSM_CPU_GEMM``): ``'auto'`` (default) takes oneDNN on x86-64 CPUs with AVX-512
that are not Intel's (where MKL is known to leave AVX-512 unused; on Intel CPUs MKL runs AVX-512 and torch's default
stays), ``'onednn'`` always where torch has oneDNN, ``'torch'`` never. Whatever the policy, ``F.linear`` runs under
tracers and compilers (``torch.export``, ONNX, TorchScript, ``torch.compile``), under dispatch modes (the FLOP
counter, fake tensors), under autocast and functorch transforms, for tensor subclasses, non-fp32 dtypes and other
devices: those see exactly what they would see with ``nn.Linear``. Results agree with ``F.linear`` to fp32 rounding
(a different summation order), not bitwise.
"""
from __future__ import annotations

import os
import platform
import warnings
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import _python_dispatch

from ..kernels.op import is_tracing
from ._fx import register_notrace_function, register_notrace_module

__all__ = ["Linear", "Mlp", "linear", "convert_linears", "set_cpu_gemm", "get_cpu_gemm", "cpu_gemm_backend",
           "CPU_GEMM_MODES"]

#: the policies of :func:`set_cpu_gemm` / ``VSSM_CPU_GEMM``
CPU_GEMM_MODES = ("auto", "onednn", "torch")

_mode: Optional[str] = None       # set_cpu_gemm's mode; None: VSSM_CPU_GEMM, else 'auto'
_resolved: Dict[str, str] = {}   # mode -> the backend it resolves to here ('onednn' or 'torch')


def _check_mode(mode: object, name: str) -> str:
    if not isinstance(mode, str) or mode.strip().lower() not in CPU_GEMM_MODES:
        raise ValueError(f"{name}: got {mode!r}; allowed: {', '.join(repr(m) for m in CPU_GEMM_MODES)}")
    return mode.strip().lower()


def _requested_mode() -> str:
    if _mode is not None:
        return _mode
    return _check_mode(os.environ.get("VSSM_CPU_GEMM", "auto") or "auto", "VSSM_CPU_GEMM")


def _onednn_op():
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(torch.ops.mkldnn, "_linear_pointwise", None) if hasattr(torch.ops, "mkldnn") else None


def _onednn_works() -> Optional[str]:
    """None when oneDNN's linear op runs here and agrees with ``F.linear`` on a small product; else why not."""
    op = _onednn_op()
    if op is None:
        return "torch has no oneDNN linear op here (torch.backends.mkldnn unavailable or no mkldnn._linear_pointwise)"
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=g) for s in ((5, 7), (3, 7), (3,)))
    try:
        y = op(x, w, b, "none", [], "")
    except RuntimeError as e:
        return f"oneDNN's linear op failed on a probe: {e}"
    if y.shape != (5, 3) or not torch.allclose(y, F.linear(x, w, b), rtol=1e-5, atol=1e-5):
        return "oneDNN's linear op disagreed with F.linear on a probe"
    return None


def _auto_prefers_onednn() -> bool:
    """x86-64 with AVX-512 and not an Intel CPU: where MKL runs its AVX2 kernels (module docstring)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    from ..env import cpu_info

    _, vendor, flags = cpu_info()
    return vendor is not None and vendor != "GenuineIntel" and "avx512f" in flags


def cpu_gemm_backend() -> str:
    """What :func:`linear` runs for fp32 CPU products under the current policy: ``'onednn'`` or ``'torch'``.

    Raises:
        ValueError: ``VSSM_CPU_GEMM`` is not one of ``CPU_GEMM_MODES``.
        RuntimeError: the policy is ``'onednn'`` and torch's oneDNN linear op does not work here.
    """
    mode = _requested_mode()
    if mode in _resolved:
        return _resolved[mode]
    if mode == "torch" or (mode == "auto" and not _auto_prefers_onednn()):
        backend = "torch"
    else:
        why_not = _onednn_works()
        if why_not is not None and mode == "onednn":
            raise RuntimeError(f"cpu gemm: got 'onednn'; {why_not}; allowed here: 'auto' or 'torch'")
        if why_not is not None:  # 'auto' on a CPU that would take oneDNN
            warnings.warn(f"vssm: CPU linear layers use torch's BLAS: {why_not}", RuntimeWarning, stacklevel=3)
        backend = "torch" if why_not is not None else "onednn"
    _resolved[mode] = backend
    return backend


def set_cpu_gemm(mode: Optional[str]) -> Optional[str]:
    """Sets the CPU GEMM policy of :func:`linear` for the process (``None``: back to ``VSSM_CPU_GEMM`` / ``'auto'``)
    and returns the previous setting. ``'onednn'`` is checked here: where oneDNN's linear op does not work, the call
    raises and the setting is unchanged.

    Raises:
        ValueError: ``mode`` is not None or one of ``CPU_GEMM_MODES``.
        RuntimeError: ``mode`` is ``'onednn'`` and torch's oneDNN linear op does not work here.
    """
    global _mode
    new = None if mode is None else _check_mode(mode, "set_cpu_gemm mode")
    previous = _mode
    _mode = new
    try:
        cpu_gemm_backend()
    except (RuntimeError, ValueError):
        _mode = previous
        raise
    return previous


def get_cpu_gemm() -> str:
    """The current policy: ``set_cpu_gemm``'s mode, else ``VSSM_CPU_GEMM``, else ``'auto'``."""
    return _requested_mode()


def _plain_eager(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> bool:
    """A call that only sees torch's eager CPU kernels: no tracer, mode, transform, autocast or subclass."""
    if is_tracing() or _cpu_autocast() or _dispatch_mode_active() or _functorch_active():
        return False
    if type(x) is not torch.Tensor or type(weight) not in (torch.Tensor, nn.Parameter):
        return False
    if bias is not None and (type(bias) not in (torch.Tensor, nn.Parameter) or bias.dtype != torch.float32):
        return False
    return (x.device.type == "cpu" and weight.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and x.dim() >= 1 and x.numel() > 0)


def _cpu_autocast() -> bool:
    try:  # torch >= 2.4 takes the device type
        return torch.is_autocast_enabled("cpu")
    except TypeError:
        return torch.is_autocast_cpu_enabled()


def _dispatch_mode_active() -> bool:
    return _python_dispatch._get_current_dispatch_mode() is not None


def _functorch_active() -> bool:
    check = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(check is not None and check())


def _mm(a: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """``a @ b_t.T`` through oneDNN (either operand may be a strided view)."""
    return torch.ops.mkldnn._linear_pointwise(a, b_t, None, "none", [], "")


def _onednn_weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``grad.T @ x`` (out x in), the weight gradient. oneDNN pays once the weight has a side of 192 or more; below
    that (a long reduction into a small matrix) torch's ``mm`` measured faster. oneDNN writes the smaller side as
    rows (measured: up to 2x faster than the other way round)."""
    n, k = grad.shape[1], x.shape[1]
    if max(n, k) < 192:
        return grad.t() @ x
    if n <= k:
        return _mm(grad.t(), x.t())
    return _mm(x.t(), grad.t()).t()


class _OneDNNLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` on 2-D fp32 CPU tensors through oneDNN, forward and backward."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad_w = grad_b = None
        if torch.is_grad_enabled():  # create_graph: the gradients must be differentiable
            grad_x = grad @ weight if need_x else None
            grad_w = grad.t() @ x if need_w else None
        else:
            if not grad.is_contiguous():
                grad = grad.contiguous()
            grad_x = _mm(grad, weight.t()) if need_x else None
            grad_w = _onednn_weight_grad(grad, x) if need_w else None
        if need_b and ctx.has_bias:
            grad_b = grad.sum(0)
        return grad_x, grad_w, grad_b


def _on_onednn(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> bool:
    """The product runs on oneDNN: a plain eager fp32 CPU call under a policy that resolves to oneDNN."""
    return _plain_eager(x, weight, bias) and cpu_gemm_backend() == "onednn"


def _needs_grad(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> bool:
    return torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                        or (bias is not None and bias.requires_grad))


def _fusable(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> bool:
    """A product on oneDNN that needs no autograd: oneDNN's post-ops may run inside it."""
    return not _needs_grad(x, weight, bias) and _on_onednn(x, weight, bias)


@register_notrace_function
def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; fp32 CPU calls go through oneDNN where the policy says so (module docstring)."""
    if not _on_onednn(x, weight, bias):
        return F.linear(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1])
    if _needs_grad(x, weight, bias):
        y = _OneDNNLinear.apply(x2, weight, bias)
    else:
        y = torch.ops.mkldnn._linear_pointwise(x2, weight, bias, "none", [], "")
    return y.view(*x.shape[:-1], weight.shape[0])


@register_notrace_module
class Linear(nn.Linear):
    """``nn.Linear`` whose forward is :func:`linear` (same parameters, state dict and initialisation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def convert_linears(module: nn.Module) -> int:
    """Makes every ``nn.Linear`` in ``module`` (exactly that class, not subclasses) a :class:`Linear` in place: same
    parameters and state dict, the CPU GEMM policy from then on (e.g. a timm model compared with vssm's on equal
    terms). Returns how many it converted."""
    n = 0
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = Linear
            n += 1
    return n


@register_notrace_module
class Mlp(nn.Module):
    """timm's ``Mlp`` (fc1 -> act -> drop -> fc2 -> drop, same state-dict keys) with :class:`Linear` layers; an
    ``nn.GELU`` runs as fc1's oneDNN post-op when fc1 would run on oneDNN and nothing needs gradients."""

    def __init__(self, in_features: int, hidden_features: Optional[int] = None,
                 out_features: Optional[int] = None, act_layer=nn.GELU, bias: bool = True, drop: float = 0.0,
                 device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = Linear(in_features, hidden_features, bias=bias, **dd)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = Linear(hidden_features, out_features, bias=bias, **dd)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc1 = self.fc1
        if type(self.act) is nn.GELU and _fusable(x, fc1.weight, fc1.bias):
            # inference on oneDNN: the GELU runs inside fc1's GEMM as its post-op (one pass over the hidden
            # activations less; VMamba-T's forward 3 % faster at batch 8 and 1)
            x = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), fc1.weight, fc1.bias, "gelu", [],
                                                   self.act.approximate).view(*x.shape[:-1], fc1.out_features)
        else:
            x = self.act(fc1(x))
        x = self.drop1(x)
        return self.drop2(self.fc2(self.norm(x)))
