"""timm's model contract for every family, once (mirrors timm's tests/test_models.py).

The registry is every timm entrypoint defined in ``vssm.models.*``; each family there must have a spec in
``FAMILIES`` (what legitimately differs between families: the layout of ``forward_features``, the parameters kept
out of weight decay, the input the forward checks use, the sizes that stress its geometry, ...).

- The cfg checks run on the ``meta`` device for every registered model (cheap; the build is shared with the
  families' parameter-count checks through the ``meta_model`` fixture).
- The forward-heavy checks run on the tiny ``test_*`` variant(s) of each family; the ids name the model (and the
  case): ``test_contract.py::test_features_only[test_vim-64x96]``.

What only one family has (official parameter counts, parity with the official code, scans, checkpoint conversion
and its errors, Vim's class token and pyramid, MambaVision's windows, ...) stays in that family's test file.
"""
from __future__ import annotations

import importlib
import itertools
from dataclasses import dataclass, field

import pytest
import timm
import torch
from timm.models import group_parameters, model_entrypoint
from timm.optim import param_groups_weight_decay
from vssm.kernels import available_backends

import vssm  # noqa: F401  (registers the models with timm)


def _family(name: str) -> str | None:
    """The ``vssm.models`` module that defines entrypoint ``name`` (None for timm's own models)."""
    module = model_entrypoint(name).__module__
    return module.rsplit(".", 1)[-1] if module.startswith("vssm.models.") else None


REGISTRY = sorted(n for n in timm.list_models() if _family(n))
TEST_MODELS = [n for n in REGISTRY if n.startswith("test_")]
FAST_CPU = "cpu" in available_backends()


# How a test model's maps follow an input side ``n`` at reduction ``r``: the rounding of its stem and
# down-samplings (pinned, so that an off-by-one in the geometry of any family shows).
def _ceil(n: int, r: int) -> int:  # padded stride-2 convs: every step rounds up
    return -(-n // r)


def _floor_stem(n: int, r: int) -> int:  # a stride-4 patch conv rounds down, the later down-samplings round up
    return _ceil(n // 4, r // 4)


def _vim_patch8(n: int, r: int) -> int:  # Vim: the image is padded to a multiple of the patch (8), then resampled
    return _ceil(_ceil(n, 8) * 8, r)


GRID = {
    "test_vmamba": _ceil, "vmamba_micro": _ceil, "test_localvmamba": _floor_stem, "test_vim": _vim_patch8,
    "test_mambavision": _ceil, "test_mlla": _ceil, "test_efficient_vmamba": _floor_stem,
    "test_msvmamba": _floor_stem, "test_mobilemamba": _ceil,
}
# Blocks of each test model (every block gets a drop-path rate, the schedule spans all of them).
NUM_BLOCKS = {"test_vmamba": 5, "test_localvmamba": 5, "test_vim": 4, "test_mambavision": 7, "test_mlla": 5,
              "test_efficient_vmamba": 5, "test_msvmamba": 5,
              "test_mobilemamba": 4}

SSM_NO_DECAY = frozenset({"A_log", "D", "dt_proj_bias"})
# Parameters of the selective scan: each must get gradient on every path (Vim: both directions).
SSM_GRAD_LEAVES = ("A_log", "dt_proj_bias", "x_proj_weight", "conv_weight")


@dataclass(frozen=True)
class Family:
    layout: str  # of forward_features: "NHWC", "NCHW" or "NLC" (tokens with the class token in the middle)
    no_weight_decay: frozenset  # leaf names of model.no_weight_decay()
    input_hw: tuple = (32, 32)  # the forward checks' input
    backward_hw: tuple | None = None  # the backward check's input, when not input_hw
    backward_kwargs: dict = field(default_factory=dict)
    backward_batch: int = 2  # more where a train-mode BatchNorm1d head sees the batch (2 images normalise to +-1)
    dropout_kwargs: dict = field(default_factory=dict)  # the family's own dropouts, on top of drop_rate
    pools: tuple = ("avg", "max", "avgmax")
    reductions: tuple | None = (4, 8, 16, 32)  # of feature_info (None: depends on the model's patch)
    any_sizes: tuple = ()  # ((b, h, w), create kwargs, id suffix): the sizes that stress the family's geometry
    flat: bool = False  # blocks without stages (coarse parameter groups are then the fine ones)


def _sizes(*sizes, kwargs=None, suffix=""):
    return tuple((s, kwargs or {}, suffix) for s in sizes)


VMAMBA_SIZES = [(1, 32, 32), (2, 113, 97), (1, 64, 48), (1, 40, 200)]
if FAST_CPU:
    VMAMBA_SIZES += [(1, 224, 224), (1, 256, 256), (1, 512, 512)]
FAMILIES = {
    # backward at 64x64: the last stage is 2x2 (a 1x1 map would give A no gradient)
    "vmamba": Family("NHWC", SSM_NO_DECAY, backward_hw=(64, 64), any_sizes=_sizes(*VMAMBA_SIZES)),
    # 32x40: a non-square grid (4x5 patches, the class token at 10) so that a swapped H / W shows; a flat stack of
    # blocks: like timm's ViT, coarse and fine parameter groups are the same
    "vim": Family("NLC", SSM_NO_DECAY | {"pos_embed", "cls_token"}, input_hw=(32, 40), flat=True,
                  dropout_kwargs=dict(pos_drop_rate=0.1), pools=("token", "avg"), reductions=None,
                  any_sizes=_sizes((1, 32, 32), (2, 113, 97), (1, 40, 200), (1, 8, 8), (1, 16, 24))),
    # 64x64: the attention stages see a 4x4 / 2x2 map; layer scale off so that every parameter gets gradient;
    # windows that do not divide the maps at the odd sizes
    "mambavision": Family("NCHW", SSM_NO_DECAY, input_hw=(64, 64), backward_kwargs=dict(layer_scale=None),
                          any_sizes=_sizes((2, 113, 97), (1, 40, 200), (1, 32, 32),
                                           kwargs=dict(window_size=(2, 2, 3, 2)))),
    # no SSM parameters and RoPE tables that are computed, not stored: nothing is kept out of weight decay
    "mlla": Family("NHWC", frozenset(), dropout_kwargs=dict(proj_drop_rate=0.1),
                   any_sizes=_sizes((2, 97, 113), (1, 40, 72), (1, 33, 33))),
    # the official zero-padded atrous scan and the unpadded one
    "efficient_vmamba": Family("NHWC", SSM_NO_DECAY, any_sizes=(
        _sizes((2, 97, 113), (1, 40, 72), (1, 35, 29), suffix="-padded")
        + _sizes((2, 97, 113), (1, 40, 72), (1, 35, 29), kwargs=dict(atrous_padding=False), suffix="-unpadded"))),
    # backward at 64x64: the last stage is 2x2, its down-sampled map 1x1 (at 32x32 the down-sampled set of the
    # last stage is a 1x1 map of a 1x1 map: its A gets no gradient); the official chained down-sampled paths, and
    # independent ones
    "msvmamba": Family("NHWC", SSM_NO_DECAY, backward_hw=(64, 64), any_sizes=(
        _sizes((2, 97, 113), (1, 40, 72)) + _sizes((1, 35, 29), kwargs=dict(chain_low_paths=False),
                                                   suffix="-unchained"))),
    # three stages at strides 16 / 32 / 64; 64x64 gives maps 4, 2, 1 and the backward needs 128x128 (at a 1x1 map
    # the one-step scan gives A no gradient); odd sizes pad the wavelet branch
    # zero_init_last off: the official zero BatchNorm weights ending each residual branch stop every gradient before
    "mobilemamba": Family("NCHW", SSM_NO_DECAY, input_hw=(64, 64), backward_hw=(128, 128), reductions=(16, 32, 64),
                          backward_kwargs=dict(zero_init_last=False), backward_batch=4,
                          any_sizes=_sizes((2, 97, 113), (1, 40, 200), (1, 33, 33), (1, 16, 16))),
}


def _spec(name: str) -> Family:
    return FAMILIES[_family(name)]


def _grid(name: str, h: int, w: int, r: int) -> tuple:
    return GRID[name](h, r), GRID[name](w, r)


def _expected_maps(name, model, h, w):
    """(1, C, H, W) of every intermediate / feature map at input h x w, from feature_info and the model's rounding."""
    info = model.feature_info
    if isinstance(info, list):  # a classifier's feature_info: a list of dicts (features_only: a FeatureInfo)
        info = timm.models.FeatureInfo(info, range(len(info)))
    return [(1, c, *_grid(name, h, w, r)) for c, r in zip(info.channels(), info.reduction())]


def _feature_shape(layout, b, grid, c):
    if layout == "NHWC":
        return (b, *grid, c)
    if layout == "NCHW":
        return (b, c, *grid)
    return (b, grid[0] * grid[1] + 1, c)  # NLC: the patches and the class token


def _as_map(t, layout, grid):
    """forward_features' output as an NCHW map (Vim: the class token, in the middle, dropped)."""
    if layout == "NHWC":
        return t.permute(0, 3, 1, 2)
    if layout == "NCHW":
        return t
    m = (t.shape[1] - 1) // 2
    tokens = torch.cat([t[:, :m], t[:, m + 1:]], 1)
    return tokens.transpose(1, 2).reshape(t.shape[0], t.shape[2], *grid)


def _stages(model):
    return model.layers if hasattr(model, "layers") else model.stages


def _blocks(model):
    return list(model.layers) if hasattr(model, "layers") else [b for s in model.stages for b in s.blocks]


def _hw_id(size):
    return "x".join(map(str, size))


# ----------------------------------------------------------------------------------------------------------------
# The registry and the default cfg (meta device)


def test_every_family_is_under_contract():
    families = {_family(n) for n in REGISTRY}
    assert families == set(FAMILIES), "a family without a spec in FAMILIES (or a spec without a family)"
    assert {_family(n) for n in TEST_MODELS} == families, "every family needs a test_* variant"
    assert set(TEST_MODELS) <= set(GRID) and set(TEST_MODELS) <= set(NUM_BLOCKS)


@pytest.mark.parametrize("name", REGISTRY)
def test_default_cfg(name, meta_model):
    """Config consistency without a forward: cfg names exist, feature_info, no_weight_decay, group_matcher."""
    spec = _spec(name)
    model = meta_model(name)
    cfg = model.pretrained_cfg
    if cfg.get("url") or cfg.get("hf_hub_id"):  # a release: vssm.hub fetches it (tests/models/test_pretrained.py)
        assert cfg.get("top1") is not None, "a released weight carries its published top-1"
    names = dict(model.named_modules())
    assert cfg["first_conv"] in names and isinstance(names[cfg["first_conv"]], torch.nn.Conv2d)
    assert names[cfg["first_conv"]].in_channels == 3
    assert cfg["classifier"] in names and names[cfg["classifier"]] is model.get_classifier()
    assert cfg["num_classes"] == model.num_classes == 1000
    assert model.feature_info[-1]["num_chs"] == model.num_features == model.head_hidden_size
    if spec.reductions is not None:
        assert [f["reduction"] for f in model.feature_info] == list(spec.reductions)
    params = dict(model.named_parameters())
    nwd = model.no_weight_decay()
    assert nwd <= set(params)
    assert {n.rsplit(".", 1)[-1] for n in nwd} == spec.no_weight_decay  # empty exactly where the family has none
    groups = param_groups_weight_decay(model, 0.05, no_weight_decay_list=nwd)
    trainable = [n for n, p in params.items() if p.requires_grad]  # frozen ones (MobileMamba's Haar filters) too
    assert sum(len(g["params"]) for g in groups) == len(trainable)
    decayed = {id(p) for p in groups[1]["params"]}
    assert not any(id(params[n]) in decayed for n in nwd)
    assert set(model.group_matcher()) == {"stem", "blocks"}


@pytest.mark.parametrize("name", TEST_MODELS)
def test_group_matcher_with_timm(name, meta_model):
    model = meta_model(name)
    groups = group_parameters(model, model.group_matcher(coarse=False))
    assert {n for names in groups.values() for n in names} == {n for n, _ in model.named_parameters()}
    coarse = group_parameters(model, model.group_matcher(coarse=True))
    if _spec(name).flat:
        assert coarse == groups
    else:
        assert len(coarse) < len(groups)


# ----------------------------------------------------------------------------------------------------------------
# Forward, backward, heads


@pytest.mark.parametrize("name", TEST_MODELS + ["vmamba_micro"])
def test_forward_and_grad_checkpointing(name):
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    x = torch.randn(2, 3, *_spec(name).input_hw)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 1000) and torch.isfinite(y).all()
        model.set_grad_checkpointing(True)
        y2 = model(x)
    torch.testing.assert_close(y, y2)


@pytest.mark.parametrize("grad_checkpointing", [False, True], ids=["plain", "grad_checkpointing"])
@pytest.mark.parametrize("name", TEST_MODELS)
def test_backward_every_param(name, grad_checkpointing):
    spec = _spec(name)
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=42, **spec.backward_kwargs).train()
    model.set_grad_checkpointing(grad_checkpointing)
    b = spec.backward_batch
    y = model(torch.randn(b, 3, *(spec.backward_hw or spec.input_hw)))
    assert y.shape == (b, 42)
    (y * torch.randn(y.shape)).mean().backward()  # (a plain mean is constant behind a BatchNorm1d head)
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"parameters without a finite gradient: {missing}"
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    for n, p in model.named_parameters():  # the SSM parameters really get signal, on every path (axis 0)
        if n.endswith(SSM_GRAD_LEAVES):
            per_path = p.grad.abs().reshape(p.shape[0], -1).sum(1) if p.ndim > 1 else p.grad.abs().sum()
            assert (per_path > 0).all(), n


@pytest.mark.parametrize("name", TEST_MODELS)
def test_inference_mode_then_training(name):
    """``torch.inference_mode()`` (timm's and most serving code's way to predict), then a training step: the
    constants that models cache per input size (scan orders, padded window orders, RoPE tables) must be ordinary
    tensors, or the inference forward fails (no version counter) or the later backward cannot save them. An odd
    size, so that LocalMamba pads its windows; the gradients equal those of a twin that never saw inference mode."""
    spec = _spec(name)
    h, w = spec.backward_hw or spec.input_hw
    x = torch.randn(spec.backward_batch, 3, h + 3, w + 5)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(timm.create_model(name, num_classes=7, **spec.backward_kwargs))
    model, twin = models
    for m in model.modules():  # scan objects may be shared: make this model's first forward build every cache
        if hasattr(getattr(m, "scan", None), "clear_cache"):
            m.scan.clear_cache()
    model.eval()
    with torch.inference_mode():
        outs = [model(x), model(x)]  # the first call builds the caches, the second reads them
    with torch.no_grad():
        expected = model(x)
    for out in outs:
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    grads = []
    for m in (model, twin):
        m.train()
        torch.manual_seed(1)  # the same dropout / drop-path draws
        (m(x) * torch.arange(7.0)).mean().backward()
        grads.append({n: p.grad for n, p in m.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for n, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][n], msg=lambda m, n=n: f"{n}: {m}")


FX_MODELS = [n for n in TEST_MODELS if _spec(n).layout != "NLC"]


@pytest.mark.parametrize("name", FX_MODELS)
def test_torch_fx_trace_equals_eager(name):
    """timm's FX path (its leaf registry: our mixers, down-samplers and GEMM layers run whole): the traced graph gives
    the eager logits bit for bit at an odd size, and the same gradients (as timm's test_model_forward_fx /
    test_model_backward_fx)."""
    from timm.models._features_fx import create_feature_extractor, get_graph_node_names

    spec = _spec(name)
    h, w = spec.backward_hw or spec.input_hw
    x = torch.randn(spec.backward_batch, 3, h + 3, w + 5)
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7, **spec.backward_kwargs).eval()
    train_nodes, eval_nodes = get_graph_node_names(model)
    assert any(n.startswith("stem") for n in eval_nodes) and any(n.startswith("stages.") for n in eval_nodes)
    graph = create_feature_extractor(model, {eval_nodes[-1]: "out"})
    with torch.no_grad():
        torch.testing.assert_close(graph(x)["out"], model(x), rtol=0, atol=0)
    model.train()
    graph = create_feature_extractor(model, {train_nodes[-1]: "out"})
    grads = []
    for fn in (graph, model):
        model.zero_grad()
        torch.manual_seed(1)
        out = fn(x)
        ((out["out"] if isinstance(out, dict) else out) * torch.arange(7.0)).mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][n], msg=lambda m, n=n: f"{n}: {m}")


@pytest.mark.parametrize("name", FX_MODELS)
def test_features_only_fx_equals_the_default(name):
    """``features_only=True, feature_cls='fx'`` (timm's FeatureGraphNet) gives the default feature maps (its raw
    stage outputs: channels-last for NHWC families)."""
    spec = _spec(name)
    x = torch.randn(1, 3, 70, 90)
    nets = []
    for cls in ("fx", None):
        torch.manual_seed(0)
        nets.append(timm.create_model(name, features_only=True, **({"feature_cls": cls} if cls else {})).eval())
    assert type(nets[0]).__name__ == "FeatureGraphNet"
    with torch.no_grad():
        fx, default = nets[0](x), nets[1](x)
    assert len(fx) == len(default)
    for a, b in zip(fx, default):
        torch.testing.assert_close(a.permute(0, 3, 1, 2) if spec.layout == "NHWC" else a, b, rtol=0, atol=0)


def test_vim_refuses_torch_fx_with_a_clear_error():
    from timm.models._features_fx import get_graph_node_names

    model = timm.create_model("test_vim").eval()
    with pytest.raises(NotImplementedError, match=r"Vim: torch.fx symbolic tracing is not supported.*torch.export"):
        get_graph_node_names(model)


@pytest.mark.parametrize("name", TEST_MODELS)
def test_default_cfg_forward(name):
    """forward_features / forward_head, reset_classifier(0) -> pooled 2-D, reset_classifier(0, '') -> unpooled."""
    spec = _spec(name)
    model = timm.create_model(name).eval()
    h, w = spec.input_hw
    x = torch.randn(2, 3, h, w)
    grid = _grid(name, h, w, model.feature_info[-1]["reduction"])
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == _feature_shape(spec.layout, 2, grid, model.num_features)  # unpooled
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.head_hidden_size)
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)
        model.reset_classifier(0, "")
        out = model(x)
        assert out.ndim == len(spec.layout)  # 4-D maps (3-D tokens for Vim)
        torch.testing.assert_close(out, feats)
        model.reset_classifier(7, "avg")
        assert model(x).shape == (2, 7)


POOL_CASES = [pytest.param(name, pool, id=f"{name}-{pool or 'unpooled'}")
              for name in TEST_MODELS for pool in _spec(name).pools + ("",)]


@pytest.mark.parametrize("name, pool", POOL_CASES)
def test_global_pool(name, pool):
    x = torch.randn(1, 3, 32, 32)
    if pool:
        model = timm.create_model(name, global_pool=pool, num_classes=3).eval()
        with torch.no_grad():
            assert model(x).shape == (1, 3)
    else:
        model = timm.create_model(name, global_pool="", num_classes=0).eval()
        with torch.no_grad():
            assert model(x).ndim == len(_spec(name).layout)  # 4-D maps (3-D tokens for Vim)


# ----------------------------------------------------------------------------------------------------------------
# Features


@pytest.mark.parametrize("size", [(64, 96), (64, 48), (113, 97)], ids=_hw_id)
@pytest.mark.parametrize("name", TEST_MODELS)
def test_features_only(name, size):
    h, w = size
    default = timm.create_model(name, features_only=True, device="meta")
    n = len(default.feature_info.channels())  # 4 stages (MobileMamba: 3)
    model = timm.create_model(name, features_only=True, out_indices=tuple(range(n))).eval()
    assert default.feature_info.channels() == model.feature_info.channels()
    assert default.feature_info.reduction() == model.feature_info.reduction()
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        outs = model(x)
    assert len(outs) == len(model.feature_info.channels()) == n == len(_spec(name).reductions or range(4))
    assert [tuple(o.shape) for o in outs] == _expected_maps(name, model, h, w)  # NCHW
    sub = timm.create_model(name, features_only=True, out_indices=(1, n - 1)).eval()
    assert sub.feature_info.channels() == [model.feature_info.channels()[i] for i in (1, n - 1)]
    assert sub.feature_info.reduction() == [model.feature_info.reduction()[i] for i in (1, n - 1)]
    with torch.no_grad():
        assert [o.shape[1] for o in sub(x)] == sub.feature_info.channels()


@pytest.mark.parametrize("name", TEST_MODELS)
def test_forward_intermediates(name):
    spec = _spec(name)
    model = timm.create_model(name).eval()
    h, w = spec.input_hw
    x = torch.randn(1, 3, h, w)
    maps = _expected_maps(name, model, h, w)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [tuple(t.shape) for t in inter] == maps
        only = model.forward_intermediates(x, indices=2, intermediates_only=True, stop_early=True)
        assert len(only) == 2
        torch.testing.assert_close(only[-1], inter[-1])
        nhwc = model.forward_intermediates(x, indices=[0], output_fmt="NHWC", intermediates_only=True)
        torch.testing.assert_close(nhwc[0].permute(0, 3, 1, 2), inter[0])
        normed = model.forward_intermediates(x, norm=True, intermediates_only=True)
        torch.testing.assert_close(normed[-1], _as_map(final, spec.layout, maps[-1][2:]))
    assert model.prune_intermediate_layers(indices=[0, 1], prune_norm=True) == [0, 1]
    assert len(_stages(model)) == 2 and model.num_classes == 0
    assert isinstance(model.norm, torch.nn.Identity) and isinstance(model.get_classifier(), torch.nn.Identity)
    with torch.no_grad():
        pruned = model.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
        torch.testing.assert_close(pruned[1], inter[1])
        out = model(x)  # the pruned model ends after block / stage 1: unnormed, unpooled, no head
    torch.testing.assert_close(_as_map(out, spec.layout, maps[1][2:]), inter[1])


ANY_SIZE_CASES = [pytest.param(name, size, kwargs, id=f"{name}-{_hw_id(size)}{suffix}")
                  for name in TEST_MODELS for size, kwargs, suffix in _spec(name).any_sizes]


@pytest.mark.parametrize("name, size, kwargs", ANY_SIZE_CASES)
def test_any_input_size(name, size, kwargs):
    b, h, w = size
    model = timm.create_model(name, num_classes=5, **kwargs).eval()
    with torch.no_grad():
        y = model(torch.randn(b, 3, h, w))
        feats = model.forward_intermediates(torch.randn(1, 3, h, w), intermediates_only=True)
    assert y.shape == (b, 5) and torch.isfinite(y).all()
    assert [tuple(f.shape) for f in feats] == _expected_maps(name, model, h, w)


# ----------------------------------------------------------------------------------------------------------------
# Options, bad input


@pytest.mark.parametrize("name", TEST_MODELS)
def test_in_chans_and_wrong_channels(name):
    model = timm.create_model(name, in_chans=1, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"in_chans=1.*3 channels"):
        model(torch.randn(1, 3, 32, 32))
    for c in (2, 4):
        with pytest.raises(ValueError, match="in_chans=1"):
            model.forward_intermediates(torch.randn(1, c, 32, 32))


@pytest.mark.parametrize("name", TEST_MODELS)
def test_drop_path_and_dropouts(name):
    model = timm.create_model(name, drop_path_rate=0.2, drop_rate=0.1, **_spec(name).dropout_kwargs)
    drop_paths = [getattr(b, "drop_path", getattr(b, "drop_path1", None)) for b in _blocks(model)]
    rates = [getattr(d, "drop_prob", 0.0) for d in drop_paths]
    assert len(rates) == NUM_BLOCKS[name]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    model.train()
    assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()


@pytest.mark.parametrize("name", TEST_MODELS)
def test_device_dtype_kwargs(name):
    model = timm.create_model(name, device="meta")
    assert all(t.device.type == "meta" for t in itertools.chain(model.parameters(), model.buffers()))
    model = timm.create_model(name, dtype=torch.float64).eval()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


# ----------------------------------------------------------------------------------------------------------------
# Own checkpoints


@pytest.mark.parametrize("name", TEST_MODELS)
def test_own_state_dict_roundtrip(name):
    """The family's checkpoint_filter_fn takes the model's own state dict: plain, or wrapped as a training script
    saves it (``state_dict`` / ``model`` key, DDP's ``module.`` prefix)."""
    filter_fn = importlib.import_module(model_entrypoint(name).__module__).checkpoint_filter_fn
    model = timm.create_model(name).eval()
    sd = model.state_dict()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    for wrap in (None, "state_dict", "model"):
        ckpt = sd if wrap is None else {wrap: {"module." + k: v for k, v in sd.items()}}
        fresh = timm.create_model(name).eval()
        fresh.load_state_dict(filter_fn(ckpt, model), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(fresh(x), ref, msg=lambda m, wrap=wrap: f"wrap {wrap}: {m}")


@pytest.mark.parametrize("name", TEST_MODELS)
def test_pretrained_file_with_new_head(name, tmp_path):
    from safetensors.torch import save_file

    src = timm.create_model(name).eval()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = timm.create_model(name, pretrained=True, num_classes=5,
                              pretrained_cfg_overlay=dict(file=str(path))).eval()
    classifier = model.pretrained_cfg["classifier"] + "."
    for k, v in src.state_dict().items():
        if not k.startswith(classifier):
            torch.testing.assert_close(model.state_dict()[k], v)
    assert model.get_classifier().out_features == 5
