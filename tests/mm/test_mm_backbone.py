"""The OpenMMLab backbones of vssm.mm: registration, shapes, arguments, freezing, strict checkpoint loading."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import timm
import torch
import torch.nn.functional as F
from mm_helpers import ROOT
from mmdet.registry import MODELS as MMDET_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

from vssm.convert import CheckpointMismatchError
from vssm.mm import LocalVMambaBackbone, VMambaBackbone
from vssm.models.vmamba import VMamba, checkpoint_filter_fn
from vssm.utils.checkpoint import CheckpointError

FIXTURES = ROOT / "tests" / "models" / "fixtures"


@pytest.mark.parametrize("registry", [MMDET_MODELS, MMSEG_MODELS], ids=["mmdet", "mmseg"])
@pytest.mark.parametrize("name", ["VMambaBackbone", "LocalVMambaBackbone"])
def test_registered_in_mmdet_and_mmseg(registry, name):
    assert registry.get(name) is {"VMambaBackbone": VMambaBackbone, "LocalVMambaBackbone": LocalVMambaBackbone}[name]
    backbone = registry.build(dict(type=name, arch="test"))
    assert backbone.out_channels == [8, 16, 24, 32] and backbone.out_strides == [4, 8, 16, 32]


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


# Strides 4 / 8 / 16 / 32. VMamba v2 (test_vmamba): a stem of two 3x3 stride-2 convs (padding 1) and 3x3 stride-2
# downsampling, so every halving rounds up: ceil(n / 2^k). LocalVMamba (v0 layout): a 4x4 stride-4 patch conv
# (rounds down: floor(n / 4)), then patch merging that pads odd maps (rounds up).
EXPECTED = {
    (VMambaBackbone, (511, 511)): [(128, 128), (64, 64), (32, 32), (16, 16)],
    (VMambaBackbone, (112, 137)): [(28, 35), (14, 18), (7, 9), (4, 5)],
    (LocalVMambaBackbone, (511, 511)): [(127, 127), (64, 64), (32, 32), (16, 16)],
    (LocalVMambaBackbone, (112, 137)): [(28, 34), (14, 17), (7, 9), (4, 5)],
}


@pytest.mark.parametrize("cls,size", list(EXPECTED), ids=[f"{c.__name__}-{h}x{w}" for c, (h, w) in EXPECTED])
def test_output_shapes_odd_sizes(cls, size):
    backbone = cls(arch="test").eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 4
    assert [tuple(o.shape[2:]) for o in outs] == EXPECTED[(cls, size)]
    assert [o.shape[1] for o in outs] == backbone.out_channels == [8, 16, 24, 32]
    assert all(o.is_contiguous() and torch.isfinite(o).all() for o in outs)


def test_out_indices_subset_and_negative():
    backbone = VMambaBackbone(arch="test", out_indices=(1, -1))
    assert backbone.out_indices == (1, 3) and backbone.out_channels == [16, 32]
    assert not hasattr(backbone, "outnorm0") and hasattr(backbone, "outnorm3")
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 8, 8), (1, 32, 2, 2)]


def test_out_norm_is_layernorm_over_channels():
    backbone = VMambaBackbone(arch="test").eval()
    with torch.no_grad():
        backbone.outnorm2.weight.uniform_(0.5, 1.5)
        backbone.outnorm2.bias.uniform_(-1, 1)
        x = torch.randn(2, 3, 64, 48)
        raw = backbone.body(x)[2]
        ref = F.layer_norm(raw.permute(0, 2, 3, 1), (24,), backbone.outnorm2.weight, backbone.outnorm2.bias, 1e-5)
        torch.testing.assert_close(backbone(x)[2], ref.permute(0, 3, 1, 2))


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


def test_frozen_stages_freeze_and_stay_frozen():
    backbone = VMambaBackbone(arch="test", frozen_stages=2)
    backbone.train()
    model = backbone.body.model
    frozen = [model.stem, model.stages[0], model.stages[1], backbone.outnorm0, backbone.outnorm1]
    trainable = [model.stages[2], model.stages[3], backbone.outnorm2, backbone.outnorm3]
    for m in frozen:
        assert not m.training and all(not p.requires_grad for p in m.parameters())
    for m in trainable:
        assert m.training and all(p.requires_grad for p in m.parameters())
    backbone.eval()
    backbone.train()  # mmengine calls train() at every epoch: the freeze is re-applied
    assert not model.stages[1].training and model.stages[2].training
    sum(o.float().pow(2).mean() for o in backbone(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert all(p.grad is not None for m in trainable for p in m.parameters())


def test_frozen_stem_only():
    backbone = VMambaBackbone(arch="test", frozen_stages=0).train()
    model = backbone.body.model
    assert not model.stem.training and not any(p.requires_grad for p in model.stem.parameters())
    assert all(p.requires_grad for p in model.stages.parameters()) and model.stages[0].training


def test_with_cp_same_output_and_gradients():
    torch.manual_seed(0)
    plain = VMambaBackbone(arch="test")
    cp = VMambaBackbone(arch="test", with_cp=True)
    cp.load_state_dict(plain.state_dict())
    assert all(s.grad_checkpointing for s in cp.body.model.stages)
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


def test_init_cfg_loads_a_vssm_classification_state_dict(tmp_path):
    source = timm.create_model("test_vmamba", num_classes=5)
    torch.save(source.state_dict(), tmp_path / "cls.pth")
    backbone = MMDET_MODELS.build(dict(type="VMambaBackbone", arch="test", init_cfg=_pretrained(tmp_path / "cls.pth")))
    backbone.init_weights()
    assert backbone.is_init
    target = backbone.body.model.state_dict()
    assert target.keys() == {k for k in source.state_dict() if not k.startswith(("norm.", "head."))}
    for k, v in target.items():
        assert torch.equal(v, source.state_dict()[k]), k
    assert torch.equal(backbone.outnorm1.weight, torch.ones(16))  # not in a classification checkpoint


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
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch.*stages\.3\.downsample\.conv\.weight: "
                                                      r"checkpoint \(40, 24, 3, 3\) vs model \(32, 24, 3, 3\)"):
        backbone.init_weights()
    partial = timm.create_model("test_vmamba").state_dict()
    partial.pop("stages.2.blocks.1.mixer.A_log")
    partial["stages.9.extra"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pth")
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "partial.pth"))
    with pytest.raises(CheckpointMismatchError, match=r"missing key\(s\): stages\.2\.blocks\.1\.mixer\.A_log.*"
                                                      r"unexpected key\(s\): stages\.9\.extra"):
        backbone.init_weights()


def test_init_cfg_wrong_prefix_and_missing_out_norms(tmp_path):
    trained = VMambaBackbone(arch="test")
    sd = {f"backbone.{k}": v for k, v in trained.state_dict().items() if k != "outnorm2.bias"}
    torch.save({"state_dict": sd}, tmp_path / "det.pth")
    wrong = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "det.pth", prefix="model."))
    with pytest.raises(CheckpointMismatchError, match=r"no key of .*det\.pth starts with prefix='model\.'"):
        wrong.init_weights()
    backbone = VMambaBackbone(arch="test", init_cfg=_pretrained(tmp_path / "det.pth", prefix="backbone."))
    with pytest.raises(CheckpointMismatchError, match=r"out norms does not fit: 1 missing key\(s\): outnorm2\.bias"):
        backbone.init_weights()


def test_init_cfg_skips_stages_after_the_last_output(tmp_path):
    source = timm.create_model("test_vmamba")
    torch.save(source.state_dict(), tmp_path / "cls.pth")
    backbone = VMambaBackbone(arch="test", out_indices=(0, 1), init_cfg=_pretrained(tmp_path / "cls.pth"))
    backbone.init_weights()
    assert len(backbone.body.model.stages) == 2
    assert torch.equal(backbone.body.model.stages[1].blocks[0].mixer.A_log, source.stages[1].blocks[0].mixer.A_log)
