"""Evaluation: top-1 / top-5 and the mean cross-entropy over a whole split, summed exactly across ranks."""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .distributed import DistInfo, all_reduce_sum

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Any, info: DistInfo, *, amp_ctx: Callable[[], Any],
             channels_last: bool = False, log: Callable[[str], None] | None = None, log_interval: int = 0,
             prefix: str = "Test") -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) and mean cross-entropy over the whole split, summed exactly across ranks.

    Returns:
        ``dict(loss, top1, top5, count, seconds, img_per_s)``; ``img_per_s`` counts all ranks.
    """
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=info.device)  # loss, correct@1, correct@5, count
    start = time.perf_counter()
    num_batches = len(loader)
    for step, (images, target) in enumerate(loader):
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with amp_ctx():
            output = model(images)
        if isinstance(output, (tuple, list)):
            output = output[0]
        output = output.float()
        k = min(5, output.shape[1])
        hits = output.topk(k, dim=1).indices.eq(target[:, None])
        sums += torch.stack([
            F.cross_entropy(output, target, reduction="sum").double(),
            hits[:, 0].sum().double(),
            hits.any(dim=1).sum().double(),
            torch.tensor(float(target.numel()), dtype=torch.float64, device=info.device),
        ])
        if log is not None and log_interval and (step % log_interval == 0 or step == num_batches - 1):
            n = max(sums[3].item(), 1.0)
            log(f"{prefix}: [{step + 1:>{len(str(num_batches))}}/{num_batches}]  "
                f"Loss: {sums[0].item() / n:.4f}  Acc@1: {100 * sums[1].item() / n:7.3f}  "
                f"Acc@5: {100 * sums[2].item() / n:7.3f}")
    if info.device.type == "cuda":
        torch.cuda.synchronize(info.device)
    seconds = time.perf_counter() - start
    all_reduce_sum(sums, info)
    count = max(sums[3].item(), 1.0)
    seconds_t = torch.tensor([seconds], dtype=torch.float64, device=info.device)
    if info.distributed:
        dist.all_reduce(seconds_t, op=dist.ReduceOp.MAX)
    seconds = seconds_t.item()
    return dict(loss=sums[0].item() / count, top1=100 * sums[1].item() / count, top5=100 * sums[2].item() / count,
                count=int(sums[3].item()), seconds=seconds, img_per_s=sums[3].item() / max(seconds, 1e-9))
