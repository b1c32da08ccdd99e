"""MobileMamba: official parameter counts and channel splits, logit parity, BatchNorm fusion, geometry, gradients."""
import json
from pathlib import Path

import pytest
import torch
from timm.utils.model import reparameterize_model

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError
from vssm.models.mobilemamba import MOBILEMAMBA_CFGS, MobileMamba, checkpoint_filter_fn, split_channels

FIXTURES = Path(__file__).parent / "fixtures"

# parameters of the official classes (num_classes=1000; the frozen Haar filters included, as the official code and
# its fvcore logs count them: 8.8M / 14.2M / 15.0M / 17.1M published)
OFFICIAL_PARAMS = {"t2": 8_836_890, "t4": 14_176_090, "s6": 15_036_632, "b1": 17_122_849}
# (global, local, identity) channels per stage, from the official rule
OFFICIAL_SPLITS = {
    "t2": [(112, 28, 4), (192, 54, 26), (224, 110, 34)],
    "t4": [(144, 32, 0), (256, 73, 39), (272, 134, 42)],
    "s6": [(160, 32, 0), (272, 76, 36), (272, 134, 42)],
    "b1": [(160, 40, 0), (256, 75, 45), (272, 134, 42)],
}


@pytest.mark.parametrize("size", sorted(MOBILEMAMBA_CFGS))
def test_official_param_counts_and_splits(size):
    model = MobileMamba(**MOBILEMAMBA_CFGS[size])
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[size]
    splits = [split_channels(d, g, l_) for d, g, l_ in zip(MOBILEMAMBA_CFGS[size]["embed_dims"], (0.8, 0.7, 0.6),
                                                          (0.2, 0.2, 0.3))]
    assert splits == OFFICIAL_SPLITS[size]
    assert [s.blocks[0].mixer.splits for s in model.stages] == OFFICIAL_SPLITS[size]


def _fixture():
    from safetensors import safe_open

    with safe_open(str(FIXTURES / "mobilemamba.safetensors"), "pt") as f:
        cfg = json.loads(f.metadata()["official_config"])
        sd = {k[3:]: f.get_tensor(k) for k in f.keys() if k.startswith("sd.")}
        t = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("sd.")}
    model = MobileMamba(embed_dims=cfg["embed_dim"], depths=cfg["depth"], global_ratios=cfg["global_ratio"],
                        local_ratios=cfg["local_ratio"], kernel_sizes=cfg["kernels"], ssm_ratio=cfg["ssm_ratio"],
                        num_classes=cfg["num_classes"]).eval()
    return model, sd, t


def test_parity_with_official_even_and_odd_maps():
    model, sd, t = _fixture()
    model.load_state_dict(checkpoint_filter_fn(sd, model))
    with torch.no_grad():
        for suffix in ("", "_odd"):  # 64x64 (maps 4, 2, 1) and 112x80 (7x5, 4x3, 2x2: padded wavelet, H != W)
            torch.testing.assert_close(model(t["input" + suffix]), t["logits" + suffix], rtol=0, atol=5e-5)


def test_batchnorm_fusion_matches_the_official_fused_model():
    model, sd, t = _fixture()
    model.load_state_dict(checkpoint_filter_fn(sd, model))
    fused = reparameterize_model(model)
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # a copy: the model is untouched
    with torch.no_grad():
        for suffix in ("", "_odd"):
            x = t["input" + suffix]
            torch.testing.assert_close(fused(x), t["logits" + suffix + "_fused"], rtol=0, atol=5e-5)
            torch.testing.assert_close(fused(x), model(x), rtol=0, atol=5e-5)
    assert model.fuse() is model and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_wrong_checkpoint_is_named():
    model, sd, _ = _fixture()
    sd.pop("head.l.weight")
    sd["blocks1.0.dw0.m.c.weight"] = torch.zeros(3, 1, 3, 3)
    with pytest.raises(CheckpointError, match="official MobileMamba"):
        checkpoint_filter_fn(sd, model)


@pytest.mark.parametrize("hw", [(64, 64), (97, 113), (40, 200), (16, 16)])
def test_any_input_size_and_feature_strides(hw):
    torch.manual_seed(0)
    model = MobileMamba(embed_dims=(32, 48, 64), depths=(1, 1, 1), num_classes=7).eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        feats = model.forward_intermediates(x, intermediates_only=True)
        logits = model(x)
    assert logits.shape == (1, 7) and torch.isfinite(logits).all()
    side = lambda n, r: -(-n // r)  # noqa: E731  every stride-2 conv is padded: sizes round up
    assert [tuple(f.shape) for f in feats] == [(1, c, side(hw[0], r), side(hw[1], r))
                                                for c, r in ((32, 16), (48, 32), (64, 64))]
    assert [i["reduction"] for i in model.feature_info] == [16, 32, 64]


def test_every_trainable_parameter_gets_gradient():
    torch.manual_seed(0)
    official = MobileMamba(embed_dims=(32, 48, 64), depths=(1, 1, 1), num_classes=7)
    zero = [n for n, p in official.named_parameters() if n.endswith("bn.weight") and not p.any()]
    assert len(zero) == 5 * 3 + 2 * 2 and all(n.endswith(("dw0.bn.weight", "dw1.bn.weight", "pw2.bn.weight",
                                                             "proj.bn.weight")) for n in zero)
    # without the official zero inits of the residual branches (they stop the gradients of what is before them)
    model = MobileMamba(embed_dims=(32, 48, 64), depths=(1, 1, 1), num_classes=7, zero_init_last=False).train()
    model.head.norm.eval()  # in train mode it removes the batch mean: the last biases then get exactly 0
    logits = model(torch.randn(2, 3, 128, 128))
    (logits * torch.randn(logits.shape)).sum().backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.endswith(("wt_filter", "iwt_filter")) for n in frozen)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, missing
