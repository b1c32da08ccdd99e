#!/usr/bin/env python3
"""Evaluate a classifier checkpoint on an ImageFolder split: top-1 / top-5 accuracy, loss and images per second.

A checkpoint written by ``tools/train.py`` needs nothing else: its model, scan, class count, preprocessing and data
set (the embedded shapes set included) are read from it::

    python tools/validate.py --checkpoint output/train/<run>/best.pth

Any other checkpoint (e.g. an official VMamba release) goes through the model's own ``checkpoint_filter_fn``
(timm's pretrained loader, ``pretrained_cfg_overlay=dict(file=...)``); name the model and the data::

    python tools/validate.py --model vmamba_tiny --checkpoint vssm1_tiny_0230s_ckpt_epoch_264.pth \\
        --data-dir /data/imagenet

Checkpoints are loaded with ``torch.load(weights_only=True)``. Under ``torchrun`` the split is shared between the
processes and the metrics are summed exactly (no padding duplicates).
"""
from __future__ import annotations

import argparse
import json
from typing import Sequence

import torch
from timm.data import resolve_data_config

from vssm.checkpoint import CheckpointError, is_train_checkpoint, read_checkpoint
from vssm.data.shapes import prepare_classification
from vssm.train import (
    ParseKwargs,
    UsageError,
    amp_context,
    check_model_name,
    create_image_dataset,
    create_model_checked,
    create_seeded_loader,
    dataset_num_classes,
    evaluate,
    init_distributed,
    parse_with_config,
    run_cli,
)
from vssm.utils.allocator import tune_cpu_allocator

_DATA_KEYS = ("img_size", "input_size", "crop_pct", "mean", "std", "interpolation")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate.py", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("-c", "--config", default="", metavar="FILE", help="YAML file of argument defaults")
    parser.add_argument("--data-dir", default="", metavar="DIR",
                        help="data set root (ImageNet layout); default: the data the checkpoint was trained on")
    parser.add_argument("--dataset", "-d", default="", metavar="NAME", help="timm dataset type ('' = folder)")
    parser.add_argument("--split", default="validation", metavar="NAME", help="split to evaluate (validation)")
    parser.add_argument("--class-map", default="", metavar="FILE")
    parser.add_argument("--model", default="", metavar="NAME", help="timm model (default: the checkpoint's)")
    parser.add_argument("--checkpoint", default="", metavar="PATH", help="weights to evaluate")
    parser.add_argument("--pretrained", action="store_true", help="the model's timm pretrained weights")
    parser.add_argument("--use-ema", action="store_true", help="the EMA weights of a training checkpoint")
    parser.add_argument("--num-classes", type=int, default=None, metavar="N")
    parser.add_argument("--scan", default=None, metavar="NAME")
    parser.add_argument("--model-kwargs", nargs="*", default={}, action=ParseKwargs, metavar="KEY=VALUE")
    parser.add_argument("--img-size", type=int, default=None, metavar="N")
    parser.add_argument("--input-size", type=int, nargs=3, default=None, metavar=("C", "H", "W"))
    parser.add_argument("--crop-pct", type=float, default=None, metavar="PCT")
    parser.add_argument("--mean", type=float, nargs="+", default=None)
    parser.add_argument("--std", type=float, nargs="+", default=None)
    parser.add_argument("--interpolation", default="", metavar="NAME")
    parser.add_argument("-b", "--batch-size", type=int, default=64, metavar="N")
    parser.add_argument("-j", "--workers", type=int, default=2, metavar="N")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--amp-dtype", default="float16", choices=("float16", "bfloat16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="", help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N")
    parser.add_argument("--results-file", default="", metavar="FILE", help="also write the results as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_with_config(build_parser(), argv)
    tune_cpu_allocator()
    if args.batch_size < 1:
        raise UsageError(f"-b/--batch-size {args.batch_size}: must be at least 1")
    if args.workers < 0:
        raise UsageError(f"-j/--workers {args.workers}: must be 0 or more")
    ckpt = None
    if args.checkpoint:
        try:
            ckpt = read_checkpoint(args.checkpoint)
        except CheckpointError as e:
            raise UsageError(f"--checkpoint {e}") from None
    ours = is_train_checkpoint(ckpt)
    saved = dict(ckpt.get("args") or {}) if ours else {}
    model_name = args.model or saved.get("model")
    if not model_name:
        raise UsageError("--model is required: the checkpoint was not written by tools/train.py"
                         if ckpt is not None else "--model is required (or give a --checkpoint of tools/train.py)")
    check_model_name(model_name)
    if not args.checkpoint and not args.pretrained:
        raise UsageError("nothing to evaluate: give --checkpoint PATH or --pretrained")

    info = init_distributed(args.device)
    say = print if info.is_primary else (lambda *a, **k: None)

    if args.data_dir or args.dataset:
        data_dir, flag = args.data_dir, "--data-dir"
    elif ours and not saved.get("data_dir") and not saved.get("dataset"):
        data_dir, flag = str(prepare_classification(
            img_size=saved.get("img_size") or 64, train_per_class=saved.get("shapes_train_per_class", 500),
            val_per_class=saved.get("shapes_val_per_class", 100), seed=0)), "shapes data set"
    elif ours:
        data_dir, flag = saved["data_dir"], "--data-dir (from the checkpoint)"
    else:
        raise UsageError("--data-dir is required for a checkpoint not written by tools/train.py")
    extra = dict(class_map=args.class_map) if args.class_map else {}
    dataset = create_image_dataset(args.dataset or (saved.get("dataset", "") if not args.data_dir else ""),
                                   data_dir, args.split, is_training=False, flag=flag, **extra)

    num_classes = args.num_classes or saved.get("num_classes") or dataset_num_classes(dataset)
    model_kwargs = {**(saved.get("model_kwargs") or {}), **args.model_kwargs}
    model, what = create_model_checked(
        model_name, scan=args.scan or saved.get("scan"), model_kwargs=model_kwargs, num_classes=num_classes,
        pretrained=(args.pretrained and not args.checkpoint) or None, weights=args.checkpoint, ckpt=ckpt,
        use_ema=args.use_ema)

    cfg_args = {k: saved.get(k) for k in _DATA_KEYS}
    cfg_args.update({k: getattr(args, k) for k in _DATA_KEYS if getattr(args, k) not in (None, "")})
    data_config = resolve_data_config(cfg_args, model=model, verbose=False)
    model.to(info.device).eval()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    loader = create_seeded_loader(
        dataset, input_size=data_config["input_size"], batch_size=args.batch_size, is_training=False, info=info,
        seed=0, num_workers=args.workers, mean=data_config["mean"], std=data_config["std"],
        transform_kwargs=dict(interpolation=data_config["interpolation"], crop_pct=data_config["crop_pct"]))
    say(f"Validate: {model_name} with {what}")
    say(f"Data: {len(dataset)} images from {data_dir} (split {args.split}), input {tuple(data_config['input_size'])}"
        f", crop_pct {data_config['crop_pct']}, {info.world_size} process(es) on {info.device}")
    metrics = evaluate(model, loader, info, amp_ctx=lambda: amp_context(info.device, args.amp, args.amp_dtype),
                       channels_last=args.channels_last, log=say, log_interval=args.log_interval)
    say(f" * Acc@1 {metrics['top1']:.3f} ({100 - metrics['top1']:.3f})  Acc@5 {metrics['top5']:.3f} "
        f"({100 - metrics['top5']:.3f})  loss {metrics['loss']:.4f}  {metrics['count']} images  "
        f"{metrics['img_per_s']:.1f} img/s")
    if args.results_file and info.is_primary:
        results = dict(model=model_name, checkpoint=args.checkpoint, data_dir=data_dir, split=args.split,
                       input_size=list(data_config["input_size"]), **metrics)
        with open(args.results_file, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    run_cli(main)
