"""Whether the op runs under a tracer: ``torch.export`` / the ONNX exporter / TorchScript, or ``torch.compile``."""
from __future__ import annotations

import torch


def is_compiling() -> bool:
    """``torch.compile`` (dynamo) is tracing."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def is_exporting() -> bool:
    """True while ``torch.export`` / the ONNX exporter / ``torch.jit.trace`` runs the model: the op then takes the
    traceable ``torch`` backend (``torch.compile`` keeps the fast backends, behind their custom ops)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "_is_exporting_flag"):
        # what is_exporting() returns, read directly: inside torch.compile, torch 2.7-2.11's dynamo folds
        # is_exporting() to True, which would send every compiled model down the portable path
        if compiler._is_exporting_flag:
            return True
    elif compiler is not None and getattr(compiler, "is_exporting", lambda: False)():
        return True
    onnx = getattr(torch, "onnx", None)
    return bool(onnx is not None and getattr(onnx, "is_in_onnx_export", lambda: False)())


def is_tracing() -> bool:
    """``is_exporting()`` or ``torch.compile`` tracing: no data-dependent Python branches, locks or checkpoints."""
    return is_compiling() or is_exporting()
