"""The public selective-scan op: argument checks, normalisation, one autograd Function, dispatch by device.

``selective_scan`` checks and normalises its arguments (``u``/``z`` made 4-D, missing ``D``/``delta_bias`` made zero,
``order`` made int32, everything contiguous), then runs one of three backends:

- ``triton``: CUDA tensors (or CPU tensors under ``TRITON_INTERPRET=1``, for tests);
- ``cpu``: CPU tensors, the numba kernels of ``vssm.kernels.cpu``;
- ``torch``: the portable chunked parallel scan of ``vssm.kernels.portable`` in plain torch ops (any device,
  autograd, and the path taken by itself while the model is exported or traced: ``torch.export``, the ONNX
  exporter, ``torch.jit.trace``);
- ``ref``: the pure-torch sequential oracle of ``vssm.kernels.reference`` (differentiated by autograd).

``VSSM_BACKEND=<name>`` forces a backend wherever ``backend`` is not given; ``VSSM_STRICT_BACKEND=1`` raises where
the default would fall back to a slower backend (with a one-time warning otherwise). ``vssm.backend_info()`` /
``python -m vssm.env`` report the choice per device.

The fast backends sit behind ``torch.ops.vssm.selective_scan_fwd`` / ``selective_scan_bwd``, custom ops with fake
(meta) implementations, so ``torch.compile`` sees the scan as one opaque node instead of tracing into numba or
Triton.
"""
from __future__ import annotations

import difflib
import os
import typing
import warnings
import weakref
from typing import List, Optional, Tuple

import torch

from . import cpu as _cpu
from . import triton_scan as _triton
from ._tracing import is_compiling as _is_compiling
from ._tracing import is_exporting, is_tracing  # noqa: F401  (re-exported: the layers import them from here)
from .portable import selective_scan_torch
from .reference import selective_scan_ref

BACKENDS = ("triton", "cpu", "torch", "ref")
TRACEABLE = ("torch", "ref")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def available_backends() -> List[str]:
    """Backends usable in this process: ``torch`` and ``ref`` always; ``cpu`` with numba; ``triton`` with triton."""
    names = []
    if _triton.is_available():
        names.append("triton")
    if _cpu.is_available():
        names.append("cpu")
    names += ["torch", "ref"]
    return names


_warned: set = set()


def _fallback(device_type: str, wanted: str, why: str) -> str:
    """The portable backend in place of ``wanted``; a warning once per (device, backend), or an error when strict."""
    msg = (f"vssm.kernels: the {wanted!r} backend is not usable for {device_type} tensors ({why}); using the "
           "portable 'torch' backend (slower)")
    if os.environ.get("VSSM_STRICT_BACKEND", "") not in ("", "0"):
        raise RuntimeError(msg.replace("; using", "; VSSM_STRICT_BACKEND is set, so not falling back to"))
    if (device_type, wanted) not in _warned:
        _warned.add((device_type, wanted))
        warnings.warn(msg, RuntimeWarning, stacklevel=4)
    return "torch"


def _forced_backend() -> Optional[str]:
    name = os.environ.get("VSSM_BACKEND", "").strip()
    if not name:
        return None
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, BACKENDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"VSSM_BACKEND={name!r}; allowed: {', '.join(BACKENDS)}{hint}")
    return name


def default_backend(device: torch.device) -> str:
    """The backend ``selective_scan`` uses for tensors on ``device`` when ``backend`` is not given: ``VSSM_BACKEND``
    if set, else ``triton`` on CUDA, ``cpu`` (numba) on CPU, ``torch`` elsewhere (MPS, XPU, ...) and where the fast
    backend is missing (a one-time warning; ``VSSM_STRICT_BACKEND=1`` makes it an error)."""
    device = torch.device(device)
    forced = _forced_backend()
    if forced is not None:
        return forced
    if device.type == "cuda":
        return "triton" if _triton.is_available() else _fallback("cuda", "triton", "triton is not installed")
    if device.type == "cpu":
        return "cpu" if _cpu.is_available() else _fallback("cpu", "cpu", "numba is not installed")
    return "torch"


# ----------------------------------------------------------------------------------------------------------------
# argument checks


def _shape_error(name: str, t: torch.Tensor, expected: str) -> ValueError:
    return ValueError(f"selective_scan: {name} has shape {tuple(t.shape)}, expected {expected}")


def _check_float(name: str, t: torch.Tensor, allowed=_FLOAT_DTYPES) -> None:
    if t.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"selective_scan: {name} has dtype {t.dtype}, expected one of {names}")


_checked_orders: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_checked_meta: dict = {}


def _check_order(order: torch.Tensor, K: int, L: int) -> None:
    """Values in [-1, L) and no position twice within a path. Costs a host sync, so each order tensor (scans hand
    out cached ones) is checked once per (object, version, L). An inference tensor has no version counter (it may
    change in place unseen), so one is checked on every call; the scans' cached orders never are one."""
    key = id(order)
    inference = order.is_inference()
    meta = (None if inference else order._version, L, K)
    if not inference and _checked_orders.get(key) is order and _checked_meta.get(key) == meta:
        return
    if order.dim() != 2 or order.shape[0] != K:
        raise _shape_error("order", order, f"(K, T) with K={K} paths (from delta)")
    if order.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"selective_scan: order has dtype {order.dtype}, expected int32 or int64")
    if order.numel():
        lo, hi = int(order.min()), int(order.max())
        if lo < -1 or hi >= L:
            raise ValueError(
                f"selective_scan: order has values in [{lo}, {hi}], allowed are flat positions in [0, {L - 1}] "
                f"for L={L}, and -1 to skip a step"
            )
        srt = order.sort(dim=1).values
        dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        if bool(dup.any()):
            k = int(dup.any(dim=1).nonzero()[0])
            p = int(srt[k, 1:][dup[k]][0])
            raise ValueError(f"selective_scan: order path {k} visits position {p} more than once; "
                             "each path may visit a position at most once")
    if not inference:
        _checked_orders[key] = order
        _checked_meta[key] = meta


def _check_args(u, delta, A, B, C, D, delta_bias, z, order, merge, backend, delta_softplus=True,
                return_last_state=False, out_dtype=None, dt_proj_weight=None):
    for name, t in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"selective_scan: {name} must be a torch.Tensor, got {type(t).__name__}")
        _check_float(name, t)
    W = dt_proj_weight
    if W is not None:
        if not isinstance(W, torch.Tensor):
            raise TypeError(f"selective_scan: dt_proj_weight: got {type(W).__name__}; allowed: a (K, Du, R) "
                            "torch.Tensor or None")
        _check_float("dt_proj_weight", W, (torch.float32, torch.float64))
        if W.dim() != 3 or W.shape[2] < 1:
            raise _shape_error("dt_proj_weight", W, "(K, Du, R) with R >= 1")
        if delta.dim() != 4 or delta.shape[2:] != (W.shape[0], W.shape[2]):
            raise _shape_error("delta", delta, f"(Bt, L, K, R) with K={W.shape[0]}, R={W.shape[2]} (the rank-R "
                               "step size of dt_proj_weight)")
        Bt, L, K = delta.shape[:3]
        Du = W.shape[1]
    else:
        if delta.dim() != 4:
            raise _shape_error("delta", delta, "(Bt, L, K, Du)")
        Bt, L, K, Du = delta.shape
    if u.shape not in (torch.Size((Bt, L, Du)), torch.Size((Bt, L, K, Du))):
        raise _shape_error("u", u, f"(Bt, L, Du)=({Bt}, {L}, {Du}) or (Bt, L, K, Du)=({Bt}, {L}, {K}, {Du}) "
                           "to match " + ("delta and dt_proj_weight" if W is not None else "delta"))
    if A.dim() != 3 or A.shape[:2] != (K, Du):
        raise _shape_error("A", A, f"(K, Du, N) with K={K}, Du={Du}")
    N = A.shape[2]
    if N < 1:
        raise _shape_error("A", A, "(K, Du, N) with N >= 1")
    if A.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"selective_scan: A has dtype {A.dtype}, expected float32 (or float64); "
                        "keep A_log / A in fp32 under autocast")
    for name, t in (("B", B), ("C", C)):
        if t.shape != (Bt, L, K, N):
            raise _shape_error(name, t, f"(Bt, L, K, N)=({Bt}, {L}, {K}, {N})")
    for name, t in (("D", D), ("delta_bias", delta_bias), ("z", z)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"selective_scan: {name}: got {type(t).__name__}; allowed: a torch.Tensor or None")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None:
            _check_float(name, t, (torch.float32, torch.float64))
            if t.shape != (K, Du):
                raise _shape_error(name, t, f"(K, Du)=({K}, {Du})")
    if z is not None:
        _check_float("z", z)
        if z.shape not in (torch.Size((Bt, L, Du)), torch.Size((Bt, L, K, Du))):
            raise _shape_error("z", z, f"(Bt, L, Du)=({Bt}, {L}, {Du}) or (Bt, L, K, Du)=({Bt}, {L}, {K}, {Du})")
    for name, flag in (("delta_softplus", delta_softplus), ("return_last_state", return_last_state)):
        if not isinstance(flag, bool):
            raise TypeError(f"selective_scan: {name}: got {flag!r}; allowed: True or False")
    if out_dtype is not None and out_dtype not in _FLOAT_DTYPES:
        names = ", ".join(str(d).replace("torch.", "") for d in _FLOAT_DTYPES)
        raise TypeError(f"selective_scan: out_dtype: got {out_dtype!r}; allowed: None (the dtype of u) or one of "
                        f"{names}")
    if merge not in (None, "sum"):
        raise ValueError(f"selective_scan: merge={merge!r}, allowed are None and 'sum'")
    if backend is not None and backend not in BACKENDS:
        close = difflib.get_close_matches(str(backend), BACKENDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"selective_scan: backend={backend!r}, allowed are {', '.join(BACKENDS)}{hint}")
    named = (("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D), ("delta_bias", delta_bias), ("z", z),
             ("order", order), ("dt_proj_weight", W))
    for name, t in named:
        if isinstance(t, torch.Tensor) and t.device != u.device:
            raise ValueError(f"selective_scan: {name}: got device {t.device}; allowed: {u.device}, the device of u "
                             "(every input on one device)")
    if order is not None:
        if not isinstance(order, torch.Tensor):
            raise TypeError("selective_scan: order must be a (K, T) integer tensor or None, "
                            f"got {type(order).__name__}")
        if not _is_compiling() and not is_exporting():  # value checks need the data, which tracing has not
            _check_order(order, K, L)


# ----------------------------------------------------------------------------------------------------------------
# backend dispatch behind custom ops (opaque to torch.compile)


def _fwd_impl(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, save_ckpt, backend, out_dtype, W):
    if backend == "triton":
        return _triton.forward(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, save_ckpt,
                               out_dtype, W)
    return _cpu.forward(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, save_ckpt, W)


def _bwd_impl(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus, merge, backend, W):
    mod = _triton if backend == "triton" else _cpu
    return mod.backward(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus, merge, W)


def _ckpt_shape(backend, Bt, K, Du, N, T, save_ckpt):
    if backend == "triton":
        return (Bt, K, _triton.ckpt_chunks(T, N, Du) if save_ckpt else 0, Du, N)
    return (Bt, K, -(-T // _cpu.CHUNK) if save_ckpt else 0, N, Du)


def _custom_op(name: str):
    """``torch.library.custom_op`` with the function's annotations resolved first: this module's are strings (``from
    __future__ import annotations``), which torch < 2.5 cannot infer a schema from."""

    def wrap(fn):
        fn.__annotations__ = typing.get_type_hints(fn)
        return torch.library.custom_op(name, mutates_args=())(fn)

    return wrap


if hasattr(torch, "library") and hasattr(torch.library, "custom_op"):

    @_custom_op("vssm::selective_scan_fwd")
    def _fwd_op(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                D: torch.Tensor, delta_bias: torch.Tensor, z: Optional[torch.Tensor], order: torch.Tensor,
                delta_softplus: bool, merge: bool, save_ckpt: bool, backend: str, out_dtype: torch.dtype,
                W: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, last, ckpt = _fwd_impl(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, save_ckpt,
                                  backend, out_dtype, W)
        # contiguous, as the fake kernel says (the CPU kernels keep the small state tensors N-major and hand out
        # transposed views; torch.compile's inductor asserts the real strides against the fake ones)
        return y.contiguous(), last.contiguous(), ckpt.contiguous()

    @_fwd_op.register_fake
    def _(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, save_ckpt, backend, out_dtype, W):
        Bt, L, K = delta.shape[:3]
        Du, N = A.shape[1], A.shape[2]
        ct = torch.float64 if u.dtype == torch.float64 else torch.float32
        ydt = ct if (merge or backend != "triton") else out_dtype
        y = u.new_empty((Bt, L, 1 if merge else K, Du), dtype=ydt)
        last = u.new_empty((Bt, K, Du, N), dtype=ct)
        ckpt = u.new_empty(_ckpt_shape(backend, Bt, K, Du, N, order.shape[1], save_ckpt), dtype=ct)
        return y, last, ckpt

    @_custom_op("vssm::selective_scan_bwd")
    def _bwd_op(dout: torch.Tensor, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor, D: torch.Tensor, delta_bias: torch.Tensor, z: Optional[torch.Tensor],
                order: torch.Tensor, ckpt: torch.Tensor, delta_softplus: bool, merge: bool, backend: str,
                W: Optional[torch.Tensor]) -> List[torch.Tensor]:
        grads = _bwd_impl(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus, merge, backend,
                          W)
        return [g.contiguous() if g is not None else u.new_empty(0) for g in grads]  # as the fake kernel says

    @_bwd_op.register_fake
    def _(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus, merge, backend, W):
        ct = ckpt.dtype
        e = lambda shape: u.new_empty(shape, dtype=ct)  # noqa: E731
        return [e(u.shape), e(delta.shape), e(A.shape), e(B.shape), e(C.shape), e(D.shape), e(delta_bias.shape),
                e(z.shape) if z is not None else e((0,)), e(W.shape) if W is not None else e((0,))]

    def _run_fwd(*args):
        return torch.ops.vssm.selective_scan_fwd(*args)

    def _run_bwd(*args):
        grads = torch.ops.vssm.selective_scan_bwd(*args)
        return (list(grads[:7]) + [grads[7] if args[8] is not None else None]
                + [grads[8] if args[-1] is not None else None])

else:  # torch < 2.4: no custom_op; call the backends directly

    def _run_fwd(*args):
        return _fwd_impl(*args)

    def _run_bwd(*args):
        return list(_bwd_impl(*args))


#: torch.compile on torch 2.8, 2.10 and 2.11 (measured; 2.6 and 2.12 are right) passes a zero gradient to
#: SelectiveScanFn.backward when the forward returns the custom op's output tensor itself; a copy gets the right one.
_CLONE_COMPILED_OUTPUT = torch.__version__ < "2.12"


class SelectiveScanFn(torch.autograd.Function):
    """Autograd over the fast backends; inputs are already normalised by ``selective_scan``."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, z, W, order, delta_softplus, merge, out_dtype, backend,
                has_D, has_bias):
        save_ckpt = any(ctx.needs_input_grad[:9])
        y, last, ckpt = _run_fwd(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, save_ckpt,
                                 backend, out_dtype, W)
        if save_ckpt:
            ctx.save_for_backward(u, delta, A, B, C, D, delta_bias, z, W, order, ckpt)
        ctx.delta_softplus, ctx.merge, ctx.backend = delta_softplus, merge, backend
        ctx.has_D, ctx.has_bias = has_D, has_bias
        ctx.mark_non_differentiable(last)
        y = y.to(out_dtype)
        if _CLONE_COMPILED_OUTPUT and _is_compiling():
            y = y.clone()  # torch < 2.12's dynamo hands this output a zero gradient when it is the custom op's own
        return y, last.float()

    @staticmethod
    def backward(ctx, dy, dlast):
        u, delta, A, B, C, D, delta_bias, z, W, order, ckpt = ctx.saved_tensors
        grads = _run_bwd(dy.contiguous(), u, delta, A, B, C, D, delta_bias, z, order, ckpt, ctx.delta_softplus,
                         ctx.merge, ctx.backend, W)
        du, ddelta, dA, dB, dC, dD, dbias, dz, dW = (
            None if g is None else g.to(t.dtype) for g, t in zip(grads, (u, delta, A, B, C, D, delta_bias, z, W))
        )
        return (du, ddelta, dA, dB, dC, dD if ctx.has_D else None, dbias if ctx.has_bias else None, dz, dW,
                None, None, None, None, None, None, None)


def _raster_order(K: int, L: int, device: torch.device) -> torch.Tensor:
    return torch.arange(L, device=device, dtype=torch.int32).expand(K, L).contiguous()


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = True,
    order: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    merge: Optional[str] = None,
    out_dtype: Optional[torch.dtype] = None,
    return_last_state: bool = False,
    backend: Optional[str] = None,
    dt_proj_weight: Optional[torch.Tensor] = None,
):
    """Selective scan over ``K`` paths, each visiting the flat positions of its row of ``order``.

    For each path ``k``: ``h <- exp(delta * A) * h + delta * B * u`` at positions ``order[k, 0], order[k, 1], ...``
    (``-1`` skips a step), ``y = <h, C> + D * u``, optionally ``y *= silu(z)``; outputs are written back at the same
    positions, and positions a path never visits get 0 from it. Math and state in fp32 for every input dtype.

    Args:
        u: ``(Bt, L, Du)`` shared by the paths or ``(Bt, L, K, Du)``; spatial order, channel-last.
        delta: ``(Bt, L, K, Du)``, before ``delta_bias`` and softplus; with ``dt_proj_weight``, the rank-``R``
            step size ``(Bt, L, K, R)`` (any strides, e.g. a slice of ``x_proj``'s output).
        A: ``(K, Du, N)`` float32 (``-exp(A_log)``).
        B: ``(Bt, L, K, N)``.
        C: ``(Bt, L, K, N)``.
        D: optional ``(K, Du)`` float32.
        delta_bias: optional ``(K, Du)`` float32.
        delta_softplus: softplus (threshold 20) on ``delta + delta_bias``.
        order: ``(K, T)`` int32/int64 flat positions in ``[0, L)``, ``-1`` = skip; ``None`` = raster for every path.
        z: optional gate ``(Bt, L, Du)`` or ``(Bt, L, K, Du)``.
        merge: ``None`` -> ``y: (Bt, L, K, Du)``; ``'sum'`` -> ``(Bt, L, Du)`` summed over paths.
        out_dtype: dtype of ``y`` (default: ``u.dtype``); e.g. ``torch.float32`` from fp16 inputs.
        return_last_state: also return the final states ``(Bt, K, Du, N)`` (fp32, not differentiable).
        backend: ``'triton'``, ``'cpu'``, ``'torch'`` or ``'ref'``; default by device (see ``default_backend``),
            ``'torch'`` while exporting / tracing (``is_exporting``).
        dt_proj_weight: optional ``(K, Du, R)`` float32: the step size is ``delta_k = dt_proj_weight[k] @ dt_k``,
            formed inside the kernel per step and channel tile (the ``(Bt, L, K, Du)`` step size never exists in
            memory, forward or backward); ``delta`` and ``dt_proj_weight`` get their gradients from the kernel,
            reduced in a fixed order (deterministic).

    Returns:
        ``y`` or ``(y, last_state)`` when ``return_last_state``.
    """
    _check_args(u, delta, A, B, C, D, delta_bias, z, order, merge, backend, delta_softplus, return_last_state,
                out_dtype, dt_proj_weight)
    if is_exporting():
        if backend is not None and backend not in TRACEABLE:
            raise ValueError(f"selective_scan: backend={backend!r} cannot be exported or traced (its kernels are "
                             "opaque to the exporter); allowed while exporting: backend='torch' (or None, which "
                             "picks it)")
        backend = backend or "torch"
    if backend is None and u.dtype == torch.float64 and u.device.type == "cuda":
        backend = "torch"  # the Triton kernel computes in fp32; float64 asks for float64 math
    backend = backend or default_backend(u.device)
    W = dt_proj_weight
    if backend == "triton" and torch.float64 in {t.dtype for t in (u, delta, B, C, z, W) if t is not None}:
        raise TypeError("selective_scan: u/delta/B/C/z: got dtype float64 with backend='triton'; allowed: float16, "
                        "bfloat16, float32 (the kernel computes in fp32), or backend='cpu' / 'ref' for float64")
    if backend == "triton" and u.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(f"selective_scan: backend='triton' needs CUDA tensors (got {u.device}), "
                         "or TRITON_INTERPRET=1 set before vssm.kernels is imported")
    if backend == "cpu" and u.device.type != "cpu":
        raise ValueError(f"selective_scan: backend='cpu' needs CPU tensors, got {u.device}")
    out_dtype = out_dtype or u.dtype
    Bt, L, K = delta.shape[:3]
    Du = A.shape[1]
    if Bt * L * K * Du == 0:  # no batch, position, path or channel: every output (and state) is 0
        y = u.new_zeros((Bt, L, Du) if merge else (Bt, L, K, Du), dtype=out_dtype)
        given = [t.sum() for t in (u, delta, A, B, C, D, delta_bias, z, W) if t is not None]
        y = y + 0 * sum(given)  # keep the graph: every input gets a (zero) gradient, as from a non-empty scan
        last = torch.zeros(Bt, K, Du, A.shape[-1], device=u.device)
        return (y, last) if return_last_state else y
    if backend == "torch":
        return selective_scan_torch(u, delta, A, B, C, D, delta_bias, delta_softplus, order, z, merge, out_dtype,
                                    return_last_state, dt_proj_weight=W)
    if backend == "ref":
        if W is not None:  # the oracle forms the full step size and lets autograd differentiate the projection
            ct = torch.float64 if u.dtype == torch.float64 else torch.float32
            delta = torch.einsum("blkr,kdr->blkd", delta.to(ct), W.to(ct))
        return selective_scan_ref(u, delta, A, B, C, D, delta_bias, delta_softplus, order, z, merge, out_dtype,
                                  return_last_state)

    if W is not None and backend == "triton" and _triton.lowrank_forward_crashes(A.shape[-1]):
        delta, W = torch.einsum("blkr,kdr->blkd", delta.float(), W.float()), None  # full step size, autograd's grads
    ct = torch.float64 if u.dtype == torch.float64 else torch.float32
    shared_u = u.dim() == 3
    u4 = (u.unsqueeze(2) if shared_u else u).contiguous()
    z4 = None if z is None else (z.unsqueeze(2) if z.dim() == 3 else z).contiguous()
    Dn = D.contiguous() if D is not None else A.new_zeros(K, Du, dtype=ct)
    bn = delta_bias.contiguous() if delta_bias is not None else A.new_zeros(K, Du, dtype=ct)
    order = _raster_order(K, L, u.device) if order is None else order.to(torch.int32).contiguous()
    if W is not None:  # the rank-R step size is read through its strides; only its channels must be contiguous
        delta = delta if delta.stride(-1) == 1 else delta.contiguous()
        W = W.contiguous()
    else:
        delta = delta.contiguous()
    y, last = SelectiveScanFn.apply(u4, delta, A.contiguous(), B.contiguous(), C.contiguous(), Dn, bn, z4, W,
                                    order, bool(delta_softplus), merge == "sum", out_dtype, backend,
                                    D is not None, delta_bias is not None)
    y = y.squeeze(2) if merge == "sum" else y
    return (y, last) if return_last_state else y
