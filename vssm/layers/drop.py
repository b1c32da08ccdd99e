"""Training regularisers shared by the families: the stochastic-depth schedule, the stochastic layer-wise shuffle."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch

__all__ = ["drop_path_rates", "layer_shuffle_rates", "layer_shuffle_permutation"]


def drop_path_rates(
        drop_path_rate: float,
        depths: Union[int, Sequence[int]],
        per_stage: bool = False,
        float64: bool = False,
) -> Union[List[float], List[List[float]]]:
    """Per-block drop-path rates rising linearly from 0 to ``drop_path_rate`` over all ``sum(depths)`` blocks.

    Computed on the CPU (no tensor at all with ``float64=True``), so it also works under a
    ``with torch.device('meta')`` context.

    The two ways of computing it differ in the low bits (``0.2 * 1 / 11``: ``0.0181818176...`` in float32,
    ``0.0181818181...`` in float64); each family keeps the one it has always used:

    * ``float64=False``: ``torch.linspace(0, rate, n)`` in the default dtype (float32), as timm, Vim and MambaVision.
    * ``float64=True``: ``rate * i / (n - 1)`` in Python floats (VMamba, EfficientVMamba, MLLA, MSVMamba here).

    timm has ``calculate_drop_path_rates`` (the float32 variant) only from timm 1.0.21 on, hence this helper.

    Args:
        drop_path_rate: Rate of the last block.
        depths: Number of blocks, or the blocks per stage.
        per_stage: Return one list per stage (``depths`` must be a sequence), else one flat list.
        float64: Python float64 arithmetic instead of ``torch.linspace``.

    Returns:
        ``sum(depths)`` floats, or per stage the floats of its blocks.
    """
    if isinstance(depths, int):
        if per_stage:
            raise ValueError("per_stage=True needs the depths of the stages, got one int")
        depths = [depths]
    depths = [int(d) for d in depths]
    total = sum(depths)
    if float64:
        dpr = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
    else:
        dpr = torch.linspace(0, drop_path_rate, total, device="cpu").tolist()
    if not per_stage:
        return dpr
    out, start = [], 0
    for d in depths:
        out.append(dpr[start:start + d])
        start += d
    return out


def layer_shuffle_rates(shuffle_rate: float, depth: int) -> List[float]:
    """Per-layer shuffle probabilities of the stochastic layer-wise shuffle (Huang et al., ICML 2025): rising
    linearly with depth from 0 (the first layer) to ``shuffle_rate`` (the last), ``torch.linspace`` in float32 as the
    official code computes them."""
    if isinstance(shuffle_rate, bool) or not isinstance(shuffle_rate, (int, float)) or not 0 <= shuffle_rate <= 1:
        raise ValueError(f"shuffle_rate: got {shuffle_rate!r}; allowed: a number in [0, 1]")
    return torch.linspace(0, float(shuffle_rate), int(depth), device="cpu").tolist()


def layer_shuffle_permutation(prob: float, length: int, device: torch.device, training: bool
                              ) -> Optional[torch.Tensor]:
    """One layer's draw of the stochastic layer-wise shuffle: while training, with probability ``prob``, a random
    permutation of the ``length`` tokens (one for the whole batch), else None.

    The caller runs the layer on ``x[:, perm]`` (hidden states and residual alike: in a pre-norm block the residual
    stream is the layer's input) and puts its output back with ``out[:, torch.argsort(perm)]``. The coin is
    ``torch.rand(1) < prob`` on the CPU generator and the permutation ``torch.randperm`` on ``device``, as in the
    official code; nothing is drawn in eval mode or where ``prob`` is 0.
    """
    if not training or prob <= 0:
        return None
    if torch.rand(1).item() >= prob:
        return None
    return torch.randperm(length, device=device)
