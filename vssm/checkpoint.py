"""Checkpoints: the one module that reads, writes, unwraps, converts and strictly loads weights.

Everything in vssm that touches a checkpoint calls this module: the models' ``checkpoint_filter_fn`` (through
:func:`unwrap_state_dict`, :func:`rename_keys`, :func:`reshape_like`, :func:`check_state_dict`), the tools
(:func:`read_checkpoint`, :func:`load_weights`, :func:`save_atomic`), and the OpenMMLab adapters
(:func:`read_checkpoint`, :func:`check_keys`, :func:`allow_mmengine_checkpoints`). Every failure is one
:class:`CheckpointError` (a ``ValueError``) whose one-line message names the file or the keys.

Reading is safe by default: torch files load with ``torch.load(weights_only=True)``, after the zip CRCs are checked
(``torch.load`` does not check them: a flipped byte would load silently as another number); a file that needs other
globals is refused with their names. Only ``allow_pickle=True``, asked for explicitly for a file the caller trusts,
unpickles arbitrary objects. Loading is strict: every key of the model must be found and nothing may be left over;
only the classifier may keep its initialisation when asked (``adapt_classifier``, fine-tuning to another class
count, as timm's pretrained loader does when ``num_classes`` differs).

Which weights of a training checkpoint that holds both the plain and the EMA weights are the released ones is a field
of the model's pretrained cfg, ``use_ema`` (default True, as timm); :func:`resolve_use_ema` reads it.
"""
from __future__ import annotations

import os
import pickle
import random
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "CheckpointError",
    "InertObject",
    "TRAIN_FORMAT",
    "allow_mmengine_checkpoints",
    "check_download",
    "check_keys",
    "check_state_dict",
    "convert_state_dict",
    "find_filter",
    "first_line",
    "format_keys",
    "get_rng_state",
    "is_train_checkpoint",
    "load_weights",
    "read_checkpoint",
    "rename_keys",
    "reshape_like",
    "resolve_use_ema",
    "save_atomic",
    "set_rng_state",
    "sniff_format",
    "to_primitive",
    "unwrap_state_dict",
]

#: The ``"format"`` entry of training checkpoints written by tools/train.py (model, EMA, optimizer, RNG states...).
TRAIN_FORMAT = "vssm-train/1"

# Keys that hold the weights in training checkpoints, in order of preference (EMA first when asked for, as timm).
_EMA_KEYS = ("state_dict_ema", "model_ema", "ema_model", "ema_state_dict")
_PLAIN_KEYS = ("state_dict", "model", "module")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely or does not fit the model; the message is one line naming the file
    or the keys and the reason."""


# ----------------------------------------------------------------------------------------------------------------
# Files


def read_checkpoint(path: str | os.PathLike, *, allow_pickle: bool = False, inert_objects: bool = False,
                    map_location: str | torch.device = "cpu") -> Any:
    """Reads a ``.safetensors`` file or a torch checkpoint, safely.

    Args:
        path: A local file, or an ``http(s)://`` URL (downloaded once into torch hub's ``checkpoints`` folder, see
            ``torch.hub.get_dir``, through a temporary file, so an interrupted download leaves nothing there).
        allow_pickle: Read a torch file with ``weights_only=False``. That runs code from the file: only for files
            you trust (e.g. official training checkpoints that pickle their configuration).
        inert_objects: When weights-only loading refuses the file, read it again with :func:`_load_inert`: the
            objects of classes outside torch's weights-only allow-list (a pickled ``argparse.Namespace``, a yacs
            ``CfgNode``, ...) become inert :class:`InertObject` placeholders and no code from the file runs. For
            official training checkpoints, whose tensors are plain but whose configuration is pickled.
        map_location: Where tensors are loaded.

    Returns:
        What the file holds: a dict of tensors (safetensors) or the object ``torch.save`` wrote.

    Raises:
        CheckpointError: a missing, truncated or corrupted file, or one that needs globals weights-only loading does
            not allow (named, with the ``allow_pickle`` hint).
    """
    if "://" in str(path):
        path = _download(str(path))
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} is not a file")
    if path.suffix == ".safetensors":
        return _read_safetensors(path, map_location)
    with open(path, "rb") as f:
        zipped = f.read(2) == b"PK"  # torch.save's zip format since torch 1.6; older files are plain pickles
    if zipped:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupted: not a complete zip "
                                  "archive as torch.save writes)")
        _check_zip_crc(path)
    if allow_pickle:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if inert_objects:
            return _load_inert(path, map_location)
        unsafe = _unsafe_globals(path) if zipped else []
        if unsafe or "global" in str(e).lower():
            names = ", ".join(unsafe) if unsafe else first_line(e)
            raise CheckpointError(
                f"{path} needs globals that weights_only=True loading does not allow ({names}); re-save its "
                "state_dict with torch.save, or, if you trust the file, allow pickled objects (allow_pickle=True / "
                "--allow-pickle)") from e
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted pickle data: {first_line(e)})") from e
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({first_line(e)})") from e


def _read_safetensors(path: Path, map_location: str | torch.device) -> Dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint (a truncated or corrupted safetensors file: "
                              f"{first_line(e)})") from e


def _unsafe_globals(path: Path) -> List[str]:
    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)  # torch >= 2.5
    if find is None:
        return []
    try:
        return list(find(str(path)))
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError, zipfile.BadZipFile):
        return []


class InertObject:
    """Stands in for an object of a class that a checkpoint pickles but that is not allowed to be loaded: it keeps
    what the pickle hands it (constructor arguments, ``__setstate__`` state, items) as plain data and runs nothing.
    Its class has the pickled class's module and name, so ``type(obj).__module__`` / ``__qualname__`` say what it
    replaces (e.g. ``argparse.Namespace``)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        obj = object.__new__(cls)
        obj.__dict__.update(inert_args=args, inert_state=None, inert_items={})
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.inert_state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.inert_items[key] = value

    def append(self, value: Any) -> None:
        self.inert_items[len(self.inert_items)] = value

    def extend(self, values: Iterable[Any]) -> None:
        for v in values:
            self.append(v)

    def __repr__(self) -> str:
        return f"<inert {type(self).__module__}.{type(self).__qualname__}>"


class _InertUnpickler(pickle.Unpickler):
    """Resolves only the globals of torch's weights-only allow-list (tensor and storage rebuilding, plain
    containers, dtypes); any other global becomes a subclass of :class:`InertObject`, so calling it, building it or
    filling it runs no code from the file."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _weights_only_globals()
        full = f"{module}.{name}"
        if full in allowed:
            return allowed[full]
        return type(name, (InertObject,), {"__module__": module, "__qualname__": name})


def _weights_only_globals() -> Dict[str, Any]:
    from torch import _weights_only_unpickler as wo  # torch's own allow-list (private; present since torch 2.0)

    return dict(wo._get_allowed_globals())


def _load_inert(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load`` with :class:`_InertUnpickler` as its pickle module: torch's zip reading and storages, but no
    global outside the weights-only allow-list is ever resolved, so nothing from the file is called."""
    import types

    restricted = types.SimpleNamespace(Unpickler=_InertUnpickler, load=pickle.load, __name__="vssm_inert_pickle")
    try:
        # weights_only=False is what lets a pickle_module be given; that module resolves no unsafe global.
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=restricted)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError,
            KeyError, IndexError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint (its pickled objects: {first_line(e)})") from e


def sniff_format(path: str | os.PathLike) -> str:
    """``'zip'`` (torch.save), ``'safetensors'``, ``'pickle'`` (torch's legacy format) or ``'html'`` / ``'unknown'``
    from the first bytes of ``path``: how a downloaded file is told from an error page before it enters a cache."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < os.path.getsize(path):
        return "safetensors"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{\"error")):
        return "html"
    return "unknown"


def check_download(path: str | os.PathLike, url: str) -> None:
    """Raises unless the file downloaded from ``url`` is a complete checkpoint: a torch zip archive whose CRCs
    match, a safetensors file, or a legacy torch pickle; an HTML page (a login, viewer or error page) is named."""
    path = Path(path)
    kind = sniff_format(path)
    if kind == "html":
        raise CheckpointError(f"{url} sent an HTML page, not a checkpoint (a login, viewer or error page: the URL "
                              "is not a direct download link)")
    if kind == "unknown":
        raise CheckpointError(f"{url} sent {path.stat().st_size} bytes that are not a checkpoint (neither a torch "
                              "zip archive, a safetensors file nor a torch pickle)")
    if kind == "zip":
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{url} sent an incomplete file (truncated: not a complete zip archive as "
                                  "torch.save writes)")
        _check_zip_crc(path)


def _download(url: str) -> Path:
    from .hub import download_url  # the hub module downloads; this one only reads

    return download_url(url)


def _check_zip_crc(path: Path) -> None:
    """Raises unless every member of the zip archive at ``path`` matches its CRC-32 (about a second per GB)."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:  # e.g. a corrupted member header
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted zip archive: {first_line(e)})") from e
    if bad is not None:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted: member {bad!r} fails its CRC-32 check)")


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if none), for one-line errors."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Saves ``obj`` with ``torch.save`` to ``path`` atomically: a temporary file in the target's folder, fsync,
    ``os.replace``. A reader, or a run killed mid-write, sees the old file or the new one, never half of one.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def to_primitive(value: Any) -> Any:
    """Converts ``value`` to what ``weights_only`` loading accepts: tensors, numbers, str, None, lists and dicts."""
    if isinstance(value, str):  # plain str: subclasses such as torch.__version__ (TorchVersion) would pickle as such
        return str(value)
    if isinstance(value, (bool, int, float, type(None), torch.Tensor)):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_primitive(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_primitive(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def get_rng_state() -> Dict[str, Any]:
    """The python, numpy and torch random generator states as tensors and plain containers (weights-only safe)."""
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "state": list(mt), "gauss": gauss},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restores what :func:`get_rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state({
        "bit_generator": npy["bit_generator"],
        "state": {"key": npy["key"].numpy().astype(np.uint32), "pos": npy["pos"]},
        "has_gauss": npy["has_gauss"],
        "gauss": npy["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def is_train_checkpoint(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` was written by tools/train.py (format :data:`TRAIN_FORMAT`)."""
    return isinstance(checkpoint, dict) and checkpoint.get("format") == TRAIN_FORMAT


# ----------------------------------------------------------------------------------------------------------------
# State dicts


def resolve_use_ema(model: nn.Module | None, use_ema: bool | None = None) -> bool:
    """``use_ema`` if given, else the ``use_ema`` field of the model's pretrained cfg (default True, as timm).

    The field says which weights of an official training checkpoint holding both the plain and the EMA weights
    are the released ones (those the published accuracy was measured on).
    """
    if use_ema is not None:
        return bool(use_ema)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return bool(cfg.get("use_ema", True))


def unwrap_state_dict(checkpoint: Mapping[str, Any], use_ema: bool = True) -> Dict[str, torch.Tensor]:
    """Returns the tensor dict inside a training checkpoint, without ``module.`` prefixes.

    Args:
        checkpoint: A state dict, or a dict holding one under ``'state_dict_ema'`` / ``'model_ema'`` /
            ``'ema_model'`` / ``'ema_state_dict'`` (taken first when ``use_ema`` and a mapping), ``'state_dict'``,
            ``'model'`` or ``'module'``, nested up to three times.
        use_ema: Prefer the EMA weights when the checkpoint has them.

    Returns:
        A new dict of tensors.

    Raises:
        CheckpointError: When no tensors are found.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of tensors), got {type(checkpoint).__name__}")
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
        top = sorted(map(str, checkpoint.keys()))[:8]
        raise CheckpointError(f"no tensors found in the checkpoint (top-level keys: {top})")
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


def rename_keys(state_dict: Mapping[str, torch.Tensor], fn: Callable[[str], str | None]) -> Dict[str, torch.Tensor]:
    """Applies ``fn(key) -> new key or None (drop)`` to every key; raises if two keys collide."""
    out: Dict[str, torch.Tensor] = {}
    origin: Dict[str, str] = {}
    for k, v in state_dict.items():
        nk = fn(k)
        if nk is None:
            continue
        if nk in out:
            raise CheckpointError(f"checkpoint keys {origin[nk]!r} and {k!r} both map to {nk!r}")
        out[nk] = v
        origin[nk] = k
    return out


def format_keys(keys: Iterable[str], limit: int = 6) -> str:
    """The first ``limit`` keys, comma-separated, with ``... (+N more)`` for the rest (for messages and logs)."""
    keys = list(keys)
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_keys(state_dict: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], what: str,
               ignore_prefixes: Tuple[str, ...] = (), limit: int = 6, in_chans_keys: Tuple[str, ...] = ()) -> None:
    """Raises unless ``state_dict`` has exactly ``target``'s keys with ``target``'s shapes.

    Args:
        state_dict: The checkpoint's tensors.
        target: The model's (``model.state_dict()``, any device, ``meta`` included).
        what: The subject of the message, e.g. ``'checkpoint does not fit vmamba_tiny (VMamba)'`` (``': '`` and the
            problems follow).
        ignore_prefixes: Keys starting with these are not compared (e.g. the classifier, which timm adapts).
        limit: How many keys of each kind the message names.
        in_chans_keys: Conv weights that may differ in their input-channel dimension only (the first conv, adapted
            to the model's ``in_chans`` by the loader afterwards, as timm's ``adapt_input_conv``).

    Raises:
        CheckpointError: Naming the ``key: checkpoint shape vs model shape`` mismatches, the missing keys and the
            unexpected keys, each with its count.
    """
    skip = lambda k: bool(ignore_prefixes) and k.startswith(ignore_prefixes)
    missing = [k for k in target if k not in state_dict and not skip(k)]
    unexpected = [k for k in state_dict if k not in target and not skip(k)]
    shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}"
        for k, v in state_dict.items()
        if k in target and not skip(k) and tuple(v.shape) != tuple(target[k].shape)
        and not (k in in_chans_keys and _same_but_in_chans(v.shape, target[k].shape))
    ]
    parts = [f"{len(shapes)} shape mismatch(es): {format_keys(shapes, limit)}"] if shapes else []
    parts += [f"{len(missing)} missing key(s): {format_keys(missing, limit)}"] if missing else []
    parts += [f"{len(unexpected)} unexpected key(s): {format_keys(unexpected, limit)}"] if unexpected else []
    if parts:
        raise CheckpointError(f"{what}: " + "; ".join(parts))


def _same_but_in_chans(a: Sequence[int], b: Sequence[int]) -> bool:
    return len(a) == len(b) == 4 and a[0] == b[0] and tuple(a[2:]) == tuple(b[2:])


def _first_conv_keys(model: nn.Module) -> Tuple[str, ...]:
    convs = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv") or ()
    return tuple(f"{c}.weight" for c in ((convs,) if isinstance(convs, str) else convs))


def check_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module, ignore_prefixes: Tuple[str, ...] = (),
                     family: str = "", limit: int = 6) -> None:
    """Raises unless ``state_dict`` has exactly the model's keys with the model's shapes (see :func:`check_keys`).

    ``family`` names the model in the message (e.g. its architecture ``'vmamba_tiny_s1l8'``).
    """
    name = f"{family} ({type(model).__name__})" if family else type(model).__name__
    check_keys(state_dict, model.state_dict(), f"checkpoint does not fit {name} (a checkpoint of another family or "
               "size?)", ignore_prefixes=ignore_prefixes, limit=limit, in_chans_keys=_first_conv_keys(model))


def find_filter(model: nn.Module) -> Callable[..., Dict[str, torch.Tensor]] | None:
    """The ``checkpoint_filter_fn(state_dict, model)`` of the model's family (timm's convention: a function of that
    name in the module defining the model's class), or None. timm's ``features_only`` wrappers are looked through."""
    inner = getattr(model, "model", None)  # FeatureGetterNet and friends hold the model as ``.model``
    target = inner if isinstance(inner, nn.Module) and not hasattr(model, "checkpoint_filter_fn") else model
    fn = getattr(sys.modules.get(type(target).__module__), "checkpoint_filter_fn", None)
    return fn if callable(fn) else None


def convert_state_dict(checkpoint: Mapping[str, Any], model: nn.Module, use_ema: bool | None = None,
                       ) -> Tuple[Dict[str, torch.Tensor], str]:
    """A checkpoint's tensors in ``model``'s key layout, and how they were obtained (for a log line).

    The family's converter (:func:`find_filter`) reads every official layout it knows; a model without one gets the
    checkpoint unwrapped as it is. ``use_ema`` None: :func:`resolve_use_ema`.
    """
    fn = find_filter(model)
    if fn is not None:
        sd = fn(checkpoint, model, use_ema=resolve_use_ema(model, use_ema))
        return dict(sd), "converted by its family's checkpoint filter"
    return unwrap_state_dict(checkpoint, use_ema=resolve_use_ema(model, use_ema)), "as is"


def _classifier_prefixes(model: nn.Module) -> Tuple[str, ...]:
    heads = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    return tuple(f"{h}." for h in heads)


def load_weights(model: nn.Module, checkpoint: str | os.PathLike | Mapping[str, Any], *, use_ema: bool | None = None,
                 adapt_classifier: bool = False, adapt_in_chans: bool = False, allow_pickle: bool = False,
                 inert_objects: bool = False, name: str = "", source: str = "") -> str:
    """Loads a checkpoint into ``model`` strictly, converting foreign layouts; returns what was loaded.

    Args:
        model: The target model.
        checkpoint: A path or URL (read with :func:`read_checkpoint`) or a loaded checkpoint: a state dict, a training
            checkpoint of tools/train.py (its ``state_dict``, or ``state_dict_ema`` with ``use_ema``), or any official
            layout the family's converter reads.
        use_ema: Take the EMA weights. None: a training checkpoint of tools/train.py gives its plain weights, any
            other the pretrained cfg's choice (:func:`resolve_use_ema`).
        adapt_classifier: Only the classifier (the pretrained cfg's ``classifier`` modules) may be absent or differ in
            shape; it then keeps the model's fresh initialisation (fine-tuning to another class count, as timm).
        adapt_in_chans: The first conv (the pretrained cfg's ``first_conv``) of a model with another number of
            input channels gets timm's ``adapt_input_conv`` of the checkpoint's weight (summed to one channel, or
            repeated and rescaled), as timm's pretrained loader does.
        allow_pickle: Passed to :func:`read_checkpoint` (only for files you trust).
        inert_objects: Passed to :func:`read_checkpoint` (pickled configuration objects become inert).
        name: The model's name for messages (default: its pretrained cfg's architecture or class name).
        source: What the checkpoint is, for messages (default: the path).

    Returns:
        A short description of the weights, e.g. ``'state_dict_ema of epoch 3 from run/last.pth'``.

    Raises:
        CheckpointError: An unreadable file, a training checkpoint without EMA weights when they are asked for, or
            any missing, unexpected or mis-shaped key (all named).
    """
    where = source or (os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "the state dict")
    name = name or (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
    ckpt = read_checkpoint(checkpoint, allow_pickle=allow_pickle, inert_objects=inert_objects) \
        if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    if is_train_checkpoint(ckpt):
        key = "state_dict_ema" if use_ema else "state_dict"
        if ckpt.get(key) is None:
            raise CheckpointError(f"{where} has no EMA weights (trained without --model-ema); drop --use-ema")
        state, note = dict(ckpt[key]), f"{key} of epoch {ckpt.get('epoch')} from {where}"
    else:
        try:
            state, how = convert_state_dict(ckpt, model, use_ema=use_ema)
        except CheckpointError as e:
            raise CheckpointError(f"{where} does not load into {name!r}: {e}") from None
        note = f"{where} ({how})"
    current = model.state_dict()
    if adapt_classifier:
        heads = _classifier_prefixes(model)
        for k in [k for k in state if heads and k.startswith(heads) and k not in current]:
            del state[k]  # e.g. num_classes=0: the model has no classifier
        for k, v in current.items():
            if heads and k.startswith(heads) and (k not in state or tuple(state[k].shape) != tuple(v.shape)):
                state[k] = v
    if adapt_in_chans:
        from timm.models import adapt_input_conv

        for k in _first_conv_keys(model):
            if k in state and k in current and state[k].shape[1] != current[k].shape[1]:
                state[k] = adapt_input_conv(current[k].shape[1], state[k])
    check_keys(state, current, f"{where} does not fit model {name!r}")
    model.load_state_dict(state, strict=True)
    return note


# ----------------------------------------------------------------------------------------------------------------
# mmengine checkpoints under torch.load(weights_only=True)

_HISTORY_BUFFER_METHODS = ("min", "max", "current", "mean")


def _history_buffer_method(obj: Any, name: str) -> Callable[..., Any]:
    """Stands in for ``getattr`` while unpickling: only ``getattr(HistoryBuffer, <statistics method>)``.

    mmengine's MessageHub keeps ``HistoryBuffer`` objects whose state holds their statistics methods; pickle
    protocol 2 (torch.save's) writes those functions as ``getattr(HistoryBuffer, 'mean')``. Allowing the real
    ``builtins.getattr`` would let a checkpoint read any attribute of any allowed object; this allows exactly that call.
    """
    from mmengine.logging import HistoryBuffer

    allowed = set(_HISTORY_BUFFER_METHODS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"weights_only load: getattr({obj!r}, {name!r}) is not allowed (only "
                                 f"getattr(HistoryBuffer, name) for name in {sorted(allowed)})")


def allow_mmengine_checkpoints() -> List[str]:
    """Allow-lists, for ``torch.load(weights_only=True)``, exactly the non-tensor objects mmengine checkpoints hold.

    A checkpoint written by mmengine's Runner (``meta``, ``state_dict``, ``message_hub``, ``optimizer``,
    ``param_schedulers``) pickles, besides tensors and plain containers: ``mmengine.logging.HistoryBuffer`` (the
    logged scalars of the MessageHub); the numpy objects inside them (``numpy.ndarray``, ``numpy.dtype`` with the
    float64 / int64 dtype classes, ``numpy[._]core.multiarray._reconstruct`` / ``.scalar`` under their numpy 1 and
    numpy 2 names); and the HistoryBuffer statistics methods as ``builtins.getattr(HistoryBuffer, name)``, allowed
    for those names only (see :func:`_history_buffer_method`). The list was found by loading mmdet and mmseg
    training checkpoints until nothing was refused. Resuming or testing with mmengine on torch >= 2.6
    (``weights_only=True`` by default) needs it; safe loading stays on for everything else. Needs mmengine.

    Returns:
        The allow-listed global names.
    """
    from mmengine.logging import HistoryBuffer

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    entries: List[Any] = [(HistoryBuffer, "mmengine.logging.history_buffer.HistoryBuffer"),
                          (np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # names written by numpy 1 / numpy 2
        entries += [(multiarray._reconstruct, f"{module}._reconstruct"), (multiarray.scalar, f"{module}.scalar")]
    # dtypes are rebuilt with numpy.dtype(...) and then given state, which needs their classes: the float64 logged
    # values and int64 counts of the buffers
    for dtype in (np.float64, np.int64):
        cls = type(np.dtype(dtype))
        entries.append((cls, f"{cls.__module__}.{cls.__qualname__}"))
    entries.append((_history_buffer_method, "builtins.getattr"))
    torch.serialization.add_safe_globals(entries)
    return [name for _, name in entries]
