"""Vision Mamba (Vim): a plain, isotropic stack of bidirectional Mamba layers over patch tokens.

Vim: Zhu et al., "Vision Mamba: Efficient Visual Representation Learning with Bidirectional State Space Model",
ICML 2024 (arXiv:2401.09417), https://github.com/hustvl/Vim. The published models
(``vim_{tiny,small,base}_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_with_midclstok_div2``) are, here:

- a 16x16 patch embedding, a class token inserted at the middle of the token sequence (index ``N // 2``) and an
  absolute position embedding over all ``N + 1`` tokens;
- 24 pre-norm residual layers ``x + drop_path(mixer(rmsnorm(x)))`` with the residual stream kept in fp32 (the
  official fused "add + norm" computes exactly this, one layer shifted);
- a mixer with two paths, forwards and backwards along the token sequence, each with its own causal conv,
  ``x_proj``, ``dt_proj``, ``A`` and ``D`` ("bimamba v2"), averaged ("div2"): :class:`vssm.layers.PathMamba`,
  whose ``K`` scans run as one call of the ordered selective-scan op;
- a final RMSNorm and a linear head on the class token (the ``final_pool_mean`` of the official names is unused:
  a model with a class token returns that token).

Beyond the official code: any input size (the image is padded to a multiple of the patch, the position embedding is
resampled bicubically to the actual grid at run time, and when loading a checkpoint made at another size), any scan
of ``scans`` through ``scan=`` (one set of per-path parameters per path; the class token is visited by each path
right after the first of its two sequence neighbours, which for ``'bidirectional'`` is exactly Vim's reversal of
the sequence), and a ViTDet-style feature pyramid for dense prediction (``pyramid=True``, made automatically for
``features_only=True``): maps of four depths resampled to strides 4, 8, 16 and 32.

Layout conventions: ``forward_features`` returns the normed ``(B, N + 1, C)`` tokens, class token included at
index ``N // 2`` (``output_fmt = 'NLC'``); ``forward_intermediates`` and ``features_only=True`` give NCHW maps.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, PatchEmbed, RmsNorm, lecun_normal_, resample_abs_pos_embed, trunc_normal_
from timm.models import register_model
from torch.utils.checkpoint import checkpoint

from ..checkpoint import check_state_dict, resolve_use_ema, unwrap_state_dict
from ..layers._fx import is_fx_proxy
from ..layers.drop import drop_path_rates, layer_shuffle_permutation, layer_shuffle_rates
from ..layers.mamba_mixer import PathMamba, compact_orders, path_inverse
from ..layers.pyramid import SimpleFeaturePyramid
from ..layers.stems import check_image_input
from ..scans.base import real_tensors
from ._builder import PretrainedMixin, build_model_with_cfg
from ._cfg import generate_default_cfgs

__all__ = ["Vim", "VimBlock", "checkpoint_filter_fn", "vim_token_orders", "resample_vim_pos_embed"]

try:  # timm >= 1.0.9
    from timm.models import feature_take_indices
except ImportError:  # pragma: no cover - timm 1.0.x
    from timm.models._features import feature_take_indices


class _OrderCache(dict):
    """Vim's token orders per ``(scan, H, W, device)``: derived constants, not module state. A ``dict`` subclass is
    one pytree leaf, so ``torch.export`` (before torch 2.9), which flattens the root module's attributes before and
    after tracing to find tensors assigned in ``forward``, sees the same object instead of a dict that gained an
    entry (``Node arity mismatch``)."""


def vim_token_orders(scan: Any, H: int, W: int, cls_index: Optional[int], device: Any = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """The paths of a scan over an ``H x W`` patch grid, as token positions of a sequence with a class token.

    Patch ``p`` (flat grid position) is token ``p`` before the class token and ``p + 1`` after it. Every path visits
    the class token right after the first of its two sequence neighbours (patches ``cls_index - 1`` and
    ``cls_index``) that it reaches; with the ``'bidirectional'`` scan this gives Vim's forward sequence and its
    reversal exactly (so that scan is built directly, also for a single patch).

    Args:
        scan: a Scan (``orders(H, W)``; ``name`` and ``K``).
        H: grid height.
        W: grid width.
        cls_index: token position of the class token (``N // 2`` for Vim), or ``None`` for no class token.
        device: where the tensors live.

    Returns:
        ``order (K, T)`` int64 with skips (``-1``) moved to the end of each path and ``inverse (K, L)`` (the step of
        each token on each path, ``-1`` for never), ``L = H * W (+ 1)``.
    """
    N = H * W
    if cls_index is None:
        order = compact_orders(scan.orders(H, W).to(torch.int64))
        L = N
    elif getattr(scan, "name", None) == "bidirectional":
        L = N + 1
        fwd = torch.arange(L, dtype=torch.int64)
        order = torch.stack([fwd, fwd.flip(0)])
    else:
        L = N + 1
        grid = compact_orders(scan.orders(H, W).to(torch.int64)).cpu()
        tok = torch.where(grid >= cls_index, grid + 1, grid)
        tok = torch.where(grid < 0, grid, tok)
        rows = []
        for k in range(grid.shape[0]):
            path = tok[k][tok[k] >= 0].tolist()
            hits = [i for i, p in enumerate(path) if p in (cls_index - 1, cls_index + 1)]
            at = hits[0] + 1 if hits else len(path)
            path.insert(at, cls_index)
            rows.append(path)
        T = max(len(r) for r in rows)
        order = torch.tensor([r + [-1] * (T - len(r)) for r in rows], dtype=torch.int64)
    order = order.to(device)
    return order, path_inverse(order, L)




def resample_vim_pos_embed(
        pos_embed: torch.Tensor,
        new_size: Sequence[int],
        old_size: Optional[Sequence[int]] = None,
        class_token: bool = True,
        antialias: bool = True,
) -> torch.Tensor:
    """Resamples a Vim position embedding (class token's entry at the middle) to another patch grid, bicubically.

    Args:
        pos_embed: ``(1, N + 1, C)`` with the class token's entry at ``N // 2`` (``(1, N, C)`` without a class token).
        new_size: target grid ``(H, W)``.
        old_size: grid of ``pos_embed``; default: square.
        class_token: whether ``pos_embed`` has the class token's entry.
        antialias: antialias when shrinking (as timm).

    Returns:
        ``(1, H * W (+ 1), C)``, the class token's entry (unchanged) at ``H * W // 2``.
    """
    n = pos_embed.shape[1] - (1 if class_token else 0)
    if old_size is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"Vim position embedding of {n} patch entries is not a square grid; give old_size")
        old_size = (side, side)
    old_size, new_size = tuple(int(s) for s in old_size), tuple(int(s) for s in new_size)
    if old_size[0] * old_size[1] != n:
        raise ValueError(f"Vim position embedding has {n} patch entries, not {old_size[0]}x{old_size[1]}")
    if class_token:
        m = n // 2
        cls, grid = pos_embed[:, m:m + 1], torch.cat([pos_embed[:, :m], pos_embed[:, m + 1:]], dim=1)
    else:
        cls, grid = None, pos_embed
    if old_size != new_size:
        grid = resample_abs_pos_embed(grid, list(new_size), list(old_size), num_prefix_tokens=0, antialias=antialias)
    if cls is None:
        return grid
    m = new_size[0] * new_size[1] // 2
    return torch.cat([grid[:, :m], cls, grid[:, m:]], dim=1)


class VimBlock(nn.Module):
    """``x + drop_path(mixer(norm(x)))`` with an RMSNorm and a :class:`~vssm.layers.PathMamba` mixer.

    The residual stream ``x`` stays in its own dtype (fp32 in Vim); the norm's output is cast to the parameters'.
    """

    def __init__(
            self,
            dim: int,
            num_paths: int = 2,
            drop_path: float = 0.0,
            norm_eps: float = 1e-5,
            mixer_kwargs: Optional[Dict[str, Any]] = None,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm = RmsNorm(dim, eps=norm_eps, **dd)
        self.mixer = PathMamba(dim, num_paths=num_paths, **(mixer_kwargs or {}), **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, order: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.to(self.norm.weight.dtype))
        return x + self.drop_path(self.mixer(h, order, inverse))


class Vim(PretrainedMixin, nn.Module):
    """Vision Mamba for image classification (and, with ``pyramid=True``, dense prediction), timm-style."""

    def __init__(
            self,
            img_size: Union[int, Tuple[int, int]] = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "token",
            embed_dim: int = 192,
            depth: int = 24,
            scan: Any = "bidirectional",
            d_state: int = 16,
            expand: float = 2.0,
            d_conv: int = 4,
            dt_rank: Union[int, str] = "auto",
            divide_out: bool = True,
            class_token: bool = True,
            residual_in_fp32: bool = True,
            norm_eps: float = 1e-5,
            drop_rate: float = 0.0,
            pos_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            shuffle_rate: float = 0.0,
            pyramid: bool = False,
            pyramid_layers: Optional[Sequence[int]] = None,
            pyramid_scales: Optional[Sequence[float]] = None,
            pyramid_strides: Optional[Sequence[float]] = None,
            device: Optional[torch.device] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        """
        Args:
            img_size: image size the position embedding is made for (other sizes resample it).
            patch_size: patch size (and stride) of the patch embedding.
            in_chans: input image channels.
            num_classes: classifier outputs (0: no classifier).
            global_pool: ``'token'`` (the class token, as published), ``'avg'`` (mean of the patch tokens) or
                ``''`` (none: per-token outputs).
            embed_dim: token width.
            depth: number of layers.
            scan: the scan of every layer, or a list with one per layer (names, dicts or Scan objects; see
                ``vssm.scans.resolve_scans``). Each layer gets one set of per-path parameters per path of its scan;
                ``'bidirectional'`` (two paths) is Vim.
            d_state: SSM state size.
            expand: mixer inner width ratio.
            d_conv: causal conv size of the mixer.
            dt_rank: dt projection rank or ``'auto'`` (``ceil(embed_dim / 16)``).
            divide_out: average the paths (Vim's ``div2``) instead of summing them.
            class_token: insert a class token at the middle of the sequence (published: True).
            residual_in_fp32: keep the residual stream in fp32 whatever the parameters' dtype (published: True).
            norm_eps: RMSNorm epsilon.
            drop_rate: dropout before the classifier.
            pos_drop_rate: dropout after adding the position embedding.
            drop_path_rate: stochastic depth, linearly increasing over the layers up to this value.
            shuffle_rate: stochastic layer-wise shuffle (Huang et al., ICML 2025), a training regulariser: while
                training, layer ``i`` runs on a random permutation of the tokens (one per layer and step, shared by
                the batch) with probability ``shuffle_rate * i / (depth - 1)``, and its output is put back in
                order; eval is unchanged (0: off, the published Vim; the paper's ShuffleMamba-B recipe: 0.5 with
                drop_path_rate 0.5, 300 epochs).
            pyramid: add the ViTDet-style pyramid for dense prediction (not part of the classification model).
            pyramid_layers: the four layers feeding the pyramid (default: the last of each quarter of the depth).
            pyramid_scales: resampling of each pyramid level relative to the patch stride (default: (4, 2, 1, 0.5)).
            pyramid_strides: the strides of the pyramid levels with respect to the image instead (scales are then
                ``patch_size / stride``), e.g. ``(4, 8, 16, 32)`` for any patch size; ``feature_info`` reports them.
            device: parameter device (``'meta'`` works, e.g. to count parameters).
            dtype: parameter dtype.
        """
        super().__init__()
        from vssm.scans import resolve_scans

        dd = {"device": device, "dtype": dtype}
        if global_pool not in ("", "token", "avg"):
            raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")
        if global_pool == "token" and not class_token:
            raise ValueError("global_pool='token' needs class_token=True")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.has_class_token = class_token
        self.residual_in_fp32 = residual_in_fp32
        self.output_fmt = "NLC"
        self.grad_checkpointing = False
        self.scans = resolve_scans(scan, [depth])[0]
        self._orders: Dict[Tuple[int, int, int, str], Tuple[torch.Tensor, torch.Tensor]] = _OrderCache()

        self.patch_embed = PatchEmbed(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, flatten=False,
            output_fmt="NHWC", strict_img_size=False, dynamic_img_pad=True, **dd,
        )
        self.grid_size = tuple(self.patch_embed.grid_size)
        num_patches = self.grid_size[0] * self.grid_size[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim, **dd)) if class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + int(class_token), embed_dim, **dd))
        self.pos_drop = nn.Dropout(pos_drop_rate)

        dpr = drop_path_rates(drop_path_rate, depth)
        self.shuffle_rate = float(shuffle_rate)
        self.shuffle_probs = layer_shuffle_rates(shuffle_rate, depth)
        mixer_kwargs = dict(d_state=d_state, expand=expand, d_conv=d_conv, dt_rank=dt_rank, divide_out=divide_out)
        self.layers = nn.ModuleList([
            VimBlock(embed_dim, num_paths=self.scans[i].K, drop_path=dpr[i], norm_eps=norm_eps,
                     mixer_kwargs=mixer_kwargs, **dd)
            for i in range(depth)
        ])
        self.norm = RmsNorm(embed_dim, eps=norm_eps, **dd)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes, **dd) if num_classes > 0 else nn.Identity()

        if pyramid_scales is not None and pyramid_strides is not None:
            raise ValueError(f"pyramid_scales ({list(pyramid_scales)}) and pyramid_strides ({list(pyramid_strides)}) "
                             "both given; allowed: one of them")
        if pyramid_strides is not None:
            pyramid_scales = tuple(patch_size / float(s) for s in pyramid_strides)
        elif pyramid_scales is None:
            pyramid_scales = (4.0, 2.0, 1.0, 0.5)
        if pyramid:
            if pyramid_layers is None:
                pyramid_layers = [depth * (i + 1) // len(pyramid_scales) - 1 for i in range(len(pyramid_scales))]
            pyramid_layers = [int(i) % depth for i in pyramid_layers]
            if len(pyramid_layers) != len(pyramid_scales):
                raise ValueError(f"pyramid_layers ({pyramid_layers}) needs one layer per pyramid scale "
                                 f"({list(pyramid_scales)})")
            self.pyramid_layers = pyramid_layers
            self.pyramid = SimpleFeaturePyramid(embed_dim, pyramid_scales, **dd)
            reductions = [patch_size / s for s in self.pyramid.scales]
            self.feature_info = [
                dict(num_chs=embed_dim, reduction=int(r) if r.is_integer() else r, module=f"pyramid.levels.{i}")
                for i, r in enumerate(reductions)
            ]
        else:
            self.pyramid_layers = []
            self.pyramid = None
            self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f"layers.{i}")
                                 for i in range(depth)]
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Vim's initialisation.

        Position embedding and class token truncated-normal(0.02); patch conv LeCun-normal, zero bias; head
        truncated-normal(0.02), zero bias; each mixer's out-projection ``nn.Linear``'s default scaled by
        ``1 / sqrt(depth)`` (GPT-2's rescaling of the residual branches); everything else keeps its own init.
        """
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        lecun_normal_(self.patch_embed.proj.weight)
        if self.patch_embed.proj.bias is not None:
            nn.init.zeros_(self.patch_embed.proj.bias)
        if isinstance(self.head, nn.Linear):
            trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        for layer in self.layers:
            w = layer.mixer.out_proj.weight
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            w.div_(math.sqrt(len(self.layers)))

    @torch.jit.ignore
    def no_weight_decay(self) -> Set[str]:
        """Position embedding, class token and every mixer's ``A_log``, ``D`` and dt bias."""
        names = {"pos_embed"} | ({"cls_token"} if self.cls_token is not None else set())
        return names | {n for n, _ in self.named_parameters() if n.rsplit(".", 1)[-1] in ("A_log", "D", "dt_proj_bias")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(
            stem=r"^cls_token|^pos_embed|^patch_embed",
            blocks=[(r"^layers\.(\d+)", None), (r"^norm", (99999,)), (r"^pyramid", (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in ("", "token", "avg"):
                raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")
            if global_pool == "token" and self.cls_token is None:
                raise ValueError("global_pool='token' needs a class token")
            self.global_pool = global_pool
        dd = {"device": self.pos_embed.device, "dtype": self.pos_embed.dtype}
        self.head = nn.Linear(self.embed_dim, num_classes, **dd) if num_classes > 0 else nn.Identity()

    # ------------------------------------------------------------------------------------------------------------
    # forward pieces

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_input(self, x, self.in_chans, self.patch_embed)

    def _cls_index(self, H: int, W: int) -> Optional[int]:
        return H * W // 2 if self.cls_token is not None else None

    def _token_orders(self, scan: Any, H: int, W: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        key = (id(scan), H, W, str(device))
        hit = self._orders.get(key)
        if hit is None:
            with real_tensors():  # constants of the input size: real tensors even inside torch.export
                hit = self._orders[key] = vim_token_orders(scan, H, W, self._cls_index(H, W), device)
        return hit

    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
        """Images -> tokens with position embedding and class token: ``(B, H * W (+ 1), C)`` and the grid."""
        if is_fx_proxy(x):
            raise NotImplementedError(
                "Vim: torch.fx symbolic tracing is not supported (the token orders, the class token's place and the "
                "position embedding follow the input's size, which a Proxy does not have); torch.export.export "
                "traces Vim, and features_only=True (timm's default feature_cls) gives its feature maps")
        self._check_input(x)
        x = self.patch_embed(x)  # (B, H, W, C); the image is zero-padded to a multiple of the patch
        B, H, W, C = x.shape
        pos = self.pos_embed
        if (H, W) != self.grid_size:
            pos = resample_vim_pos_embed(pos, (H, W), self.grid_size, class_token=self.cls_token is not None)
        x = x.reshape(B, H * W, C)
        if self.cls_token is not None:
            m = H * W // 2
            x = torch.cat([x[:, :m], self.cls_token.expand(B, -1, -1), x[:, m:]], dim=1)
        x = self.pos_drop(x + pos)
        if self.residual_in_fp32 and x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x, H, W

    def _run_layer(self, i: int, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        order, inverse = self._token_orders(self.scans[i], H, W, x.device)
        layer = self.layers[i]
        perm = layer_shuffle_permutation(self.shuffle_probs[i], x.shape[1], x.device, self.training)
        if perm is not None:  # the layer sees the tokens in a random order; its output is put back
            x = x.index_select(1, perm)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint(layer, x, order, inverse, use_reentrant=False)
        else:
            x = layer(x, order, inverse)
        return x if perm is None else x.index_select(1, torch.argsort(perm))

    def _to_map(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """``(B, L, C)`` tokens -> ``(B, C, H, W)`` patch map (the class token removed)."""
        if self.cls_token is not None:
            m = H * W // 2
            x = torch.cat([x[:, :m], x[:, m + 1:]], dim=1)
        return x.reshape(x.shape[0], H, W, x.shape[-1]).permute(0, 3, 1, 2)  # (an empty batch has no -1)

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        w = getattr(self.norm, "weight", None)
        return self.norm(x.to(w.dtype) if w is not None else x)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Layer outputs as maps, or the pyramid levels when the model has a pyramid (timm's contract).

        Args:
            x: ``(B, in_chans, H, W)`` images.
            indices: without a pyramid, layers (the last ``n`` if an int, all if None); with one, pyramid levels.
            norm: apply the final norm to each tapped layer output.
            stop_early: stop after the last layer needed.
            output_fmt: ``'NCHW'`` (default) or ``'NHWC'``.
            intermediates_only: return only the intermediates.

        Returns:
            The intermediates, or ``(final normed tokens (B, L, C), intermediates)``.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        if self.pyramid is not None:
            take_indices, _ = feature_take_indices(len(self.pyramid.levels), indices)
            taps = {self.pyramid_layers[i] for i in take_indices}
        else:
            take_indices, _ = feature_take_indices(len(self.layers), indices)
            taps = set(take_indices)
        last = max(taps) if (stop_early and taps) else len(self.layers) - 1
        x, H, W = self._embed(x)
        maps: Dict[int, torch.Tensor] = {}
        for i in range(min(last + 1, len(self.layers))):
            x = self._run_layer(i, x, H, W)
            if i in taps:
                maps[i] = self._to_map(self._final_norm(x) if norm else x, H, W)
        if self.pyramid is not None:
            inter = [self.pyramid.levels[i](maps[self.pyramid_layers[i]]) for i in take_indices]
        else:
            inter = [maps[i] for i in take_indices]
        if output_fmt == "NHWC":
            inter = [t.permute(0, 2, 3, 1) for t in inter]
        inter = [t.contiguous() for t in inter]
        if intermediates_only:
            return inter
        return self._final_norm(x), inter

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Drops the layers after the last one needed (and pyramid levels not asked for, the norm, the head)."""
        if self.pyramid is not None:
            take_indices, _ = feature_take_indices(len(self.pyramid.levels), indices)
            for i in range(len(self.pyramid.levels)):
                if i not in take_indices:
                    self.pyramid.levels[i] = nn.Identity()
            max_layer = max(self.pyramid_layers[i] for i in take_indices)
        else:
            take_indices, max_layer = feature_take_indices(len(self.layers), indices)
        self.layers = self.layers[:max_layer + 1]
        self.scans = self.scans[:max_layer + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_chans, H, W)`` -> normed ``(B, N + 1, C)`` tokens (class token at ``N // 2``; NLC, unpooled)."""
        x, H, W = self._embed(x)
        for i in range(len(self.layers)):
            x = self._run_layer(i, x, H, W)
        return self._final_norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "token":
            x = x[:, (x.shape[1] - 1) // 2]
        elif self.global_pool == "avg":
            if self.cls_token is not None:
                m = (x.shape[1] - 1) // 2
                x = (x.sum(1) - x[:, m]) / (x.shape[1] - 1)
            else:
                x = x.mean(1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints

# official per-direction mixer parameters -> (ours, path)
_PATH_PARAMS = {
    "conv1d.weight": ("conv_weight", 0), "conv1d_b.weight": ("conv_weight", 1),
    "conv1d.bias": ("conv_bias", 0), "conv1d_b.bias": ("conv_bias", 1),
    "x_proj.weight": ("x_proj_weight", 0), "x_proj_b.weight": ("x_proj_weight", 1),
    "dt_proj.weight": ("dt_proj_weight", 0), "dt_proj_b.weight": ("dt_proj_weight", 1),
    "dt_proj.bias": ("dt_proj_bias", 0), "dt_proj_b.bias": ("dt_proj_bias", 1),
    "A_log": ("A_log", 0), "A_b_log": ("A_log", 1),
    "D": ("D", 0), "D_b": ("D", 1),
}


def _convert_official(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    stacks: Dict[str, Dict[int, torch.Tensor]] = {}
    for k, v in sd.items():
        if k.startswith("norm_f."):
            out["norm." + k[len("norm_f."):]] = v
            continue
        head, sep, rest = k.partition(".mixer.")
        if sep and rest in _PATH_PARAMS:
            name, path = _PATH_PARAMS[rest]
            if name == "conv_weight":
                v = v.reshape(v.shape[0], v.shape[-1])  # (Di, 1, d_conv) -> (Di, d_conv)
            stacks.setdefault(f"{head}.mixer.{name}", {})[path] = v
            continue
        out[k] = v
    for k, parts in stacks.items():
        if sorted(parts) != list(range(len(parts))):
            # a direction is missing: keep what is there under its own name so the strict check names it
            for p, v in parts.items():
                out[f"{k}[path {p}]"] = v
            continue
        out[k] = torch.stack([parts[p] for p in range(len(parts))])
    return out


def _variant(model: nn.Module) -> str:
    return (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "")


def checkpoint_filter_fn(
        state_dict: Dict[str, Any], model: Vim, use_ema: Optional[bool] = None,
) -> Dict[str, torch.Tensor]:
    """Converts an official Vim checkpoint to this model's keys, strictly.

    Handles the training checkpoint's ``'model'`` wrapper (``'model_ema'`` when ``use_ema``; the official accuracies
    are of ``'model'``), ``module.`` prefixes, the per-direction mixer keys (``conv1d`` / ``conv1d_b``, ``x_proj`` /
    ``x_proj_b``, ``dt_proj`` / ``dt_proj_b``, ``A_log`` / ``A_b_log``, ``D`` / ``D_b``: stacked along the path axis),
    ``norm_f`` -> ``norm``, and a position embedding made for another grid (resampled bicubically, the class token's
    entry kept in the middle). A state dict already in this layout is checked (and its position embedding resampled).
    A model with a pyramid keeps its own pyramid weights when the checkpoint has none.

    Args:
        state_dict: the loaded checkpoint.
        model: the target model (its shapes decide the resampling; ``meta`` works).
        use_ema: take the EMA weights of a wrapped checkpoint (None: the pretrained cfg's ``use_ema``, False for
            every release, as the official evaluation).

    Returns:
        A state dict with exactly the model's keys (the classifier is left for timm to adapt).

    Raises:
        vssm.checkpoint.CheckpointError: naming the first missing / unexpected keys and shape mismatches.
    """
    sd = unwrap_state_dict(state_dict, use_ema=resolve_use_ema(model, use_ema))
    if any(k.startswith("norm_f.") or ".mixer.A_b_log" in k or ".mixer.conv1d." in k for k in sd):
        sd = _convert_official(sd)
    pe = sd.get("pos_embed")
    target = model.state_dict()
    if pe is not None and "pos_embed" in target and pe.ndim == 3 and pe.shape != target["pos_embed"].shape:
        has_cls = model.cls_token is not None
        n = pe.shape[1] - int(has_cls)
        side = math.isqrt(max(n, 0))
        if side * side == n and pe.shape[-1] == target["pos_embed"].shape[-1]:
            sd["pos_embed"] = resample_vim_pos_embed(pe, model.grid_size, (side, side), class_token=has_cls)
    if model.pyramid is not None and not any(k.startswith("pyramid.") for k in sd):
        sd.update({k: v for k, v in target.items() if k.startswith("pyramid.")})
    check_state_dict(sd, model, ignore_prefixes=("head.",), family=_variant(model))
    return sd


# ----------------------------------------------------------------------------------------------------------------
# Configurations

def _cfg(url: str = "", **kwargs: Any) -> Dict[str, Any]:
    return {
        "url": url,
        "use_ema": False,  # the official numbers are of the plain weights (see checkpoint_filter_fn)
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None,
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj", "classifier": "head",
        "license": "apache-2.0", "paper_ids": "arXiv:2401.09417",
        "paper_name": "Vision Mamba: Efficient Visual Representation Learning with Bidirectional State Space Model",
        **kwargs,
    }


# The official releases on the Hugging Face Hub (DeiT-style training checkpoints that pickle their argparse
# namespace, read with it made inert, see vssm.models._builder); top1: the README's ImageNet-1k top-1 at 224 (crop
# 0.875). The "+" weights (vim_t/s_midclstok_ft_*: fine-tuned with stride-8 patches) need a patch-stride-8 model,
# which is not registered here.
default_cfgs = generate_default_cfgs({
    "vim_tiny.in1k": _cfg(
        hf_hub_id="hustvl/Vim-tiny-midclstok", hf_hub_filename="vim_t_midclstok_76p1acc.pth", top1=76.1),
    "vim_small.in1k": _cfg(
        hf_hub_id="hustvl/Vim-small-midclstok", hf_hub_filename="vim_s_midclstok_80p5acc.pth", top1=80.5),
    "vim_base.in1k": _cfg(
        hf_hub_id="hustvl/Vim-base-midclstok", hf_hub_filename="vim_b_midclstok_81p9acc.pth", top1=81.9),
    "test_vim": _cfg(input_size=(3, 32, 32), crop_pct=1.0),
})


def _create_vim(variant: str, pretrained: bool = False, **kwargs: Any) -> Vim:
    if kwargs.get("features_only", False):
        kwargs.setdefault("pyramid", True)  # dense use: the 4-level pyramid (strides 4-32)
    default_out = (0, 1, 2, 3) if kwargs.get("pyramid", False) else tuple(range(kwargs.get("depth", 24)))[-4:]
    out_indices = kwargs.pop("out_indices", default_out)
    return build_model_with_cfg(
        Vim, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


@register_model
def vim_tiny(pretrained: bool = False, **kwargs: Any) -> Vim:
    """Vim-Ti (7.1M): embed 192, depth 24, patch 16, middle class token (official drop_path_rate 0.0)."""
    model_args = dict(embed_dim=192, depth=24)
    return _create_vim("vim_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vim_small(pretrained: bool = False, **kwargs: Any) -> Vim:
    """Vim-S (25.8M): embed 384, depth 24, patch 16, middle class token (official drop_path_rate 0.05)."""
    model_args = dict(embed_dim=384, depth=24)
    return _create_vim("vim_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def vim_base(pretrained: bool = False, **kwargs: Any) -> Vim:
    """Vim-B (97.6M): embed 768, depth 24, patch 16, middle class token."""
    model_args = dict(embed_dim=768, depth=24)
    return _create_vim("vim_base", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_vim(pretrained: bool = False, **kwargs: Any) -> Vim:
    """Tiny Vim for fast tests: embed 32, depth 4, patch 8, d_state 4, made for 32x32 images."""
    model_args = dict(img_size=32, patch_size=8, embed_dim=32, depth=4, d_state=4)
    return _create_vim("test_vim", pretrained=pretrained, **dict(model_args, **kwargs))
