"""What a training run writes: the log, the progress bar, atomic checkpoints (last / best / the N best), summary.csv,
summary.png and TensorBoard scalars. Only rank 0 writes."""
from __future__ import annotations

import csv
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ..checkpoint import save_atomic
from .distributed import DistInfo

__all__ = ["SUMMARY_FIELDS", "CheckpointKeeper", "Logger", "TensorBoard", "log_epoch", "make_bar", "save_epoch",
           "write_plot", "write_summary"]


class Logger:
    """Prints on rank 0 (through tqdm when a bar is showing) and appends to the run's log.txt once it is open."""

    def __init__(self, info: DistInfo):
        self.info = info
        self.file = None
        self.bar = None
        self.pending: list[str] = []  # lines printed before the run folder existed

    def open(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8")
        self.file.writelines(line + "\n" for line in self.pending)
        self.pending = []

    def __call__(self, message: str) -> None:
        if not self.info.is_primary:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)
        if self.file is not None:
            self.file.write(message + "\n")
            self.file.flush()
        else:
            self.pending.append(message)

def make_bar(total: int, desc: str, mode: str, info: DistInfo):
    if not info.is_primary or mode == "off" or (mode == "auto" and not sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False, file=sys.stderr)

class CheckpointKeeper:
    """Writes last.pth every epoch, best.pth on a new best, and keeps the N best checkpoint-<epoch>.pth.

    Ours rather than ``timm.utils.CheckpointSaver``: timm's builds the checkpoint itself from the model, optimizer
    and EMA it holds (not our state: scheduler, scaler, every rank's RNG, history), writes last through one fixed
    ``tmp`` name, copies best / history files with ``shutil.copy2`` when it cannot hard-link (not atomic), and
    keeps its ranking in memory (restored only through its own ``state_dict``). Here every file is written or
    copied through ``vssm.checkpoint.save_atomic`` / ``os.replace`` and the ranking is rebuilt from the run's
    history, which the kill -9 / resume tests check.
    """

    def __init__(self, run_dir: Path, keep: int, decreasing: bool):
        self.run_dir, self.keep, self.decreasing = run_dir, keep, decreasing

    def remove_stale_temporaries(self) -> list[str]:
        """Deletes the temporary files of checkpoint writes that a killed run left (``save_atomic``'s ``.NAME.*.tmp``).

        Only rank 0 writes into the run folder, and it calls this before its first write, so none is in progress.
        """
        stale = sorted(self.run_dir.glob(".*.pth.*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return [p.name for p in stale]

    def better(self, a: float, b: float | None) -> bool:
        if b is None or not math.isfinite(b):
            return math.isfinite(a)
        return a < b if self.decreasing else a > b

    def save(self, state: dict[str, Any], epoch: int, is_best: bool, history: list[dict[str, float]]) -> None:
        last = save_atomic(state, self.run_dir / "last.pth")
        if is_best:
            self._copy(last, self.run_dir / "best.pth")
        if self.keep > 0:
            self._copy(last, self.run_dir / f"checkpoint-{epoch}.pth")
        ranked = sorted((h for h in history if math.isfinite(h["metric"])), key=lambda h: h["metric"],
                        reverse=not self.decreasing)
        kept = {int(h["epoch"]) for h in ranked[:self.keep]}
        for path in self.run_dir.glob("checkpoint-*.pth"):
            stem = path.stem.split("-", 1)[1]
            if stem.isdigit() and int(stem) not in kept:
                path.unlink()

    @staticmethod
    def _copy(src: Path, dst: Path) -> None:
        """Atomic copy: hard link (or copy) to a temporary name, then os.replace."""
        tmp = dst.with_name(f".{dst.name}.tmp")
        if tmp.exists():
            tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)

SUMMARY_FIELDS = ("epoch", "train_loss", "eval_loss", "eval_top1", "eval_top5", "ema_loss", "ema_top1", "ema_top5",
                  "lr", "epoch_seconds", "train_img_per_s", "skipped_updates")

def write_summary(run_dir: Path, history: list[dict[str, float]]) -> None:
    """summary.csv rewritten from the whole history (so a resumed run never repeats or loses a row).

    Ours rather than ``timm.utils.update_summary``: timm's appends one row per call, so a run resumed after a kill
    repeats or loses rows, and its columns differ (``train_``/``eval_`` prefixes on every metric).
    """
    fields = [f for f in SUMMARY_FIELDS if any(f in h for h in history)]
    tmp = run_dir / ".summary.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for h in history:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in h.items() if k in fields})
    os.replace(tmp, run_dir / "summary.csv")

def write_plot(run_dir: Path, history: list[dict[str, float]], title: str) -> bool:
    """summary.png: loss, accuracy and learning rate per epoch. False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    marker = "o" if len(epochs) < 30 else None
    axes[0].plot(epochs, [h["train_loss"] for h in history], marker=marker, label="train")
    axes[0].plot(epochs, [h["eval_loss"] for h in history], marker=marker, label="validation")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [h["eval_top1"] for h in history], marker=marker, label="top-1")
    axes[1].plot(epochs, [h["eval_top5"] for h in history], marker=marker, label="top-5")
    if any("ema_top1" in h for h in history):
        axes[1].plot(epochs, [h.get("ema_top1", float("nan")) for h in history], marker=marker, label="EMA top-1")
    axes[1].set_title("validation accuracy (%)")
    axes[2].plot(epochs, [h["lr"] for h in history], marker=marker, color="tab:green")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[:2]:
        ax.legend()
    fig.suptitle(title, fontsize=10)
    tmp = run_dir / ".summary.png.tmp"
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, run_dir / "summary.png")
    return True

class TensorBoard:
    """Scalars under run_dir/tb when tensorboard is installed; silently nothing otherwise."""

    def __init__(self, run_dir: Path | None):
        self.writer = None
        if run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                if v is not None and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def log_epoch(log: Logger, epoch: int, num_epochs: int, train_metrics: dict, eval_metrics: dict,
              ema_metrics: dict | None, record: dict) -> None:
    ema_note = f" | EMA top-1 {ema_metrics['top1']:.2f}" if ema_metrics is not None else ""
    if train_metrics.get("skipped_updates"):
        ema_note += f" | {train_metrics['skipped_updates']:.0f} update(s) skipped for a non-finite loss"
    log(f"Epoch {epoch + 1}/{num_epochs}: train loss {train_metrics['train_loss']:.4f} | validation loss "
        f"{eval_metrics['loss']:.4f} top-1 {eval_metrics['top1']:.2f} top-5 {eval_metrics['top5']:.2f}{ema_note}"
        f" | lr {record['lr']:.2e} | {train_metrics['epoch_seconds']:.1f}s "
        f"({train_metrics['train_img_per_s']:.0f} img/s)")


def save_epoch(log: Logger, run_dir: Path, keeper: CheckpointKeeper, tb: TensorBoard, state: dict, record: dict,
               history: list, is_best: bool, title: str) -> None:
    """Rank 0 after each epoch: the checkpoints (atomically), summary.csv, summary.png, TensorBoard scalars."""
    epoch = state["epoch"]
    keeper.save(state, epoch, is_best, history)
    log(f"Checkpoint: epoch {epoch} saved to {run_dir / 'last.pth'}{' (new best)' if is_best else ''}")
    write_summary(run_dir, history)
    write_plot(run_dir, history, title)
    tb.scalars({"train/loss": record["train_loss"], "eval/loss": record["eval_loss"],
                "eval/top1": record["eval_top1"], "eval/top5": record["eval_top5"], "lr": record["lr"],
                **({"ema/top1": record["ema_top1"]} if "ema_top1" in record else {})}, epoch)
