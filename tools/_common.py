"""What tools/train.py and tools/validate.py share: one-line errors, YAML configs, devices and ranks, data sets,
seeded loaders, model creation with clear errors, weight loading and evaluation.

Everything heavy comes from timm (transforms, collate / mixup, the prefetching loader, the model factory and
pretrained loading, the distributed set-up); this module only adds the checks and the seeding those scripts need.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python tools/train.py` from a checkout
    sys.path.insert(0, str(ROOT))

import timm  # noqa: E402
from timm.data import FastCollateMixup, create_dataset, create_transform  # noqa: E402
from timm.data.distributed_sampler import RepeatAugSampler  # noqa: E402
from timm.data.loader import PrefetchLoader, fast_collate  # noqa: E402
from timm.utils.distributed import init_distributed_device_so  # noqa: E402

import vssm  # noqa: E402,F401  (registers the models with timm)
from vssm.utils.checkpoint import CheckpointError, load_safe  # noqa: E402

TRAIN_FORMAT = "vssm-train/1"  # the "format" entry of checkpoints written by tools/train.py


class UsageError(Exception):
    """Bad input from the user. ``run_cli`` prints the message as one line and exits with status 2."""


class TrainingError(Exception):
    """A run that cannot go on (e.g. the loss became NaN). ``run_cli`` prints one line and exits with status 1."""


def run_cli(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> None:
    """Runs ``main(argv)``, turning ``UsageError`` / ``TrainingError`` / Ctrl-C into one line on stderr.

    A rank of a distributed run that fails leaves at once (``os._exit``) after flushing its output: the other
    ranks wait in collectives this rank will never join, and letting the interpreter tear down a DDP model with
    work pending on the gloo group can deadlock (the group's destructor joins its worker thread while holding the
    GIL that thread needs to release a tensor), leaving a live rank that torchrun never reaps. The peers then get
    a closed connection, or torchrun stops them, and the whole job exits non-zero.
    """
    prog = Path(sys.argv[0]).name
    status = 0
    try:
        main(argv)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        status = 2
    except TrainingError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        status = 130
    except Exception:
        if not _distributed_run():
            raise
        traceback.print_exc()
        status = 1
    if _distributed_run():
        if status:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        dist.destroy_process_group()
    if status:
        sys.exit(status)


def _distributed_run() -> bool:
    return dist.is_available() and dist.is_initialized()


# ---------------------------------------------------------------------------------------------------------------
# command line and YAML configs


class ParseKwargs(argparse.Action):
    """``--model-kwargs a=1 b=foo c=[1,2]`` -> ``{'a': 1, 'b': 'foo', 'c': [1, 2]}`` (python literals, else strings)."""

    def __call__(self, parser, namespace, values, option_string=None):
        kwargs = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                parser.error(f"argument {option_string}: expected KEY=VALUE, got {item!r}")
            kwargs[key] = _literal(value)
        setattr(namespace, self.dest, kwargs)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce(action: argparse.Action, value: Any, source: str) -> Any:
    """Converts one YAML value the way argparse would convert the same text on the command line."""
    flag = "/".join(action.option_strings) or action.dest
    if isinstance(action, ParseKwargs):
        if not isinstance(value, dict):
            raise UsageError(f"{source}: {action.dest} must be a mapping, got {value!r}")
        return value
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{source}: {action.dest} is a switch ({flag}) and takes true or false, got {value!r}")
        return value
    if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 0):
        items = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(action.nargs, int) and len(items) != action.nargs:
            raise UsageError(f"{source}: {action.dest} ({flag}) takes {action.nargs} values, got {value!r}")
        return [_coerce_one(action, v, flag, source) for v in items]
    return _coerce_one(action, value, flag, source)


def _coerce_one(action: argparse.Action, value: Any, flag: str, source: str) -> Any:
    if value is not None and action.type is not None and not isinstance(value, bool):
        try:
            value = action.type(value) if isinstance(value, str) or action.type is not str else str(value)
        except (TypeError, ValueError):
            kind = getattr(action.type, "__name__", "the expected type")
            raise UsageError(f"{source}: {action.dest} ({flag}) must be {kind}, got {value!r}") from None
        if action.type in (int, float) and isinstance(value, (int, float)):
            value = action.type(value)
    if action.choices is not None and value is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise UsageError(f"{source}: {action.dest} ({flag}) is {value!r}; allowed: {choices}")
    return value


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Makes argparse's own errors (a bad value, a missing value, an unknown flag) one line on stderr and exit status
    2, instead of the whole usage block before the message."""
    def error(message: str) -> None:
        parser.exit(2, f"{parser.prog}: error: {message} (see --help)\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                      defaults: dict[str, Any] | None = None) -> argparse.Namespace:
    """Parses ``argv``; values from ``-c/--config FILE.yaml`` (and ``defaults``) replace the parser's defaults.

    Precedence, lowest first: the parser's defaults, ``defaults`` (e.g. a resumed run's arguments), the YAML file,
    the command line. YAML keys are argument names with ``_`` or ``-``; unknown keys and ill-typed values stop with
    a one-line error.
    """
    one_line_errors(parser)
    pre = one_line_errors(argparse.ArgumentParser(prog=parser.prog, add_help=False, allow_abbrev=False))
    pre.add_argument("-c", "--config", default="")
    known, _ = pre.parse_known_args(argv)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    merged: dict[str, Any] = dict(defaults or {})
    if known.config:
        path = Path(known.config)
        if not path.is_file():
            raise UsageError(f"--config {known.config}: no such file")
        try:
            with open(path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise UsageError(f"--config {known.config}: not valid YAML{where}") from None
        if not isinstance(cfg, dict):
            raise UsageError(f"--config {known.config}: expected a mapping of argument names to values")
        for key, value in cfg.items():
            dest = str(key).replace("-", "_")
            if dest not in actions:
                close = difflib.get_close_matches(dest, list(actions), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UsageError(f"--config {known.config}: unknown argument {key!r}{hint}")
            merged[dest] = _coerce(actions[dest], value, f"--config {known.config}")
    parser.set_defaults(**{k: v for k, v in merged.items() if k in actions})
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# devices and ranks


@dataclass
class DistInfo:
    """Where this process runs and which rank it is (world_size 1 without torchrun)."""

    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_primary(self) -> bool:
        return self.rank == 0


def init_distributed(device: str, backend: str = "") -> DistInfo:
    """Resolves the device and, under torchrun (``WORLD_SIZE`` > 1), joins the process group.

    Args:
        device: ``''`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        backend: torch.distributed backend; ``''`` picks nccl for CUDA and gloo for CPU.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if kind not in ("cpu", "cuda"):
        raise UsageError(f"--device {device!r} is not supported; use cpu, cuda or cuda:N")
    info = init_distributed_device_so(device=device, dist_backend=backend or None)
    return DistInfo(torch.device(info["device"]), info["global_rank"], info["local_rank"], info["world_size"])


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def amp_context(device: torch.device, amp: bool, amp_dtype: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``--amp`` (float16 or bfloat16, CUDA or CPU), else a no-op."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, amp_dtype))


# ---------------------------------------------------------------------------------------------------------------
# models


def check_model_name(name: str, flag: str = "--model") -> None:
    if timm.is_model(name):
        return
    names = timm.list_models()
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else "; list them with timm.list_models()"
    raise UsageError(f"{flag} {name!r} is not a registered model{hint}")


def list_scans() -> list[str] | None:
    """Registered scan names, or None while the ``vssm.scans`` package has no registry."""
    try:
        import vssm.scans as scans
    except ImportError:
        return None
    lister = getattr(scans, "list_scans", None)
    return sorted(lister()) if callable(lister) else None


def create_model_checked(name: str, *, scan: str | None = None, model_kwargs: dict | None = None,
                         weights: str = "", weights_flag: str = "--checkpoint", ckpt: Any = None,
                         use_ema: bool = False, adapt_classifier: bool = False,
                         **kwargs: Any) -> tuple[torch.nn.Module, str]:
    """``timm.create_model`` with one-line errors for an unknown model, scan or argument, and optional weights.

    Args:
        name: Registered timm model name.
        scan: A registered scan name, passed to the constructor (vssm models).
        model_kwargs: More constructor keywords.
        weights: Checkpoint to load, strictly (see ``load_strictly``). One written by tools/train.py is loaded
            directly (``use_ema`` picks its EMA weights); any other (e.g. an official release) is converted by the
            model module's ``checkpoint_filter_fn`` (timm's convention), or only unwrapped when it has none.
        weights_flag: The flag that named ``weights``, for error messages.
        ckpt: ``weights`` already loaded (with ``load_safe``), if the caller has it.
        use_ema: Load the EMA weights of a training checkpoint.
        adapt_classifier: A classifier of another class count is dropped (fine-tuning) instead of an error.
        **kwargs: ``timm.create_model`` keywords (None values are left out).

    Returns:
        The model and a short description of the weights it holds.
    """
    check_model_name(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kwargs.update(model_kwargs or {})
    if scan:
        known = list_scans()
        if known is not None and scan not in known:
            raise UsageError(f"--scan {scan!r} is not a registered scan; allowed: {', '.join(known)}")
        kwargs["scan"] = scan
    if weights and ckpt is None:
        try:
            ckpt = load_safe(weights)
        except CheckpointError as e:
            raise UsageError(f"{weights_flag} {e}") from None
    try:
        model = timm.create_model(name, **kwargs)
    except TypeError as e:
        message = str(e)
        if "unexpected keyword" not in message:
            raise
        bad = message.split("'")[-2] if message.count("'") >= 2 else message
        if bad == "scan":
            raise UsageError(f"--scan {scan!r}: model {name!r} takes no scan (the scan-based models: "
                             f"{', '.join(timm.list_models('vmamba*')[:6]) or 'see vssm.models'})") from None
        raise UsageError(f"--model-kwargs: model {name!r} has no argument {bad!r}") from None
    except (KeyError, ValueError, RuntimeError) as e:
        if scan and not isinstance(e, RuntimeError):
            raise UsageError(f"--scan {scan!r} was refused by model {name!r}: {_first_line(e)}") from None
        raise
    if not weights:
        return model, f"timm pretrained weights of {name}" if kwargs.get("pretrained") else "random initialisation"
    if is_train_checkpoint(ckpt):
        key = "state_dict_ema" if use_ema else "state_dict"
        if ckpt.get(key) is None:
            raise UsageError(f"{weights_flag} {weights} has no EMA weights (trained without --model-ema); "
                             "drop --use-ema")
        state, note = dict(ckpt[key]), f"{key} of epoch {ckpt.get('epoch')} from {weights}"
    else:  # an official release or any other state dict: the family's converter, as timm's pretrained loader does
        state, how = _convert_foreign(model, ckpt, name, weights, weights_flag)
        note = f"{weights} ({how})"
    load_strictly(model, state, name=name, source=f"{weights_flag} {weights}", adapt_classifier=adapt_classifier)
    return model, note


def _convert_foreign(model: torch.nn.Module, ckpt: Any, name: str, weights: str, weights_flag: str
                     ) -> tuple[dict[str, torch.Tensor], str]:
    """A foreign checkpoint's tensors in ``model``'s key layout (the model module's ``checkpoint_filter_fn``), and
    how they were obtained (for the log)."""
    from timm.models import clean_state_dict

    from vssm.convert import unwrap_state_dict

    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    try:
        if filter_fn is not None:
            return dict(filter_fn(ckpt, model)), f"converted by {name}'s checkpoint filter"
        return clean_state_dict(unwrap_state_dict(ckpt)), "as is"
    except (KeyError, ValueError, RuntimeError) as e:
        raise UsageError(f"{weights_flag} {weights} does not load into {name!r}: {_first_line(e)}") from None


def load_strictly(model: torch.nn.Module, state: dict[str, torch.Tensor], *, name: str, source: str,
                  adapt_classifier: bool = False) -> None:
    """Loads every key of ``model`` from ``state`` and refuses anything else (one-line ``UsageError``).

    With ``adapt_classifier``, only the classifier (timm's ``pretrained_cfg['classifier']`` modules) may differ in
    shape or be absent: it keeps the model's fresh initialisation (fine-tuning to another class count). Any other
    missing, unexpected or mis-shaped key is an error naming the first few of them.
    """
    current = model.state_dict()
    if adapt_classifier:
        heads = (model.pretrained_cfg or {}).get("classifier") or ()
        heads = (heads,) if isinstance(heads, str) else tuple(heads)
        for k, v in current.items():
            if k.startswith(tuple(f"{h}." for h in heads)) and (k not in state or state[k].shape != v.shape):
                state[k] = v
    missing = [k for k in current if k not in state]
    unexpected = [k for k in state if k not in current]
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in current.items()
              if k in state and state[k].shape != v.shape]
    problems = [f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("shape mismatches (checkpoint vs model)", shapes)) if keys]
    if problems:
        raise UsageError(f"{source} does not fit model {name!r}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def is_train_checkpoint(ckpt: Any) -> bool:
    return isinstance(ckpt, dict) and ckpt.get("format") == TRAIN_FORMAT


# ---------------------------------------------------------------------------------------------------------------
# data


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


# ---------------------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Any, info: DistInfo, *, amp_ctx: Callable[[], Any],
             channels_last: bool = False, log: Callable[[str], None] | None = None, log_interval: int = 0,
             prefix: str = "Test") -> dict[str, float]:
    """Top-1 / top-5 accuracy (%) and mean cross-entropy over the whole split, summed exactly across ranks.

    Returns:
        ``dict(loss, top1, top5, count, seconds, img_per_s)``; ``img_per_s`` counts all ranks.
    """
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=info.device)  # loss, correct@1, correct@5, count
    start = time.perf_counter()
    num_batches = len(loader)
    for step, (images, target) in enumerate(loader):
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with amp_ctx():
            output = model(images)
        if isinstance(output, (tuple, list)):
            output = output[0]
        output = output.float()
        k = min(5, output.shape[1])
        hits = output.topk(k, dim=1).indices.eq(target[:, None])
        sums += torch.stack([
            F.cross_entropy(output, target, reduction="sum").double(),
            hits[:, 0].sum().double(),
            hits.any(dim=1).sum().double(),
            torch.tensor(float(target.numel()), dtype=torch.float64, device=info.device),
        ])
        if log is not None and log_interval and (step % log_interval == 0 or step == num_batches - 1):
            n = max(sums[3].item(), 1.0)
            log(f"{prefix}: [{step + 1:>{len(str(num_batches))}}/{num_batches}]  "
                f"Loss: {sums[0].item() / n:.4f}  Acc@1: {100 * sums[1].item() / n:7.3f}  "
                f"Acc@5: {100 * sums[2].item() / n:7.3f}")
    if info.device.type == "cuda":
        torch.cuda.synchronize(info.device)
    seconds = time.perf_counter() - start
    all_reduce_sum(sums, info)
    count = max(sums[3].item(), 1.0)
    seconds_t = torch.tensor([seconds], dtype=torch.float64, device=info.device)
    if info.distributed:
        dist.all_reduce(seconds_t, op=dist.ReduceOp.MAX)
    seconds = seconds_t.item()
    return dict(loss=sums[0].item() / count, top1=100 * sums[1].item() / count, top5=100 * sums[2].item() / count,
                count=int(sums[3].item()), seconds=seconds, img_per_s=sums[3].item() / max(seconds, 1e-9))


def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def format_args(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments as plain YAML-able values (tuples to lists, paths to strings)."""
    out = {}
    for k, v in sorted(vars(args).items()):
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, os.PathLike):
            v = os.fspath(v)
        out[k] = v
    return out
