"""A training run's state across a restart: every rank's random generators, and restoring model, EMA, optimizer,
scheduler, AMP scaler and generators from a training checkpoint (format ``vssm.checkpoint.TRAIN_FORMAT``)."""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.utils import ModelEmaV3

from ..checkpoint import get_rng_state, set_rng_state
from .distributed import DistInfo
from .errors import UsageError
from .outputs import Logger

__all__ = ["gather_rng_states", "restore"]


def gather_rng_states(info: DistInfo) -> list:
    """Every rank's random generator states (a collective: all ranks call it), in rank order."""
    rng = get_rng_state()
    if not info.distributed:
        return [rng]
    rng_all = [None] * info.world_size
    dist.all_gather_object(rng_all, rng)
    return rng_all


def restore(ckpt: dict, model: nn.Module, model_ema: ModelEmaV3 | None, optimizer: torch.optim.Optimizer,
            lr_scheduler: Any, scaler: torch.amp.GradScaler | None, info: DistInfo, log: Logger,
            path: str) -> tuple[int, list, tuple]:
    """Loads every state of a training checkpoint; returns (completed epochs, history, (best metric, epoch))."""
    try:
        model.load_state_dict(ckpt["state_dict"])
        if model_ema is not None:
            if ckpt.get("state_dict_ema") is None:
                raise UsageError(f"--resume {path} was trained without --model-ema; drop --model-ema to resume it")
            model_ema.module.load_state_dict(ckpt["state_dict_ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()
        raise UsageError(f"--resume {path} does not match this model/optimizer: "
                         f"{first[1].strip() if len(first) > 1 else first[0] if first else e}") from None
    lr_scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler") is not None:
        scaler.load_state_dict(ckpt["scaler"])
    rng = ckpt.get("rng") or []
    if len(rng) == info.world_size:
        set_rng_state(rng[info.rank])
    else:
        log(f"WARNING: {path} was written by {len(rng)} process(es), this run has {info.world_size}: the data "
            "order is kept but random augmentation and dropout will differ from an uninterrupted run")
    epoch = int(ckpt["epoch"])
    log(f"Resume: {path} after epoch {epoch} (best {ckpt.get('eval_metric', 'metric')} "
        f"{ckpt.get('best_metric')} at epoch {ckpt.get('best_epoch')})")
    return epoch, list(ckpt.get("history") or []), (ckpt.get("best_metric"), ckpt.get("best_epoch"))
