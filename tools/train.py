#!/usr/bin/env python3
"""Train an image classifier (any timm model, the vssm models included) on ImageNet or any ImageFolder.

With no arguments it trains a small model on the embedded *shapes* data set (coloured geometric shapes drawn with
OpenCV, generated once into ``$VSSM_DATA`` or ``~/.cache/vssm``) in a few minutes on a laptop CPU, and prints a
final validation top-1::

    python tools/train.py

The parser's defaults are timm's; with no data set named, the demo's recipe (``SHAPES_DEMO``: vmamba_micro at
32 px, 18 epochs) replaces them. Published recipes are YAML files whose values become the defaults (the command
line still wins)::

    python tools/train.py -c configs/classification/vmamba_tiny_in1k.yaml --data-dir /data/imagenet

Flags keep timm's ``train.py`` names and meanings (``--model``, ``--data-dir``, ``-b``, ``--lr`` / ``--lr-base``,
``--opt``, ``--sched``, ``--mixup``, ``--model-ema``, ``--amp``, ...). ``--scan NAME`` and ``--model-kwargs k=v``
reach the model constructor. ``--data-dir`` takes the ImageNet layout, ``DIR/train/<class>/*`` and
``DIR/val/<class>/*``.

Distributed training uses torchrun and DistributedDataParallel (nccl on GPUs, gloo on CPU). ``-b`` is the batch
per process; with ``--lr`` unset the learning rate is ``--lr-base`` scaled by the global batch over
``--lr-base-size``. One machine::

    torchrun --nproc_per_node=8 tools/train.py -c configs/classification/vmamba_tiny_in1k.yaml --data-dir DIR

Several machines (run on each; ``--node_rank`` 0..N-1, the address and port of node 0)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --master_addr=10.0.0.1 --master_port=29500 \\
        tools/train.py -c configs/classification/vmamba_tiny_in1k.yaml --data-dir DIR

Only rank 0 writes. The run folder (``--output``/``--experiment``, default ``output/train/<time>-<model>-<size>``)
gets ``args.yaml``, ``log.txt``, ``summary.csv`` and ``summary.png`` (loss, accuracy and learning rate per epoch),
TensorBoard scalars under ``tb/`` when tensorboard is installed, and checkpoints written atomically every epoch:
``last.pth``, ``best.pth`` and the ``--checkpoint-hist`` best ``checkpoint-<epoch>.pth``. A checkpoint holds the
model, EMA, optimizer, scheduler, AMP scaler, epoch, and every rank's random generators; the data order is a
function of (seed, epoch, rank). ``--resume last.pth`` continues in the same folder with the run's own arguments
as defaults and ends with the weights an uninterrupted run would have. Checkpoints are loaded with
``torch.load(weights_only=True)``.

A NaN or infinite loss never trains on silently: by default the run stops with a line naming the epoch, batch and
update (``--nonfinite skip`` drops that update instead, on every rank, and counts the skips in summary.csv).
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timm  # noqa: E402
from _common import (  # noqa: E402
    TRAIN_FORMAT,
    DistInfo,
    ParseKwargs,
    TrainingError,
    UsageError,
    amp_context,
    check_model_name,
    create_image_dataset,
    create_model_checked,
    create_seeded_loader,
    dataset_num_classes,
    evaluate,
    format_args,
    init_distributed,
    is_train_checkpoint,
    mixup_collate,
    parse_with_config,
    run_cli,
)
from timm.data import resolve_data_config  # noqa: E402
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy  # noqa: E402
from timm.optim import create_optimizer_v2, optimizer_kwargs  # noqa: E402
from timm.scheduler import create_scheduler_v2, scheduler_kwargs  # noqa: E402
from timm.utils import ModelEmaV3, dispatch_clip_grad, distribute_bn, random_seed  # noqa: E402

import vssm  # noqa: E402
from vssm.data.shapes import SHAPES, prepare_classification  # noqa: E402
from vssm.utils.checkpoint import (  # noqa: E402
    CheckpointError,
    get_rng_state,
    load_safe,
    save_atomic,
    set_rng_state,
    to_primitive,  # noqa: E402
)

# The recipe of the embedded demo: the defaults when no --data-dir / --dataset is given (the parser's own defaults
# are timm's): the 0.7M-parameter vmamba_micro at 32 px, 18 epochs of 3200 images (lr 4e-3 at batch 64, no label
# smoothing: it slowed this short run down by 2-3 points of top-1).
SHAPES_DEMO = dict(
    model="vmamba_micro", img_size=32, shapes_train_per_class=400, shapes_val_per_class=100, batch_size=64,
    opt="adamw", weight_decay=0.05, lr_base=8e-3, epochs=18, warmup_epochs=1, sched_on_updates=True, min_lr=1e-5,
    scale=[0.8, 1.0], color_jitter=0.0, smoothing=0.0, workers=1, checkpoint_hist=3, log_interval=25,
)
SCHEDULERS = ("cosine", "tanh", "step", "multistep", "plateau", "poly")
# Arguments a resumed run does not take from the checkpoint: where things go and how they are shown.
_NOT_RESUMED = {"resume", "config", "output", "experiment", "initial_checkpoint", "pretrained", "log_interval",
                "progress", "device", "dist_backend", "checkpoint_hist"}

_logger = logging.getLogger("train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)  # --epoch is not --epochs
    parser.add_argument("-c", "--config", default="", metavar="FILE",
                        help="YAML file of argument values that become the defaults (command line wins)")

    group = parser.add_argument_group("Data")
    group.add_argument("--data-dir", default="", metavar="DIR",
                       help="data set root (ImageNet layout DIR/train, DIR/val); empty: the embedded shapes set")
    group.add_argument("--dataset", "-d", default="", metavar="NAME",
                       help="timm dataset type ('' = folder/tar, 'torch/cifar10', 'hfds/...'); default ''")
    group.add_argument("--train-split", default="train", metavar="NAME")
    group.add_argument("--val-split", default="validation", metavar="NAME",
                       help="validation split (val, valid, validation, eval are tried); default validation")
    group.add_argument("--class-map", default="", metavar="FILE", help="class name -> index file (folders)")
    group.add_argument("--shapes-train-per-class", type=int, default=500, metavar="N",
                       help="embedded shapes set: training images per class")
    group.add_argument("--shapes-val-per-class", type=int, default=100, metavar="N",
                       help="embedded shapes set: validation images per class")

    group = parser.add_argument_group("Model")
    group.add_argument("--model", default="vmamba_tiny", metavar="NAME", help="timm model name")
    group.add_argument("--scan", default=None, metavar="NAME", help="scan strategy of a vssm model (e.g. cross)")
    group.add_argument("--model-kwargs", nargs="*", default={}, action=ParseKwargs, metavar="KEY=VALUE",
                       help="extra model constructor arguments")
    group.add_argument("--pretrained", action="store_true", help="start from the model's timm pretrained weights")
    group.add_argument("--initial-checkpoint", default="", metavar="PATH",
                       help="start from these weights (ours, or official through the model's checkpoint filter)")
    group.add_argument("--resume", default="", metavar="PATH", help="continue a run from its checkpoint")
    group.add_argument("--num-classes", type=int, default=None, metavar="N", help="default: from the data set")
    group.add_argument("--gp", default=None, metavar="POOL", help="global pool type (model default if unset)")
    group.add_argument("--img-size", type=int, default=None, metavar="N", help="image size (model default)")
    group.add_argument("--input-size", type=int, nargs=3, default=None, metavar=("C", "H", "W"))
    group.add_argument("--crop-pct", type=float, default=None, metavar="PCT", help="validation centre-crop ratio")
    group.add_argument("--mean", type=float, nargs="+", default=None, metavar="MEAN")
    group.add_argument("--std", type=float, nargs="+", default=None, metavar="STD")
    group.add_argument("--interpolation", default="", metavar="NAME", help="validation resize interpolation")
    group.add_argument("-b", "--batch-size", type=int, default=128, metavar="N", help="batch per process")
    group.add_argument("-vb", "--validation-batch-size", type=int, default=None, metavar="N")
    group.add_argument("--channels-last", action="store_true", help="channels_last memory layout")
    group.add_argument("--grad-checkpointing", action="store_true", help="recompute activations in backward")
    group.add_argument("--torchcompile", nargs="?", type=str, default=None, const="inductor", metavar="BACKEND",
                       help="torch.compile the model (backend default inductor)")
    group.add_argument("--drop", type=float, default=0.0, metavar="PCT", help="dropout rate")
    group.add_argument("--drop-path", type=float, default=None, metavar="PCT", help="stochastic depth rate")

    group = parser.add_argument_group("Optimizer")
    group.add_argument("--opt", default="sgd", metavar="NAME", help="timm optimizer name")
    group.add_argument("--opt-eps", type=float, default=None, metavar="EPS")
    group.add_argument("--opt-betas", type=float, nargs="+", default=None, metavar="BETA")
    group.add_argument("--momentum", type=float, default=0.9, metavar="M")
    group.add_argument("--weight-decay", type=float, default=2e-5)
    group.add_argument("--clip-grad", type=float, default=None, metavar="NORM", help="clip gradients (off)")
    group.add_argument("--nonfinite", default="stop", choices=("stop", "skip"),
                       help="on a NaN/inf loss: stop the run naming the batch (default), or skip that update")
    group.add_argument("--clip-mode", default="norm", choices=("norm", "value", "agc"))
    group.add_argument("--layer-decay", type=float, default=None, help="layer-wise learning-rate decay")
    group.add_argument("--grad-accum-steps", type=int, default=1, metavar="N")

    group = parser.add_argument_group("Learning-rate schedule")
    group.add_argument("--sched", default="cosine", choices=SCHEDULERS)
    group.add_argument("--sched-on-updates", action=argparse.BooleanOptionalAction, default=False,
                       help="step the schedule every update instead of every epoch")
    group.add_argument("--lr", type=float, default=None, metavar="LR",
                       help="learning rate; unset: --lr-base scaled by global batch / --lr-base-size")
    group.add_argument("--lr-base", type=float, default=0.1, metavar="LR")
    group.add_argument("--lr-base-size", type=int, default=256, metavar="N")
    group.add_argument("--lr-base-scale", default="", choices=("", "linear", "sqrt"),
                       help="'' = sqrt for adaptive optimizers (ada*, lamb), else linear")
    group.add_argument("--warmup-lr", type=float, default=1e-5, metavar="LR")
    group.add_argument("--min-lr", type=float, default=0.0, metavar="LR")
    group.add_argument("--epochs", type=int, default=300, metavar="N")
    group.add_argument("--warmup-epochs", type=int, default=5, metavar="N")
    group.add_argument("--warmup-prefix", action="store_true", help="warm-up epochs come before the schedule")
    group.add_argument("--cooldown-epochs", type=int, default=0, metavar="N")
    group.add_argument("--decay-epochs", type=float, default=90, metavar="N")
    group.add_argument("--decay-milestones", type=int, nargs="+", default=[90, 180, 270], metavar="N")
    group.add_argument("--decay-rate", "--dr", type=float, default=0.1)
    group.add_argument("--patience-epochs", type=int, default=10, metavar="N")

    group = parser.add_argument_group("Augmentation and regularisation")
    group.add_argument("--no-aug", action="store_true", help="no training augmentation")
    group.add_argument("--scale", type=float, nargs=2, default=[0.08, 1.0], metavar=("MIN", "MAX"),
                       help="random-resized-crop area range")
    group.add_argument("--ratio", type=float, nargs=2, default=[3 / 4, 4 / 3], metavar=("MIN", "MAX"))
    group.add_argument("--hflip", type=float, default=0.5)
    group.add_argument("--vflip", type=float, default=0.0)
    group.add_argument("--color-jitter", type=float, default=0.4, help="colour jitter strength")
    group.add_argument("--aa", default=None, metavar="POLICY", help="AutoAugment, e.g. rand-m9-mstd0.5-inc1")
    group.add_argument("--aug-repeats", type=float, default=0, metavar="N",
                       help="repeated augmentation (DeiT's RASampler): each image N times per epoch across ranks")
    group.add_argument("--reprob", type=float, default=0.0, help="random erasing probability")
    group.add_argument("--remode", default="pixel", choices=("const", "rand", "pixel"))
    group.add_argument("--recount", type=int, default=1)
    group.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (on if > 0)")
    group.add_argument("--cutmix", type=float, default=0.0, help="cutmix alpha (on if > 0)")
    group.add_argument("--cutmix-minmax", type=float, nargs=2, default=None, metavar=("MIN", "MAX"))
    group.add_argument("--mixup-prob", type=float, default=1.0)
    group.add_argument("--mixup-switch-prob", type=float, default=0.5)
    group.add_argument("--mixup-mode", default="batch", choices=("batch", "pair", "elem"))
    group.add_argument("--mixup-off-epoch", type=int, default=0, metavar="N", help="no mixup from this epoch")
    group.add_argument("--smoothing", type=float, default=0.1, help="label smoothing")
    group.add_argument("--bce-loss", action="store_true", help="binary cross-entropy loss")
    group.add_argument("--bce-target-thresh", type=float, default=None)
    group.add_argument("--train-interpolation", default="random", metavar="NAME")

    group = parser.add_argument_group("Model EMA")
    group.add_argument("--model-ema", action="store_true", help="keep an exponential moving average of weights")
    group.add_argument("--model-ema-decay", type=float, default=0.9998)
    group.add_argument("--model-ema-warmup", action="store_true", help="ramp the EMA decay up")
    group.add_argument("--model-ema-force-cpu", action="store_true", help="keep the EMA on CPU (not evaluated)")

    group = parser.add_argument_group("Run")
    group.add_argument("--seed", type=int, default=42)
    group.add_argument("-j", "--workers", type=int, default=4, metavar="N", help="data loader processes")
    group.add_argument("--amp", action="store_true", help="mixed precision (autocast)")
    group.add_argument("--amp-dtype", default="float16", choices=("float16", "bfloat16"))
    group.add_argument("--device", default="", help="cpu, cuda or cuda:N (default: cuda when available)")
    group.add_argument("--dist-backend", default="", help="torch.distributed backend (nccl for CUDA, gloo for CPU)")
    group.add_argument("--dist-bn", default="reduce", choices=("reduce", "broadcast", ""),
                       help="how ranks agree on BatchNorm statistics after each epoch")
    group.add_argument("--output", default=None, metavar="DIR", help="parent of the run folder (output/train)")
    group.add_argument("--experiment", default=None, metavar="NAME", help="run folder name (default: generated)")
    group.add_argument("--eval-metric", default="top1", choices=("top1", "top5", "loss"),
                       help="metric that picks best.pth (the EMA's when --model-ema)")
    group.add_argument("--checkpoint-hist", type=int, default=10, metavar="N",
                       help="keep the N best checkpoint-<epoch>.pth besides last.pth and best.pth")
    group.add_argument("--log-interval", type=int, default=50, metavar="N", help="log a line every N batches")
    group.add_argument("--progress", default="auto", choices=("auto", "on", "off"),
                       help="tqdm progress bar (auto: when stderr is a terminal)")
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Range checks the parser cannot express, as one-line errors."""
    def need(ok: bool, flag: str, value: Any, allowed: str) -> None:
        if not ok:
            raise UsageError(f"{flag} {value!r}: must be {allowed}")

    need(args.batch_size >= 1, "-b/--batch-size", args.batch_size, "at least 1")
    need(args.validation_batch_size is None or args.validation_batch_size >= 1, "-vb/--validation-batch-size",
         args.validation_batch_size, "at least 1")
    need(args.epochs >= 1, "--epochs", args.epochs, "at least 1")
    need(args.workers >= 0, "-j/--workers", args.workers, "0 or more")
    need(args.grad_accum_steps >= 1, "--grad-accum-steps", args.grad_accum_steps, "at least 1")
    need(args.checkpoint_hist >= 0, "--checkpoint-hist", args.checkpoint_hist, "0 or more")
    need(args.log_interval >= 0, "--log-interval", args.log_interval, "0 or more")
    need(0 <= args.smoothing < 1, "--smoothing", args.smoothing, "in [0, 1)")
    need(0 <= args.reprob <= 1, "--reprob", args.reprob, "in [0, 1]")
    need(args.aug_repeats == 0 or args.aug_repeats >= 1, "--aug-repeats", args.aug_repeats, "0 (off) or at least 1")
    need(args.drop_path is None or 0 <= args.drop_path < 1, "--drop-path", args.drop_path, "in [0, 1)")
    need(args.img_size is None or args.img_size >= 8, "--img-size", args.img_size, "at least 8")
    need(args.lr is None or args.lr > 0, "--lr", args.lr, "positive")
    need(args.shapes_train_per_class >= 1, "--shapes-train-per-class", args.shapes_train_per_class, "at least 1")
    need(args.shapes_val_per_class >= 1, "--shapes-val-per-class", args.shapes_val_per_class, "at least 1")
    if hasattr(timm.optim, "list_optimizers"):
        known = timm.optim.list_optimizers()
        opt = args.opt.lower().split("_")[-1]
        need(opt in known, "--opt", args.opt, f"one of timm's optimizers ({', '.join(known[:12])}, ...)")
    check_model_name(args.model)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict | None]:
    """Arguments, and the resume checkpoint when ``--resume`` is given.

    Defaults, lowest first: timm's (the parser's), the demo recipe ``SHAPES_DEMO`` when no data set is named, a
    resumed run's own arguments, the ``-c`` YAML file; the command line wins over all.
    """
    probe = parse_with_config(build_parser(), argv)
    defaults: dict[str, Any] = {}
    ckpt = None
    if probe.resume:
        try:
            ckpt = load_safe(probe.resume)
        except CheckpointError as e:
            raise UsageError(f"--resume {e}; nothing was changed") from None
        if not is_train_checkpoint(ckpt):
            raise UsageError(f"--resume {probe.resume} is not a checkpoint written by tools/train.py "
                             f"(no format {TRAIN_FORMAT!r}); use --initial-checkpoint to start from its weights")
        defaults.update({k: v for k, v in ckpt.get("args", {}).items() if k not in _NOT_RESUMED})
    elif not probe.data_dir and not probe.dataset:
        defaults.update(SHAPES_DEMO)
    args = parse_with_config(build_parser(), argv, defaults=defaults) if defaults else probe
    check_args(args)
    return args, ckpt


class Logger:
    """Prints on rank 0 (through tqdm when a bar is showing) and appends to the run's log.txt once it is open."""

    def __init__(self, info: DistInfo):
        self.info = info
        self.file = None
        self.bar = None
        self.pending: list[str] = []  # lines printed before the run folder existed

    def open(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8")
        self.file.writelines(line + "\n" for line in self.pending)
        self.pending = []

    def __call__(self, message: str) -> None:
        if not self.info.is_primary:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)
        if self.file is not None:
            self.file.write(message + "\n")
            self.file.flush()
        else:
            self.pending.append(message)


def make_bar(total: int, desc: str, mode: str, info: DistInfo):
    if not info.is_primary or mode == "off" or (mode == "auto" and not sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False, file=sys.stderr)


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


class CheckpointKeeper:
    """Writes last.pth every epoch, best.pth on a new best, and keeps the N best checkpoint-<epoch>.pth."""

    def __init__(self, run_dir: Path, keep: int, decreasing: bool):
        self.run_dir, self.keep, self.decreasing = run_dir, keep, decreasing

    def remove_stale_temporaries(self) -> list[str]:
        """Deletes the temporary files of checkpoint writes that a killed run left (``save_atomic``'s ``.NAME.*.tmp``).

        Only rank 0 writes into the run folder, and it calls this before its first write, so none is in progress.
        """
        stale = sorted(self.run_dir.glob(".*.pth.*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return [p.name for p in stale]

    def better(self, a: float, b: float | None) -> bool:
        if b is None or not math.isfinite(b):
            return math.isfinite(a)
        return a < b if self.decreasing else a > b

    def save(self, state: dict[str, Any], epoch: int, is_best: bool, history: list[dict[str, float]]) -> None:
        last = save_atomic(state, self.run_dir / "last.pth")
        if is_best:
            self._copy(last, self.run_dir / "best.pth")
        if self.keep > 0:
            self._copy(last, self.run_dir / f"checkpoint-{epoch}.pth")
        ranked = sorted((h for h in history if math.isfinite(h["metric"])), key=lambda h: h["metric"],
                        reverse=not self.decreasing)
        kept = {int(h["epoch"]) for h in ranked[:self.keep]}
        for path in self.run_dir.glob("checkpoint-*.pth"):
            stem = path.stem.split("-", 1)[1]
            if stem.isdigit() and int(stem) not in kept:
                path.unlink()

    @staticmethod
    def _copy(src: Path, dst: Path) -> None:
        """Atomic copy: hard link (or copy) to a temporary name, then os.replace."""
        tmp = dst.with_name(f".{dst.name}.tmp")
        if tmp.exists():
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


SUMMARY_FIELDS = ("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5", "ema_loss", "ema_top1", "ema_top5",
                  "lr", "epoch_seconds", "train_img_per_s", "skipped_updates")


def write_summary(run_dir: Path, history: list[dict[str, float]]) -> None:
    """summary.csv rewritten from the whole history (so a resumed run never repeats or loses a row)."""
    fields = [f for f in SUMMARY_FIELDS if any(f in h for h in history)]
    tmp = run_dir / ".summary.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for h in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in h.items() if k in fields})
    os.replace(tmp, run_dir / "summary.csv")


def write_plot(run_dir: Path, history: list[dict[str, float]], title: str) -> bool:
    """summary.png: loss, accuracy and learning rate per epoch. False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    marker = "o" if len(epochs) < 30 else None
    axes[0].plot(epochs, [h["train_loss"] for h in history], marker=marker, label="train")
    axes[0].plot(epochs, [h["eval_loss"] for h in history], marker=marker, label="validation")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [h["eval_top1"] for h in history], marker=marker, label="top-1")
    axes[1].plot(epochs, [h["eval_top5"] for h in history], marker=marker, label="top-5")
    if any("ema_top1" in h for h in history):
        axes[1].plot(epochs, [h.get("ema_top1", float("nan")) for h in history], marker=marker, label="EMA top-1")
    axes[1].set_title("validation accuracy (%)")
    axes[2].plot(epochs, [h["lr"] for h in history], marker=marker, color="tab:green")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[:2]:
        ax.legend()
    fig.suptitle(title, fontsize=10)
    tmp = run_dir / ".summary.png.tmp"
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, run_dir / "summary.png")
    return True


class TensorBoard:
    """Scalars under run_dir/tb when tensorboard is installed; silently nothing otherwise."""

    def __init__(self, run_dir: Path | None):
        self.writer = None
        if run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                if v is not None and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


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


def all_finite(loss: torch.Tensor, info: DistInfo) -> bool:
    """Whether the loss is finite on every rank (one small all-reduce per batch when distributed)."""
    flag = torch.isfinite(loss.detach()).all().to(torch.float32).reshape(1)
    if info.distributed:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


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


def prepare_data(args: argparse.Namespace, info: DistInfo, log: Logger) -> tuple[Any, Any, str]:
    """The train and validation datasets (generating the shapes set on rank 0 first when no --data-dir)."""
    if not args.data_dir and not args.dataset:
        img_size = args.img_size or (args.input_size[-1] if args.input_size else 64)
        params = dict(img_size=img_size, train_per_class=args.shapes_train_per_class,
                      val_per_class=args.shapes_val_per_class, seed=0)
        root = None
        if info.is_primary:
            start = time.perf_counter()
            root = prepare_classification(**params)
            log(f"Data: embedded shapes set ({len(SHAPES)} classes, {args.shapes_train_per_class}/"
                f"{args.shapes_val_per_class} train/val images per class, {img_size}px) at {root} "
                f"[{time.perf_counter() - start:.1f}s]")
        if info.distributed:
            dist.barrier()
        if root is None:
            root = prepare_classification(**params)  # already complete: returns at once
        args.img_size = img_size
        if args.crop_pct is None:
            args.crop_pct = 1.0  # shapes touch the border: validate on the whole image
        data_dir, flag = str(root), "shapes data set"
    else:
        data_dir, flag = args.data_dir, "--data-dir"
    common = dict(class_map=args.class_map) if args.class_map else {}
    train = create_image_dataset(args.dataset, data_dir, args.train_split, is_training=True, flag=flag, **common)
    val = create_image_dataset(args.dataset, data_dir, args.val_split, is_training=False, flag=flag, **common)
    return train, val, data_dir


def run_dir_for(args: argparse.Namespace, info: DistInfo) -> Path:
    if args.resume and args.output is None and args.experiment is None:
        return Path(args.resume).resolve().parent
    name = args.experiment
    if not name:
        name = [f"{datetime.now():%Y%m%d-%H%M%S}-{args.model}-{args.img_size or 'default'}"]
        if info.distributed:
            dist.broadcast_object_list(name, src=0)
        name = name[0]
    return Path(args.output or "output/train") / name


def main(argv: Sequence[str] | None = None) -> None:
    args, resume_ckpt = parse_args(argv)
    info = init_distributed(args.device, args.dist_backend)
    log = Logger(info)
    random_seed(args.seed, info.rank)
    if info.device.type == "cpu" and info.distributed:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))

    # Data first: the class count comes from it.
    dataset_train, dataset_val, data_dir = prepare_data(args, info, log)
    num_classes = args.num_classes or dataset_num_classes(dataset_train)
    if num_classes is None:
        raise UsageError(f"--num-classes is needed: the class count of {args.dataset or 'the data'} is unknown")
    args.num_classes = num_classes

    model, weights_note = create_model_checked(
        args.model, scan=args.scan, model_kwargs=args.model_kwargs, pretrained=args.pretrained or None,
        num_classes=num_classes, drop_rate=args.drop, drop_path_rate=args.drop_path, global_pool=args.gp,
        weights=args.initial_checkpoint, weights_flag="--initial-checkpoint", adapt_classifier=True)
    data_config = resolve_data_config(vars(args), model=model, verbose=False)
    if args.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(info.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)

    run_dir = run_dir_for(args, info)
    lr_note = resolve_lr(args, info)
    try:
        optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args))
    except (ValueError, AssertionError, KeyError) as e:
        raise UsageError(f"--opt {args.opt!r}: {str(e).strip() or 'not supported'}") from None
    scaler = torch.amp.GradScaler(info.device.type) if args.amp and args.amp_dtype == "float16" else None
    amp_ctx = lambda: amp_context(info.device, args.amp, args.amp_dtype)  # noqa: E731
    model_ema = None
    if args.model_ema:
        model_ema = ModelEmaV3(model, decay=args.model_ema_decay, use_warmup=args.model_ema_warmup,
                               device="cpu" if args.model_ema_force_cpu else None)

    # Loaders (seeded: order and augmentation are a function of seed, epoch and rank).
    collate = mixup_collate(args, num_classes)
    train_tf = dict(no_aug=args.no_aug, scale=tuple(args.scale), ratio=tuple(args.ratio), hflip=args.hflip,
                    vflip=args.vflip, color_jitter=args.color_jitter, auto_augment=args.aa,
                    interpolation=args.train_interpolation)
    try:
        loader_train = create_seeded_loader(
            dataset_train, input_size=data_config["input_size"], batch_size=args.batch_size, is_training=True,
            info=info, seed=args.seed, num_workers=args.workers, mean=data_config["mean"], std=data_config["std"],
            transform_kwargs=train_tf, collate_fn=collate, re_prob=args.reprob, re_mode=args.remode,
            re_count=args.recount, aug_repeats=args.aug_repeats)
    except (AssertionError, KeyError, ValueError) as e:
        flag = f"--aa {args.aa!r}" if args.aa else "augmentation arguments"
        raise UsageError(f"{flag}: {str(e).strip() or type(e).__name__}") from None
    loader_val = create_seeded_loader(
        dataset_val, input_size=data_config["input_size"], batch_size=args.validation_batch_size or args.batch_size,
        is_training=False, info=info, seed=args.seed, num_workers=args.workers, mean=data_config["mean"],
        std=data_config["std"], transform_kwargs=dict(interpolation=data_config["interpolation"],
                                                      crop_pct=data_config["crop_pct"]))
    if len(loader_train) == 0:
        raise UsageError(f"-b/--batch-size {args.batch_size} is larger than the training split of one rank "
                         f"({len(loader_train.sampler)} images)")
    loss_fn = make_train_loss(args, collate is not None)

    updates_per_epoch = math.ceil(len(loader_train) / args.grad_accum_steps)
    lr_scheduler, num_epochs = create_scheduler_v2(optimizer, **scheduler_kwargs(args),
                                                   updates_per_epoch=updates_per_epoch)

    # Resume: every state, then the random generators last.
    start_epoch, history, best = 0, [], (None, None)
    if resume_ckpt is not None:
        start_epoch, history, best = restore(resume_ckpt, model, model_ema, optimizer, lr_scheduler, scaler, info,
                                             log, args.resume)
        if start_epoch > 0:
            lr_scheduler.step(start_epoch, history[-1]["metric"] if history else None)
    num_updates = start_epoch * updates_per_epoch

    train_model = model
    if info.distributed:
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if args.torchcompile:
        train_model = torch.compile(train_model, backend=args.torchcompile)

    tb = TensorBoard(run_dir if info.is_primary else None)
    keeper = CheckpointKeeper(run_dir, args.checkpoint_hist, decreasing=args.eval_metric == "loss")
    if info.is_primary:
        run_dir.mkdir(parents=True, exist_ok=True)
        log.open(run_dir / "log.txt")
        stale = keeper.remove_stale_temporaries()
        if stale:
            log(f"Checkpoint: removed {len(stale)} temporary file(s) of interrupted writes ({', '.join(stale[:3])})")
        with open(run_dir / "args.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(format_args(args), f, sort_keys=True)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"Model: {args.model} ({n_params / 1e6:.2f}M parameters, {num_classes} classes"
        f"{', scan ' + args.scan if args.scan else ''}), input {tuple(data_config['input_size'])}, {weights_note}")
    log(f"Train: {len(dataset_train)} images, {len(loader_train)} batches of {args.batch_size} x "
        f"{info.world_size} process(es) on {info.device}; {lr_note}; {num_epochs} epochs; output {run_dir}")
    if start_epoch >= num_epochs:
        log(f"Nothing to do: {args.resume} already finished {start_epoch} of {num_epochs} epochs")
        return

    def check_sync() -> None:
        if info.distributed:
            same, diff = ranks_in_sync(model, info, buffers=False)
            log(f"Sync: parameters identical on all {info.world_size} ranks after the first update" if same else
                f"WARNING: ranks out of sync after the first update (max fingerprint difference {diff:.3g})")

    data_label = "the embedded shapes set" if args.data_dir == "" and not args.dataset else Path(data_dir).name
    input_note = "x".join(str(v) for v in data_config["input_size"][1:]) + " px"
    run_start = time.perf_counter()
    eval_metrics: dict[str, float] = {}
    ema_metrics: dict[str, float] | None = None
    for epoch in range(start_epoch, num_epochs):
        loader_train.set_epoch(epoch)
        if args.mixup_off_epoch and epoch >= args.mixup_off_epoch and collate is not None:
            loader_train.mixup_enabled = False
        train_metrics, num_updates = train_one_epoch(
            epoch, num_epochs, train_model, loader_train, optimizer, loss_fn, args, info, amp_ctx=amp_ctx,
            scaler=scaler, lr_scheduler=lr_scheduler, model_ema=model_ema, num_updates=num_updates, log=log,
            on_first_step=check_sync if epoch == start_epoch else None)
        if info.distributed and args.dist_bn:
            distribute_bn(model, info.world_size, args.dist_bn == "reduce")
        eval_metrics = evaluate(model, loader_val, info, amp_ctx=amp_ctx, channels_last=args.channels_last)
        record = dict(epoch=epoch + 1, **train_metrics, eval_loss=eval_metrics["loss"],
                      eval_top1=eval_metrics["top1"], eval_top5=eval_metrics["top5"])
        chosen = eval_metrics
        if model_ema is not None and not args.model_ema_force_cpu:
            if info.distributed and args.dist_bn:
                distribute_bn(model_ema, info.world_size, args.dist_bn == "reduce")
            ema_metrics = evaluate(model_ema.module, loader_val, info, amp_ctx=amp_ctx,
                                   channels_last=args.channels_last)
            record.update(ema_loss=ema_metrics["loss"], ema_top1=ema_metrics["top1"], ema_top5=ema_metrics["top5"])
            chosen = ema_metrics
        metric = chosen[args.eval_metric]
        lr_scheduler.step(epoch + 1, metric)
        record.update(lr=optimizer.param_groups[0]["lr"], metric=metric)
        history.append(record)
        is_best = keeper.better(metric, best[0])
        if is_best:
            best = (metric, epoch + 1)

        if info.distributed:
            same, diff = ranks_in_sync(model, info, buffers=bool(args.dist_bn))
            if not same:
                log(f"WARNING: ranks out of sync after epoch {epoch + 1} (max fingerprint difference {diff:.3g})")
        rng = get_rng_state()
        rng_all = [None] * info.world_size
        if info.distributed:
            dist.all_gather_object(rng_all, rng)
        else:
            rng_all = [rng]
        ema_note = f" | EMA top-1 {ema_metrics['top1']:.2f}" if ema_metrics is not None else ""
        if train_metrics.get("skipped_updates"):
            ema_note += f" | {train_metrics['skipped_updates']:.0f} update(s) skipped for a non-finite loss"
        log(f"Epoch {epoch + 1}/{num_epochs}: train loss {train_metrics['train_loss']:.4f} | validation loss "
            f"{eval_metrics['loss']:.4f} top-1 {eval_metrics['top1']:.2f} top-5 {eval_metrics['top5']:.2f}{ema_note}"
            f" | lr {record['lr']:.2e} | {train_metrics['epoch_seconds']:.1f}s "
            f"({train_metrics['train_img_per_s']:.0f} img/s)")
        if info.is_primary:
            state = dict(
                format=TRAIN_FORMAT, arch=args.model, epoch=epoch + 1, num_updates=num_updates,
                state_dict=model.state_dict(),
                state_dict_ema=model_ema.module.state_dict() if model_ema is not None else None,
                optimizer=optimizer.state_dict(), scheduler=to_primitive(lr_scheduler.state_dict()),
                scaler=scaler.state_dict() if scaler is not None else None,
                metric=metric, best_metric=best[0], best_epoch=best[1], eval_metric=args.eval_metric,
                history=history, rng=rng_all, world_size=info.world_size,
                data=dict(seed=args.seed, epoch=epoch + 1, data_dir=data_dir, data_config=to_primitive(data_config)),
                args=to_primitive(format_args(args)),
                versions=to_primitive(dict(torch=torch.__version__, timm=timm.__version__, vssm=vssm.__version__)),
            )
            keeper.save(state, epoch + 1, is_best, history)
            log(f"Checkpoint: epoch {epoch + 1} saved to {run_dir / 'last.pth'}"
                f"{' (new best)' if is_best else ''}")
            write_summary(run_dir, history)
            write_plot(run_dir, history, f"{args.model} on {data_label}, {input_note} - {run_dir.name}")
            tb.scalars({"train/loss": record["train_loss"], "eval/loss": record["eval_loss"],
                        "eval/top1": record["eval_top1"], "eval/top5": record["eval_top5"], "lr": record["lr"],
                        **({"ema/top1": record["ema_top1"]} if "ema_top1" in record else {})}, epoch + 1)
    tb.close()
    minutes, seconds = divmod(time.perf_counter() - run_start, 60)
    ema_note = f", EMA top-1 {ema_metrics['top1']:.2f}%" if ema_metrics is not None else ""
    best_note = f"best {args.eval_metric} {best[0]:.4g} at epoch {best[1]}" if best[0] is not None else "no best"
    log(f"Done: {num_epochs - start_epoch} epoch(s) in {int(minutes)}m{seconds:04.1f}s. Final validation top-1 "
        f"{eval_metrics['top1']:.2f}% (top-5 {eval_metrics['top5']:.2f}%{ema_note}) on {eval_metrics['count']} "
        f"images; {best_note}. Output: {run_dir}")


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


if __name__ == "__main__":
    run_cli(main)
