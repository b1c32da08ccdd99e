"""Data sets and seeded loaders: timm's datasets, transforms, collate and prefetcher, with the checks a user needs and
an order and augmentation that depend only on (seed, epoch, rank), so a resumed run sees what an uninterrupted one
would have seen, and evaluation visits every image exactly once over the ranks."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from timm.data import FastCollateMixup, create_dataset, create_transform
from timm.data.distributed_sampler import RepeatAugSampler
from timm.data.loader import PrefetchLoader, fast_collate

from .distributed import DistInfo
from .errors import UsageError

__all__ = ["SeededLoader", "ShardSampler", "create_image_dataset", "create_seeded_loader", "dataset_num_classes",
           "find_split", "mixup_collate"]


_SPLIT_SYNONYMS = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "eval", "evaluation"),
}

def find_split(root: Path, split: str) -> Path | None:
    """The ImageFolder split folder ``root/<split>`` (or a synonym: train/training, val/validation/...)."""
    for group in _SPLIT_SYNONYMS.values():
        if split in group:
            for name in (split, *group):
                if (root / name).is_dir():
                    return root / name
            return None
    return root / split if (root / split).is_dir() else None

def create_image_dataset(dataset: str, data_dir: str, split: str, *, is_training: bool, flag: str = "--data-dir",
                         **kwargs: Any) -> Any:
    """timm's ``create_dataset`` with the checks a user needs: the folder exists, has the split, has images."""
    root = Path(data_dir).expanduser()
    if not dataset or dataset.startswith("folder"):
        if not root.exists():
            raise UsageError(f"{flag} {data_dir}: no such directory")
        if root.is_dir():
            found = find_split(root, split)
            if found is None:
                raise UsageError(f"{flag} {data_dir} has no {split!r} folder; expected ImageNet layout "
                                 f"{data_dir}/{{train,val}}/<class>/<image>")
            root = found
    try:
        ds = create_dataset(dataset, root=str(root), split=split, is_training=is_training, **kwargs)
    except (FileNotFoundError, RuntimeError, ValueError, AssertionError) as e:
        text = str(e).strip().splitlines()
        raise UsageError(f"{flag} {data_dir} (split {split!r}): {text[0] if text else type(e).__name__}") from None
    if len(ds) == 0:
        raise UsageError(f"{flag} {data_dir} (split {split!r}) holds no images")
    return ds

def dataset_num_classes(ds: Any) -> int | None:
    reader = getattr(ds, "reader", None)
    mapping = getattr(reader, "class_to_idx", None)
    return len(mapping) if mapping else None

class ShardSampler(torch.utils.data.Sampler):
    """Rank r takes items r, r + world, r + 2 world, ...: every item once over all ranks, no padding duplicates."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.indices = range(rank, length, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

class SeededLoader:
    """A timm prefetching loader whose order and augmentation depend only on (seed, epoch, rank).

    The sampler (``DistributedSampler``, also with one process) is seeded with ``seed`` and ``set_epoch``; the
    DataLoader's generator, which seeds the workers, is re-seeded every epoch from (seed, epoch, rank); workers are
    not persistent. So epoch e sees the same samples with the same random augmentation whether the run went
    through epochs 0..e-1 itself or resumed from a checkpoint. With ``-j 0`` augmentation draws from the global
    generators instead, which the training checkpoints save and restore.
    """

    def __init__(self, loader: PrefetchLoader, sampler: torch.utils.data.Sampler, generator: torch.Generator,
                 seed: int, rank: int):
        self.loader, self.sampler, self.generator, self.seed, self.rank = loader, sampler, generator, seed, rank

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        self.generator.manual_seed((self.seed * 1_000_003 + epoch * 1_009 + self.rank) % (2 ** 63))

    @property
    def mixup_enabled(self) -> bool:
        return self.loader.mixup_enabled

    @mixup_enabled.setter
    def mixup_enabled(self, value: bool) -> None:
        self.loader.mixup_enabled = value

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

def create_seeded_loader(dataset: Any, *, input_size: tuple[int, int, int], batch_size: int, is_training: bool,
                         info: DistInfo, seed: int, num_workers: int, mean: Sequence[float], std: Sequence[float],
                         transform_kwargs: dict[str, Any], collate_fn: Callable | None = None,
                         re_prob: float = 0.0, re_mode: str = "pixel", re_count: int = 1,
                         aug_repeats: float = 0) -> SeededLoader:
    """A loader built from timm's parts (``create_transform``, ``fast_collate`` / ``FastCollateMixup``,
    ``PrefetchLoader``) with a seeded sampler: ``DistributedSampler`` for training (shuffled, per rank; timm's
    ``RepeatAugSampler`` with ``aug_repeats``), a ``ShardSampler`` for evaluation (every image exactly once over the
    ranks, so reduced metrics are exact).

    timm's ``create_loader`` builds the same pieces but draws the shuffle from the global generator and pads the
    evaluation split with duplicates; exact resumption and exact distributed metrics need neither.
    """
    dataset.transform = create_transform(input_size, is_training=is_training, use_prefetcher=True, mean=mean,
                                         std=std, **transform_kwargs)
    if is_training and aug_repeats:
        sampler = RepeatAugSampler(dataset, num_replicas=info.world_size, rank=info.rank, num_repeats=aug_repeats)
    elif is_training:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                                      shuffle=True, seed=seed)
    else:
        sampler = ShardSampler(len(dataset), info.rank, info.world_size)
    generator = torch.Generator()
    generator.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn or fast_collate,
        pin_memory=info.device.type == "cuda",
        drop_last=is_training,
        generator=generator,
        persistent_workers=False,
    )
    prefetch = PrefetchLoader(loader, mean=mean, std=std, channels=input_size[0], device=info.device,
                              re_prob=re_prob if is_training else 0.0, re_mode=re_mode, re_count=re_count)
    return SeededLoader(prefetch, sampler, generator, seed, info.rank)

def mixup_collate(args: argparse.Namespace, num_classes: int) -> FastCollateMixup | None:
    """timm's ``FastCollateMixup`` for the mixup / cutmix flags (label smoothing folded in), or None."""
    if not (args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None):
        return None
    return FastCollateMixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                            prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                            label_smoothing=args.smoothing, num_classes=num_classes)
