"""tune_cpu_allocator: with it, large tensors reuse freed memory instead of faulting in fresh pages.

Each case runs in a fresh interpreter (malloc's settings are per process): five 64 MiB tensors are allocated,
written and freed one after the other, and the process's minor page faults are counted over them. Untuned glibc
serves 64 MiB (above its 32 MiB ceiling for the mmap threshold) with a fresh mmap each time: about 16k faults per
tensor. Tuned, the memory of the first ones is reused.
"""
import os
import platform
import subprocess
import sys

import pytest

from vssm.utils.allocator import tune_cpu_allocator

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="glibc malloc only")

CODE = """
import resource
import torch
from vssm.utils.allocator import tune_cpu_allocator
applied = tune_cpu_allocator()
for _ in range(3):  # 64 MiB, three times before counting (glibc hands out two or three blocks in turn)
    x = torch.empty(16 << 20).fill_(1.0)
    del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    x = torch.empty(16 << 20).fill_(1.0)
    del x
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(flag: str):
    env = dict(os.environ, VSSM_TUNE_MALLOC=flag)
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


@glibc
def test_tuned_malloc_reuses_large_tensors_memory():
    applied, tuned = _faults("1")
    assert applied
    left_alone, untuned = _faults("0")
    assert not left_alone
    pages = 5 * (64 << 20) // 4096
    assert untuned > pages // 2, f"untuned glibc faulted {untuned} pages for 5 x 64 MiB; the test's premise is gone"
    # about one of the five tensors in fresh pages at most (glibc may still place one in a new block), not all five
    assert tuned < 2 * pages // 5, f"tuned: {tuned} page faults for 5 x 64 MiB tensors (untuned: {untuned})"


def test_bad_flag_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("VSSM_TUNE_MALLOC", "yes")
    with pytest.raises(ValueError, match=r"VSSM_TUNE_MALLOC: got 'yes'; allowed: '1' .* or '0'"):
        tune_cpu_allocator()


def test_opt_out_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("VSSM_TUNE_MALLOC", "0")
    assert tune_cpu_allocator() is False
