#!/usr/bin/env python3
"""Train an mmdet / mmseg model from a config: a thin launcher over mmengine's Runner.

Usage:
    python tools/mm_train.py CONFIG [--work-dir DIR] [--resume [auto|CHECKPOINT]] [--amp]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch}]
    torchrun --nproc-per-node 8 tools/mm_train.py CONFIG --launcher pytorch

It does what mmdet's and mmseg's own ``tools/train.py`` do (which also work with our configs), plus two things:
checkpoints written by mmengine are read back with ``torch.load(weights_only=True)`` on every torch version, by
allow-listing exactly the non-tensor objects mmengine stores (``vssm.checkpoint.allow_mmengine_checkpoints``), so
``--resume`` works on torch >= 2.6 without disabling safe loading; and bad input (a missing config, an unknown
backbone arch, a checkpoint that does not fit) ends with one line starting with ``error:`` and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="config file (e.g. configs/detection/mask-rcnn_vmamba-t_fpn_1x_coco.py)")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default: ./work_dirs/<config name>)")
    p.add_argument("--resume", nargs="?", type=str, const="auto", default=None, metavar="CHECKPOINT",
                   help="resume training: from CHECKPOINT, or with no value (or 'auto') from the latest checkpoint of "
                        "the work dir")
    p.add_argument("--amp", action="store_true", help="automatic mixed precision training")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                   help="override config entries, e.g. train_dataloader.batch_size=4 model.backbone.with_cp=True")
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                   help="'pytorch' under torchrun for multi-GPU training")
    p.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace):
    """The config with the command line applied (work dir, resume, AMP, launcher, overrides)."""
    from mmengine.config import Config

    if not osp.isfile(args.config):
        raise FileNotFoundError(f"config {args.config!r} does not exist")
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if cfg.optim_wrapper.get("type", "OptimWrapper") == "AmpOptimWrapper":
            print("note: the config already uses AmpOptimWrapper", file=sys.stderr)
        else:
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f"--resume checkpoint {args.resume!r} does not exist")
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv: List[str] | None = None) -> int:
    args = parse_args(argv)
    from vssm.utils.allocator import tune_cpu_allocator

    tune_cpu_allocator()
    if not osp.isfile(args.config):  # before the heavy imports
        return _fail(FileNotFoundError(f"config {args.config!r} does not exist"))
    import pickle

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from vssm.checkpoint import CheckpointError, allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    try:  # set-up: everything here fails only on bad input
        cfg = build_config(args)
        runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    except (OSError, ImportError, SyntaxError, KeyError, ValueError, TypeError) as e:
        return _fail(e)
    try:
        runner.train()
    except (CheckpointError, pickle.UnpicklingError) as e:  # unreadable / unfit checkpoints
        return _fail(e)
    return 0


def _fail(e: BaseException) -> int:
    msg = " ".join(str(e).split()) or type(e).__name__
    if len(msg) > 1000:  # e.g. every missing key of a checkpoint: one readable line
        msg = msg[:1000] + " ..."
    print(f"error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
