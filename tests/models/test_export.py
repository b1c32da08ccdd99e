"""Every family exports as timm.create_model builds it, with no flag or backend argument: torch.export, ONNX (the
dynamo exporter, opset 18, dynamic batch) run with onnxruntime, and torch.compile(fullgraph=True) of the forward
and of a training step. While exported, the op takes the portable torch backend by itself."""
from __future__ import annotations

import shutil

import pytest
import timm
import torch

import vssm  # noqa: F401

FAMILIES = ["test_vmamba", "test_localvmamba", "test_vim", "test_mambavision", "test_mlla", "test_efficient_vmamba",
            "test_msvmamba", "test_mobilemamba"]


# README "Versions": torch.export (non-strict, its default from torch 2.8) of every family needs torch >= 2.7: on 2.6
# is_exporting() is false in a non-strict export, so the custom op stays in the graph, and strict mode (dynamo)
# cannot trace the scans' cache locks there
needs_export = pytest.mark.skipif(torch.__version__ < "2.7", reason="torch.export of every family: torch >= 2.7")


def _model(name):
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    side = model.pretrained_cfg["input_size"][-1]
    return model, side


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=64)


@pytest.mark.parametrize("name", FAMILIES)
@needs_export
def test_torch_export(name):
    model, side = _model(name)  # no eager call first: the scan orders are made while tracing
    x = torch.randn(2, 3, side, side)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: _batch_dim()},), strict=False)
    graph = str(ep.graph)
    assert "vssm.selective_scan" not in graph  # the portable backend: plain aten ops
    x3 = torch.randn(3, 3, side, side)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x3), model(x3), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, side = _model(name)
    x = torch.randn(2, 3, side, side)
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18, dynamic_shapes=({0: _batch_dim()},),
                                verbose=False)
    path = tmp_path / f"{name}.onnx"
    program.save(str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, 3, side, side)  # another batch size than the traced one
    (out,) = sess.run(None, {sess.get_inputs()[0].name: x3.numpy()})
    with torch.no_grad():
        ref = model(x3)
    assert out.shape == tuple(ref.shape)
    torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", FAMILIES)
def test_torch_compile_fullgraph_forward_and_training_step(name, torch_gemm):
    """Compiled against eager, both on torch's BLAS (the compiled graph runs F.linear; eager's oneDNN linear agrees
    to fp32 rounding only, tested in test_linear.py)."""
    torch._dynamo.reset()
    model, side = _model(name)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        expected = model(x)  # one eager call: the orders of this size become cached constants
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), expected, rtol=1e-5, atol=1e-5)
    model.train()
    compiled(x).float().square().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model(x).float().square().mean().backward()
    assert grads.keys() == {n for n, p in model.named_parameters() if p.grad is not None} and grads
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads[n], p.grad, rtol=1e-4, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="inductor on CPU compiles C++: no compiler")
@pytest.mark.parametrize("name", ["test_vmamba", "test_vim"])
def test_inductor_training_step(name, torch_gemm):
    """torch.compile with its default backend (inductor, which checks the custom ops' real output strides against
    their fake kernels'), a training step: the gradients are eager's."""
    torch._dynamo.reset()
    model, side = _model(name)
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        model(x)  # as the README says: one eager call, so that the scan orders are cached constants
    model.train()
    grads = []
    for fn in (torch.compile(model), model):
        model.zero_grad(set_to_none=True)
        fn(x).float().square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][n], rtol=1e-4, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")


@needs_export
def test_one_real_size_exports():
    """VMamba-T at 224 (real orders, chunks and widths) through torch.export, against eager."""
    model = timm.create_model("vmamba_tiny").eval()
    x = torch.randn(1, 3, 224, 224)
    ep = torch.export.export(model, (x,), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), model(x), rtol=1e-4, atol=1e-4)
