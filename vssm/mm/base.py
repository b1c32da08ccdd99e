"""The base of the OpenMMLab adapters: a vssm timm model as an mmdet / mmseg backbone.

:class:`TimmBackbone` builds the family's timm model with ``features_only=True`` and adds what dense prediction
configs expect of a backbone: a tuple of NCHW maps with one LayerNorm per output index (``outnorm{i}``, named as in
the official VMamba detection / segmentation backbone so its checkpoints load), ``frozen_stages``, ``norm_eval``,
``with_cp`` and strict ``init_cfg=dict(type='Pretrained', ...)`` loading through :mod:`vssm.checkpoint`. The networks
themselves live in ``vssm.models``; nothing here changes what they compute. The family declarations are in
:mod:`vssm.mm.families`.
"""
from __future__ import annotations

import importlib
import os
import re
from typing import Any, Dict, List, Sequence, Tuple

import timm
import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from mmengine.registry import MODELS as MMENGINE_MODELS
from timm.layers import LayerNorm2d
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint import (
    CheckpointError,
    check_keys,
    find_filter,
    format_keys,
    read_checkpoint,
    resolve_use_ema,
    unwrap_state_dict,
)

__all__ = ["REGISTRIES", "TimmBackbone", "register_backbone"]


def _library_registries() -> Dict[str, Any]:
    """The ``MODELS`` registries to register in: mmengine's root, and mmdet's / mmseg's when importable."""
    registries = {"mmengine": MMENGINE_MODELS}
    for lib in ("mmdet", "mmseg"):
        try:
            registries[lib] = importlib.import_module(f"{lib}.registry").MODELS
        except ImportError:  # the library is not installed: its configs cannot be used anyway
            continue
    return registries


#: Name -> ``MODELS`` registry of every library the backbones are registered in (filled at import).
REGISTRIES: Dict[str, Any] = _library_registries()


def register_backbone(cls: type) -> type:
    """Class decorator registering a backbone in every registry of :data:`REGISTRIES`."""
    for registry in REGISTRIES.values():
        registry.register_module(module=cls)
    return cls


_INIT_CFG_KEYS = ("type", "checkpoint", "prefix", "allow_pickle", "map_location")


class TimmBackbone(BaseModule):
    """Base class of the adapters: a timm ``features_only`` model followed by one LayerNorm per output.

    Subclasses set the class attributes below; the constructor arguments are the same for every family.

    Attributes:
        family (str): Family name used in messages, e.g. ``'VMamba'``.
        arch_zoo (dict[str, str]): Short aliases -> timm entrypoints (``'tiny'`` -> ``'vmamba_tiny'``).
        default_arch (str): Entrypoint (or alias) a dict ``arch`` starts from when it names no ``base``.
        model_pattern (str): Regex matching the timm entrypoints of the family (other names are refused).
        head_keys (str): Regex matching checkpoint keys of the classification head and final norm (in every key
            layout the family's converter reads); they have no place in a backbone and are skipped when loading.
        fixed_kwargs (dict): Model keyword arguments the adapter always sets (a dict ``arch`` may not set them), e.g.
            Vim's ``pyramid=True``; subclasses that compute them override :meth:`_fixed_model_kwargs`.
        out_norm_keys (str): Regex matching checkpoint keys of the out norms, with two groups (output index,
            parameter): they load into ``outnorm{index}.{parameter}``. Default: ``outnorm{i}.*`` only.
        init_keys (str | None): Regex of model keys that keep their initialisation when a checkpoint holds none of
            them (parts of the dense-prediction model that classification checkpoints lack, e.g. Vim's pyramid).
        out_norms (bool): A LayerNorm over channels on each output (``outnorm{i}``), as the official VMamba-style
            dense backbones have; False: the stage outputs as they are (``outnorm{i}`` is an identity), as
            MobileMamba's.

    Args:
        arch (str | dict): A timm entrypoint of the family (``'vmamba_tiny'``), an alias from ``arch_zoo``
            (``'tiny'``), or a dict of model keyword arguments, optionally with ``base`` naming the entrypoint they
            override (default ``default_arch``), e.g. ``dict(base='tiny', depths=(2, 2, 4, 2))``. Default: None, the
            family's ``default_arch`` ('tiny'; MobileMamba's 'b1').
        scan (str | dict | list | None): Scan strategy of the model (see ``vssm.scans.resolve_scans``); None keeps the
            model's default. Default: None.
        out_indices (Sequence[int] | None): Stages whose outputs are returned (negative counts from the end).
            Default: None, every stage (four; MobileMamba's three).
        frozen_stages (int): -1 freezes nothing, 0 the stem (everything before the first stage), ``k`` the stem and
            the first ``k`` stages with their out norms (parameters get ``requires_grad=False`` and the modules stay
            in eval mode through ``train()``). Default: -1.
        norm_eval (bool): Keep the BatchNorm layers of the backbone in eval mode during training (frozen running
            statistics). Default: False.
        with_cp (bool): Gradient checkpointing of the stages (less memory, slower). Default: False.
        drop_path_rate (float): Stochastic depth rate of the model. Default: 0.0.
        init_cfg (dict | None): None keeps timm's initialisation; ``dict(type='Pretrained', checkpoint=PATH_OR_URL,
            prefix=None, allow_pickle=False)`` loads a checkpoint strictly (see :meth:`load_pretrained`).
            Default: None.
    """

    family: str = ""
    arch_zoo: Dict[str, str] = {}
    default_arch: str = "tiny"
    model_pattern: str = r"$^"
    head_keys: str = r"^(norm|head)\."
    fixed_kwargs: Dict[str, Any] = {}
    out_norm_keys: str = r"^outnorm(\d+)\.(.+)$"
    init_keys: str | None = None
    out_norms: bool = True

    def __init__(
            self,
            arch: str | Dict[str, Any] | None = None,
            scan: Any = None,
            out_indices: Sequence[int] | None = None,
            frozen_stages: int = -1,
            norm_eval: bool = False,
            with_cp: bool = False,
            drop_path_rate: float = 0.0,
            init_cfg: Dict[str, Any] | None = None,
    ):
        self._check_init_cfg(init_cfg)
        super().__init__(init_cfg=init_cfg)
        self.model_name, self.model_kwargs = self._resolve_arch(self.default_arch if arch is None else arch)
        if scan is not None:
            self.model_kwargs["scan"] = scan
        self.model_kwargs["drop_path_rate"] = float(drop_path_rate)
        self.model_kwargs.update(self._fixed_model_kwargs())

        num_stages = len(self._reference_model().feature_info)
        if out_indices is None:
            out_indices = tuple(range(num_stages))
        if isinstance(out_indices, int) or not all(isinstance(i, int) for i in out_indices) or not out_indices:
            raise ValueError(f"{type(self).__name__}: out_indices must be a non-empty sequence of ints; "
                             f"got {out_indices!r}")
        bad = [i for i in out_indices if not -num_stages <= i < num_stages]
        if bad:
            raise ValueError(f"{type(self).__name__}: out_indices={tuple(out_indices)} has {bad}, out of range for "
                             f"{self.model_name} with {num_stages} stages (allowed: 0..{num_stages - 1} or negative)")
        norm_indices = sorted({i % num_stages for i in out_indices})
        if len(norm_indices) != len(out_indices):
            raise ValueError(f"{type(self).__name__}: out_indices={tuple(out_indices)} names a stage twice")

        self.body = timm.create_model(
            self.model_name, pretrained=False, features_only=True, out_indices=tuple(norm_indices),
            **self.model_kwargs,
        )
        if not isinstance(getattr(self.body, "model", None), nn.Module):
            raise TypeError(f"{type(self).__name__}: {self.model_name} builds a {type(self.body).__name__}; the "
                            "adapter needs timm's getter-style features (feature_cls='getter', forward_intermediates)")
        self.out_indices: Tuple[int, ...] = tuple(int(i) for i in self.body.out_indices)
        self.num_stages = num_stages
        max_frozen = max(self.out_indices) + 1
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= max_frozen:
            raise ValueError(f"{type(self).__name__}: frozen_stages must be an int in -1..{max_frozen} "
                             f"(-1: none, 0: stem, k: stem and the first k stages); got {frozen_stages!r}")
        self.frozen_stages = frozen_stages
        self.norm_eval = bool(norm_eval)
        self.with_cp = bool(with_cp)
        for i, channels in zip(self.out_indices, self.body.feature_info.channels()):
            # LayerNorm over channels, as the official backbone's ``outnorm{i}`` (nn.LayerNorm's eps, 1e-5)
            self.add_module(f"outnorm{i}", LayerNorm2d(channels, eps=1e-5) if self.out_norms else nn.Identity())
        if self.with_cp:
            self.body.model.set_grad_checkpointing(True)
        self._freeze_stages()

    # ------------------------------------------------------------------------------------------------------------
    # construction helpers

    @classmethod
    def _resolve_arch(cls, arch: str | Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
        """``arch`` -> (timm entrypoint, model kwargs); raises ValueError naming the allowed values."""
        kwargs: Dict[str, Any] = {}
        name: Any = arch
        if isinstance(arch, dict):
            kwargs = dict(arch)
            name = kwargs.pop("base", cls.default_arch)
            reserved = sorted(set(kwargs) & {"features_only", "out_indices", "pretrained", "scan",
                                             "drop_path_rate", *cls.fixed_kwargs})
            if reserved:
                raise ValueError(f"{cls.__name__}: arch dict may not set {reserved}; these are arguments of the "
                                 "backbone itself or set by it")
        if isinstance(name, str):
            name = cls.arch_zoo.get(name, name)
            if re.search(cls.model_pattern, name) and name in timm.list_models(name):
                return name, kwargs
        names = sorted(n for n in timm.list_models() if re.search(cls.model_pattern, n))
        raise ValueError(f"{cls.__name__}: arch={arch!r} is not a {cls.family} model; allowed: an alias "
                         f"({', '.join(cls.arch_zoo)}), a timm name ({', '.join(names)}), or a dict of model "
                         "kwargs with an optional 'base'")

    @classmethod
    def _check_init_cfg(cls, init_cfg: Dict[str, Any] | None) -> None:
        if init_cfg is None:
            return
        cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        for cfg in cfgs:
            if not isinstance(cfg, dict) or "type" not in cfg:
                raise ValueError(f"{cls.__name__}: init_cfg must be a dict with a 'type'; got {init_cfg!r}")
            if cfg["type"] != "Pretrained":
                continue
            unknown = sorted(set(cfg) - set(_INIT_CFG_KEYS))
            if unknown or not cfg.get("checkpoint"):
                raise ValueError(f"{cls.__name__}: init_cfg={cfg!r} needs a 'checkpoint' and takes only "
                                 f"{', '.join(_INIT_CFG_KEYS)}" + (f" (unknown: {unknown})" if unknown else ""))

    def _fixed_model_kwargs(self) -> Dict[str, Any]:
        """Model kwargs the adapter sets whatever ``arch`` says (``fixed_kwargs`` unless a subclass computes them)."""
        return dict(self.fixed_kwargs)

    def _reference_model(self) -> nn.Module:
        """The full model of this configuration on the meta device (shapes and key names, no memory)."""
        with torch.device("meta"):
            return timm.create_model(self.model_name, pretrained=False, **self.model_kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # forward, freezing, train mode

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned maps (what the neck's ``in_channels`` must be)."""
        return list(self.body.feature_info.channels())

    @property
    def out_strides(self) -> List[int]:
        """Strides of the returned maps with respect to the input."""
        return list(self.body.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Maps ``(B, 3, H, W)`` images to one normed ``(B, C_i, H_i, W_i)`` map per output index."""
        feats = self.body(x)
        return tuple(getattr(self, f"outnorm{i}")(f).contiguous() for i, f in zip(self.out_indices, feats))

    def _stage_groups(self) -> List[List[nn.Module]]:
        """The modules of each stage, in order; ``frozen_stages=k`` freezes the first ``k`` groups.

        Default: one stage module per entry of the model's ``feature_info`` (stages pruned away after the last
        output index are left out). Plain models override this (see :class:`VimBackbone`).
        """
        model = self.body.model
        return [[model.get_submodule(info["module"])] for info in self.body.feature_info.info
                if _has_submodule(model, info["module"])]

    def _stem_modules(self) -> List[nn.Module]:
        """Top-level modules of the model that hold no stage module (stem, position embeddings, final norm...)."""
        in_stages = {id(m) for group in self._stage_groups() for stage in group for m in stage.modules()}
        return [child for child in self.body.model.children()
                if not any(id(m) in in_stages for m in child.modules())]

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen: List[nn.Module] = list(self._stem_modules())
        groups = self._stage_groups()
        for i in range(self.frozen_stages):
            frozen.extend(groups[i])
            if i in self.out_indices:
                frozen.append(getattr(self, f"outnorm{i}"))
        for module in frozen:
            module.eval()
            for p in module.parameters():
                p.requires_grad = False
        # parameters held directly by the model (e.g. position embeddings) belong to the stem
        for p in self.body.model.parameters(recurse=False):
            p.requires_grad = False

    def train(self, mode: bool = True) -> TimmBackbone:
        """Sets train mode, then re-applies ``frozen_stages`` and ``norm_eval``."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------------------------------------------------
    # weights

    def init_weights(self) -> None:
        """Loads the ``Pretrained`` checkpoint of ``init_cfg``; without one the model keeps timm's initialisation."""
        cfgs = self.init_cfg if isinstance(self.init_cfg, (list, tuple)) else [self.init_cfg] if self.init_cfg else []
        pretrained = [c for c in cfgs if c["type"] == "Pretrained"]
        others = [c for c in cfgs if c["type"] != "Pretrained"]
        if others:  # e.g. a custom initialiser: mmengine applies it as BaseModule would
            initialize(self, others)
        for cfg in pretrained:
            self.load_pretrained(cfg["checkpoint"], prefix=cfg.get("prefix"), allow_pickle=cfg.get("allow_pickle",
                                 False), map_location=cfg.get("map_location", "cpu"))
        self._is_init = True

    def load_pretrained(
            self,
            checkpoint: str | Dict[str, Any],
            prefix: str | None = None,
            allow_pickle: bool = False,
            map_location: str | torch.device = "cpu",
    ) -> None:
        """Loads weights strictly: every parameter of the backbone must be found, no key may be left unexplained.

        Accepted checkpoints: a state dict of a vssm timm model (``stem.*``, ``stages.*``, with or without the
        classifier), a checkpoint of this adapter (``body.model.*`` and ``outnorm{i}.*``, e.g. an mmdet / mmseg run
        with ``prefix='backbone.'``), and the official checkpoints of the family in any layout its
        ``checkpoint_filter_fn`` reads: classification checkpoints and the official detection / segmentation ones
        (``prefix='backbone.'``, whose ``outnorm{i}`` load into the out norms). Training checkpoints wrapped in
        ``state_dict`` / ``model`` / ``model_ema`` are unwrapped (EMA weights first, as timm).

        Skipped, and logged: the classifier head and final norm (``head_keys``), the stages after the last output
        index and the out norms of stages that are not outputs. A checkpoint without out norms (a classification
        one) leaves them at their initialisation (weight 1, bias 0); one without any of the ``init_keys`` (e.g. Vim's
        feature pyramid) leaves those at theirs. Out norms are read under the names ``out_norm_keys`` matches.

        Args:
            checkpoint (str | dict): Path (``.pth`` / ``.safetensors``), URL, ``'timm:<model>.<tag>'`` (an official
                release by its timm name, downloaded once into the cache, see :mod:`vssm.hub`), or an already
                loaded checkpoint.
            prefix (str | None): Keep only the keys starting with this (e.g. ``'backbone.'``) and strip it.
            allow_pickle (bool): Read a torch file with ``weights_only=False`` (runs code from the file: only for
                files you trust, e.g. official checkpoints that pickle their training config).
            map_location (str | torch.device): Where tensors are loaded.

        Raises:
            vssm.checkpoint.CheckpointError: missing / unexpected keys or shape mismatches, all named; or a file
                that is missing, corrupted, or needs unsafe globals.
        """
        name = type(self).__name__
        where = checkpoint if isinstance(checkpoint, str) else "the given state dict"
        release_ema = None
        if isinstance(checkpoint, str) and checkpoint.startswith("timm:"):  # a release by name, through vssm.hub
            raw, release_ema = _read_release(checkpoint[len("timm:"):], map_location)
        else:
            raw = _read_checkpoint(checkpoint, allow_pickle, map_location) if isinstance(checkpoint, str) \
                else checkpoint
        ref = self._reference_model()
        try:
            sd = unwrap_state_dict(raw, use_ema=resolve_use_ema(ref, release_ema))
        except CheckpointError as e:
            raise CheckpointError(f"{name}: {where}: {e}") from e
        if prefix:
            stripped = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if not stripped:
                raise CheckpointError(f"{name}: no key of {where} starts with prefix={prefix!r} "
                                              f"(first keys: {list(sd)[:4]})")
            sd = stripped
        if any(k.startswith("body.model.") for k in sd):  # this adapter's own layout
            sd = {k[len("body.model."):] if k.startswith("body.model.") else k: v for k, v in sd.items()}

        out_sd: Dict[str, torch.Tensor] = {}
        for k, v in sd.items():
            m = re.match(self.out_norm_keys, k)
            if m:
                out_sd[f"outnorm{m[1]}.{m[2]}"] = v
        out_names = {k for k in sd if re.match(self.out_norm_keys, k)}
        head = sorted(k for k in sd if k not in out_names and re.search(self.head_keys, k))
        model_sd = {k: v for k, v in sd.items() if k not in out_names and k not in head}

        ref.prune_intermediate_layers(list(range(self.num_stages)), prune_norm=True, prune_head=True)
        ref_sd = ref.state_dict()
        keep_init = bool(self.init_keys) and not any(re.search(self.init_keys, k) for k in model_sd)
        filter_fn = find_filter(self.body.model)
        try:
            if filter_fn is not None:
                model_sd = filter_fn(model_sd, ref)
            if keep_init:  # placeholders for the check; replaced by the backbone's own tensors below
                model_sd.update({k: v for k, v in ref_sd.items() if re.search(self.init_keys, k)})
            check_keys(model_sd, ref_sd, f"{self.family} checkpoint does not fit")
        except CheckpointError as e:
            raise CheckpointError(f"{name}({self.model_name}): {where}: {e}") from e

        target = self.body.model.state_dict()
        kept = sorted(k for k in model_sd if keep_init and re.search(self.init_keys, k) and k in target)
        model_sd.update({k: target[k] for k in kept})
        pruned = sorted(k for k in model_sd if k not in target)
        self.body.model.load_state_dict({k: v for k, v in model_sd.items() if k in target}, strict=True)

        wanted = {f"outnorm{i}.{p}" for i in self.out_indices for p in ("weight", "bias")} if self.out_norms else set()
        unused_norms = sorted(k for k in out_sd if k not in wanted)
        if out_sd:
            norms_sd = {k: v for k, v in out_sd.items() if k in wanted}
            try:
                check_keys(norms_sd, self._out_norm_state(), "out norms does not fit")
            except CheckpointError as e:
                raise CheckpointError(f"{name}: {where}: {e}") from e
            for i in self.out_indices:
                getattr(self, f"outnorm{i}").load_state_dict(
                    {p: norms_sd[f"outnorm{i}.{p}"] for p in ("weight", "bias")}, strict=True)
        msg = f"{name}: loaded {len(target)} model tensors from {where}"
        msg += f" and {len(wanted)} out-norm tensors" if out_sd else "; no out norms in it (they keep weight 1, bias 0)"
        if kept:
            msg += f"; {len(kept)} tensors not in it keep their initialisation: {format_keys(kept)}"
        skipped = head + pruned + unused_norms
        if skipped:
            msg += f"; skipped {len(skipped)} keys not part of this backbone: {format_keys(skipped)}"
        print_log(msg, logger="current")

    def _out_norm_state(self) -> Dict[str, torch.Tensor]:
        return {f"outnorm{i}.{k}": v for i in self.out_indices for k, v in getattr(self, f"outnorm{i}")
                .state_dict().items()}


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
    except AttributeError:  # a stage pruned away (after the last output index)
        return False
    return True



def _read_release(name: str, map_location: str | torch.device) -> Tuple[Any, bool]:
    """``init_cfg=dict(type='Pretrained', checkpoint='timm:<model>.<tag>')``: the release's file, fetched (or found
    in the cache) by :func:`vssm.hub.fetch_pretrained` and read with its pickled configuration made inert, and the
    release's ``use_ema``."""
    from ..hub import fetch_pretrained, pretrained_cfg

    try:
        cfg = pretrained_cfg(name)
        raw = read_checkpoint(fetch_pretrained(cfg), inert_objects=True, map_location=map_location)
    except CheckpointError as e:
        raise CheckpointError(f"init_cfg timm:{name}: {e}") from e
    return raw, bool(getattr(cfg, "use_ema", True))


def _read_checkpoint(path: str, allow_pickle: bool, map_location: str | torch.device) -> Dict[str, Any]:
    """A local file or an http(s) URL through :func:`vssm.checkpoint.read_checkpoint`; mmengine's other schemes
    (``open-mmlab://``, ``s3://``, ...) through mmengine's ``CheckpointLoader``."""
    if "://" in path and not path.startswith(("http://", "https://")):
        from mmengine.runner import CheckpointLoader

        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    try:
        return read_checkpoint(os.path.expanduser(path), allow_pickle=allow_pickle, map_location=map_location)
    except CheckpointError as e:
        raise CheckpointError(f"init_cfg {e}") from e
