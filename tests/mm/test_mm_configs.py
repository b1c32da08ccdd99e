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


# Backbone type of each family, keyed by the family's name in the config file names.
FAMILY_TYPES = {
    "vmamba": "VMambaBackbone", "vim": "VimBackbone", "mambavision": "MambaVisionBackbone", "mlla": "MLLABackbone",
    "efficient-vmamba": "EfficientVMambaBackbone", "msvmamba": "MSVMambaBackbone",
    "mobilemamba": "MobileMambaBackbone",
}


def _family(path) -> str:
    """``mask-rcnn_msvmamba-t_fpn_1x_coco.py`` -> ``msvmamba``."""
    return re.match(r"^[a-z0-9-]+_([a-z-]+?)-(t|s|b|b1|b4|test)_", path.name).group(1)


def test_the_expected_configs_exist():
    names = {p.name for p in ALL}
    for size in "tsb":
        assert {f"mask-rcnn_vmamba-{size}_fpn_1x_coco.py", f"mask-rcnn_vmamba-{size}_fpn_ms-crop-3x_coco.py",
                f"retinanet_vmamba-{size}_fpn_1x_coco.py",
                f"upernet_vmamba-{size}_8xb2-160k_ade20k-512x512.py"} <= names
    assert {"mask-rcnn_vmamba-test_fpn_shapes-smoke.py", "upernet_vmamba-test_shapes-smoke.py"} <= names
    # each family's published detection / segmentation setups (MLLA publishes segmentation for its base model only)
    assert {
        "cascade-mask-rcnn_vim-t_simple-fpn_lsj-100e_coco.py", "upernet_vim-t_4xb8-60k_ade20k-512x512.py",
        "cascade-mask-rcnn_mambavision-t_fpn_ms-crop-3x_coco.py", "upernet_mambavision-t_16xb1-160k_ade20k-512x512.py",
        "mask-rcnn_mlla-t_fpn_ms-crop-1x_coco.py", "mask-rcnn_mlla-t_fpn_ms-crop-3x_coco.py",
        "upernet_mlla-b_8xb2-160k_ade20k-512x512.py",
        "retinanet_efficient-vmamba-t_fpn_1x_coco.py", "mask-rcnn_efficient-vmamba-t_fpn_1x_coco.py",
        "upernet_efficient-vmamba-t_8xb2-160k_ade20k-512x512.py",
        "mask-rcnn_msvmamba-t_fpn_1x_coco.py", "mask-rcnn_msvmamba-t_fpn_ms-crop-3x_coco.py",
        "upernet_msvmamba-t_8xb2-160k_ade20k-512x512.py",
        "mask-rcnn_mobilemamba-b1_upsample-fpn_1x_coco.py", "retinanet_mobilemamba-b1_upsample-fpn_1x_coco.py",
        "fpn_mobilemamba-b4_4xb8-160k_ade20k-512x512.py", "deeplabv3_mobilemamba-b4_4xb8-80k_ade20k-512x512.py",
        "pspnet_mobilemamba-b4_4xb8-80k_ade20k-512x512.py", "ssdlite-320_mobilemamba-b1_8xb24-120e_coco.py",
        "ssdlite-512_mobilemamba-b1_8xb24-120e_coco.py",
    } <= names
    # at least one detection and one segmentation smoke config per family
    for family in FAMILY_TYPES:
        smokes = [p for p in ALL if "smoke" in p.name and _family(p) == family]
        assert {p.parent.name for p in smokes} == {"detection", "segmentation"}, family


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_config_documents_its_target(path):
    header = path.read_text().split("_base_")[0]
    assert re.search(r"^# Target", header, re.M), f"{path.name}: no '# Target' line in the header comment"
    if "smoke" not in path.name and "Target: none" not in header:
        assert re.search(r"\d\d\.\d (box AP|mIoU)", header), f"{path.name}: the published number is missing"


# Parameters of the whole detector / segmentor in the official READMEs (millions, rounded). Not listed (ours differ
# from the published counts, which the official repositories do not let us reproduce): MambaVision's (86M / 55M),
# EfficientVMamba's RetinaNet (13M) and Vim's UperNet (13M; ours 12M).
OFFICIAL_PARAMS = {
    "mask-rcnn_vmamba-t_fpn_1x_coco.py": 50, "mask-rcnn_vmamba-s_fpn_1x_coco.py": 70,
    "mask-rcnn_vmamba-b_fpn_1x_coco.py": 108, "upernet_vmamba-t_8xb2-160k_ade20k-512x512.py": 62,
    "upernet_vmamba-s_8xb2-160k_ade20k-512x512.py": 82, "upernet_vmamba-b_8xb2-160k_ade20k-512x512.py": 122,
    "mask-rcnn_mlla-t_fpn_ms-crop-1x_coco.py": 44, "upernet_mlla-b_8xb2-160k_ade20k-512x512.py": 128,
    "mask-rcnn_msvmamba-t_fpn_1x_coco.py": 53, "upernet_msvmamba-t_8xb2-160k_ade20k-512x512.py": 65,
    "mask-rcnn_mobilemamba-b1_upsample-fpn_1x_coco.py": 38, "fpn_mobilemamba-b4_4xb8-160k_ade20k-512x512.py": 20,
    "retinanet_mobilemamba-b1_upsample-fpn_1x_coco.py": 27,
    "ssdlite-320_mobilemamba-b1_8xb24-120e_coco.py": 18, "ssdlite-512_mobilemamba-b1_8xb24-120e_coco.py": 18,
}
# Detectors whose official backbones also build stages after the last one they use (MobileMamba's SSDLite reads
# stages 1-2 of 3): the official counts include those stages, which our adapter does not build.
COUNTS_UNUSED_STAGES = {f"ssdlite-{side}_mobilemamba-b1_8xb24-120e_coco.py" for side in (320, 512)}


def _one_x(path):
    """The 1x config a 3x config inherits its model from, if there is one."""
    for name in (path.name.replace("ms-crop-3x", "ms-crop-1x"), path.name.replace("ms-crop-3x", "1x")):
        if name != path.name and (path.parent / name).is_file():
            return path.parent / name
    return None


# The 3x configs with a 1x sibling change data, schedule and drop-path rate only: their models are those of the 1x
# configs (checked in test_config_parses_with_the_recipe). Everything else is built, the smoke configs included.
BUILT = [p for p in ALL if "3x" not in p.name or _one_x(p) is None]


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
    family = _family(path)
    assert cfg.model.backbone.type == FAMILY_TYPES[family]
    expected_arch = {"-t_": "tiny", "-s_": "small", "-b_": "base", "-test_": "test", "-b1_": "b1",
                     "-b4_": "b1"}  # MobileMamba-B4: B1's network with the weights trained at 512
    arch = next(v for k, v in expected_arch.items() if k in path.name)
    backbone_arch = cfg.model.backbone.arch
    assert (backbone_arch["base"] if isinstance(backbone_arch, dict) else backbone_arch) == arch
    if "smoke" in path.name:
        assert cfg.model.backbone.init_cfg is None
        return
    if family == "vmamba":
        assert cfg.model.backbone.drop_path_rate == {"tiny": 0.2, "small": 0.3, "base": 0.6}[arch]
    assert cfg.model.backbone.init_cfg.type == "Pretrained"
    checkpoint = cfg.model.backbone.init_cfg.checkpoint  # the official release by name (vssm.hub)
    assert checkpoint.startswith("timm:"), checkpoint
    import vssm.mm
    from vssm.hub import pretrained_cfg, pretrained_source

    release = checkpoint[len("timm:"):]
    assert pretrained_source(pretrained_cfg(release))[0] in ("url", "hf-hub", "manual"), release
    if isinstance(backbone_arch, str):
        assert release.split(".")[0] == getattr(vssm.mm, cfg.model.backbone.type).arch_zoo[arch], release
    assert cfg.optim_wrapper.optimizer.type == "AdamW"
    if "retinanet" not in path.name or family == "vmamba":
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys["norm"] == dict(decay_mult=0.0)
    if "3x" in path.name and _one_x(path) is not None:
        one_x = _config(_one_x(path)).model.to_dict()
        three_x = cfg.model.to_dict()
        if family == "mlla":  # the official 3x recipe raises the drop-path rate (0.1 -> 0.3)
            assert (one_x["backbone"].pop("drop_path_rate"), three_x["backbone"].pop("drop_path_rate")) == (0.1, 0.3)
        assert three_x == one_x


@pytest.mark.parametrize("path", BUILT, ids=lambda p: p.name)
def test_config_builds_and_channels_match(path):
    """Builds the model: on the CPU for VMamba-T and the smoke configs, on the meta device (the same modules and
    shapes without memory or initialisation time) for the others. The neck / heads must read the backbone's real
    output channels, and the parameter counts must be the official ones where listed."""
    cfg = _config(path)
    torch.manual_seed(0)
    device = "cpu" if "smoke" in path.name or re.search(r"_vmamba-t_", path.name) else "meta"
    model = _build(cfg, device)
    assert next(model.parameters()).device.type == device
    backbone = model.backbone
    if path in DETECTION and cfg.model.neck.type == "SSDNeck":  # the maps, then four extra levels, into the head
        assert list(cfg.model.neck.in_channels) == backbone.out_channels
        assert list(cfg.model.neck.out_channels[:len(backbone.out_channels)]) == backbone.out_channels
        assert len(model.neck.extra_layers) == len(cfg.model.neck.out_channels) - len(backbone.out_channels)
        assert list(cfg.model.bbox_head.in_channels) == list(cfg.model.neck.out_channels)
        assert model.bbox_head.prior_generator.num_levels == len(cfg.model.neck.out_channels)
    elif path in DETECTION:
        start = cfg.model.neck.get("start_level", 0)
        assert backbone.out_channels == cfg.model.neck.in_channels
        laterals = [getattr(m, "conv", m).in_channels for m in model.neck.lateral_convs]  # ConvModule / Conv2d
        assert laterals == backbone.out_channels[start:]
    elif cfg.model.get("neck"):  # Semantic FPN: backbone -> FPN -> FPNHead
        assert cfg.model.neck.in_channels == backbone.out_channels
        assert [m.conv.in_channels for m in model.neck.lateral_convs] == backbone.out_channels
        head = cfg.model.decode_head
        assert list(head.in_channels) == [cfg.model.neck.out_channels] * len(head.in_index)
        assert list(head.feature_strides) == [backbone.out_strides[i] for i in head.in_index]
    elif isinstance(cfg.model.decode_head.in_index, int):  # one map into the head (DeepLabv3's ASPP, PSPNet)
        head, aux = cfg.model.decode_head, cfg.model.auxiliary_head
        assert backbone.out_channels[head.in_index] == head.in_channels
        assert backbone.out_channels[aux.in_index] == aux.in_channels
    else:
        head, aux = cfg.model.decode_head, cfg.model.auxiliary_head
        assert [backbone.out_channels[i] for i in head.in_index] == list(head.in_channels)
        assert backbone.out_channels[aux.in_index] == aux.in_channels
        assert model.decode_head.lateral_convs[0].conv.in_channels == backbone.out_channels[0]
    if path.name in OFFICIAL_PARAMS:
        params = sum(p.numel() for p in model.parameters())
        if path.name in COUNTS_UNUSED_STAGES:
            unused = [f"stages.{i}." for i in range(max(backbone.out_indices) + 1, backbone.num_stages)]
            assert unused, "the backbone builds every stage"
            params += sum(p.numel() for n, p in backbone._reference_model().named_parameters()
                          if n.startswith(tuple(unused)))
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


def test_ssdlite_recipes_match_the_official_ones():
    """MobileMamba's SSDLite (ssdlite_mobilemamba_b1_8gpu_2lr[_512]_coco.py): the model and optimiser are shared,
    the image size is 320 or 512; at 320 the six maps have the sizes the SSDLite anchor strides assume."""
    small = _config(CONFIGS / "detection" / "ssdlite-320_mobilemamba-b1_8xb24-120e_coco.py")
    large = _config(CONFIGS / "detection" / "ssdlite-512_mobilemamba-b1_8xb24-120e_coco.py")
    assert small.model.to_dict() == large.model.to_dict()
    assert small.optim_wrapper.to_dict() == large.optim_wrapper.to_dict()
    opt = small.optim_wrapper
    assert (opt.optimizer.type, opt.optimizer.lr, opt.optimizer.weight_decay) == ("AdamW", 0.0024, 0.05)
    assert opt.clip_grad.max_norm == 0.1 and small.auto_scale_lr.base_batch_size == 192
    assert small.train_cfg.max_epochs == 120 and small.train_dataloader.batch_size == 24
    assert small.train_dataloader.dataset.type == "RepeatDataset" and small.train_dataloader.dataset.times == 5
    warmup, cosine = small.param_scheduler
    assert (warmup.start_factor, warmup.end, cosine.begin, cosine.end) == (1e-5, 500, 60, 120)
    assert small.model.backbone.out_indices == (0, 1) and small.model.backbone.drop_path_rate == 0.03
    for cfg, side in ((small, 320), (large, 512)):
        for pipeline in (cfg.train_dataloader.dataset.dataset.pipeline, cfg.test_dataloader.dataset.pipeline):
            resize = next(t for t in pipeline if t.type == "Resize")
            assert (tuple(resize.scale), resize.keep_ratio) == ((side, side), False)
    torch.manual_seed(0)
    model = _build(small, "cpu").eval()
    with torch.no_grad():
        maps = model.neck(model.backbone(torch.randn(1, 3, 320, 320)))
    strides = small.model.bbox_head.anchor_generator.strides
    assert [m.shape[-1] for m in maps] == [-(-320 // s) for s in strides] == [20, 10, 5, 3, 2, 1]


def test_segmentation_recipe_matches_the_official_one():
    cfg = _config(CONFIGS / "segmentation" / "upernet_vmamba-t_8xb2-160k_ade20k-512x512.py")
    assert (cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay) == (6e-5, 0.01)
    assert cfg.train_cfg.max_iters == 160000 and cfg.param_scheduler[0].end == 1500
    assert cfg.crop_size == (512, 512) and cfg.model.decode_head.num_classes == 150
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"


@pytest.mark.parametrize("path", [p for p in ALL if "smoke" in p.name], ids=lambda p: p.name)
def test_smoke_configs_are_cpu_ready(path, shapes_root):
    cfg = _config(path)
    assert cfg.data_root.rstrip("/") == str(shapes_root)
    assert (shapes_root / "annotations" / "instances_train.json").is_file()
    assert cfg.train_dataloader.batch_size >= 2 and cfg.train_dataloader.num_workers == 0
    assert "SyncBN" not in repr(cfg.model.to_dict()), "SyncBN needs a distributed GPU run"
    assert cfg.optim_wrapper.type == "OptimWrapper"
    if path in DETECTION:
        assert cfg.val_evaluator.type == "CocoMetric"
        heads = cfg.model.roi_head.bbox_head if "roi_head" in cfg.model else cfg.model.bbox_head
        assert all(h.num_classes == 8 for h in (heads if isinstance(heads, list) else [heads]))
        assert cfg.train_dataloader.dataset.type == "CocoDataset"
        assert cfg.train_cfg.max_epochs == 2
    else:
        assert cfg.val_evaluator.type == "IoUMetric" and cfg.model.decode_head.num_classes == 9
        heads = [cfg.model.decode_head] + ([cfg.model.auxiliary_head] if cfg.model.auxiliary_head else [])
        assert all(h.norm_cfg.type == "BN" for h in heads)
        assert cfg.train_cfg.max_iters == 4
