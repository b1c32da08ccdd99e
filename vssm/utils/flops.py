"""FLOPs of a model, counted the way each family's paper counts them, or one exact way for all.

    from vssm.utils.flops import count
    r = count(timm.create_model("vmamba_tiny"), input_size=(3, 224, 224))   # convention='official'
    r.gflops                   # 4.9 (VMamba's table: 4.9G)
    print(r.table(depth=2))    # per-module tree, markdown

How it counts. The model runs once (batch 1 by default, eval mode, no grad) under
``torch.utils.flop_counter.FlopCounterMode``, with a formula per aten op and one for vssm's selective-scan op
(``vssm::selective_scan_fwd`` / ``_bwd``, invisible to every generic counter). The mode's module tracker gives the
per-module tree. An op that reaches the counter with no formula and is not known to cost nothing is reported in
``FlopCount.unhandled`` and warned about, so nothing is dropped silently.

Conventions (``convention=``):

``'exact'`` -- the same rule for every model: 2 FLOPs per multiply-add (GEMM, convolution, attention), 1 per element
    of every pointwise op and of every reduction's input, 4 per element of a softmax, the norms as fvcore counts them
    (LayerNorm / GroupNorm 5 per element with an affine, 4 without; an inference BatchNorm 2 / 1), pooling and
    resampling per tap, and the selective scan by its arithmetic: per visited step, channel and state 7 (``delta*A``,
    ``exp``, ``*B``, the state update's multiply-add, the output's multiply-add), per step and channel the step size
    (``2R`` for the fused rank-R projection, 1 for the bias, 3 for softplus), ``delta*u`` (1), ``D*u`` (2), the gate
    ``y*silu(z)`` (5) and the merge over paths (1); the backward 20 per step, channel and state (recompute 5 and the
    adjoint recurrence 15) and ``4R + 10`` per step and channel (+8 with the gate). ``backward=True`` counts a
    training step (forward + backward of ``output.sum()``) and needs this convention.
``'fvcore'`` -- fvcore's ``flop_count`` with its default handles: one FLOP per multiply-add for linear / matmul /
    einsum / conv (bias not counted), LayerNorm / GroupNorm 5 (4) per element, BatchNorm 2 (1) in eval,
    adaptive average pooling 1 per input element, nearest / bilinear upsampling 1 / 4 per output element; every
    other op (activations, softmax, residual adds, fused attention, the scan) is not counted.
``'vmamba'`` -- VMamba's ``flops()``: fvcore plus its selective-scan handle, ``9 * B*L*D*N + B*D*L`` per op call
    (with ``D`` term, without ``z``; ``D`` the channels of all paths, so ``B*D*L`` = batch x channels x visited
    steps summed over paths). VMamba v2 and its vanilla (v0) models as the current code counts them, LocalMamba's
    LocalVMamba and MSVMamba (whose multi-scale paths are op calls of their own sizes) count this way.
``'ptflops'`` -- ptflops' ``get_model_complexity_info`` (module-hook backend, its default): multiply-adds of
    ``nn.Linear`` / ``nn.Conv`` / ``matmul`` plus one per output element for their biases, 1 per element of
    activations, softmax and pooling, BatchNorm / GroupNorm 2 per element, LayerNorm 1 (it has no ``affine``
    attribute); fused attention and the scan are not seen. MambaVision's table.
``'official'`` -- the model's family's own (``FAMILY_CONVENTION``); a model of no known family gets ``'fvcore'``.

In every convention but ``'exact'`` the scan op's fused rank-R step size counts as the ``dt_proj`` GEMM the
official code runs before its op (``B*L*D*R`` multiply-adds). Where the families' tables come from (read in their
code): VMamba ``VSSM.flops()`` (fvcore, ``SelectiveScanCuda`` handle); LocalVMamba and MSVMamba the same;
EfficientVMamba's numbers match fvcore without a scan term (0.77 / 1.30 / 3.95 against its 0.8 / 1.3 / 4.0; with
VMamba's scan term they would be 0.90 / 1.48 / 4.21); MambaVision ``throughput_measure.py`` (ptflops); MLLA fvcore
(its issue #18: 4.16G for MLLA-T, "aligns with the paper"); MobileMamba's README table is fvcore without a scan
term, to the digit (0.2546 / 0.4123 / 0.6521 / 1.0795 GFLOPs against 255 / 413 / 652 / 1080 M). Vim publishes no
FLOPs: its models get ``'fvcore'``.
Bias additions inside a GEMM or convolution count in ``'ptflops'`` only.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

__all__ = ["count", "FlopCount", "CONVENTIONS", "FAMILY_CONVENTION", "family_of", "scan_flops"]

aten = torch.ops.aten

# Which convention each family's published table uses (read from the official code; see the module docstring).
FAMILY_CONVENTION: Dict[str, str] = {
    "vmamba": "vmamba",
    "vanilla_vmamba": "vmamba",
    "localvmamba": "vmamba",
    "efficient_vmamba": "fvcore",
    "msvmamba": "vmamba",
    "vim": "fvcore",
    "mambavision": "ptflops",
    "mlla": "fvcore",
    "mobilemamba": "fvcore",
}
# module of the model class -> family, for models built without a registered entrypoint name (test_* variants)
_MODULE_FAMILY = {
    "vssm.models.vmamba": "vmamba",
    "vssm.models.efficient_vmamba": "efficient_vmamba",
    "vssm.models.msvmamba": "msvmamba",
    "vssm.models.vim": "vim",
    "vssm.models.mambavision": "mambavision",
    "vssm.models.mlla": "mlla",
    "vssm.models.mobilemamba": "mobilemamba",
}

# exact-convention constants of the selective scan (per visited step and channel, see the module docstring)
EXACT_SCAN_PER_STATE_FWD = 7
EXACT_SCAN_PER_STATE_BWD = 20


# ----------------------------------------------------------------------------------------------------------------
# the selective scan


@dataclass(frozen=True)
class ScanCall:
    """The sizes of one selective-scan call that the conventions need."""

    batch: int   # Bt
    channels: int  # Du
    states: int  # N
    steps: int   # visited (path, position) pairs per batch element: sum over paths of the path lengths
    paths: int   # K
    rank: int    # R of the fused step size, 0 for a full delta
    gate: bool   # z given
    softplus: bool
    merge: bool


def _scan_call(u, delta, A, z, order, delta_softplus, merge, W) -> ScanCall:
    Bt, L, K = delta.shape[:3]
    Du, N = A.shape[1], A.shape[2]
    if order.device.type == "meta":
        steps = order.numel()
    else:
        steps = int((order >= 0).sum())
    return ScanCall(Bt, Du, N, steps, K, 0 if W is None else W.shape[2], z is not None, bool(delta_softplus),
                    bool(merge))


def scan_flops(call: ScanCall, convention: str, backward: bool = False) -> int:
    """FLOPs of one selective-scan call under ``convention`` (forward, or the backward op's)."""
    rows = call.batch * call.channels * call.steps  # (batch, channel, visited step) triples
    if convention != "exact":
        if backward:
            return 0
        # the fused rank-R step size is the dt_proj GEMM (einsum, nn.Linear) the official code runs before its op;
        # ptflops counts nn.Linear's bias add too
        dt_proj = rows * call.rank + (rows if convention == "ptflops" and call.rank else 0)
        if convention == "vmamba":  # 9 * B*L*D*N + B*D*L (with_D=True, with_Z=False)
            return dt_proj + 9 * rows * call.states + rows
        return dt_proj
    if not backward:
        per_row = (EXACT_SCAN_PER_STATE_FWD * call.states + (2 * call.rank) + 1 + (3 if call.softplus else 0)
                   + 1 + 2 + (5 if call.gate else 0) + (1 if call.merge else 0))
    else:
        per_row = EXACT_SCAN_PER_STATE_BWD * call.states + 4 * call.rank + 10 + (8 if call.gate else 0)
    return rows * per_row


# ----------------------------------------------------------------------------------------------------------------
# formulas: f(*args, out_val=None, **kwargs) -> int on the real (or meta) tensors


def _raw(f: Callable) -> Callable:
    f._get_raw = True
    return f


def _numel(t) -> int:
    if isinstance(t, torch.Tensor):
        return t.numel()
    if isinstance(t, (tuple, list)) and t:
        return _numel(t[0])
    return 0


def _mm_macs(a, b) -> int:
    return a.shape[0] * a.shape[1] * b.shape[1]


def _bmm_macs(a, b) -> int:
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _conv_macs_exact(x, w, transposed, out) -> int:
    if transposed:  # each input element is multiplied into (Cout / groups) * kh * kw outputs
        return x.numel() * w.shape[1] * math.prod(w.shape[2:])
    return out.numel() * math.prod(w.shape[1:])


def _sdpa_macs(q, k, v) -> int:
    b = q.shape[:-2].numel()
    return b * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


def _per_element(n: int, which: str = "out") -> Callable:
    @_raw
    def f(*args, out_val=None, **kwargs):
        t = out_val if which == "out" else args[0]
        return n * _numel(t)
    return f


def _pool_taps(*args, out_val=None, **kwargs):
    k = args[1]
    k = (k, k) if isinstance(k, int) else tuple(k)
    if len(k) == 1:
        k = (k[0], k[0])
    return _numel(out_val) * math.prod(k)


def _formulas(convention: str) -> Dict[Any, Callable]:
    """aten op packet -> raw formula, for one convention."""
    exact = convention == "exact"
    pt = convention == "ptflops"
    mac = 2 if exact else 1
    f: Dict[Any, Callable] = {}

    # ptflops' nn.Linear / nn.Conv hooks add one FLOP per output element for the bias
    bias_out = (lambda bias, out: _numel(out) if bias is not None else 0) if pt else (lambda bias, out: 0)
    f[aten.mm] = _raw(lambda a, b, *r, out_val=None, **k: mac * _mm_macs(a, b))
    f[aten.addmm] = _raw(lambda bias, a, b, *r, out_val=None, **k: mac * _mm_macs(a, b) + bias_out(bias, out_val))
    f[aten.bmm] = _raw(lambda a, b, *r, out_val=None, **k: mac * _bmm_macs(a, b))
    f[aten.baddbmm] = _raw(lambda bias, a, b, *r, out_val=None, **k: mac * _bmm_macs(a, b))
    conv = _raw(lambda x, w, bias, stride, padding, dilation, transposed, *r, out_val=None, **k:
                mac * _conv_macs_exact(x, w, bool(transposed), out_val) + bias_out(bias, out_val))
    f[aten.convolution] = conv
    f[aten._convolution] = conv

    # fused attention: q k^T and p v are GEMMs; neither fvcore nor ptflops sees inside scaled_dot_product_attention
    sdpa_ops = [aten._scaled_dot_product_flash_attention, aten._scaled_dot_product_efficient_attention,
                aten._scaled_dot_product_flash_attention_for_cpu]
    if hasattr(aten, "_scaled_dot_product_cudnn_attention"):
        sdpa_ops.append(aten._scaled_dot_product_cudnn_attention)
    for op in sdpa_ops:
        f[op] = _raw(lambda q, k_, v, *r, out_val=None, **kw: 2 * _sdpa_macs(q, k_, v) if exact else 0)

    # norms: fvcore's handles (5 / 4 per element, an inference BatchNorm 2 / 1); ptflops' hook: 1 per element, 2
    # with an affine -- which nn.LayerNorm never reports (it has no `affine` attribute)
    def norm(x, w, training=True):
        if pt:
            return x.numel() * (2 if w is not None and not isinstance(training, str) else 1)
        if training:
            return x.numel() * (5 if w is not None else 4)
        return x.numel() * (2 if w is not None else 1)

    f[aten.native_layer_norm] = _raw(lambda x, shape, w=None, b=None, *r, out_val=None, **k:
                                     norm(x, w, "layer_norm") if pt else norm(x, w))
    f[aten.native_group_norm] = _raw(lambda x, w=None, b=None, *r, out_val=None, **k: norm(x, w))
    f[aten._native_batch_norm_legit_no_training] = _raw(lambda x, w=None, *r, out_val=None, **k:
                                                        norm(x, w, training=False))

    def bn(x, w=None, b=None, rm=None, rv=None, training=False, *r, out_val=None, **k):
        if not isinstance(training, bool):  # _native_batch_norm_legit without running stats: (x, w, b, training)
            training = bool(rm) if isinstance(rm, bool) else True
        return norm(x, w, training=training)
    f[aten.native_batch_norm] = _raw(bn)
    f[aten._native_batch_norm_legit] = _raw(bn)

    # pooling and resampling
    f[aten._adaptive_avg_pool2d] = _per_element(1, "in")
    f[aten.upsample_nearest2d] = _per_element(1)
    f[aten.upsample_bilinear2d] = _per_element(1 if pt else 4)
    f[aten.grid_sampler_2d] = _per_element(4)
    if pt:  # ptflops' activation, softmax and pooling hooks: one per output (pooling: input) element
        for name in ("gelu", "silu", "silu_", "relu", "relu_", "elu", "elu_", "leaky_relu", "hardtanh",
                     "hardtanh_", "_softmax"):
            f[getattr(aten, name)] = _per_element(1)
        for name in ("avg_pool2d", "max_pool2d_with_indices", "avg_pool1d"):
            f[getattr(aten, name)] = _per_element(1, "in")

    # vssm's op
    @_raw
    def scan_fwd(u, delta, A, B, C, D, delta_bias, z, order, delta_softplus, merge, *r, out_val=None, **k):
        W = r[-1] if r else k.get("W")
        return scan_flops(_scan_call(u, delta, A, z, order, delta_softplus, merge, W), convention)

    @_raw
    def scan_bwd(dout, u, delta, A, B, C, D, delta_bias, z, order, ckpt, delta_softplus, merge, *r, out_val=None,
                 **k):
        W = r[-1] if r else k.get("W")
        return scan_flops(_scan_call(u, delta, A, z, order, delta_softplus, merge, W), convention, backward=True)

    from vssm.kernels import op as _op  # registers the custom ops (torch >= 2.4)

    if hasattr(_op, "_fwd_op"):
        f[torch.ops.vssm.selective_scan_fwd] = scan_fwd
        f[torch.ops.vssm.selective_scan_bwd] = scan_bwd
    else:
        warnings.warn("vssm.utils.flops: torch < 2.4 has no torch.library.custom_op, so the selective-scan op is "
                      "not visible to the counter and its FLOPs are not counted", stacklevel=3)

    if exact:
        one_out = _per_element(1)
        for name in _POINTWISE:
            if hasattr(aten, name):
                f[getattr(aten, name)] = one_out
        one_in = _per_element(1, "in")
        for name in _REDUCTIONS:
            if hasattr(aten, name):
                f[getattr(aten, name)] = one_in
        f[aten._softmax] = _per_element(4)
        f[aten._log_softmax] = _per_element(4)
        for name in ("avg_pool2d", "max_pool2d_with_indices", "avg_pool1d", "max_pool2d"):
            if hasattr(aten, name):
                f[getattr(aten, name)] = _raw(_pool_taps)
        f[aten._upsample_bicubic2d_aa] = _per_element(16)
        f[aten.upsample_bicubic2d] = _per_element(16)
        f[aten._upsample_bilinear2d_aa] = _per_element(4)
        f[aten.upsample_bilinear2d] = _per_element(4)
        # backward ops: about twice their forward
        f[aten.convolution_backward] = _raw(_conv_backward)
        for name in _BACKWARD_2X:
            if hasattr(aten, name):
                f[getattr(aten, name)] = _per_element(2)
        for op in sdpa_ops:
            bw = getattr(aten, op._qualified_op_name.split("::")[1] + "_backward", None)
            if bw is not None:
                f[bw] = _raw(lambda g, q, k_, v, *r, out_val=None, **kw: 4 * _sdpa_macs(q, k_, v))
    return f


def _conv_backward(grad, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding, groups,
                   output_mask, out_val=None, **k) -> int:
    macs = _conv_macs_exact(x, w, bool(transposed), grad)
    return 2 * macs * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


# ops that cost one FLOP per output element in the exact convention
_POINTWISE = tuple("""
    add add_ sub sub_ mul mul_ div div_ neg exp exp_ log log2 log10 log1p expm1 sigmoid sigmoid_ silu silu_ gelu
    gelu_ relu relu_ elu elu_ leaky_relu hardswish hardswish_ hardsigmoid softplus tanh pow rsqrt sqrt
    reciprocal sin cos addcmul addcmul_ addcdiv addcdiv_ clamp clamp_ clamp_min clamp_max abs mish lerp lerp_
    erf square rsub threshold hardtanh hardtanh_ sign floor ceil round maximum minimum where masked_fill
    masked_fill_ linalg_vector_norm _softmax_backward_data _log_softmax_backward_data norm
""".split())
_REDUCTIONS = ("sum", "mean", "amax", "amin", "cumsum", "cumprod", "var", "var_mean", "std", "prod", "logsumexp")
_BACKWARD_2X = (
    "native_layer_norm_backward", "native_batch_norm_backward", "native_group_norm_backward", "silu_backward",
    "gelu_backward", "threshold_backward", "sigmoid_backward", "softplus_backward", "elu_backward", "tanh_backward",
    "hardswish_backward", "hardsigmoid_backward", "leaky_relu_backward", "mish_backward",
    "_adaptive_avg_pool2d_backward", "avg_pool2d_backward", "max_pool2d_with_indices_backward",
    "upsample_bilinear2d_backward", "upsample_nearest2d_backward", "_upsample_bicubic2d_aa_backward",
    "grid_sampler_2d_backward", "embedding_dense_backward", "hardtanh_backward",
)
# ops that move, create, index or compare data: no arithmetic in any convention
_FREE = {
    "view", "_unsafe_view", "reshape", "permute", "transpose", "t", "expand", "slice", "select", "squeeze",
    "unsqueeze", "split", "split_with_sizes", "unbind", "stack", "cat", "clone", "copy_", "_to_copy", "alias",
    "as_strided", "as_strided_", "flip", "roll", "index", "index_put_", "index_put", "index_select", "gather",
    "scatter", "scatter_", "scatter_add", "scatter_add_", "constant_pad_nd", "empty", "empty_like", "empty_strided",
    "new_empty", "new_empty_strided", "new_zeros", "new_ones", "new_full", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "fill_", "zero_", "arange", "lift_fresh", "lift_fresh_copy",
    "_local_scalar_dense", "eq", "ne", "ge", "gt", "le", "lt", "bitwise_and", "bitwise_or", "bitwise_not",
    "logical_and", "logical_or", "logical_not", "floor_divide", "remainder", "sort", "argsort", "topk", "equal",
    "complex", "view_as_complex", "view_as_real", "detach", "repeat", "repeat_interleave", "embedding", "contiguous",
    "any", "all", "max", "min", "argmax", "argmin", "nonzero", "masked_select", "narrow", "unfold", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "im2col", "col2im", "tril", "triu", "diagonal", "isnan", "isinf",
    "isfinite", "_unsafe_index", "to", "type_as", "bernoulli_", "uniform_", "normal_", "rand_like",
    "randn_like", "rand", "randn", "randperm", "_assert_async", "set_", "resize_", "_reshape_alias", "unfold_backward",
    "select_backward", "slice_backward", "index_select_backward", "narrow_copy", "_index_put_impl_", "sym_size",
    "scalar_tensor", "_to_dense", "copy", "expand_copy", "permute_copy", "view_copy", "squeeze_copy",
    "unsqueeze_copy", "transpose_copy", "t_copy", "split_copy", "detach_", "native_dropout", "dropout",
    "native_dropout_backward", "_foreach_add_", "_foreach_mul_",
    "_pin_memory", "is_same_size", "new_tensor", "item", "_scaled_dot_product_flash_attention_for_cpu_backward",
}


# ----------------------------------------------------------------------------------------------------------------
# counting


def family_of(model: nn.Module) -> Optional[str]:
    """The vssm family of ``model`` (a key of ``FAMILY_CONVENTION``), or None."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    arch = cfg.get("architecture") if isinstance(cfg, dict) else getattr(cfg, "architecture", None)
    if arch:
        for fam in sorted(FAMILY_CONVENTION, key=len, reverse=True):
            if arch.startswith(fam + "_") or arch == fam:
                return fam
    return _MODULE_FAMILY.get(type(model).__module__)


CONVENTIONS = ("official", "exact", "fvcore", "vmamba", "ptflops")


@dataclass
class FlopCount:
    """What ``count`` returns. ``total`` is in FLOPs of ``convention`` (the papers' FLOPs are multiply-adds)."""

    convention: str
    input_size: Tuple[int, ...]
    batch_size: int
    total: int
    by_module: Dict[str, int] = field(default_factory=dict)   # module path ('' = the model) -> FLOPs incl. children
    by_op: Dict[str, int] = field(default_factory=dict)       # op name -> FLOPs
    unhandled: Dict[str, int] = field(default_factory=dict)   # op name -> calls that no formula counted
    family: Optional[str] = None
    backward: bool = False

    @property
    def gflops(self) -> float:
        """GFLOPs per image."""
        return self.total / self.batch_size / 1e9

    @property
    def scan(self) -> int:
        """The selective-scan term (forward and backward op) in ``total``."""
        return sum(v for k, v in self.by_op.items() if k.startswith("vssm."))

    def table(self, depth: int = 2) -> str:
        """Markdown: module, GFLOPs, share of the total, down to ``depth`` levels."""
        rows = ["| module | GFLOPs | % |", "|---|---:|---:|"]
        tot = max(self.total, 1)
        for name, v in self.by_module.items():
            level = 0 if name == "" else name.count(".") + 1
            if level > depth or v == 0:
                continue
            label = "(model)" if name == "" else "&nbsp;" * 2 * (level - 1) + name
            rows.append(f"| {label} | {v / self.batch_size / 1e9:.3f} | {100 * v / tot:.1f} |")
        return "\n".join(rows)


class _Counter:
    """``FlopCounterMode`` with our formulas that also keeps the ops it saw without one."""

    def __init__(self, formulas: Dict[Any, Callable]):
        from torch.utils.flop_counter import FlopCounterMode

        unhandled: Dict[str, int] = {}

        class Mode(FlopCounterMode):
            def _count_flops(self, func_packet, out, args, kwargs):
                if func_packet not in self.flop_registry:
                    name = str(func_packet)
                    short = name.split(".", 1)[1] if name.startswith("aten.") else None
                    if short is None or short not in _FREE and short not in _FORMULA_FREE_ELSEWHERE:
                        unhandled[name] = unhandled.get(name, 0) + 1
                return super()._count_flops(func_packet, out, args, kwargs)

        # FlopCounterMode wraps every non-raw formula in shape_wrapper; ours are raw
        self.mode = Mode(display=False, custom_mapping=formulas)
        self.unhandled = unhandled


# ops that have a formula in some convention and cost nothing in the others (not "unhandled" there)
_FORMULA_FREE_ELSEWHERE = set(_POINTWISE) | set(_REDUCTIONS) | set(_BACKWARD_2X) | {
    "_softmax", "_log_softmax", "avg_pool2d", "max_pool2d_with_indices", "avg_pool1d", "max_pool2d",
    "_upsample_bicubic2d_aa", "upsample_bicubic2d", "_upsample_bilinear2d_aa", "convolution_backward",
    "_scaled_dot_product_flash_attention_backward", "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention_backward",
}


def _resolve(convention: str, model: nn.Module) -> Tuple[str, Optional[str]]:
    fam = family_of(model)
    if convention not in CONVENTIONS:
        raise ValueError(f"count: convention={convention!r}; allowed: {', '.join(map(repr, CONVENTIONS))}")
    if convention == "official":
        return FAMILY_CONVENTION.get(fam, "fvcore"), fam
    return convention, fam


def count(
    model: Union[nn.Module, Callable],
    input_size: Sequence[int] = (3, 224, 224),
    convention: str = "official",
    batch_size: int = 1,
    backward: bool = False,
    inputs: Any = None,
    warn: bool = True,
) -> FlopCount:
    """Count the FLOPs of one forward (or training step) of ``model``.

    Args:
        model: an ``nn.Module`` (its device is used) or, with ``inputs``, any callable.
        input_size: ``(C, H, W)`` of the image; ignored when ``inputs`` is given.
        convention: ``'official'`` (the family's own, see ``FAMILY_CONVENTION``), ``'exact'``, ``'fvcore'`` or
            ``'vmamba'`` (see the module docstring).
        batch_size: images per call; ``gflops`` is per image.
        backward: count forward + backward of ``output.sum()`` (convention ``'exact'`` only: the papers count
            the forward).
        inputs: a tensor or a tuple of arguments to call ``model`` with instead of a random image.
        warn: warn about ops that no formula counted (they are in ``FlopCount.unhandled`` either way).
    """
    conv, fam = _resolve(convention, model if isinstance(model, nn.Module) else nn.Module())
    if backward and conv != "exact":
        raise ValueError(f"count: backward=True with convention={convention!r} ({conv}); allowed: "
                         "convention='exact' (the papers' conventions count the forward only)")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"count: batch_size={batch_size!r}; allowed: an int >= 1")
    if inputs is None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"count: model is a {type(model).__name__}; allowed: an nn.Module, or any callable "
                            "with inputs=")
        size = tuple(input_size)
        if len(size) != 3 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"count: input_size={input_size!r}; allowed: (C, H, W) positive ints")
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
        dt = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
        inputs = (torch.randn((batch_size,) + size, device=dev, dtype=dt),)
    elif isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    counter = _Counter(_formulas(conv))
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.train(backward)
    try:
        with torch.set_grad_enabled(backward), counter.mode:
            out = model(*inputs)
            if backward:
                _sum_outputs(out).backward()
    finally:
        if was_training is not None:
            model.train(was_training)
    counts = counter.mode.get_flop_counts()
    glob = counts.get("Global", {})
    total = int(sum(glob.values()))
    tree: Dict[str, int] = {"": total}
    for name, ops in counts.items():  # the tracker names modules '<RootClass>.<path>'
        if name != "Global" and "." in name:
            tree[name.split(".", 1)[1]] = int(sum(ops.values()))
    # containers that are never called (ModuleList, Sequential iterated by hand): the sum of their top-most
    # tracked descendants
    tracked = set(tree)
    for name in list(tracked):
        parts = name.split(".") if name else []
        for i in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in tracked:
                break
            if not any(".".join(parts[:j]) in tracked for j in range(1, i)):
                tree[prefix] = tree.get(prefix, 0) + tree[name]
    tree = dict(sorted(tree.items(), key=lambda kv: _tree_key(kv[0])))
    by_op = {str(k): int(v) for k, v in glob.items() if v}
    if warn and counter.unhandled:
        warnings.warn(f"vssm.utils.flops.count: no formula for {', '.join(sorted(counter.unhandled))}; their "
                      "FLOPs are not in the total", stacklevel=2)
    return FlopCount(conv, tuple(input_size), batch_size, total, tree, by_op, dict(counter.unhandled), fam,
                     backward)


def _tree_key(name: str):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split(".")] if name else []


def _sum_outputs(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.float().sum()
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return sum(_sum_outputs(o) for o in out)
    raise TypeError(f"count: backward=True needs tensor outputs, got {type(out).__name__}")
