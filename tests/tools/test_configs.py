"""Every recipe in configs/classification parses with tools/train.py's arguments and names a registered model."""
from __future__ import annotations

import importlib.util
import sys

import pytest
import timm
from toolrun import ROOT, TRAIN

RECIPES = sorted((ROOT / "configs" / "classification").glob("*.yaml"))


@pytest.fixture(scope="module")
def train_module():
    sys.path.insert(0, str(TRAIN.parent))
    spec = importlib.util.spec_from_file_location("vssm_tools_train", TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_parses_and_names_a_model(recipe, train_module):
    args = train_module.parse_with_config(train_module.build_parser(), ["-c", str(recipe)])
    assert timm.is_model(args.model), args.model
    train_module.check_args(args)
    assert args.epochs >= 1 and args.batch_size >= 1


def test_vmamba_tiny_recipe_matches_the_official_numbers(train_module):
    args = train_module.parse_with_config(
        train_module.build_parser(), ["-c", str(ROOT / "configs/classification/vmamba_tiny_in1k.yaml")])
    assert (args.model, args.batch_size, args.opt, args.weight_decay) == ("vmamba_tiny", 128, "adamw", 0.05)
    assert (args.epochs + args.warmup_epochs, args.warmup_epochs, args.warmup_prefix) == (300, 20, True)
    assert (args.drop_path, args.mixup, args.cutmix, args.reprob, args.smoothing) == (0.2, 0.8, 1.0, 0.25, 0.1)
    assert args.aa == "rand-m9-mstd0.5-inc1" and args.model_ema and args.model_ema_decay == 0.9999
    info = train_module.DistInfo(device=None, world_size=8)
    train_module.resolve_lr(args, info)
    assert args.lr == pytest.approx(1e-3)  # 128 x 8 = 1024 images: 5e-4 per 512
