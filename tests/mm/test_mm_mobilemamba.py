"""MobileMamba in mmdet / mmseg: the adapter (three stages at strides 16 / 32 / 64, no out norms, official
checkpoints) and UpsampleFPN, the neck that grows the stride-4 / 8 levels (checked against mmdet's own FPN)."""
from __future__ import annotations

import pytest
import timm
import torch
from mm_helpers import ROOT
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as MMSEG_MODELS

from vssm.checkpoint import CheckpointError
from vssm.mm import MobileMambaBackbone, UpsampleFPN

FIXTURES = ROOT / "tests" / "models" / "fixtures"


@pytest.mark.parametrize("registry", [MMDET_MODELS, MMSEG_MODELS], ids=["mmdet", "mmseg"])
def test_registered_with_its_strides(registry):
    backbone = registry.build(dict(type="MobileMambaBackbone", arch="test"))
    assert backbone.model_name == "test_mobilemamba" and backbone.out_indices == (0, 1, 2)
    assert backbone.out_channels == [48, 64, 80] and backbone.out_strides == [16, 32, 64]
    assert MobileMambaBackbone().model_name == "mobilemamba_b1"  # the official dense models' network
    assert MMDET_MODELS.get("UpsampleFPN") is UpsampleFPN


def test_outputs_are_the_stage_maps_without_out_norms():
    torch.manual_seed(0)
    backbone = MobileMambaBackbone(arch="test", out_indices=(1, 2)).eval()
    x = torch.randn(2, 3, 97, 130)
    with torch.no_grad():
        outs = backbone(x)
        ref = backbone.body.model.forward_intermediates(x, intermediates_only=True)
    assert [tuple(o.shape) for o in outs] == [(2, 64, 4, 5), (2, 80, 2, 3)]
    for o, r in zip(outs, ref[1:]):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    assert not any(p for n, p in backbone.named_parameters() if n.startswith("outnorm"))


def test_official_classification_checkpoint_loads_strictly(tmp_path):
    """The official layout (``patch_embed.*``, ``blocksS.*``, ``head.bn`` / ``head.l``) through the family's
    converter; the classifier is skipped, everything else must load and give the model's maps."""
    import json

    from safetensors import safe_open

    with safe_open(str(FIXTURES / "mobilemamba.safetensors"), "pt") as f:
        cfg = json.loads(f.metadata()["official_config"])
        sd = {k[3:]: f.get_tensor(k) for k in f.keys() if k.startswith("sd.")}
        x = f.get_tensor("input_odd")
    arch = dict(base="test", embed_dims=cfg["embed_dim"], depths=cfg["depth"], kernel_sizes=cfg["kernels"])
    torch.save(sd, tmp_path / "official.pth")
    official = dict(type="Pretrained", checkpoint=str(tmp_path / "official.pth"))
    backbone = MobileMambaBackbone(arch=arch, init_cfg=official)
    backbone.init_weights()
    model = timm.create_model("test_mobilemamba", num_classes=cfg["num_classes"], embed_dims=cfg["embed_dim"],
                              depths=cfg["depth"]).eval()
    from vssm.models.mobilemamba import checkpoint_filter_fn

    model.load_state_dict(checkpoint_filter_fn(sd, model))
    backbone.eval()
    with torch.no_grad():
        for a, b in zip(backbone(x), model.forward_intermediates(x, intermediates_only=True)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    sd.pop("blocks2.3.mixer.m.attn.proj.1.c.weight")
    torch.save(sd, tmp_path / "broken.pth")
    broken = MobileMambaBackbone(arch=arch, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "broken.pth")))
    with pytest.raises(CheckpointError, match=r"missing.*stages\.1\.blocks\.0\.mixer\.proj\.conv\.weight"):
        broken.init_weights()


def test_frozen_stages_and_norm_eval():
    backbone = MobileMambaBackbone(arch="test", frozen_stages=1, norm_eval=True)
    backbone.train()
    model = backbone.body.model
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for n, p in model.stages[1].named_parameters() if not n.endswith("wt_filter")
               and not n.endswith("iwt_filter"))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)  # norm_eval: frozen statistics while training
    with pytest.raises(ValueError, match="frozen_stages must be an int in -1..3"):
        MobileMambaBackbone(arch="test", frozen_stages=4)
    with pytest.raises(ValueError, match=r"out_indices=\(0, 3\) has \[3\], out of range"):
        MobileMambaBackbone(arch="test", out_indices=(0, 3))


def _maps(b=2, hw=((8, 10), (4, 5), (2, 3)), ch=(48, 64, 80)):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(b, c, h, w, generator=g) for c, (h, w) in zip(ch, hw)]


def test_upsample_fpn_levels_and_strides():
    neck = UpsampleFPN([48, 64, 80], 32, num_outs=5, num_upsample=2)
    outs = neck(_maps())
    assert [tuple(o.shape) for o in outs] == [(2, 32, 32, 40), (2, 32, 16, 20), (2, 32, 8, 10), (2, 32, 4, 5),
                                              (2, 32, 2, 3)]
    # RetinaNet's layout: one transposed level, an extra stride-2 conv on the last input
    neck = UpsampleFPN([48, 64, 80], 32, num_outs=5, num_upsample=1, add_extra_convs="on_input")
    assert [o.shape[-1] for o in neck(_maps())] == [20, 10, 5, 3, 2]
    outs[0].sum().backward()  # the finest level reaches every lateral through the top-down path
    for bad, match in [(dict(num_outs=4), "num_outs: got 4; allowed: at least"),
                       (dict(num_upsample=-1), "num_upsample: got -1"),
                       (dict(add_extra_convs=True), "add_extra_convs: got True")]:
        with pytest.raises(ValueError, match=match):
            UpsampleFPN([48, 64, 80], 32, **dict(dict(num_outs=5, num_upsample=2), **bad))
    with pytest.raises(ValueError, match="got 2 input maps; allowed: 3"):
        neck(_maps()[:2])


def test_upsample_fpn_is_mmdet_fpn_plus_the_transposed_levels():
    """Without transposed levels it computes what mmdet's FPN computes with the same weights; the transposed levels
    are a 2x2 stride-2 transposed conv of the finest lateral (after the top-down sum), then a 3x3 conv."""
    from mmdet.models.necks import FPN

    ours = UpsampleFPN([48, 64, 80], 32, num_outs=4, num_upsample=0)
    theirs = FPN([48, 64, 80], 32, num_outs=4)
    for mine, ref in zip(list(ours.lateral_convs) + list(ours.fpn_convs),
                         list(theirs.lateral_convs) + list(theirs.fpn_convs)):
        ref.conv.load_state_dict(mine.state_dict())
    maps = _maps()
    with torch.no_grad():
        for a, b in zip(ours(maps), theirs(maps)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    up = UpsampleFPN([48, 64, 80], 32, num_outs=4, num_upsample=1)
    up.load_state_dict(ours.state_dict(), strict=False)
    with torch.no_grad():
        outs = up(maps)
        lateral0 = theirs.lateral_convs[0](maps[0]) + torch.nn.functional.interpolate(
            theirs.lateral_convs[1](maps[1]) + torch.nn.functional.interpolate(theirs.lateral_convs[2](maps[2]),
                                                                              size=(4, 5)), size=(8, 10))
        fine = up.up_fpn_convs[0](up.up_convs[0](lateral0))
        torch.testing.assert_close(outs[0], fine, rtol=0, atol=1e-5)
        torch.testing.assert_close(outs[1], theirs(maps)[0], rtol=0, atol=1e-5)


def _ssd_head(type_):
    levels = (48, 64, 64, 32, 32, 32)
    with DefaultScope.overwrite_default_scope("mmdet"):  # mmdet's scope whatever ran before (mmseg's tests set theirs)
        return _build_ssd_head(type_, levels)


def _build_ssd_head(type_, levels):
    return MMDET_MODELS.build(dict(
        type=type_, in_channels=levels, num_classes=3, use_depthwise=True,
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03), act_cfg=dict(type='ReLU6'),
        anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False, strides=[16, 32, 64, 107, 160, 320],
                              ratios=[[2, 3]] * 6, min_sizes=[48, 100, 150, 202, 253, 304],
                              max_sizes=[100, 150, 202, 253, 304, 320]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
        test_cfg=ConfigDict(nms_pre=100, nms=dict(type='nms', iou_threshold=0.45), min_bbox_size=0, score_thr=0.0,
                      max_per_img=10)))


def test_fixed_ssd_head_predicts_what_ssd_head_computes():
    """mmdet 3.3's SSDHead cannot predict (it never sets the loss_cls its base reads); FixedSSDHead can, with the same
    weights, raw outputs and the softmax scores of SSDHead's own outputs."""
    torch.manual_seed(0)
    fixed, plain = _ssd_head("FixedSSDHead"), _ssd_head("SSDHead")
    assert fixed.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fixed.state_dict())
    fixed.eval(), plain.eval()
    feats = tuple(torch.randn(1, c, s, s) for c, s in zip((48, 64, 64, 32, 32, 32), (8, 4, 2, 1, 1, 1)))
    metas = [dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0))]
    with torch.no_grad():
        raw_fixed, raw_plain = fixed(feats), plain(feats)
        for a, b in zip(raw_fixed, raw_plain):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y)
        with pytest.raises(AttributeError, match="loss_cls"):  # mmdet's bug: if this stops raising, drop the fix
            plain.predict(feats, [type("S", (), {"metainfo": metas[0]})()])
        result = fixed.predict_by_feat(*raw_fixed, batch_img_metas=metas, rescale=False)[0]
    # the top score is the softmax foreground probability of one anchor of the raw class logits
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, 4) for c in raw_fixed[0]]).softmax(-1)[:, :3]
    assert len(result.scores) == 10
    torch.testing.assert_close(result.scores.max(), cls.max())
