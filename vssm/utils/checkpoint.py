"""Checkpoint I/O that is safe to load and safe to interrupt.

* ``save_atomic`` writes to a temporary file in the target's folder, flushes it to disk and ``os.replace``-s it into
  place: a reader (or a run killed mid-write) sees the old file or the new one, never half of one.
* ``load_safe`` reads with ``torch.load(weights_only=True)`` and nothing else. Training checkpoints written by
  ``tools/train.py`` hold only tensors and plain containers of numbers, strings and booleans, so they need no
  allow-list; a file that needs any other global is refused with the names of the globals, never unpickled.
* ``get_rng_state`` / ``set_rng_state`` capture the python, numpy and torch (CPU and CUDA) generators in that
  tensor-and-primitives form.
"""
from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CheckpointError", "check_zip_crc", "get_rng_state", "load_safe", "save_atomic", "set_rng_state",
           "to_primitive"]


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read safely; the message is one line naming the file and the reason."""


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Saves ``obj`` with ``torch.save`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

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


def load_safe(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Loads a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: missing, truncated or corrupted file, or a file that would need unsafe globals.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupted: not a complete zip "
                              "archive as torch.save writes)")
    check_zip_crc(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except (RuntimeError, ValueError, OSError, pickle.UnpicklingError, zipfile.BadZipFile):
            unsafe = []
        if unsafe:
            raise CheckpointError(f"{path} needs globals that weights_only loading does not allow "
                                  f"({', '.join(unsafe)}); re-save its state_dict with torch.save") from e
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted pickle data)") from e
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({_first_line(e)})") from e


def check_zip_crc(path: str | os.PathLike) -> None:
    """Raises ``CheckpointError`` unless every member of the zip archive at ``path`` matches its CRC-32.

    ``torch.load`` does not check the CRCs that ``torch.save`` writes: a flipped byte inside a tensor loads silently
    as a different number. Reading the archive once more to check them costs about a second per GB.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:  # e.g. a corrupted member header
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted zip archive: {_first_line(e)})") from e
    if bad is not None:
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupted: member {bad!r} fails its CRC-32 check)")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


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


def get_rng_state() -> dict[str, Any]:
    """The python, numpy and torch random generator states as tensors and plain containers."""
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


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what ``get_rng_state`` captured."""
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
