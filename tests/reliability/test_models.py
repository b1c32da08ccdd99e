"""Every model entrypoint of our families and every OpenMMLab adapter under bad input, and the inputs that must give
a correct result (empty batch, the smallest maps, strided and channels-last images, a non-finite sample, a large
map)."""
from __future__ import annotations

import pytest
import timm
import torch
from rel_support import RESULT, expect_error, record

import vssm  # noqa: F401  (registers the models)

FAMILIES = ["vmamba", "vim", "mambavision", "mlla", "msvmamba", "efficient_vmamba", "mobilemamba"]
ENTRYPOINTS = sorted(timm.list_models(module=FAMILIES))
TEST_VARIANTS = [n for n in ENTRYPOINTS if n.startswith("test_")]
META = torch.device("meta")


@pytest.fixture(scope="module")
def meta_models():
    return {}


def _meta_model(cache, name):
    if name not in cache:
        cache[name] = timm.create_model(name, device="meta").eval()
    return cache[name]


# (case, input, exception, needles) for a model on the meta device (nothing is computed: the check comes first)
BAD_IMAGES = [
    ("list", lambda: [[0.0]], TypeError, ["x", "got list", "torch.Tensor"]),
    ("rank 3", lambda: torch.empty(3, 32, 32, device=META), ValueError, ["x", "3-D", "(B, 3, H, W)"]),
    ("rank 5", lambda: torch.empty(1, 3, 32, 32, 1, device=META), ValueError, ["x", "5-D", "(B, 3, H, W)"]),
    ("channels", lambda: torch.empty(1, 2, 32, 32, device=META), ValueError, ["x", "2 channels", "(B, 3, H, W)"]),
    ("zero height", lambda: torch.empty(1, 3, 0, 32, device=META), ValueError, ["x", "0x32", "height and width >="]),
    ("uint8", lambda: torch.empty(1, 3, 32, 32, dtype=torch.uint8, device=META), TypeError,
     ["x", "uint8", "float32"]),
    ("int64", lambda: torch.empty(1, 3, 32, 32, dtype=torch.int64, device=META), TypeError, ["x", "int64", "float32"]),
    ("complex", lambda: torch.empty(1, 3, 32, 32, dtype=torch.complex64, device=META), TypeError,
     ["x", "complex64", "float32"]),
    ("float64", lambda: torch.empty(1, 3, 32, 32, dtype=torch.float64, device=META), TypeError,
     ["x", "float64", "float32"]),
    ("other device", lambda: torch.zeros(1, 3, 32, 32), ValueError, ["x", "device cpu", "meta"]),
]


@pytest.mark.parametrize("name", ENTRYPOINTS)
def test_bad_images_at_every_entrypoint(name, meta_models):
    model = _meta_model(meta_models, name)
    for _case, make, exc, needles in BAD_IMAGES:
        for fn in (model, model.forward_features, model.forward_intermediates):
            expect_error(f"model {name}", lambda fn=fn, make=make: fn(make()), exc, needles)


BAD_CREATE = [
    ("unknown model", lambda: timm.create_model("vmamba_tinyy"), RuntimeError, ["vmamba_tinyy"]),
    ("unknown argument", lambda: timm.create_model("test_vmamba", depht=2), TypeError, ["depht"]),
    ("unknown scan", lambda: timm.create_model("test_vmamba", scan="spiral"), ValueError,
     ["'spiral'", "registered scans"]),
    ("scan of a wrong type", lambda: timm.create_model("test_vim", scan=3), TypeError, ["scan spec", "int: 3"]),
    ("scan list length", lambda: timm.create_model("test_vmamba", scan=["cross", "hilbert"]), ValueError,
     ["2 entries", "stage(s)"]),
]


@pytest.mark.parametrize("case,fn,exc,needles", BAD_CREATE, ids=[c[0] for c in BAD_CREATE])
def test_bad_names_and_arguments(case, fn, exc, needles):
    expect_error("timm.create_model", fn, exc, needles)


@pytest.fixture(scope="module")
def cpu_models():
    torch.manual_seed(0)
    return {n: timm.create_model(n, num_classes=5).eval() for n in TEST_VARIANTS}


def _min_side(model):
    stem = getattr(model, "stem", None) or getattr(model, "patch_embed", None)
    return getattr(stem, "min_input_size", 1)


@pytest.mark.parametrize("name", TEST_VARIANTS)
def test_inputs_that_must_work(name, cpu_models):
    model = cpu_models[name]
    entry = f"model {name}"
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 40, 36, generator=g)
    with torch.no_grad():
        ref = model(x)
        # empty batch, also through the feature maps
        assert model(x[:0]).shape == (0, 5)
        full = model.forward_intermediates(x, intermediates_only=True)
        empty = model.forward_intermediates(x[:0], intermediates_only=True)
        assert [f.shape[1:] for f in empty] == [f.shape[1:] for f in full] and all(f.shape[0] == 0 for f in empty)
        record(entry, RESULT, 2)
        # the smallest maps it takes, square and 1 x N / N x 1 strips
        m = _min_side(model)
        for h, w in ((m, m), (m, 17), (17, m)):
            y = model(torch.randn(1, 3, h, w, generator=g))
            assert y.shape == (1, 5) and torch.isfinite(y).all(), (h, w)
            record(entry, RESULT)
        # channels-last, a strided view, an expanded batch: the same logits as the contiguous input
        for variant in (x.contiguous(memory_format=torch.channels_last), x.transpose(2, 3).contiguous().transpose(2, 3),
                        torch.cat([x, x], 3)[..., :36]):
            assert not variant.is_contiguous()
            torch.testing.assert_close(model(variant), ref, rtol=1e-4, atol=1e-4)
            record(entry, RESULT)
        # a non-finite sample stays its own: the other sample's logits are those of a clean run
        for value in (float("nan"), float("inf")):
            bad = x.clone()
            bad[0, :, 5, 7] = value
            y = model(bad)
            assert not torch.isfinite(y[0]).all(), "a non-finite input gave finite logits"
            torch.testing.assert_close(y[1], ref[1], rtol=1e-4, atol=1e-4)
            record(entry, RESULT)
        # a large odd map
        big = torch.randn(1, 3, 257, 383, generator=g)
        y = model(big)
        assert y.shape == (1, 5) and torch.isfinite(y).all()
        feats = model.forward_intermediates(big, intermediates_only=True)
        assert all(f.shape[0] == 1 and f.dim() == 4 for f in feats)
        record(entry, RESULT)


# ----------------------------------------------------------------------------------------------------------------
# OpenMMLab adapters

mm = pytest.importorskip("vssm.mm")
ADAPTERS = sorted((c for c in vars(mm).values() if isinstance(c, type) and issubclass(c, mm.TimmBackbone)
                   and c is not mm.TimmBackbone and "test" in c.arch_zoo), key=lambda c: c.__name__)

BAD_ADAPTER_ARGS = [
    (dict(arch=3), ["arch=3", "allowed"]),
    (dict(arch="gigantic"), ["arch='gigantic'", "allowed: an alias"]),
    (dict(arch="test", out_indices="0"), ["out_indices", "'0'", "sequence of ints"]),
    (dict(arch="test", out_indices=(0.5,)), ["out_indices", "0.5", "sequence of ints"]),
    (dict(arch="test", out_indices=()), ["out_indices", "()", "non-empty"]),
    (dict(arch="test", out_indices=(9,)), ["out_indices", "9", "out of range"]),
    (dict(arch="test", frozen_stages="1"), ["frozen_stages", "'1'", "-1.."]),
    (dict(arch="test", init_cfg="x.pth"), ["init_cfg", "'x.pth'", "dict with a 'type'"]),
    (dict(arch="test", init_cfg=dict(type="Pretrained")), ["init_cfg", "needs a 'checkpoint'"]),
]


@pytest.mark.parametrize("cls", ADAPTERS, ids=lambda c: c.__name__)
def test_adapters_bad_arguments_and_images(cls):
    entry = f"mm {cls.__name__}"
    for kwargs, needles in BAD_ADAPTER_ARGS:
        expect_error(entry, lambda kwargs=kwargs: cls(**kwargs), ValueError, needles)
    backbone = cls(arch="test").eval()
    for case, make, exc, needles in BAD_IMAGES:
        if case == "other device":
            continue  # the adapter is on CPU here
        x = make()
        x = x if case == "list" else torch.zeros(x.shape, dtype=x.dtype)  # the same bad image, on CPU
        expect_error(entry, lambda x=x: backbone(x), exc, needles)
    with torch.no_grad():
        x = torch.randn(2, 3, 67, 45)
        outs = backbone(x)
        assert len(outs) == len(backbone.out_indices) and all(torch.isfinite(o).all() for o in outs)
        empty = backbone(x[:0])
        assert [tuple(o.shape[1:]) for o in empty] == [tuple(o.shape[1:]) for o in outs]
        for a, b in zip(backbone(x.contiguous(memory_format=torch.channels_last)), outs):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    record(entry, RESULT, 3)
