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
import logging
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import timm
import torch
import torch.distributed as dist
import torch.nn as nn
import yaml
from timm.data import resolve_data_config
from timm.optim import create_optimizer_v2, optimizer_kwargs
from timm.scheduler import create_scheduler_v2, scheduler_kwargs
from timm.utils import ModelEmaV3, distribute_bn, random_seed

import vssm
from vssm.checkpoint import (
    TRAIN_FORMAT,
    CheckpointError,
    is_train_checkpoint,
    read_checkpoint,
    to_primitive,
)
from vssm.data.shapes import SHAPES, prepare_classification
from vssm.train import (
    CheckpointKeeper,
    DistInfo,
    Logger,
    ParseKwargs,
    TensorBoard,
    UsageError,
    amp_context,
    check_model_name,
    create_image_dataset,
    create_model_checked,
    create_seeded_loader,
    dataset_num_classes,
    evaluate,
    format_args,
    gather_rng_states,
    init_distributed,
    log_epoch,
    make_train_loss,
    mixup_collate,
    parse_with_config,
    ranks_in_sync,
    resolve_lr,
    restore,
    run_cli,
    save_epoch,
    train_one_epoch,
)
from vssm.utils.allocator import tune_cpu_allocator

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
    group.add_argument("--shuffle-rate", type=float, default=None, metavar="PCT",
                       help="stochastic layer-wise shuffle rate of the last layer (Vim; ShuffleMamba-B recipe: 0.5)")

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
    need(args.shuffle_rate is None or 0 <= args.shuffle_rate <= 1, "--shuffle-rate", args.shuffle_rate, "in [0, 1]")
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
            ckpt = read_checkpoint(probe.resume)
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
    """A training run: arguments, ranks, data, model, optimisation, resume, the epochs, the final report."""
    args, resume_ckpt = parse_args(argv)
    tune_cpu_allocator()
    info = init_distributed(args.device, args.dist_backend)
    log = Logger(info)
    random_seed(args.seed, info.rank)
    if info.device.type == "cpu" and info.distributed:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))

    dataset_train, dataset_val, data_dir = prepare_data(args, info, log)  # first: the class count comes from it
    model, weights_note, data_config = build_model(args, info, dataset_train)
    run_dir = run_dir_for(args, info)
    lr_note = resolve_lr(args, info)
    optimizer, scaler, model_ema = build_optimization(args, info, model)
    amp_ctx = lambda: amp_context(info.device, args.amp, args.amp_dtype)  # noqa: E731
    loader_train, loader_val, mixup = build_loaders(args, info, data_config, dataset_train, dataset_val)
    loss_fn = make_train_loss(args, mixup)
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
    train_model = wrap_for_training(args, info, model, data_config["input_size"])

    tb = TensorBoard(run_dir if info.is_primary else None)
    keeper = CheckpointKeeper(run_dir, args.checkpoint_hist, decreasing=args.eval_metric == "loss")
    open_run_dir(args, info, log, run_dir, keeper)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"Model: {args.model} ({n_params / 1e6:.2f}M parameters, {args.num_classes} classes"
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
    plot_title = f"{args.model} on {data_label}, " + "x".join(str(v) for v in data_config["input_size"][1:]) + " px"
    run_start = time.perf_counter()
    eval_metrics: dict[str, float] = {}
    ema_metrics: dict[str, float] | None = None
    for epoch in range(start_epoch, num_epochs):
        loader_train.set_epoch(epoch)
        if args.mixup_off_epoch and epoch >= args.mixup_off_epoch and mixup:
            loader_train.mixup_enabled = False
        train_metrics, num_updates = train_one_epoch(
            epoch, num_epochs, train_model, loader_train, optimizer, loss_fn, args, info, amp_ctx=amp_ctx,
            scaler=scaler, lr_scheduler=lr_scheduler, model_ema=model_ema, num_updates=num_updates, log=log,
            on_first_step=check_sync if epoch == start_epoch else None)
        eval_metrics, ema_metrics = validate(args, info, model, model_ema, loader_val, amp_ctx)
        chosen = ema_metrics if ema_metrics is not None else eval_metrics
        metric = chosen[args.eval_metric]
        lr_scheduler.step(epoch + 1, metric)
        record = dict(epoch=epoch + 1, **train_metrics, eval_loss=eval_metrics["loss"],
                      eval_top1=eval_metrics["top1"], eval_top5=eval_metrics["top5"])
        if ema_metrics is not None:
            record.update(ema_loss=ema_metrics["loss"], ema_top1=ema_metrics["top1"], ema_top5=ema_metrics["top5"])
        record.update(lr=optimizer.param_groups[0]["lr"], metric=metric)
        history.append(record)
        is_best = keeper.better(metric, best[0])
        if is_best:
            best = (metric, epoch + 1)
        if info.distributed:
            same, diff = ranks_in_sync(model, info, buffers=bool(args.dist_bn))
            if not same:
                log(f"WARNING: ranks out of sync after epoch {epoch + 1} (max fingerprint difference {diff:.3g})")
        log_epoch(log, epoch, num_epochs, train_metrics, eval_metrics, ema_metrics, record)
        rng = gather_rng_states(info)  # a collective: every rank
        state = dict(
            format=TRAIN_FORMAT, arch=args.model, epoch=epoch + 1, num_updates=num_updates,
            state_dict=model.state_dict(),
            state_dict_ema=model_ema.module.state_dict() if model_ema is not None else None,
            optimizer=optimizer.state_dict(), scheduler=to_primitive(lr_scheduler.state_dict()),
            scaler=scaler.state_dict() if scaler is not None else None,
            metric=metric, best_metric=best[0], best_epoch=best[1], eval_metric=args.eval_metric,
            history=history, rng=rng, world_size=info.world_size,
            data=dict(seed=args.seed, epoch=epoch + 1, data_dir=data_dir, data_config=to_primitive(data_config)),
            args=to_primitive(format_args(args)),
            versions=to_primitive(dict(torch=torch.__version__, timm=timm.__version__, vssm=vssm.__version__)),
        ) if info.is_primary else None
        if info.is_primary:
            save_epoch(log, run_dir, keeper, tb, state, record, history, is_best, f"{plot_title} - {run_dir.name}")
    tb.close()
    minutes, seconds = divmod(time.perf_counter() - run_start, 60)
    ema_note = f", EMA top-1 {ema_metrics['top1']:.2f}%" if ema_metrics is not None else ""
    best_note = f"best {args.eval_metric} {best[0]:.4g} at epoch {best[1]}" if best[0] is not None else "no best"
    log(f"Done: {num_epochs - start_epoch} epoch(s) in {int(minutes)}m{seconds:04.1f}s. Final validation top-1 "
        f"{eval_metrics['top1']:.2f}% (top-5 {eval_metrics['top5']:.2f}%{ema_note}) on {eval_metrics['count']} "
        f"images; {best_note}. Output: {run_dir}")


# ---------------------------------------------------------------------------------------------------------------
# the steps of main()


def build_model(args: argparse.Namespace, info: DistInfo, dataset_train: Any) -> tuple[nn.Module, str, dict]:
    """The model (with --initial-checkpoint / --pretrained weights) on its device, and its data config."""
    num_classes = args.num_classes or dataset_num_classes(dataset_train)
    if num_classes is None:
        raise UsageError(f"--num-classes is needed: the class count of {args.dataset or 'the data'} is unknown")
    args.num_classes = num_classes
    model, weights_note = create_model_checked(
        args.model, scan=args.scan, model_kwargs=args.model_kwargs, pretrained=args.pretrained or None,
        num_classes=num_classes, drop_rate=args.drop, drop_path_rate=args.drop_path, global_pool=args.gp,
        shuffle_rate=args.shuffle_rate,
        weights=args.initial_checkpoint, weights_flag="--initial-checkpoint", adapt_classifier=True)
    data_config = resolve_data_config(vars(args), model=model, verbose=False)
    if args.grad_checkpointing:
        model.set_grad_checkpointing(True)
    model.to(info.device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, weights_note, data_config


def build_optimization(args: argparse.Namespace, info: DistInfo, model: nn.Module
                       ) -> tuple[torch.optim.Optimizer, torch.amp.GradScaler | None, ModelEmaV3 | None]:
    """timm's optimizer for the flags, the fp16 GradScaler, and the EMA model (``--model-ema``)."""
    try:
        optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args))
    except (ValueError, AssertionError, KeyError) as e:
        raise UsageError(f"--opt {args.opt!r}: {str(e).strip() or 'not supported'}") from None
    scaler = torch.amp.GradScaler(info.device.type) if args.amp and args.amp_dtype == "float16" else None
    model_ema = None
    if args.model_ema:
        model_ema = ModelEmaV3(model, decay=args.model_ema_decay, use_warmup=args.model_ema_warmup,
                               device="cpu" if args.model_ema_force_cpu else None)
    return optimizer, scaler, model_ema


def build_loaders(args: argparse.Namespace, info: DistInfo, data_config: dict, dataset_train: Any,
                  dataset_val: Any) -> tuple[Any, Any, bool]:
    """The seeded train / validation loaders (order and augmentation a function of seed, epoch and rank), and
    whether mixup / cutmix is on."""
    collate = mixup_collate(args, args.num_classes)
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
    return loader_train, loader_val, collate is not None


def wrap_for_training(args: argparse.Namespace, info: DistInfo, model: nn.Module, input_size: Sequence[int]
                      ) -> nn.Module:
    """DistributedDataParallel under torchrun, then torch.compile with ``--torchcompile``.

    Before compiling, one eager forward of a one-image batch at the input size (eval mode, no gradient: BatchNorm
    statistics untouched) caches the per-size constants (scan orders, ...). A cache miss inside the compiled region
    would graph-break; the recompiles that follow switch on dynamic shapes, on which inductor failed (DESIGN, the op).
    """
    if args.torchcompile:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=info.device))
        model.train(was_training)
    train_model = model
    if info.distributed:
        device_ids = [info.device.index] if info.device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if args.torchcompile:
        train_model = torch.compile(train_model, backend=args.torchcompile)
    return train_model


def open_run_dir(args: argparse.Namespace, info: DistInfo, log: Logger, run_dir: Path, keeper: CheckpointKeeper
                 ) -> None:
    """Rank 0: the run folder, its log.txt and args.yaml; temporaries of writes a killed run left are removed."""
    if not info.is_primary:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    log.open(run_dir / "log.txt")
    stale = keeper.remove_stale_temporaries()
    if stale:
        log(f"Checkpoint: removed {len(stale)} temporary file(s) of interrupted writes ({', '.join(stale[:3])})")
    with open(run_dir / "args.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump(format_args(args), f, sort_keys=True)


def validate(args: argparse.Namespace, info: DistInfo, model: nn.Module, model_ema: ModelEmaV3 | None,
             loader_val: Any, amp_ctx: Any) -> tuple[dict[str, float], dict[str, float] | None]:
    """Validation metrics of the model and, when it is kept on the device, of its EMA (BatchNorm statistics first
    reduced across ranks with ``--dist-bn``)."""
    if info.distributed and args.dist_bn:
        distribute_bn(model, info.world_size, args.dist_bn == "reduce")
    eval_metrics = evaluate(model, loader_val, info, amp_ctx=amp_ctx, channels_last=args.channels_last)
    ema_metrics = None
    if model_ema is not None and not args.model_ema_force_cpu:
        if info.distributed and args.dist_bn:
            distribute_bn(model_ema, info.world_size, args.dist_bn == "reduce")
        ema_metrics = evaluate(model_ema.module, loader_val, info, amp_ctx=amp_ctx, channels_last=args.channels_last)
    return eval_metrics, ema_metrics


if __name__ == "__main__":
    run_cli(main)
