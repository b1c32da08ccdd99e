"""The OpenMMLab backbones of vssm.mm: registration, shapes, arguments, freezing, strict checkpoint loading."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from mm_helpers import ROOT
from mmdet.registry import MODELS as MMDET_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

from vssm.checkpoint import CheckpointError, find_filter
from vssm.mm import (
    EfficientVMambaBackbone,
    LocalVMambaBackbone,
    MambaVisionBackbone,
    MLLABackbone,
    MSVMambaBackbone,
    VimBackbone,
    VMambaBackbone,
)
from vssm.models.vmamba import VMamba, checkpoint_filter_fn

FIXTURES = ROOT / "tests" / "models" / "fixtures"

# Every adapter, its ``test`` model and the channels of its four outputs.
FAMILIES = {
    VMambaBackbone: ("test_vmamba", [8, 16, 24, 32]),
    LocalVMambaBackbone: ("test_localvmamba", [8, 16, 24, 32]),
    VimBackbone: ("test_vim", [32, 32, 32, 32]),
    MambaVisionBackbone: ("test_mambavision", [16, 32, 48, 64]),
    MLLABackbone: ("test_mlla", [16, 24, 32, 32]),
    EfficientVMambaBackbone: ("test_efficient_vmamba", [16, 24, 32, 32]),
    MSVMambaBackbone: ("test_msvmamba", [16, 24, 32, 32]),
}
ALL = list(FAMILIES)
NEW = [VimBackbone, MambaVisionBackbone, MLLABackbone, EfficientVMambaBackbone, MSVMambaBackbone]


def _ids(cls):
    return cls.__name__


def _stem_and_stages(backbone):
    """The model's stem modules, parameters held by the model itself, and the modules of each stage, named here per
    family (not taken from the adapter) so the freezing tests check the adapter's grouping."""
    model = backbone.body.model
    if isinstance(backbone, VimBackbone):  # test_vim: depth 4, level i reads layer i (the last of each quarter)
        assert model.pyramid_layers == [0, 1, 2, 3]
        stages = [[model.layers[i], model.pyramid.levels[i]] for i in range(4)]
        return [model.patch_embed], [model.pos_embed, model.cls_token], stages
    return [model.stem], [], [[model.stages[i]] for i in range(4)]


@pytest.mark.parametrize("registry", [MMDET_MODELS, MMSEG_MODELS], ids=["mmdet", "mmseg"])
@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_registered_in_mmdet_and_mmseg(registry, cls):
    assert registry.get(cls.__name__) is cls
    backbone = registry.build(dict(type=cls.__name__, arch="test"))
    assert backbone.model_name == FAMILIES[cls][0]
    assert backbone.out_channels == FAMILIES[cls][1] and backbone.out_strides == [4, 8, 16, 32]


@pytest.mark.parametrize("name", ["test_vim", "vim_tiny", "test_mambavision", "mambavision_tiny"])
def test_models_build_on_the_meta_device(name):
    """The adapters build a reference model on the meta device (shapes and keys for strict loading); a model whose
    constructor reads a tensor's values (e.g. a drop-path schedule from torch.linspace) cannot be built there."""
    with torch.device("meta"):
        model = timm.create_model(name)
    assert all(p.device.type == "meta" for p in model.parameters())


# mmdet-only installs are the common case; the mmseg-only case is the same code path with the names swapped
@pytest.mark.parametrize("missing,present", [("mmseg", "mmdet")])
def test_import_with_one_library_missing(missing, present):
    """A fresh interpreter where ``import <missing>`` fails (sys.modules entry None): vssm.mm imports and registers
    in the library that is there."""
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        f"import vssm.mm as mm\n"
        f"assert set(mm.REGISTRIES) == {{'mmengine', {present!r}}}, mm.REGISTRIES\n"
        f"from {present}.registry import MODELS\n"
        f"b = MODELS.build(dict(type='VMambaBackbone', arch='test'))\n"
        f"print('ok', type(b).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok VMambaBackbone" in out.stdout


# Strides 4 / 8 / 16 / 32. VMamba v2 (test_vmamba), MambaVision and MLLA: a stem of two 3x3 stride-2 convs (padding
# 1) and 3x3 stride-2 downsampling, so every halving rounds up: ceil(n / 2^k). LocalVMamba (v0 layout),
# EfficientVMamba and MSVMamba: a 4x4 stride-4 patch conv (rounds down: floor(n / 4)), then patch merging that pads
# odd maps (rounds up). Vim (test_vim: patch 8): the image is padded to a multiple of the patch (97x113 -> 13x15
# patches), then the pyramid scales it by 2, 1, 1/2, 1/4 (max pooling rounds up).
EXPECTED = {
    (VMambaBackbone, (511, 511)): [(128, 128), (64, 64), (32, 32), (16, 16)],
    (VMambaBackbone, (112, 137)): [(28, 35), (14, 18), (7, 9), (4, 5)],
    (LocalVMambaBackbone, (511, 511)): [(127, 127), (64, 64), (32, 32), (16, 16)],
    (LocalVMambaBackbone, (112, 137)): [(28, 34), (14, 17), (7, 9), (4, 5)],
    (VimBackbone, (97, 113)): [(26, 30), (13, 15), (7, 8), (4, 4)],
    (MambaVisionBackbone, (97, 113)): [(25, 29), (13, 15), (7, 8), (4, 4)],
    (MLLABackbone, (97, 113)): [(25, 29), (13, 15), (7, 8), (4, 4)],
    (EfficientVMambaBackbone, (97, 113)): [(24, 28), (12, 14), (6, 7), (3, 4)],
    (MSVMambaBackbone, (97, 113)): [(24, 28), (12, 14), (6, 7), (3, 4)],
}


@pytest.mark.parametrize("cls,size", list(EXPECTED), ids=[f"{c.__name__}-{h}x{w}" for c, (h, w) in EXPECTED])
def test_output_shapes_odd_sizes(cls, size):
    backbone = cls(arch="test").eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 4
    assert [tuple(o.shape[2:]) for o in outs] == EXPECTED[(cls, size)]
    assert [o.shape[1] for o in outs] == backbone.out_channels == FAMILIES[cls][1]
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_out_indices_subset_and_negative(cls):
    channels = FAMILIES[cls][1]
    backbone = cls(arch="test", out_indices=(1, -1))
    assert backbone.out_indices == (1, 3) and backbone.out_channels == [channels[1], channels[3]]
    assert not hasattr(backbone, "outnorm0") and hasattr(backbone, "outnorm3")
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, channels[1], 8, 8), (1, channels[3], 2, 2)]


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_out_norm_is_layernorm_over_channels(cls):
    backbone = cls(arch="test").eval()
    c = FAMILIES[cls][1][2]
    with torch.no_grad():
        backbone.outnorm2.weight.uniform_(0.5, 1.5)
        backbone.outnorm2.bias.uniform_(-1, 1)
        x = torch.randn(2, 3, 64, 48)
        raw = backbone.body(x)[2]
        ref = F.layer_norm(raw.permute(0, 2, 3, 1), (c,), backbone.outnorm2.weight, backbone.outnorm2.bias, 1e-5)
        torch.testing.assert_close(backbone(x)[2], ref.permute(0, 3, 1, 2))


def test_vim_pyramid_strides_follow_the_patch_size():
    """Vim-Ti (patch 16) gets the pyramid scales (4, 2, 1, 1/2), the patch-8 test model (2, 1, 1/2, 1/4): strides 4-32
    either way, all levels from the layers named by ``pyramid_layers``."""
    tiny = VimBackbone(arch=dict(base="tiny", depth=4))
    assert tiny.body.model.pyramid.scales == (4.0, 2.0, 1.0, 0.5) and tiny.out_strides == [4, 8, 16, 32]
    test = VimBackbone(arch=dict(base="test", pyramid_layers=(3, 3, 3, 3))).eval()
    assert test.body.model.pyramid.scales == (2.0, 1.0, 0.5, 0.25) and test.body.model.pyramid_layers == [3] * 4
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        outs = test(x)
        raw = test.body(x)  # level 1 (scale 1) is the last layer's map itself; levels 2 and 3 max-pool it
    assert [tuple(o.shape[2:]) for o in outs] == [(16, 20), (8, 10), (4, 5), (2, 3)]
    torch.testing.assert_close(F.max_pool2d(raw[1], 2, ceil_mode=True), raw[2])
    torch.testing.assert_close(F.max_pool2d(raw[1], 4, ceil_mode=True), raw[3])


@pytest.mark.parametrize("size", [(97, 113), (512, 512)])
def test_mambavision_windows_pad_and_crop(size):
    """A map the window does not divide is zero-padded at the bottom / right to the window multiple, mixed, and
    cropped back: the stage gives what it gives on the explicitly padded map (and windows larger than the map, as the
    official segmentation recipe's 64 / 32 at 512x512, work the same way). Images of a batch stay independent."""
    backbone = MambaVisionBackbone(arch=dict(base="test", window_size=(2, 2, 64, 32))).eval()
    model = backbone.body.model
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        feats = [model.stem(x)]
        for stage in model.stages:
            feats.append(stage(feats[-1]))
        for i in (2, 3):
            stage = model.stages[i]
            inp = stage.downsample(feats[i])
            H, W = inp.shape[2:]
            ws = stage.window_size
            assert H % ws or W % ws, "the case under test: a map the window does not divide"
            padded = F.pad(inp, (0, (-W) % ws, 0, (-H) % ws))
            downsample, stage.downsample = stage.downsample, nn.Identity()
            try:
                ref = stage(padded)[:, :, :H, :W]
            finally:
                stage.downsample = downsample
            torch.testing.assert_close(feats[i + 1], ref)
        outs = backbone(x)
        single = backbone(x[1:])
    strides = [4, 8, 16, 32]
    assert [tuple(o.shape[2:]) for o in outs] == [(-(-size[0] // s), -(-size[1] // s)) for s in strides]
    for o, s in zip(outs, single):
        torch.testing.assert_close(o[1:], s)


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_aliases_name_models_of_the_family(cls):
    for alias, name in cls.arch_zoo.items():
        assert cls._resolve_arch(alias) == cls._resolve_arch(name) == (name, {}), alias
        assert re.search(cls.model_pattern, name) and timm.list_models(name) == [name], name
    assert cls.arch_zoo["test"] == FAMILIES[cls][0]
    assert cls._resolve_arch(dict(base="test", depths=(1, 1, 1, 1)))[1] == {"depths": (1, 1, 1, 1)}


def test_arch_forms():
    assert VMambaBackbone._resolve_arch("tiny") == VMambaBackbone._resolve_arch("vmamba_tiny") == ("vmamba_tiny", {})
    assert LocalVMambaBackbone._resolve_arch("small") == ("localvmamba_small", {})
    assert VMambaBackbone._resolve_arch(dict(depths=(1, 1, 1, 1))) == ("vmamba_tiny", {"depths": (1, 1, 1, 1)})
    backbone = VMambaBackbone(arch="tiny")
    assert backbone.model_name == "vmamba_tiny" and backbone.out_channels == [96, 192, 384, 768]
    assert [len(s.blocks) for s in backbone.body.model.stages] == [2, 2, 8, 2]
    backbone = VMambaBackbone(arch=dict(base="test", depths=(1, 1, 1, 1)), scan="hilbert", drop_path_rate=0.1)
    assert backbone.model_name == "test_vmamba" and backbone.model_kwargs["scan"] == "hilbert"
    assert [len(s.blocks) for s in backbone.body.model.stages] == [1, 1, 1, 1]
    assert backbone.body.model.stages[3].blocks[0].drop_path.drop_prob == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="huge"), r"arch='huge' is not a VMamba model; allowed: an alias \(tiny, small, base"),
    (dict(arch="localvmamba_tiny"), r"arch='localvmamba_tiny' is not a VMamba model"),
    (dict(arch=dict(base="test", out_indices=(0,))), r"arch dict may not set \['out_indices'\]"),
    (dict(arch="test", out_indices=(0, 4)), r"out_indices=\(0, 4\) has \[4\], out of range for test_vmamba with 4"),
    (dict(arch="test", out_indices=(3, -1)), r"names a stage twice"),
    (dict(arch="test", frozen_stages=5), r"frozen_stages must be an int in -1..4"),
    (dict(arch="test", init_cfg=dict(type="Pretrained")), r"init_cfg=.* needs a 'checkpoint'"),
    (dict(arch="test", init_cfg=dict(type="Pretrained", checkpoint="x.pth", strict=False)), r"unknown: \['strict'\]"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VMambaBackbone(**kwargs)


@pytest.mark.parametrize("cls", NEW, ids=_ids)
def test_bad_arguments_name_themselves_in_every_family(cls):
    name, family = cls.__name__, cls.family
    with pytest.raises(ValueError, match=rf"{name}: arch='huge' is not a {family} model; allowed: an alias \(.*test"):
        cls(arch="huge")
    other = "vmamba_tiny"
    with pytest.raises(ValueError, match=rf"arch='{other}' is not a {family} model"):
        cls(arch=other)
    with pytest.raises(ValueError, match=rf"{name}: out_indices=\(0, 4\) has \[4\], out of range for "
                                         rf"{FAMILIES[cls][0]} with 4 stages"):
        cls(arch="test", out_indices=(0, 4))
    with pytest.raises(ValueError, match=rf"{name}: frozen_stages must be an int in -1..2 .*got 3"):
        cls(arch="test", out_indices=(0, 1), frozen_stages=3)
    with pytest.raises(ValueError, match=rf"{name}: init_cfg=.* needs a 'checkpoint'"):
        cls(arch="test", init_cfg=dict(type="Pretrained"))


def test_vim_pyramid_is_set_by_the_adapter():
    with pytest.raises(ValueError, match=r"VimBackbone: arch dict may not set \['pyramid', 'pyramid_scales'\]"):
        VimBackbone(arch=dict(base="test", pyramid=False, pyramid_scales=(1, 1, 1, 1)))


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_frozen_stages_freeze_and_stay_frozen(cls):
    backbone = cls(arch="test", frozen_stages=2)
    backbone.train()
    stem, own_params, stages = _stem_and_stages(backbone)
    frozen = stem + stages[0] + stages[1] + [backbone.outnorm0, backbone.outnorm1]
    trainable = stages[2] + stages[3] + [backbone.outnorm2, backbone.outnorm3]
    for m in frozen:
        assert not m.training and all(not p.requires_grad for p in m.parameters()), m
    for m in trainable:
        assert m.training and all(p.requires_grad for p in m.parameters()), m
    assert all(not p.requires_grad for p in own_params)
    backbone.eval()
    backbone.train()  # mmengine calls train() at every epoch: the freeze is re-applied
    assert not stages[1][0].training and stages[2][0].training
    sum(o.float().pow(2).mean() for o in backbone(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is None for p in own_params)
    assert all(p.grad is not None for m in trainable for p in m.parameters())


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_frozen_stem_only(cls):
    backbone = cls(arch="test", frozen_stages=0).train()
    stem, own_params, stages = _stem_and_stages(backbone)
    assert all(not m.training and not any(p.requires_grad for p in m.parameters()) for m in stem)
    assert all(not p.requires_grad for p in own_params)
    assert all(p.requires_grad for group in stages for m in group for p in m.parameters())
    assert stages[0][0].training


def test_vim_frozen_stages_follow_the_pyramid_layers():
    """Vim-Ti's default levels read layers 5, 11, 17, 23: frozen_stages=2 freezes layers 0-11 and levels 0-1."""
    backbone = VimBackbone(arch="tiny", frozen_stages=2).train()
    model = backbone.body.model
    assert model.pyramid_layers == [5, 11, 17, 23]
    frozen = [all(not p.requires_grad for p in layer.parameters()) for layer in model.layers]
    assert frozen == [True] * 12 + [False] * 12
    assert not model.layers[11].training and model.layers[12].training
    assert not model.pyramid.levels[1].training and model.pyramid.levels[2].training


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_with_cp_same_output_and_gradients(cls):
    torch.manual_seed(0)
    plain = cls(arch="test")
    cp = cls(arch="test", with_cp=True)
    cp.load_state_dict(plain.state_dict())
    assert any(getattr(m, "grad_checkpointing", False) for m in cp.body.model.modules())
    assert not any(getattr(m, "grad_checkpointing", False) for m in plain.body.model.modules())
    x = torch.randn(2, 3, 32, 32)
    outs = [sum(o.sum() for o in m.train()(x)) for m in (plain, cp)]
    torch.testing.assert_close(outs[0], outs[1])
    for out in outs:
        out.backward()
    for (name, p), q in zip(plain.named_parameters(), cp.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


# ------------------------------------------------------------------------------------------------------------------
# init_cfg: strict loading


def _pretrained(path, **kw):
    return dict(type="Pretrained", checkpoint=str(path), **kw)


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_init_cfg_loads_a_vssm_classification_state_dict(cls, tmp_path):
    source = timm.create_model(FAMILIES[cls][0], num_classes=5)
    torch.save(source.state_dict(), tmp_path / "cls.pth")
    backbone = MMDET_MODELS.build(dict(type=cls.__name__, arch="test", init_cfg=_pretrained(tmp_path / "cls.pth")))
    backbone.init_weights()
    assert backbone.is_init
    target = backbone.body.model.state_dict()
    # Vim's pyramid is not part of the classification model: it keeps its initialisation
    own = {k for k in target if k.startswith("pyramid.")} if cls is VimBackbone else set()
    assert bool(own) == (cls is VimBackbone)
    assert target.keys() - own == {k for k in source.state_dict() if not k.startswith(("norm.", "head."))}
    for k in target.keys() - own:
        assert torch.equal(target[k], source.state_dict()[k]), k
    assert torch.equal(backbone.outnorm1.weight, torch.ones(FAMILIES[cls][1][1]))  # not in a classification checkpoint


@pytest.mark.parametrize("cls", ALL, ids=_ids)
def test_init_cfg_missing_and_unexpected_keys_raise(cls, tmp_path):
    sd = timm.create_model(FAMILIES[cls][0]).state_dict()
    dropped = next(k for k in sd if re.match(r"^(stages|layers)\.2\..*weight$", k))
    sd.pop(dropped)
    sd["stages.9.extra"] = torch.zeros(1)
    torch.save(sd, tmp_path / "partial.pth")
    backbone = cls(arch="test", init_cfg=_pretrained(tmp_path / "partial.pth"))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"missing key\(s\): .*{re.escape(dropped)}.*"
                                                      r"unexpected key\(s\): stages\.9\.extra"):
        backbone.init_weights()
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())  # nothing half-loaded


def test_init_cfg_loads_its_own_detector_checkpoint_with_prefix(tmp_path):
    """A checkpoint of an mmdet run (``state_dict`` with ``backbone.body.model.*`` and ``backbone.outnorm*``)."""
    trained = VMambaBackbone(arch="test")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))
    sd = {f"backbone.{k}": v for k, v in trained.state_dict().items()}
    sd["neck.lateral_convs.0.conv.weight"] = torch.zeros(4, 8, 1, 1)
    torch.save({"meta": {"epoch": 1}, "state_dict": sd}, tmp_path / "det.pth")
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "det.pth", prefix="backbone."))
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, trained.state_dict()[k]), k


def _official_fixture():
    from safetensors import safe_open

    with safe_open(str(FIXTURES / "vmamba_v2_s1l.safetensors"), "pt") as f:
        cfg = json.loads(f.metadata()["config"])
        official = {k[3:]: f.get_tensor(k) for k in f.keys() if k.startswith("sd.")}
    return cfg, official


def test_init_cfg_loads_an_official_detection_checkpoint(tmp_path):
    """Official VMamba mmdet checkpoints: ``backbone.`` + official v2 keys (no classifier) + ``backbone.outnorm{i}``.

    The backbone must give what the official backbone computes: its stage outputs, each LayerNorm-ed by outnorm{i}.
    """
    cfg, official = _official_fixture()
    cfg.pop("num_classes")
    sd = {f"backbone.{k}": v for k, v in official.items() if not k.startswith("classifier.")}
    gen = torch.Generator().manual_seed(0)
    for i, c in enumerate(cfg["dims"]):
        sd[f"backbone.outnorm{i}.weight"] = torch.rand(c, generator=gen) + 0.5
        sd[f"backbone.outnorm{i}.bias"] = torch.randn(c, generator=gen)
    sd["rpn_head.rpn_conv.weight"] = torch.zeros(2, 2, 3, 3)
    torch.save({"state_dict": sd}, tmp_path / "official_det.pth")

    backbone = VMambaBackbone(arch=dict(base="test", **cfg), init_cfg=_pretrained(tmp_path / "official_det.pth",
                                                                                  prefix="backbone.")).eval()
    backbone.init_weights()
    reference = VMamba(**cfg, num_classes=0).eval()
    reference.load_state_dict(checkpoint_filter_fn(dict(official), reference), strict=False)
    x = torch.randn(1, 3, 61, 45)
    with torch.no_grad():
        feats = reference.forward_intermediates(x, intermediates_only=True)
        outs = backbone(x)
    for i, (f, o) in enumerate(zip(feats, outs)):
        w, b = sd[f"backbone.outnorm{i}.weight"], sd[f"backbone.outnorm{i}.bias"]
        ref = F.layer_norm(f.permute(0, 2, 3, 1), (f.shape[1],), w, b, 1e-5).permute(0, 3, 1, 2)
        torch.testing.assert_close(o, ref, msg=f"stage {i}")


def test_init_cfg_official_classification_checkpoint_in_training_wrapper(tmp_path):
    cfg, official = _official_fixture()
    cfg.pop("num_classes")
    torch.save({"model": official, "epoch": 3}, tmp_path / "official_cls.pth")
    backbone = VMambaBackbone(arch=dict(base="test", **cfg), init_cfg=_pretrained(tmp_path / "official_cls.pth"))
    backbone.init_weights()
    stem_key = "stem.conv1.weight"
    assert torch.equal(backbone.body.model.state_dict()[stem_key], official["patch_embed.0.weight"])


def test_init_cfg_corrupted_checkpoint_fails_clearly(tmp_path):
    torch.save(timm.create_model("test_vmamba").state_dict(), tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "truncated.pth"))
    with pytest.raises(CheckpointError, match=r"truncated\.pth is not a readable checkpoint \(truncated or corrupted"):
        backbone.init_weights()
    missing = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointError, match=r"init_cfg checkpoint '.*nope\.pth' does not exist"):
        missing.init_weights()


def test_init_cfg_checkpoint_of_another_model_names_the_keys(tmp_path):
    torch.save(timm.create_model("test_vmamba", dims=(8, 16, 24, 40)).state_dict(), tmp_path / "other.pth")
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "other.pth"))
    with pytest.raises(CheckpointError, match=r"shape mismatch.*stages\.3\.downsample\.conv\.weight: "
                                                      r"checkpoint \(40, 24, 3, 3\) vs model \(32, 24, 3, 3\)"):
        backbone.init_weights()
    partial = timm.create_model("test_vmamba").state_dict()
    partial.pop("stages.2.blocks.1.mixer.A_log")
    partial["stages.9.extra"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pth")
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "partial.pth"))
    with pytest.raises(CheckpointError, match=r"missing key\(s\): stages\.2\.blocks\.1\.mixer\.A_log.*"
                                                      r"unexpected key\(s\): stages\.9\.extra"):
        backbone.init_weights()


def test_init_cfg_wrong_prefix_and_missing_out_norms(tmp_path):
    trained = VMambaBackbone(arch="test")
    sd = {f"backbone.{k}": v for k, v in trained.state_dict().items() if k != "outnorm2.bias"}
    torch.save({"state_dict": sd}, tmp_path / "det.pth")
    wrong = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "det.pth", prefix="model."))
    with pytest.raises(CheckpointError, match=r"no key of .*det\.pth starts with prefix='model\.'"):
        wrong.init_weights()
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "det.pth", prefix="backbone."))
    with pytest.raises(CheckpointError, match=r"out norms does not fit: 1 missing key\(s\): outnorm2\.bias"):
        backbone.init_weights()


def test_init_cfg_skips_stages_after_the_last_output(tmp_path):
    source = timm.create_model("test_vmamba")
    torch.save(source.state_dict(), tmp_path / "cls.pth")
    backbone = VMambaBackbone(arch="test", out_indices=(0, 1), init_cfg=_pretrained(tmp_path / "cls.pth"))
    backbone.init_weights()
    assert len(backbone.body.model.stages) == 2
    assert torch.equal(backbone.body.model.stages[1].blocks[0].mixer.A_log, source.stages[1].blocks[0].mixer.A_log)


# Official classification state dicts of each family (random weights, official key layout: the parity fixtures of
# tests/models), with this project's model arguments: (adapter, fixture, base entrypoint, number of stages)
OFFICIAL = [
    (VimBackbone, "parity_vim_odd", "tiny", 4),
    (MambaVisionBackbone, "parity_mambavision_b_pad", "tiny", 4),
    (MLLABackbone, "mlla", "tiny", 3),
    (EfficientVMambaBackbone, "efficient_vmamba", "tiny", 4),
    (MSVMambaBackbone, "msvmamba", "tiny", 4),
]


def _official(fixture):
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{fixture}.safetensors"), "pt") as f:
        cfg = json.loads(f.metadata()["config"])
        official = {k[3:]: f.get_tensor(k) for k in f.keys() if k.startswith("sd.")}
    cfg.pop("num_classes")
    return cfg, official


@pytest.mark.parametrize("cls,fixture,base,num_stages", OFFICIAL, ids=[c.__name__ for c, *_ in OFFICIAL])
def test_init_cfg_loads_official_checkpoints(cls, fixture, base, num_stages, tmp_path):
    """An official classification checkpoint in its training wrapper (classifier and final norm under the family's
    own names: skipped), and an official-style detection checkpoint (``backbone.`` + the classification keys without
    the classifier + the out norms under the official dense backbone's names: ``norm{i}`` for MLLA, ``outnorm{i}``
    for the others): the backbone holds what the family's converter makes of the same tensors."""
    cfg, official = _official(fixture)
    out_indices = tuple(range(num_stages))
    head = [k for k in official if re.search(cls.head_keys, k)]
    assert head, "the fixture carries the official classifier"
    full = timm.create_model(cls.arch_zoo[base], **cfg, num_classes=10)
    expected = {k: v for k, v in find_filter(full)(dict(official), full).items()
                if not k.startswith(("norm.", "head."))}

    torch.save({"model": official, "epoch": 3}, tmp_path / "official_cls.pth")
    backbone = cls(arch=dict(base=base, **cfg), out_indices=out_indices,
                   init_cfg=_pretrained(tmp_path / "official_cls.pth"))
    backbone.init_weights()
    loaded = {k: v for k, v in backbone.body.model.state_dict().items() if not k.startswith("pyramid.")}
    assert loaded.keys() == expected.keys()
    for k, v in loaded.items():
        assert torch.equal(v, expected[k]), k

    out_name = "norm{}" if cls is MLLABackbone else "outnorm{}"
    det = {f"backbone.{k}": v for k, v in official.items() if k not in head}
    gen = torch.Generator().manual_seed(0)
    for i, c in zip(out_indices, backbone.out_channels):
        det[f"backbone.{out_name.format(i)}.weight"] = torch.rand(c, generator=gen) + 0.5
        det[f"backbone.{out_name.format(i)}.bias"] = torch.randn(c, generator=gen)
    det["neck.fpn_convs.0.conv.weight"] = torch.zeros(2, 2, 3, 3)
    torch.save({"state_dict": det}, tmp_path / "official_det.pth")
    backbone = cls(arch=dict(base=base, **cfg), out_indices=out_indices,
                   init_cfg=_pretrained(tmp_path / "official_det.pth", prefix="backbone."))
    backbone.init_weights()
    for k, v in backbone.body.model.state_dict().items():
        assert k.startswith("pyramid.") or torch.equal(v, expected[k]), k
    for i in out_indices:
        assert torch.equal(getattr(backbone, f"outnorm{i}").weight, det[f"backbone.{out_name.format(i)}.weight"])
        assert torch.equal(getattr(backbone, f"outnorm{i}").bias, det[f"backbone.{out_name.format(i)}.bias"])


def test_init_cfg_timm_scheme_loads_a_release_by_name(tmp_path, monkeypatch):
    """``checkpoint='timm:<model>.<tag>'`` goes through vssm.hub: MSVMamba-N's release is a Drive folder, so the
    file is found where the error message says to put it (the torch hub cache), read with its pickled namespace made
    inert, and its EMA weights (the release's use_ema) load."""
    import argparse

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    release = timm.create_model("msvmamba_nano")
    plain = {k: torch.zeros_like(v) for k, v in release.state_dict().items()}
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    backbone = MSVMambaBackbone(arch="nano", init_cfg=_pretrained("timm:msvmamba_nano.in1k"))
    with pytest.raises(CheckpointError, match=r"timm:msvmamba_nano\.in1k.*drive\.google\.com.*msvmamba_nano_in1k\.pth"):
        backbone.init_weights()
    cache.mkdir(parents=True)
    torch.save({"model": plain, "model_ema": release.state_dict(), "args": argparse.Namespace(model="ms")},
               cache / "msvmamba_nano_in1k.pth")
    backbone.init_weights()
    got = backbone.body.model.state_dict()
    key = next(k for k in got if k.startswith("stem.") and k.endswith("weight"))
    assert torch.equal(got[key], release.state_dict()[key])
    with pytest.raises(CheckpointError, match=r"no such pretrained tag; msvmamba_nano has: msvmamba_nano\.in1k"):
        MSVMambaBackbone(arch="nano", init_cfg=_pretrained("timm:msvmamba_nano.in22k")).init_weights()
