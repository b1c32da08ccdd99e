"""mamba_ssm's fused Mamba-block functions on vssm's op, so that Mamba layers written against them run unchanged.

``mamba_inner(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight, out_proj_bias,
A, B=None, C=None, D=None, delta_bias=None, B_proj_bias=None, C_proj_bias=None, delta_softplus=True,
checkpoint_lvl=1, b_rms_weight=None, c_rms_weight=None, dt_rms_weight=None, b_c_dt_rms_eps=1e-6)`` is
``mamba_ssm.ops.selective_scan_interface.mamba_inner_fn``: for ``xz (Bt, 2*D, L)`` split into ``x`` and the gate
``z``, ``x`` goes through the causal depthwise convolution ``conv1d_weight (D, 1, W)`` and SiLU, ``x_proj_weight``
projects it to ``[dt (R) | B (N, unless B is given) | C (N, unless C is given)]``, the step size is
``delta_proj_weight (D, R) @ dt`` (plus ``delta_bias``, softplus), the selective scan runs with ``D`` and the gate,
and ``out_proj_weight`` projects the result: ``(Bt, L, D_out)``. A given ``B`` / ``C`` is time-invariant ``(D, N)``.

Vim's fork of mamba_ssm adds the two functions its bidirectional Mamba calls, provided here too:
``mamba_inner_no_out_proj`` (the same without ``out_proj``, returning ``(Bt, D, L)``) and ``bimamba_inner`` (one
convolution and projection, then a forward scan with ``A`` and a backward scan with ``A_b`` over the reversed
sequence, same ``B``, ``C``, ``D``, gate and step size, summed, then ``out_proj``).

On vssm's op the step size is the fused rank-``R`` form (``dt_proj_weight``): the ``(Bt, L, D)`` step size is never
materialised, forward or backward, and ``bimamba_inner``'s two directions are one op call with two paths, a raster
and a reversed order, summed in the kernel (no flipped copies). With both ``B`` and ``C`` input-dependent the
channels form one path; with a time-invariant one, every channel is its own path. ``dt_rms_weight`` normalises the
full step size over the channels, so with it the step size is formed first (the unfused form).

``checkpoint_lvl`` (0 or 1) chooses, in mamba_ssm, whether the backward recomputes the convolution output and the
step size; here the step size is never stored at either level and autograd keeps the convolution output, so both
levels hold the same memory. ``mamba_inner_ref`` and friends are the same functions on the float64-capable oracle
backend (mamba_ssm's ``*_ref`` slots).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ._tracing import is_tracing
from .op import selective_scan


def _got(t) -> str:
    return f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__


class _Args:
    """Checks the arguments of one call; every error names the function, the argument, what it got and what is
    allowed."""

    def __init__(self, fn: str):
        self.fn = fn

    def err(self, arg: str, got: str, allowed: str) -> ValueError:
        return ValueError(f"{self.fn}: {arg}: got {got}; allowed: {allowed}")

    def tensor(self, arg: str, t, shape, allowed: str, optional: bool = False):
        """``t`` is a real tensor of ``shape`` (any shape for ``None``), or ``None`` where ``optional``."""
        if t is None and optional:
            return
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{self.fn}: {arg}: got {type(t).__name__}; allowed: {allowed}")
        if t.is_complex():
            raise TypeError(f"{self.fn}: {arg}: got complex dtype {t.dtype}; allowed: real float tensors (vssm's op "
                            "has no complex state)")
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise self.err(arg, _got(t), allowed)


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dimension with fp32 math (fp64 for fp64 inputs), returned in the dtype of ``x``."""
    ct = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(ct)
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.to(ct)).to(x.dtype)


_ACTIVATIONS = (None, "silu", "swish")


def _check_conv(fn: str, x, weight, bias, activation, x_dims=(3,)):
    if not isinstance(x, torch.Tensor) or x.dim() not in x_dims:
        want = " or ".join({2: "(Bt, D)", 3: "(Bt, D, L)"}[d] for d in x_dims)
        raise ValueError(f"{fn}: x: got {_got(x)}; allowed: a {want} tensor")
    Dm = x.shape[1]
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[0] != Dm or weight.shape[1] < 1:
        raise ValueError(f"{fn}: weight: got {_got(weight)}; allowed: (D, W)=({Dm}, W), one filter per channel")
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (Dm,)):
        raise ValueError(f"{fn}: bias: got {_got(bias)}; allowed: None or ({Dm},)")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{fn}: activation: got {activation!r}; allowed: None, 'silu' or 'swish'")


def _depthwise(x, weight, bias, activation):
    """Valid depthwise convolution of ``x (Bt, D, T)`` with ``weight (D, W)`` in fp32 (fp64 for fp64 inputs),
    returned in the dtype of ``x``: causal_conv1d's math."""
    ct = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = F.conv1d(x.to(ct), weight.to(ct).unsqueeze(1), None if bias is None else bias.to(ct), groups=x.shape[1])
    return (F.silu(y) if activation in ("silu", "swish") else y).to(x.dtype)


def causal_conv1d(x, weight, bias=None, seq_idx=None, initial_states=None, return_final_states=False,
                  final_states_out=None, activation=None):
    """The ``causal_conv1d`` package's ``causal_conv1d_fn`` (same positional order and defaults), in torch.

    ``x (Bt, D, L)``, ``weight (D, W)``: output ``t`` of channel ``d`` is ``bias[d] + sum_k weight[d, k] *
    x[d, t - W + 1 + k]``, with the ``W - 1`` steps before the sequence taken from ``initial_states (Bt, D, W - 1)``
    (zeros without), then SiLU for ``activation='silu'`` / ``'swish'``; fp32 math, output in the dtype of ``x``.
    ``return_final_states`` also returns the last ``W - 1`` inputs ``(Bt, D, W - 1)`` (the state for
    ``causal_conv1d_update``), written into ``final_states_out`` when given. ``seq_idx`` (packed variable-length
    sequences) is not supported.
    """
    fn = "causal_conv1d_fn"
    _check_conv(fn, x, weight, bias, activation)
    if seq_idx is not None:
        raise NotImplementedError(f"{fn}: seq_idx: got {_got(seq_idx)}; allowed: None (vssm's causal_conv1d_fn does "
                                  "not support packed variable-length sequences)")
    Bt, Dm, L = x.shape
    W = weight.shape[1]
    if initial_states is not None and (not isinstance(initial_states, torch.Tensor)
                                       or tuple(initial_states.shape) != (Bt, Dm, W - 1)):
        raise ValueError(f"{fn}: initial_states: got {_got(initial_states)}; allowed: None or (Bt, D, W - 1)="
                         f"({Bt}, {Dm}, {W - 1})")
    padded = (F.pad(x, (W - 1, 0)) if initial_states is None
              else torch.cat([initial_states.to(x.dtype), x], dim=-1))
    y = _depthwise(padded, weight, bias, activation)
    if not return_final_states:
        return y
    last = padded[..., padded.shape[-1] - (W - 1):]
    if final_states_out is not None:
        if not isinstance(final_states_out, torch.Tensor) or tuple(final_states_out.shape) != tuple(last.shape):
            raise ValueError(f"{fn}: final_states_out: got {_got(final_states_out)}; allowed: None or "
                             f"{tuple(last.shape)}")
        final_states_out.copy_(last)
        last = final_states_out
    return y, last


def causal_conv1d_update(x, conv_state, weight, bias=None, activation=None, cache_seqlens=None,
                         conv_state_indices=None):
    """The ``causal_conv1d`` package's ``causal_conv1d_update``: one decoding step (or a few) of ``causal_conv1d``.

    ``x (Bt, D)`` or ``(Bt, D, L)``; ``conv_state (Bt, D, S)`` with ``S >= W - 1`` holds the last ``S`` inputs and is
    shifted in place by ``L`` with ``x`` appended; returns the ``L`` new outputs, shaped like ``x``.
    ``cache_seqlens`` / ``conv_state_indices`` (circular and indexed state buffers) are not supported.
    """
    fn = "causal_conv1d_update"
    _check_conv(fn, x, weight, bias, activation, x_dims=(2, 3))
    for name, v in (("cache_seqlens", cache_seqlens), ("conv_state_indices", conv_state_indices)):
        if v is not None:
            raise NotImplementedError(f"{fn}: {name}: got {_got(v)}; allowed: None (vssm's causal_conv1d_update "
                                      "shifts a plain (Bt, D, S) state)")
    step = x.dim() == 2
    xs = x.unsqueeze(-1) if step else x
    Bt, Dm, L = xs.shape
    W = weight.shape[1]
    if not isinstance(conv_state, torch.Tensor) or conv_state.dim() != 3 or conv_state.shape[:2] != (Bt, Dm) \
            or conv_state.shape[2] < W - 1:
        raise ValueError(f"{fn}: conv_state: got {_got(conv_state)}; allowed: (Bt, D, S)=({Bt}, {Dm}, S) with "
                         f"S >= W - 1 = {W - 1}")
    S = conv_state.shape[2]
    full = torch.cat([conv_state.to(xs.dtype), xs], dim=-1)  # (Bt, D, S + L)
    y = _depthwise(full[..., S - (W - 1):], weight, bias, activation)  # the last L outputs
    conv_state.copy_(full[..., L:])
    return y.squeeze(-1) if step else y


_ORDERS: Dict[Tuple[int, int, str], torch.Tensor] = {}


def _two_directions(K: int, L: int, device: torch.device) -> torch.Tensor:
    """``(2K, L)`` int32: ``K`` raster rows, then ``K`` reversed ones. Cached per shape and device: the op checks an
    order once per tensor, and the check waits for the device. Built outside inference mode, so that an order first
    made while predicting can be saved for a later backward; while a tracer runs it is built in the graph."""
    def build():
        fwd = torch.arange(L, device=device, dtype=torch.int32)
        return torch.cat([fwd.expand(K, L), fwd.flip(0).expand(K, L)])

    if is_tracing():
        return build()
    key = (K, L, str(device))
    if key not in _ORDERS:
        if len(_ORDERS) >= 64:  # many sequence lengths: start over rather than grow without bound
            _ORDERS.clear()
        with torch.inference_mode(False):
            _ORDERS[key] = build()
    return _ORDERS[key]


def _inner(fn, xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A, A_b, B, C, D, delta_bias,
           B_proj_bias, C_proj_bias, delta_softplus, checkpoint_lvl, b_rms_weight, c_rms_weight, dt_rms_weight,
           eps, backend) -> torch.Tensor:
    """Everything but the output projection: ``y (Bt, L, D)``, channel-last, in the dtype of ``xz``."""
    a = _Args(fn)
    if not isinstance(xz, torch.Tensor):
        raise TypeError(f"{fn}: xz: got {type(xz).__name__}; allowed: a (Bt, 2*D, L) torch.Tensor")
    if xz.dim() != 3 or xz.shape[1] < 2 or xz.shape[1] % 2:
        raise a.err("xz", _got(xz), "(Bt, 2*D, L): x and the gate z stacked on the channels")
    Bt, D2, L = xz.shape
    Dm = D2 // 2
    if not isinstance(conv1d_weight, torch.Tensor) or conv1d_weight.dim() != 3 or \
            tuple(conv1d_weight.shape[:2]) != (Dm, 1) or conv1d_weight.shape[2] < 1:
        raise a.err("conv1d_weight", _got(conv1d_weight), f"(D, 1, W)=({Dm}, 1, W): depthwise, D from xz")
    a.tensor("conv1d_bias", conv1d_bias, (Dm,), f"None or ({Dm},)", optional=True)
    a.tensor("A", A, None, f"a (D, N) tensor with D={Dm}")
    if A.dim() != 2 or A.shape[0] != Dm or A.shape[1] < 1:
        raise a.err("A", _got(A), f"(D, N) with D={Dm}, N >= 1")
    N = A.shape[1]
    if A_b is not None:
        a.tensor("A_b", A_b, (Dm, N), f"(D, N)=({Dm}, {N}), the shape of A")
    if not isinstance(delta_proj_weight, torch.Tensor) or delta_proj_weight.dim() != 2 or \
            delta_proj_weight.shape[0] != Dm or delta_proj_weight.shape[1] < 1:
        raise a.err("delta_proj_weight", _got(delta_proj_weight), f"(D, R)=({Dm}, R) with R >= 1")
    R = delta_proj_weight.shape[1]
    for name, t in (("B", B), ("C", C)):
        a.tensor(name, t, (Dm, N), f"None (projected from x by x_proj_weight) or time-invariant (D, N)=({Dm}, {N})",
                 optional=True)
    rows = R + N * ((B is None) + (C is None))
    a.tensor("x_proj_weight", x_proj_weight, (rows, Dm),
             f"({rows}, {Dm}) = (R + N for each of B, C not given, D)")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        a.tensor(name, t, (Dm,), f"None or ({Dm},)", optional=True)
    for name, t, given in (("B_proj_bias", B_proj_bias, B), ("C_proj_bias", C_proj_bias, C)):
        if t is not None and given is not None:
            raise a.err(name, "a tensor while " + name[0] + " is given",
                        f"None when {name[0]} is given (the bias is added to the projected {name[0]})")
        a.tensor(name, t, (N,), f"None or ({N},)", optional=True)
    for name, t, n in (("b_rms_weight", b_rms_weight, N), ("c_rms_weight", c_rms_weight, N),
                       ("dt_rms_weight", dt_rms_weight, Dm)):
        a.tensor(name, t, (n,), f"None or ({n},)", optional=True)
    if b_rms_weight is not None and B is not None or c_rms_weight is not None and C is not None:
        raise a.err("b_rms_weight / c_rms_weight", "a weight for a given (time-invariant) B / C",
                    "None where B / C is given: the norm applies to the projected one")
    if checkpoint_lvl not in (0, 1) or isinstance(checkpoint_lvl, bool):
        raise a.err("checkpoint_lvl", repr(checkpoint_lvl), "0 or 1")
    if not isinstance(delta_softplus, bool):
        raise TypeError(f"{fn}: delta_softplus: got {delta_softplus!r}; allowed: True or False")

    wt = torch.float64 if A.dtype == torch.float64 else torch.float32  # the op's A / D / bias / dt_proj dtype
    x, z = xz.chunk(2, dim=1)
    # (Bt, L, D): causal, each output sees its W - 1 predecessors; fp32 math (causal_conv1d's)
    xl = _depthwise(F.pad(x, (conv1d_weight.shape[2] - 1, 0)), conv1d_weight[:, 0], conv1d_bias, "silu")
    xl = xl.transpose(1, 2)
    zl = z.transpose(1, 2)
    x_dbl = F.linear(xl, x_proj_weight)  # (Bt, L, R + N + N): one GEMM for dt, B and C
    dt = x_dbl[..., :R]

    def projected(off, bias, rms_w):
        v = x_dbl[..., off:off + N]
        v = v if bias is None else v + bias.to(v.dtype)
        return v if rms_w is None else _rms(v, rms_w, eps)

    Bv = projected(R, B_proj_bias, b_rms_weight) if B is None else None
    Cv = projected(R + N * (B is None), C_proj_bias, c_rms_weight) if C is None else None
    dirs = 1 if A_b is None else 2
    K = 1 if B is None and C is None else Dm  # a time-invariant B or C differs per channel: a path per channel
    Du = Dm // K
    P = dirs * K  # the op's paths: the directions one after the other

    def per_path(v, given):  # -> (Bt, L, P, N)
        if given is not None:
            return given.unsqueeze(0).unsqueeze(0).expand(Bt, L, Dm, N).repeat(1, 1, dirs, 1)
        v = v.unsqueeze(2)
        return v.expand(Bt, L, P, N) if K == 1 else v.expand(Bt, L, Dm, N).repeat(1, 1, dirs, 1)

    def channels(v):  # (Bt, L, D) -> the op's u / z: shared by the paths when there is one per direction
        return v if K == 1 else v.reshape(Bt, L, Dm, 1).repeat(1, 1, dirs, 1)

    def per_channel(v):  # (D,) -> (P, Du)
        return None if v is None else v.to(wt).reshape(K, Du).repeat(dirs, 1)

    A_all = A if A_b is None else torch.cat([A, A_b])  # (dirs * D, N)
    if dt_rms_weight is None:  # the fused rank-R step size: dt read in place, delta formed in the kernel
        delta = dt.unsqueeze(2).expand(Bt, L, P, R)
        W = delta_proj_weight.to(wt).reshape(K, Du, R).repeat(dirs, 1, 1)
    else:
        full = _rms(F.linear(dt, delta_proj_weight.to(dt.dtype)), dt_rms_weight, eps)  # (Bt, L, D)
        delta, W = full.reshape(Bt, L, K, Du).repeat(1, 1, dirs, 1), None
    order = _two_directions(K, L, xz.device) if dirs == 2 else None
    y = selective_scan(channels(xl), delta, A_all.to(wt).reshape(P, Du, N), per_path(Bv, B), per_path(Cv, C),
                       per_channel(D), per_channel(delta_bias), delta_softplus, order, channels(zl),
                       "sum" if K == 1 else None, xz.dtype, False, backend, W)
    if K == 1:
        return y  # (Bt, L, D), the directions summed in the kernel
    return y.reshape(Bt, L, dirs, Dm).sum(2)


def _out_proj(fn, y, out_proj_weight, out_proj_bias):
    Dm = y.shape[-1]
    a = _Args(fn)
    if not isinstance(out_proj_weight, torch.Tensor) or out_proj_weight.dim() != 2 or \
            out_proj_weight.shape[1] != Dm:
        raise a.err("out_proj_weight", _got(out_proj_weight), f"(D_out, D) with D={Dm}")
    a.tensor("out_proj_bias", out_proj_bias, (out_proj_weight.shape[0],), f"None or ({out_proj_weight.shape[0]},)",
             optional=True)
    return F.linear(y, out_proj_weight, out_proj_bias)


def mamba_inner(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight, out_proj_bias,
                A, B=None, C=None, D=None, delta_bias=None, B_proj_bias=None, C_proj_bias=None,
                delta_softplus=True, checkpoint_lvl=1, b_rms_weight=None, c_rms_weight=None, dt_rms_weight=None,
                b_c_dt_rms_eps=1e-6, backend: Optional[str] = None) -> torch.Tensor:
    """mamba_ssm's ``mamba_inner_fn`` (same positional order and defaults) on vssm's op: ``(Bt, L, D_out)``."""
    y = _inner("mamba_inner", xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A, None, B, C, D,
               delta_bias, B_proj_bias, C_proj_bias, delta_softplus, checkpoint_lvl, b_rms_weight, c_rms_weight,
               dt_rms_weight, b_c_dt_rms_eps, backend)
    return _out_proj("mamba_inner", y, out_proj_weight, out_proj_bias)


def mamba_inner_no_out_proj(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A, B=None, C=None,
                            D=None, delta_bias=None, B_proj_bias=None, C_proj_bias=None, delta_softplus=True,
                            checkpoint_lvl=1, backend: Optional[str] = None) -> torch.Tensor:
    """Vim's ``mamba_inner_fn_no_out_proj``: ``mamba_inner`` without the output projection, ``(Bt, D, L)``."""
    y = _inner("mamba_inner_no_out_proj", xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A, None,
               B, C, D, delta_bias, B_proj_bias, C_proj_bias, delta_softplus, checkpoint_lvl, None, None, None, 1e-6,
               backend)
    return y.transpose(1, 2).contiguous()


def bimamba_inner(xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, out_proj_weight, out_proj_bias,
                  A, A_b, B=None, C=None, D=None, delta_bias=None, B_proj_bias=None, C_proj_bias=None,
                  delta_softplus=True, checkpoint_lvl=1, backend: Optional[str] = None) -> torch.Tensor:
    """Vim's ``bimamba_inner_fn``: a forward scan with ``A`` and a reversed one with ``A_b`` over one convolution and
    projection, summed, then ``out_proj``: ``(Bt, L, D_out)``."""
    if A_b is None:
        raise TypeError("bimamba_inner: A_b: got None; allowed: a (D, N) tensor, the backward direction's A")
    y = _inner("bimamba_inner", xz, conv1d_weight, conv1d_bias, x_proj_weight, delta_proj_weight, A, A_b, B, C, D,
               delta_bias, B_proj_bias, C_proj_bias, delta_softplus, checkpoint_lvl, None, None, None, 1e-6, backend)
    return _out_proj("bimamba_inner", y, out_proj_weight, out_proj_bias)


def mamba_inner_ref(*args, **kwargs):
    """``mamba_inner`` on the oracle backend (mamba_ssm's ``mamba_inner_ref`` slot)."""
    return mamba_inner(*args, **kwargs, backend="ref")


def bimamba_inner_ref(*args, **kwargs):
    """``bimamba_inner`` on the oracle backend (Vim's ``bimamba_inner_ref`` slot)."""
    return bimamba_inner(*args, **kwargs, backend="ref")
