"""Test set-up shared by every test package.

Triton's interpreter must be switched on before any module defining ``@triton.jit`` kernels is imported, so it
is decided here, before the tests import ``vssm.kernels``: without a GPU the Triton kernels run interpreted on CPU.
"""
import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def torch_gemm():
    """Linear layers on torch's own BLAS for the test (``vssm.layers.linear``'s policy 'torch'), restored after: for
    tests that compare eager against a tracer or compiler, which always run ``F.linear``."""
    from vssm.layers.linear import set_cpu_gemm

    previous = set_cpu_gemm("torch")
    yield
    set_cpu_gemm(previous)
