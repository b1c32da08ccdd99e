"""Every config under configs/detection and configs/segmentation parses, inherits from the installed mmdet / mmseg
base configs, documents its target, and builds its model with a backbone that fits the neck / heads."""
from __future__ import annotations

import copy
import functools
import re

import pytest
import torch
from mm_helpers import CONFIGS
from mmengine.config import Config
from mmengine.registry import DefaultScope

DETECTION = sorted((CONFIGS / "detection").glob("*.py"))
SEGMENTATION = sorted((CONFIGS / "segmentation").glob("*.py"))
ALL = DETECTION + SEGMENTATION


@functools.cache
def _config(path) -> Config:
    """Each config parsed once per session: resolving ``mmdet::`` / ``mmseg::`` bases reads every metafile of the
    package (about a second per base), so re-parsing would dominate these tests."""
    return Config.fromfile(str(path))


def test_the_expected_configs_exist():
    names = {p.name for p in ALL}
    for size in "tsb":
        assert {f"mask-rcnn_vmamba-{size}_fpn_1x_coco.py", f"mask-rcnn_vmamba-{size}_fpn_ms-crop-3x_coco.py",
                f"retinanet_vmamba-{size}_fpn_1x_coco.py",
                f"upernet_vmamba-{size}_8xb2-160k_ade20k-512x512.py"} <= names
    assert {"mask-rcnn_vmamba-test_fpn_shapes-smoke.py", "upernet_vmamba-test_shapes-smoke.py"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_config_documents_its_target(path):
    header = path.read_text().split("_base_")[0]
    assert re.search(r"^# Target", header, re.M), f"{path.name}: no '# Target' line in the header comment"
    if "smoke" not in path.name and "Target: none" not in header:
        assert re.search(r"\d\d\.\d (box AP|mIoU)", header), f"{path.name}: the published number is missing"


# Parameters of the whole detector / segmentor in the official VMamba README (millions, rounded).
OFFICIAL_PARAMS = {
    "mask-rcnn_vmamba-t_fpn_1x_coco.py": 50, "mask-rcnn_vmamba-s_fpn_1x_coco.py": 70,
    "mask-rcnn_vmamba-b_fpn_1x_coco.py": 108, "upernet_vmamba-t_8xb2-160k_ade20k-512x512.py": 62,
    "upernet_vmamba-s_8xb2-160k_ade20k-512x512.py": 82, "upernet_vmamba-b_8xb2-160k_ade20k-512x512.py": 122,
}
# The 3x configs change data and schedule only: their models are those of the 1x configs (checked above); the smoke
# configs' models are built and trained by test_mm_launchers.py.
BUILT = [p for p in ALL if "3x" not in p.name and "smoke" not in p.name]


def _build(cfg, device):
    scope = cfg.default_scope
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    with DefaultScope.overwrite_default_scope(scope), torch.device(device):
        return registry.build(copy.deepcopy(cfg.model))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_config_parses_with_the_recipe(path):
    cfg = _config(path)
    assert cfg.custom_imports == dict(imports=["vssm.mm"], allow_failed_imports=False)
    assert cfg.default_scope == ("mmdet" if path in DETECTION else "mmseg")
    assert cfg.model.backbone.type == "VMambaBackbone"
    expected_arch = {"-t_": "tiny", "-s_": "small", "-b_": "base", "-test_": "test"}
    arch = next(v for k, v in expected_arch.items() if k in path.name)
    assert cfg.model.backbone.arch == arch
    if "smoke" in path.name:
        assert cfg.model.backbone.init_cfg is None
        return
    assert cfg.model.backbone.drop_path_rate == {"tiny": 0.2, "small": 0.3, "base": 0.6}[arch]
    assert cfg.model.backbone.init_cfg.type == "Pretrained"
    assert cfg.optim_wrapper.optimizer.type == "AdamW"
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys["norm"] == dict(decay_mult=0.0)
    if "3x" in path.name:
        one_x = _config(path.with_name(path.name.replace("ms-crop-3x", "1x")))
        assert cfg.model.to_dict() == one_x.model.to_dict()


@pytest.mark.parametrize("path", BUILT, ids=lambda p: p.name)
def test_config_builds_and_channels_match(path):
    """Builds the model: on the CPU for VMamba-T, on the meta device (the same modules and shapes without memory or
    initialisation time) for VMamba-S / -B. The parameter counts must be the official ones."""
    cfg = _config(path)
    torch.manual_seed(0)
    device = "meta" if re.search(r"-[sb]_", path.name) else "cpu"
    model = _build(cfg, device)
    assert next(model.parameters()).device.type == device
    backbone = model.backbone
    if path in DETECTION:
        start = cfg.model.neck.get("start_level", 0)
        assert backbone.out_channels == cfg.model.neck.in_channels
        assert [m.conv.in_channels for m in model.neck.lateral_convs] == backbone.out_channels[start:]
    else:
        head, aux = cfg.model.decode_head, cfg.model.auxiliary_head
        assert [backbone.out_channels[i] for i in head.in_index] == list(head.in_channels)
        assert backbone.out_channels[aux.in_index] == aux.in_channels
        assert model.decode_head.lateral_convs[0].conv.in_channels == backbone.out_channels[0]
    if path.name in OFFICIAL_PARAMS:
        params = sum(p.numel() for p in model.parameters())
        assert round(params / 1e6) == OFFICIAL_PARAMS[path.name], params


def test_detection_recipes_match_the_official_ones():
    one = _config(CONFIGS / "detection" / "mask-rcnn_vmamba-t_fpn_1x_coco.py")
    assert (one.optim_wrapper.optimizer.lr, one.optim_wrapper.optimizer.weight_decay) == (1e-4, 0.05)
    assert one.train_cfg.max_epochs == 12 and one.param_scheduler[1].milestones == [8, 11]
    assert one.train_dataloader.batch_size == 2  # x 8 GPUs
    three = _config(CONFIGS / "detection" / "mask-rcnn_vmamba-s_fpn_ms-crop-3x_coco.py")
    assert three.train_cfg.max_epochs == 36 and three.param_scheduler[1].milestones == [27, 33]
    assert three.train_dataloader.dataset.pipeline[3].type == "RandomChoice"
    assert three.model.backbone.arch == "small" and three.model.backbone.drop_path_rate == 0.3


def test_segmentation_recipe_matches_the_official_one():
    cfg = _config(CONFIGS / "segmentation" / "upernet_vmamba-t_8xb2-160k_ade20k-512x512.py")
    assert (cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay) == (6e-5, 0.01)
    assert cfg.train_cfg.max_iters == 160000 and cfg.param_scheduler[0].end == 1500
    assert cfg.crop_size == (512, 512) and cfg.model.decode_head.num_classes == 150
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"


def test_smoke_configs_are_cpu_ready(shapes_root):
    det = _config(CONFIGS / "detection" / "mask-rcnn_vmamba-test_fpn_shapes-smoke.py")
    seg = _config(CONFIGS / "segmentation" / "upernet_vmamba-test_shapes-smoke.py")
    assert det.data_root.rstrip("/") == seg.data_root.rstrip("/") == str(shapes_root)
    assert (shapes_root / "annotations" / "instances_train.json").is_file()
    assert det.model.roi_head.bbox_head.num_classes == 8 and seg.model.decode_head.num_classes == 9
    assert seg.model.decode_head.norm_cfg.type == seg.model.auxiliary_head.norm_cfg.type == "BN"
    assert seg.train_dataloader.batch_size >= 2 and det.train_dataloader.batch_size >= 2
    assert det.val_evaluator.type == "CocoMetric" and seg.val_evaluator.type == "IoUMetric"
