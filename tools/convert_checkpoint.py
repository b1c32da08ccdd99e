#!/usr/bin/env python3
"""Convert an official checkpoint (VMamba, LocalMamba, ...) to this project's keys, as safetensors.

Usage:
    python tools/convert_checkpoint.py --model vmamba_tiny_s1l8 --allow-pickle \
        vssm1_tiny_0230s_ckpt_epoch_264.pth vmamba_tiny_s1l8.safetensors

The model's ``checkpoint_filter_fn`` does the conversion and checks the result strictly against the model (every key
present, none extra, every shape equal); the output then loads with
``timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file='vmamba_tiny_s1l8.safetensors'))``.
On failure it prints one line starting with ``error:`` and exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="registered model name, e.g. vmamba_tiny_s1l8")
    p.add_argument("input", help="official checkpoint (.pth / .ckpt / .safetensors)")
    p.add_argument("output", help="output .safetensors file")
    p.add_argument("--no-ema", action="store_true", help="take the plain weights even when the file has EMA weights")
    p.add_argument("--allow-pickle", action="store_true",
                   help="read pickled objects (official training checkpoints store configs); only for trusted files")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size of the checkpoint (default: cfg)")
    p.add_argument("--model-kwargs", default=None, help="JSON dict of extra model arguments (custom configurations)")
    p.error = lambda message: p.exit(2, f"error: {message} (see --help)\n")  # one line, not the usage block
    return p.parse_args(argv)


def convert(args: argparse.Namespace) -> int:
    import timm
    import torch
    from safetensors.torch import save_file

    import vssm  # noqa: F401  (registers the models)
    from vssm.checkpoint import check_state_dict, find_filter, read_checkpoint

    if not timm.is_model(args.model):
        raise ValueError(f"unknown model {args.model!r}; vssm models: {', '.join(timm.list_models(module='vmamba'))}")
    try:
        kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    except json.JSONDecodeError:
        raise ValueError(f"--model-kwargs: got {args.model_kwargs!r}; allowed: a JSON object, e.g. "
                         "'{\"depths\": [2, 2, 9, 2]}'") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = timm.create_model(args.model, pretrained=False, device="meta", **kwargs)
    filter_fn = find_filter(model)
    if filter_fn is None:
        raise ValueError(f"model {args.model!r} has no checkpoint converter (no checkpoint_filter_fn in its module)")
    checkpoint = read_checkpoint(args.input, allow_pickle=args.allow_pickle)
    state_dict = filter_fn(checkpoint, model, use_ema=not args.no_ema)
    # the filter leaves the classifier to timm; a converted file must fit the model as built here, head included
    check_state_dict(state_dict, model, family=args.model)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, args.output, metadata={"model": args.model, "source": os.path.basename(args.input)})
    n = sum(t.numel() for t in tensors.values() if t.dtype != torch.int64)
    print(f"wrote {args.output}: {len(tensors)} tensors, {n / 1e6:.6f}M values, model {args.model}")
    return 0


def main(argv: List[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return convert(args)
    except Exception as e:  # noqa: BLE001 - the CLI reports any failure as one line
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
