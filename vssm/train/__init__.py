"""Training and evaluation parts that the command-line tools share and a package user can call directly.

- :mod:`.data`: checked image data sets and loaders seeded by (seed, epoch, rank), sharded evaluation;
- :mod:`.distributed`: the torchrun set-up, reductions, autocast, rank-sync checks;
- :mod:`.evaluate`: top-1 / top-5 / loss over a split, exact across ranks;
- :mod:`.engine`: one training epoch, the recipe's loss, the learning-rate scaling rule;
- :mod:`.model`: ``timm.create_model`` with one-line errors and strict weight loading;
- :mod:`.outputs`: the run folder (log, atomic checkpoints, summary.csv / .png, TensorBoard);
- :mod:`.state`: every rank's random generators and restoring a run from its training checkpoint;
- :mod:`.cli`: one-line errors, YAML configs as defaults, ``KEY=VALUE`` arguments;
- :mod:`.errors`: ``UsageError`` (bad input, exit status 2) and ``TrainingError`` (a run that cannot go on, 1).

Everything heavy comes from timm (transforms, collate / mixup, the prefetching loader, optimizers, schedulers, EMA,
the distributed set-up); these modules add the checks and the seeding exact resumption needs.
"""
from .cli import ParseKwargs, finite, format_args, one_line_errors, parse_with_config, run_cli
from .data import (
    SeededLoader,
    ShardSampler,
    create_image_dataset,
    create_seeded_loader,
    dataset_num_classes,
    find_split,
    mixup_collate,
)
from .distributed import DistInfo, all_finite, all_reduce_sum, amp_context, fingerprint, init_distributed, ranks_in_sync
from .engine import make_train_loss, resolve_lr, train_one_epoch
from .errors import TrainingError, UsageError
from .evaluate import evaluate
from .model import check_model_name, create_model_checked, list_scans
from .outputs import (
    SUMMARY_FIELDS,
    CheckpointKeeper,
    Logger,
    TensorBoard,
    log_epoch,
    make_bar,
    save_epoch,
    write_plot,
    write_summary,
)
from .state import gather_rng_states, restore

__all__ = [
    "CheckpointKeeper", "DistInfo", "Logger", "ParseKwargs", "SUMMARY_FIELDS", "SeededLoader", "ShardSampler",
    "TensorBoard", "TrainingError", "UsageError", "all_finite", "all_reduce_sum", "amp_context", "check_model_name",
    "create_image_dataset", "create_model_checked", "create_seeded_loader", "dataset_num_classes", "evaluate",
    "find_split", "fingerprint", "finite", "format_args", "gather_rng_states", "init_distributed", "list_scans",
    "log_epoch", "make_bar", "make_train_loss", "mixup_collate", "one_line_errors", "parse_with_config",
    "ranks_in_sync", "resolve_lr", "restore", "run_cli", "save_epoch", "train_one_epoch", "write_plot",
    "write_summary",
]
