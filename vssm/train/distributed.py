"""Devices and ranks: the torchrun set-up, reductions, autocast, and the check that ranks hold the same weights."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.utils.distributed import init_distributed_device_so

from .errors import UsageError

__all__ = ["DistInfo", "all_finite", "all_reduce_sum", "amp_context", "fingerprint", "init_distributed",
           "ranks_in_sync"]


@dataclass
class DistInfo:
    """Where this process runs and which rank it is (world_size 1 without torchrun)."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_primary(self) -> bool:
        return self.rank == 0

def init_distributed(device: str, backend: str = "") -> DistInfo:
    """Resolves the device and, under torchrun (``WORLD_SIZE`` > 1), joins the process group.

    Args:
        device: ``''`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        backend: torch.distributed backend; ``''`` picks nccl for CUDA and gloo for CPU.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if kind not in ("cpu", "cuda"):
        raise UsageError(f"--device {device!r} is not supported; use cpu, cuda or cuda:N")
    info = init_distributed_device_so(device=device, dist_backend=backend or None)
    return DistInfo(torch.device(info["device"]), info["global_rank"], info["local_rank"], info["world_size"])

def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor

def amp_context(device: torch.device, amp: bool, amp_dtype: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``--amp`` (float16 or bfloat16, CUDA or CPU), else a no-op."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, amp_dtype))

def all_finite(loss: torch.Tensor, info: DistInfo) -> bool:
    """Whether the loss is finite on every rank (one small all-reduce per batch when distributed)."""
    flag = torch.isfinite(loss.detach()).all().to(torch.float32).reshape(1)
    if info.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())

def fingerprint(module: nn.Module, buffers: bool = True) -> torch.Tensor:
    """Sum and sum of squares of every parameter (and buffer), in float64: equal on ranks that hold equal weights."""
    values = []
    for t in list(module.parameters()) + (list(module.buffers()) if buffers else []):
        t = t.detach().double()
        values.append(torch.stack([t.sum(), (t * t).sum()]))
    return torch.cat(values) if values else torch.zeros(1, dtype=torch.float64)

def ranks_in_sync(module: nn.Module, info: DistInfo, buffers: bool = True) -> tuple[bool, float]:
    """Whether every rank holds bit-identical parameters (and buffers), compared through ``fingerprint``.

    Between updates, BatchNorm running statistics are legitimately per rank (each rank normalises its own batches);
    ``--dist-bn`` makes them equal at the end of each epoch, so compare buffers only after that.
    """
    mine = fingerprint(module, buffers).to(info.device)
    gathered = [torch.empty_like(mine) for _ in range(info.world_size)]
    dist.all_gather(gathered, mine)
    diff = max((g - gathered[0]).abs().max().item() for g in gathered)
    return diff == 0.0, diff
