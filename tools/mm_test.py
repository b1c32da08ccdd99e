#!/usr/bin/env python3
"""Evaluate an mmdet / mmseg checkpoint on the test split of its config: a thin launcher over mmengine's Runner.

Usage:
    python tools/mm_test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch}]
    torchrun --nproc-per-node 8 tools/mm_test.py CONFIG CHECKPOINT --launcher pytorch

The metrics of the config's ``test_evaluator`` (COCO box / mask AP, mIoU, ...) are logged and written to the work dir.
Checkpoints are read with ``torch.load(weights_only=True)`` (mmengine's objects allow-listed, see
``vssm.checkpoint.allow_mmengine_checkpoints``). Bad input ends with one line starting with ``error:`` and exit
status 2.
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
    p.add_argument("config", help="config file")
    p.add_argument("checkpoint", help="checkpoint file (e.g. work_dirs/<config>/epoch_12.pth)")
    p.add_argument("--work-dir", help="where logs and metrics go (default: ./work_dirs/<config name>)")
    p.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                   help="override config entries, e.g. test_dataloader.batch_size=2")
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                   help="'pytorch' under torchrun for multi-GPU testing")
    p.add_argument("--local-rank", "--local_rank", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace):
    """The config with the command line applied (checkpoint, work dir, launcher, overrides)."""
    from mmengine.config import Config

    if not osp.isfile(args.config):
        raise FileNotFoundError(f"config {args.config!r} does not exist")
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint {args.checkpoint!r} does not exist")
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = None  # loaded by main(), strictly
    cfg.resume = False
    return cfg


def main(argv: List[str] | None = None) -> int:
    args = parse_args(argv)
    from vssm.utils.allocator import tune_cpu_allocator

    tune_cpu_allocator()
    for what, path in (("config", args.config), ("checkpoint", args.checkpoint)):  # before the heavy imports
        if not osp.isfile(path):
            return _fail(FileNotFoundError(f"{what} {path!r} does not exist"))
    import pickle

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from vssm.checkpoint import allow_mmengine_checkpoints

    allow_mmengine_checkpoints()
    try:  # set-up: everything here fails only on bad input
        cfg = build_config(args)
        runner = Runner.from_cfg(cfg) if "runner_type" not in cfg else RUNNERS.build(cfg)
    except (OSError, ImportError, SyntaxError, KeyError, ValueError, TypeError) as e:
        return _fail(e)
    try:  # strictly: a checkpoint of another model must not evaluate with half of its weights random
        runner.load_checkpoint(args.checkpoint, map_location="cpu", strict=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, KeyError) as e:
        return _fail(RuntimeError(f"checkpoint {args.checkpoint!r} does not load into the config's model: {e}"))
    runner.test()
    return 0


def _fail(e: BaseException) -> int:
    msg = " ".join(str(e).split()) or type(e).__name__
    if len(msg) > 1000:  # e.g. every missing key of a checkpoint: one readable line
        msg = msg[:1000] + " ..."
    print(f"error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
