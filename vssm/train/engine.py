"""One training epoch (gradient accumulation, AMP, clipping, EMA, non-finite losses stopped or skipped on every rank
together), the loss of the recipe, and timm's learning-rate scaling rule."""
from __future__ import annotations

import argparse
import math
import time
from contextlib import nullcontext
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.utils import ModelEmaV3, dispatch_clip_grad

from .distributed import DistInfo, all_finite
from .errors import TrainingError, UsageError
from .outputs import Logger, make_bar

__all__ = ["make_train_loss", "resolve_lr", "train_one_epoch"]


def resolve_lr(args: argparse.Namespace, info: DistInfo) -> str:
    """Sets args.lr from --lr-base when --lr is unset (timm's rule); returns a note for the log."""
    if args.lr is not None:
        return f"lr {args.lr:.3g} (--lr)"
    global_batch = args.batch_size * info.world_size * args.grad_accum_steps
    ratio = global_batch / args.lr_base_size
    scale = args.lr_base_scale or ("sqrt" if any(o in args.opt.lower() for o in ("ada", "lamb")) else "linear")
    if scale == "sqrt":
        ratio = ratio ** 0.5
    args.lr = args.lr_base * ratio
    return f"lr {args.lr:.3g} (--lr-base {args.lr_base:g} x {scale} scale of global batch {global_batch} / " \
           f"{args.lr_base_size})"

def make_train_loss(args: argparse.Namespace, mixup_active: bool) -> nn.Module:
    if mixup_active:  # targets come soft from the mixup collate, smoothing already applied
        return BinaryCrossEntropy(target_threshold=args.bce_target_thresh) if args.bce_loss \
            else SoftTargetCrossEntropy()
    if args.smoothing:
        return BinaryCrossEntropy(smoothing=args.smoothing, target_threshold=args.bce_target_thresh) \
            if args.bce_loss else LabelSmoothingCrossEntropy(smoothing=args.smoothing)
    return BinaryCrossEntropy(target_threshold=args.bce_target_thresh) if args.bce_loss else nn.CrossEntropyLoss()

def train_one_epoch(epoch: int, num_epochs: int, model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer,
                    loss_fn: nn.Module, args: argparse.Namespace, info: DistInfo, *, amp_ctx: Callable,
                    scaler: torch.amp.GradScaler | None, lr_scheduler: Any, model_ema: ModelEmaV3 | None,
                    num_updates: int, log: Logger, on_first_step: Callable[[], None] | None = None
                    ) -> tuple[dict[str, float], int]:
    """One pass over the training split. Returns (metrics, num_updates)."""
    model.train()
    accum = args.grad_accum_steps
    num_batches = len(loader)
    last_accum_start = num_batches - (num_batches % accum or accum)
    loss_sum = torch.zeros((), dtype=torch.float64, device=info.device)
    seen = skipped = 0
    group_bad = False  # a non-finite loss in the current accumulation group (on any rank)
    interval_start, interval_seen, data_seconds = time.perf_counter(), 0, 0.0
    start = time.perf_counter()
    bar = make_bar(num_batches, f"epoch {epoch + 1}/{num_epochs}", args.progress, info)
    log.bar = bar
    tick = time.perf_counter()
    try:
        for step, (images, target) in enumerate(loader):
            data_seconds += time.perf_counter() - tick
            micro = step % accum
            group = accum if step < last_accum_start else num_batches - last_accum_start
            is_update = micro == group - 1
            if args.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            sync = model.no_sync() if info.distributed and not is_update else nullcontext()
            with sync:  # DDP's no_sync must cover the forward too
                with amp_ctx():
                    output = model(images)
                    loss = loss_fn(output, target)
                finite = all_finite(loss, info)
                if finite:
                    scaled = loss / group
                    if scaler is not None:
                        scaler.scale(scaled).backward()
                    else:
                        scaled.backward()
            if finite:
                loss_sum += loss.detach().double() * images.shape[0]
                seen += images.shape[0]
            else:  # every rank sees the same flag, so all of them stop or skip together
                where = f"epoch {epoch + 1}, batch {step + 1}/{num_batches}, update {num_updates + 1}"
                if args.nonfinite == "stop":
                    raise TrainingError(f"loss is {loss.item()} at {where} (on at least one rank); lower --lr, "
                                        "set --clip-grad, use --amp-dtype bfloat16, or --nonfinite skip")
                log(f"WARNING: non-finite loss ({loss.item()}) at {where}: update skipped (--nonfinite skip)")
                group_bad = True
            interval_seen += images.shape[0]
            if is_update and group_bad:  # drop the whole accumulation group: no half-synchronised gradients
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                group_bad = False
            elif is_update:
                if scaler is not None:
                    if args.clip_grad is not None:
                        scaler.unscale_(optimizer)
                        dispatch_clip_grad(model.parameters(), args.clip_grad, mode=args.clip_mode)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    if args.clip_grad is not None:
                        dispatch_clip_grad(model.parameters(), args.clip_grad, mode=args.clip_mode)
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                num_updates += 1
                if model_ema is not None:
                    model_ema.update(model, step=num_updates)
                lr_scheduler.step_update(num_updates=num_updates)
                if on_first_step is not None:
                    on_first_step()
                    on_first_step = None
            last = step == num_batches - 1
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or last:
                    bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if args.log_interval and (step % args.log_interval == 0 or last):
                current = loss.item()
                now = time.perf_counter()
                rate = interval_seen * info.world_size / max(now - interval_start, 1e-9)
                width = len(str(num_batches))
                log(f"Train: {epoch + 1} [{step + 1:>{width}}/{num_batches} ({100 * (step + 1) / num_batches:3.0f}%)]"
                    f"  Loss: {current:.4f} ({loss_sum.item() / seen:.4f})"
                    f"  LR: {optimizer.param_groups[0]['lr']:.3e}  {rate:7.1f} img/s"
                    f"  Data: {data_seconds / (step + 1):.3f}s")
                interval_start, interval_seen = now, 0
            tick = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
        log.bar = None
    if seen == 0 and skipped:
        raise TrainingError(f"every update of epoch {epoch + 1} was skipped for a non-finite loss ({skipped} of them)")
    if seen == 0:
        raise UsageError(f"-b/--batch-size {args.batch_size}: larger than the training split of one rank "
                         f"({len(loader.sampler)} images); no batch was trained")
    totals = torch.stack([loss_sum, torch.tensor(float(seen), dtype=torch.float64, device=info.device)])
    if info.distributed:
        dist.all_reduce(totals)
    train_loss = (totals[0] / totals[1]).item()
    if not math.isfinite(train_loss):
        raise TrainingError(f"loss is {train_loss} in epoch {epoch + 1}; lower --lr, set --clip-grad, "
                            "or use --amp-dtype bfloat16")
    seconds = time.perf_counter() - start
    metrics = dict(train_loss=train_loss, epoch_seconds=seconds, train_img_per_s=totals[1].item() / seconds)
    if skipped:
        metrics["skipped_updates"] = float(skipped)
    return metrics, num_updates
