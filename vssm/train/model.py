"""Model creation for the tools: ``timm.create_model`` with one-line errors for an unknown model, scan or argument,
and strict weight loading through :mod:`vssm.checkpoint`."""
from __future__ import annotations

import difflib
from typing import Any

import timm
import torch

from ..checkpoint import CheckpointError, first_line, load_weights, read_checkpoint
from .errors import UsageError

__all__ = ["check_model_name", "create_model_checked", "list_scans"]


def check_model_name(name: str, flag: str = "--model") -> None:
    """Raises ``UsageError`` naming close matches unless ``name`` is a registered timm model."""
    if timm.is_model(name):
        return
    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else "; list them with timm.list_models()"
    raise UsageError(f"{flag} {name!r} is not a registered model{hint}")


def list_scans() -> list[str]:
    """Registered scan names."""
    from vssm.scans import list_scans as _list_scans

    return sorted(_list_scans())


def create_model_checked(name: str, *, scan: str | None = None, model_kwargs: dict | None = None,
                         weights: str = "", weights_flag: str = "--checkpoint", ckpt: Any = None,
                         use_ema: bool = False, adapt_classifier: bool = False,
                         **kwargs: Any) -> tuple[torch.nn.Module, str]:
    """``timm.create_model`` with one-line errors for an unknown model, scan or argument, and optional weights.

    Args:
        name: Registered timm model name.
        scan: A registered scan name, passed to the constructor (vssm models).
        model_kwargs: More constructor keywords.
        weights: Checkpoint to load strictly with :func:`vssm.checkpoint.load_weights`: one written by tools/train.py
            is loaded directly (``use_ema`` picks its EMA weights); any other (e.g. an official release) is converted
            by the model family's ``checkpoint_filter_fn`` (timm's convention), or only unwrapped when it has none.
        weights_flag: The flag that named ``weights``, for error messages.
        ckpt: ``weights`` already read (with :func:`vssm.checkpoint.read_checkpoint`), if the caller has it.
        use_ema: Load the EMA weights of a training checkpoint; False leaves a foreign checkpoint's choice to the
            release's pretrained cfg (``use_ema``).
        adapt_classifier: A classifier of another class count keeps its initialisation (fine-tuning) instead of an
            error.
        **kwargs: ``timm.create_model`` keywords (None values are left out).

    Returns:
        The model and a short description of the weights it holds.

    Raises:
        UsageError: one line naming the flag and what is wrong.
    """
    check_model_name(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kwargs.update(model_kwargs or {})
    if scan:
        known = list_scans()
        if scan not in known:
            raise UsageError(f"--scan {scan!r} is not a registered scan; allowed: {', '.join(known)}")
        kwargs["scan"] = scan
    if weights and ckpt is None:
        try:
            ckpt = read_checkpoint(weights)
        except CheckpointError as e:
            raise UsageError(f"{weights_flag} {e}") from None
    try:
        model = timm.create_model(name, **kwargs)
    except CheckpointError as e:  # --pretrained: no weights, no network, a bad download (vssm.hub)
        raise UsageError(f"--pretrained: {first_line(e)}") from None
    except TypeError as e:
        message = str(e)
        if "unexpected keyword" not in message:
            raise
        bad = message.split("'")[-2] if message.count("'") >= 2 else message
        if bad == "scan":
            raise UsageError(f"--scan {scan!r}: model {name!r} takes no scan (the scan-based models: "
                             f"{', '.join(timm.list_models('vmamba*')[:6]) or 'see vssm.models'})") from None
        if bad == "shuffle_rate" and "shuffle_rate" not in (model_kwargs or {}):
            raise UsageError(f"--shuffle-rate {kwargs['shuffle_rate']}: model {name!r} has no stochastic layer-wise "
                             "shuffle; allowed: the plain-sequence models (vim_*, test_vim)") from None
        raise UsageError(f"--model-kwargs: model {name!r} has no argument {bad!r}") from None
    except (KeyError, ValueError, RuntimeError) as e:
        if scan and not isinstance(e, RuntimeError):
            raise UsageError(f"--scan {scan!r} was refused by model {name!r}: {first_line(e)}") from None
        raise
    if not weights:
        return model, f"timm pretrained weights of {name}" if kwargs.get("pretrained") else "random initialisation"
    try:
        note = load_weights(model, ckpt, use_ema=True if use_ema else None, adapt_classifier=adapt_classifier,
                            name=name, source=f"{weights_flag} {weights}")
    except CheckpointError as e:
        raise UsageError(first_line(e)) from None
    return model, note
