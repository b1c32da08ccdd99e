"""Official-checkpoint conversion helpers shared by the model files' ``checkpoint_filter_fn``.

A converter turns a state dict of an original repository into this project's key layout; the helpers here do the
parts every family needs: unwrapping training checkpoints (``'model'`` / ``'model_ema'`` / ``'state_dict'`` ...),
stripping ``module.`` prefixes, reshaping tensors whose layout differs only by a view (1x1-conv weights stored
for linear layers, flattened per-path parameters), and a strict comparison against the model that raises one error
naming the first missing / unexpected keys and shape mismatches. Loading is never lenient.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import torch
import torch.nn as nn

from .utils.checkpoint import CheckpointError, check_zip_crc

__all__ = [
    "CheckpointMismatchError",
    "unwrap_state_dict",
    "reshape_like",
    "check_state_dict",
    "load_checkpoint_file",
    "load_state_dict_strict",
    "rename_keys",
    "first_keys",
]

# Keys that hold the weights in training checkpoints, in order of preference (EMA first when asked for, as timm).
_EMA_KEYS = ("state_dict_ema", "model_ema", "ema_model", "ema_state_dict")
_PLAIN_KEYS = ("state_dict", "model", "module")


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit a model: missing / unexpected keys or shape mismatches (all named)."""


def unwrap_state_dict(checkpoint: Mapping[str, Any], use_ema: bool = True) -> Dict[str, torch.Tensor]:
    """Returns the tensor dict inside a training checkpoint, without ``module.`` prefixes.

    Args:
        checkpoint: A state dict, or a dict holding one under ``'model_ema'`` / ``'state_dict_ema'`` /
            ``'ema_model'`` (taken first when ``use_ema`` and not ``None``), ``'state_dict'``, ``'model'``.
        use_ema: Prefer the EMA weights when the checkpoint has them.

    Returns:
        A new dict of tensors.

    Raises:
        CheckpointMismatchError: When no tensors are found.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(f"expected a state dict (a mapping of tensors), got {type(checkpoint).__name__}")
    sd: Any = checkpoint
    for _ in range(3):  # nested wrappers, e.g. {'state_dict': {'model': ...}}
        if not isinstance(sd, Mapping) or any(isinstance(v, torch.Tensor) for v in sd.values()):
            break
        keys = (_EMA_KEYS if use_ema else ()) + _PLAIN_KEYS
        inner = next((sd[k] for k in keys if isinstance(sd.get(k), Mapping)), None)
        if inner is None:
            break
        sd = inner
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)} if isinstance(sd, Mapping) else {}
    if not tensors:
        top = sorted(checkpoint.keys())[:8]
        raise CheckpointMismatchError(f"no tensors found in the checkpoint (top-level keys: {top})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def reshape_like(value: torch.Tensor, shape: Sequence[int] | None) -> torch.Tensor:
    """Views ``value`` as ``shape`` when only the layout differs (same number of elements), else returns it as is.

    Covers 1x1-conv weights ``(O, I, 1, 1)`` stored for linear layers ``(O, I)`` and flattened per-path parameters
    (``(K * D, N)`` for ``(K, D, N)``). A real mismatch is left for :func:`check_state_dict` to report.
    """
    if shape is None or tuple(value.shape) == tuple(shape):
        return value
    if value.numel() == int(torch.Size(shape).numel()):
        return value.reshape(shape)
    return value


def _fmt(keys: Iterable[str], limit: int) -> str:
    keys = list(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_state_dict(
        state_dict: Mapping[str, torch.Tensor],
        model: nn.Module,
        ignore_prefixes: Tuple[str, ...] = (),
        family: str = "",
        limit: int = 6,
) -> None:
    """Raises unless ``state_dict`` has exactly the model's keys with the model's shapes.

    Args:
        state_dict: Converted checkpoint.
        model: Target model (any device, ``meta`` included).
        ignore_prefixes: Keys starting with these are not compared (e.g. the classifier, which timm adapts).
        family: What the model is, for the message (e.g. its architecture name ``'vmamba_tiny_s1l8'``).
        limit: How many keys of each kind the message names.

    Raises:
        CheckpointMismatchError: Naming the first missing keys, unexpected keys, and ``key: checkpoint shape vs
            model shape`` mismatches.
    """
    target = model.state_dict()
    skip = lambda k: bool(ignore_prefixes) and k.startswith(ignore_prefixes)
    missing = [k for k in target if k not in state_dict and not skip(k)]
    unexpected = [k for k in state_dict if k not in target and not skip(k)]
    shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}"
        for k, v in state_dict.items()
        if k in target and not skip(k) and tuple(v.shape) != tuple(target[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es): {_fmt(shapes, limit)}")
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_fmt(missing, limit)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_fmt(unexpected, limit)}")
    name = f"{family} ({type(model).__name__})" if family else type(model).__name__
    hint = " (a checkpoint of another family or size?)"
    raise CheckpointMismatchError(f"checkpoint does not fit {name}{hint}: " + "; ".join(parts))


def load_checkpoint_file(path: str, allow_pickle: bool = False) -> Dict[str, Any]:
    """Reads a ``.safetensors`` file or a torch checkpoint (``weights_only`` unless ``allow_pickle``).

    Official training checkpoints often pickle config objects next to the weights; reading those needs
    ``allow_pickle=True``, which runs arbitrary code from the file: use it only for files you trust.
    """
    if not os.path.isfile(path):
        raise CheckpointMismatchError(f"{path}: no such file")
    if str(path).endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointMismatchError(f"{path}: not a readable safetensors file (truncated or corrupted: "
                                          f"{str(e).strip() or type(e).__name__})") from e
    with open(path, "rb") as f:
        zipped = f.read(2) == b"PK"  # torch.save's zip format since torch 1.6; older files are plain pickles
    if zipped and not zipfile.is_zipfile(path):
        raise CheckpointMismatchError(f"{path} is not a readable checkpoint (truncated or corrupted: not a complete "
                                      "zip archive as torch.save writes)")
    if zipped:
        try:
            check_zip_crc(path)
        except CheckpointError as e:
            raise CheckpointMismatchError(str(e)) from e
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not allow_pickle)
    except Exception as e:  # noqa: BLE001 - re-raised with the actionable part first
        if allow_pickle:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not isinstance(e, pickle.UnpicklingError) or "global" not in str(e).lower():
            # damaged data, not a refused global: allowing pickle would not help
            raise CheckpointMismatchError(f"{path} is not a readable checkpoint ({msg})") from e
        raise CheckpointMismatchError(
            f"{path}: cannot be read with weights_only=True ({msg}); if you trust the file, allow pickled objects "
            f"(--allow-pickle / allow_pickle=True)"
        ) from e


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` after :func:`check_state_dict` (clear errors first)."""
    check_state_dict(state_dict, model)
    model.load_state_dict(state_dict, strict=True)


def rename_keys(state_dict: Mapping[str, torch.Tensor], fn: Any) -> Dict[str, torch.Tensor]:
    """Applies ``fn(key) -> new key or None (drop)`` to every key; raises if two keys collide."""
    out: Dict[str, torch.Tensor] = {}
    origin: Dict[str, str] = {}
    for k, v in state_dict.items():
        nk = fn(k)
        if nk is None:
            continue
        if nk in out:
            raise CheckpointMismatchError(f"checkpoint keys {origin[nk]!r} and {k!r} both map to {nk!r}")
        out[nk] = v
        origin[nk] = k
    return out


def first_keys(state_dict: Mapping[str, Any], n: int = 4) -> List[str]:
    """The first ``n`` keys (for messages)."""
    return list(state_dict.keys())[:n]
