"""CPU memory allocator settings for the launchers: glibc malloc keeps freed memory for reuse.

Why. PyTorch's CPU allocator asks the C library for every tensor. glibc's malloc serves requests above its mmap
threshold (dynamic, at most 32 MiB by default) with a fresh ``mmap`` and returns them with ``munmap`` when freed, and
it trims freed memory at the top of its heap back to the system. Every large activation of a forward pass then
starts as untouched pages, and the first operator to write it (a GELU, the bias copy inside ``addmm``, a norm) takes
one page fault per 4 KiB. Measured on the project's 2-core machine: GELU over a fresh 37 MiB tensor 15.9 ms, 5.2 ms
once malloc keeps its memory (3.9 ms into a preallocated output); VMamba-T's forward at batch 8, 224 px went from
818 to 701 ms per step and Swin-T's from 713 to 645 (medians of 8 steps, the two models interleaved).

What. :func:`tune_cpu_allocator` raises glibc's mmap threshold and trim threshold to 1 GiB and its top pad to
64 MiB through ``mallopt`` (documented glibc parameters; the process keeps up to 1 GiB of freed memory for reuse,
as jemalloc and tcmalloc do by design). It changes the whole process, so the library never calls it on import: the
project's launchers (``tools/train.py``, ``tools/validate.py``, ``tools/benchmark.py``, ``tools/mm_train.py``,
``tools/mm_test.py``) call it at start, and ``VSSM_TUNE_MALLOC=0`` leaves malloc as it is. Elsewhere (not Linux with
glibc, e.g. macOS, musl) it does nothing.
"""
from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["tune_cpu_allocator", "MALLOC_SETTINGS"]

# mallopt parameter numbers from glibc's <malloc.h>, and the values set
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_SETTINGS = {"M_MMAP_THRESHOLD": 1 << 30, "M_TRIM_THRESHOLD": 1 << 30, "M_TOP_PAD": 64 << 20}


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018  (attribute lookup raises when the symbol is missing)
    except (OSError, AttributeError):
        return None
    return libc


def tune_cpu_allocator() -> bool:
    """Makes glibc's malloc keep freed memory (see the module docstring). Returns True when the settings were
    applied, False when malloc is left alone (``VSSM_TUNE_MALLOC=0``, or not glibc).

    Raises:
        ValueError: ``VSSM_TUNE_MALLOC`` is set to something other than ``0`` or ``1``.
        RuntimeError: glibc refused a setting.
    """
    flag = os.environ.get("VSSM_TUNE_MALLOC", "1").strip()
    if flag not in ("0", "1"):
        raise ValueError(f"VSSM_TUNE_MALLOC: got {flag!r}; allowed: '1' (tune glibc malloc, the default) or '0' "
                         "(leave it as it is)")
    if flag == "0":
        return False
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    for name, param in (("M_MMAP_THRESHOLD", _M_MMAP_THRESHOLD), ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD),
                        ("M_TOP_PAD", _M_TOP_PAD)):
        if libc.mallopt(param, MALLOC_SETTINGS[name]) != 1:
            raise RuntimeError(f"tune_cpu_allocator: glibc's mallopt refused {name}={MALLOC_SETTINGS[name]}; "
                               "set VSSM_TUNE_MALLOC=0 to leave malloc as it is")
    return True
