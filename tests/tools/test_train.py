"""tools/train.py end to end, as real subprocesses at tiny sizes (see toolrun.TINY)."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from toolrun import TINY, TINY_DATA, TRAIN, run_tool


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("train.py: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_default_run_learns(trained_run: Path):
    """The default job (no --model: vmamba_micro on the shapes set), shortened through flags, learns."""
    rows = read_summary(trained_run)
    assert [int(r["epoch"]) for r in rows] == list(range(1, 11))
    top1 = float(rows[-1]["eval_top1"])
    assert top1 >= 35.0, rows  # 8 classes: chance is 12.5 %
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    stdout = (trained_run / "stdout.txt").read_text()
    assert f"Final validation top-1 {top1:.2f}%" in stdout
    assert "Model: vmamba_micro (" in stdout
    assert "Train: 10 [" in stdout and "img/s" in stdout  # --log-interval lines
    for name in ("last.pth", "best.pth", "args.yaml", "log.txt", "summary.csv", "summary.png"):
        assert (trained_run / name).is_file(), name
    assert (trained_run / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(trained_run / "last.pth", weights_only=True)  # no allow-list needed
    assert ckpt["epoch"] == 10 and ckpt["arch"] == "vmamba_micro"
    assert {"state_dict", "optimizer", "scheduler", "rng", "history", "args"} <= set(ckpt)
    kept = {int(p.stem.split("-")[1]) for p in trained_run.glob("checkpoint-*.pth")}
    best3 = sorted(rows, key=lambda r: -float(r["eval_top1"]))[:3]  # --checkpoint-hist 3 keeps the 3 best
    assert kept == {int(r["epoch"]) for r in best3}
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return
    assert list((trained_run / "tb").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_resume_equals_uninterrupted(tool_env, tmp_path):
    """A run killed after an epoch and resumed ends with exactly the weights of a run that was never stopped."""
    args = [*TINY, "--epochs", "3", "-j", "1", "--model-ema", "--model-ema-decay", "0.9", "--mixup", "0.2",
            "--cutmix", "1.0", "--reprob", "0.25", "--drop-path", "0.1", "--output", str(tmp_path)]
    whole = run_tool(TRAIN, [*args, "--experiment", "whole"], tool_env, tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]

    cmd = [sys.executable, str(TRAIN), *args, "--experiment", "killed"]
    with subprocess.Popen(cmd, env=tool_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:
        for line in proc.stdout:
            if line.startswith("Checkpoint: epoch 1 "):
                proc.kill()
                break
        proc.wait(timeout=600)
    killed = tmp_path / "killed"
    assert torch.load(killed / "last.pth", weights_only=True)["epoch"] < 3, "the run finished before the kill"

    resumed = run_tool(TRAIN, ["--resume", str(killed / "last.pth")], tool_env, tmp_path)  # its own args
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resume: " in resumed.stdout

    a = torch.load(tmp_path / "whole" / "last.pth", weights_only=True)
    b = torch.load(killed / "last.pth", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for key in ("state_dict", "state_dict_ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for pid, state in a["optimizer"]["state"].items():
        for k, v in state.items():
            assert torch.equal(v, b["optimizer"]["state"][pid][k]), f"optimizer state {pid}.{k} differs"
    assert [h["eval_loss"] for h in a["history"]] == [h["eval_loss"] for h in b["history"]]
    assert len(read_summary(killed)) == 3


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow
def test_ddp_two_processes_gloo(tool_env, tmp_path):
    """torchrun with 2 CPU processes: gloo DDP runs, the ranks hold identical weights, rank 0 alone writes."""
    env = dict(tool_env, OMP_NUM_THREADS="1")
    cmd = [*_torchrun(), "--standalone", "--nproc_per_node=2", str(TRAIN), *TINY, "--epochs", "1",
           "--output", str(tmp_path), "--experiment", "ddp"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "x 2 process(es)" in proc.stdout
    assert "parameters identical on all 2 ranks after the first update" in proc.stdout
    assert "out of sync" not in proc.stdout
    assert proc.stdout.count("Final validation top-1") == 1  # rank 0 only
    ckpt = torch.load(tmp_path / "ddp" / "last.pth", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert len(read_summary(tmp_path / "ddp")) == 1


def test_amp_bfloat16_on_cpu(tool_env, tmp_path):
    proc = run_tool(TRAIN, [*TINY, "--epochs", "1", "--amp", "--amp-dtype", "bfloat16", "--device", "cpu",
                            "--output", str(tmp_path), "--experiment", "bf16"], tool_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = read_summary(tmp_path / "bf16")[0]
    assert all(math.isfinite(float(row[k])) for k in ("train_loss", "eval_loss", "eval_top1"))
    assert "nan" not in proc.stdout.lower()


def test_shuffle_rate_reaches_vim(tool_env, tmp_path):
    proc = run_tool(TRAIN, [*TINY, "--model", "test_vim", "--img-size", "32", "--epochs", "1", "--shuffle-rate",
                            "0.5", "--output", str(tmp_path), "--experiment", "shuffle"], tool_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load((tmp_path / "shuffle" / "args.yaml").read_text())["shuffle_rate"] == 0.5
    row = read_summary(tmp_path / "shuffle")[0]
    assert math.isfinite(float(row["train_loss"]))


def test_config_yaml_sets_defaults_and_command_line_wins(tool_env, tmp_path):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("model: test_resnet\nepochs: 1\nbatch-size: 16\nlr: 5e-3\nsmoothing: 0.0\nscale: [0.8, 1.0]\n"
                   "warmup_epochs: 0\n")
    proc = run_tool(TRAIN, ["-c", str(cfg), *TINY_DATA, "-b", "8", "--output", str(tmp_path), "--experiment", "cfg"],
                    tool_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = yaml.safe_load((tmp_path / "cfg" / "args.yaml").read_text())
    assert saved["batch_size"] == 8  # command line over YAML
    assert saved["epochs"] == 1 and saved["smoothing"] == 0.0 and saved["scale"] == [0.8, 1.0]
    assert saved["lr"] == pytest.approx(5e-3)  # '5e-3' is a string to YAML: converted like the command line
    assert len(read_summary(tmp_path / "cfg")) == 1


@pytest.fixture
def earlier_run(trained_run, tmp_path) -> Path:
    """A copy of a finished run: the bad invocations below point at it and must leave it as it was."""
    copy = tmp_path / "runs" / "earlier"
    shutil.copytree(trained_run, copy)
    return copy


def _bad_cases(tmp: Path, run: Path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    (tmp / "no_train").mkdir()
    bad_yaml = tmp / "typo.yaml"
    bad_yaml.write_text("epoch: 3\n")
    return {
        "missing data dir": (["--data-dir", str(tmp / "imagenet")], ("--data-dir", "no such directory")),
        "data dir without train/": (["--data-dir", str(tmp / "no_train")], ("--data-dir", "'train'")),
        "unknown model": (["--model", "test_resnett"], ("--model", "'test_resnett'", "test_resnet")),
        "scan on a model without scans": (["--scan", "cross"], ("--scan", "'cross'")),
        "batch size 0": (["-b", "0"], ("-b/--batch-size", "at least 1")),
        "config typo": (["-c", str(bad_yaml)], ("--config", "'epoch'", "epochs")),
        "abbreviated flag": (["--epoch", "3"], ("unrecognized arguments: --epoch 3",)),
        "corrupted checkpoint": (["--resume", str(run / "last.pth")], ("--resume", "last.pth", "not a readable")),
        "shuffle rate on a model without it": (["--shuffle-rate", "0.5"],
                                               ("--shuffle-rate 0.5", "'test_resnet'", "vim_")),
        "shuffle rate above 1": (["--shuffle-rate", "1.5"], ("--shuffle-rate", "1.5", "in [0, 1]")),
    }


@pytest.mark.parametrize("case", ["missing data dir", "data dir without train/", "unknown model",
                                  "scan on a model without scans", "batch size 0", "config typo", "abbreviated flag",
                                  "corrupted checkpoint", "shuffle rate on a model without it",
                                  "shuffle rate above 1"])
def test_bad_input_stops_with_one_line_and_keeps_checkpoints(case, earlier_run, tool_env, tmp_path):
    args, needles = _bad_cases(tmp_path, earlier_run)[case]
    if case == "corrupted checkpoint":
        data = (earlier_run / "last.pth").read_bytes()
        (earlier_run / "last.pth").write_bytes(data[: len(data) // 2])
    before = digests(earlier_run)
    proc = run_tool(TRAIN, [*TINY, *args, "--output", str(earlier_run.parent), "--experiment", "earlier"], tool_env,
                    tmp_path)
    assert_one_line_error(proc, *needles)
    assert digests(earlier_run) == before
    assert torch.load(earlier_run / "best.pth", weights_only=True)["epoch"] >= 1


def test_resume_removes_temporaries_of_interrupted_writes(earlier_run, tool_env, tmp_path):
    stale = earlier_run / ".last.pth.k9x2_q.tmp"  # what save_atomic leaves when the process is killed mid-write
    stale.write_bytes(b"half a checkpoint")
    proc = run_tool(TRAIN, ["--resume", str(earlier_run / "last.pth"), "--epochs", "11"], tool_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not stale.exists()
    assert "removed 1 temporary file(s) of interrupted writes (.last.pth.k9x2_q.tmp)" in proc.stdout
    assert torch.load(earlier_run / "last.pth", weights_only=True)["epoch"] == 11


def test_unknown_scan_of_a_scan_model(tool_env, tmp_path):
    import timm

    import vssm  # noqa: F401
    models = timm.list_models("test_vmamba*") or timm.list_models("vmamba*")
    if not models:
        pytest.skip("no vmamba model registered yet")
    proc = run_tool(TRAIN, [*TINY, "--model", models[0], "--scan", "spiral"], tool_env, tmp_path)
    assert_one_line_error(proc, "--scan", "'spiral'")


# A learning rate that makes plain SGD diverge within a few updates: a real non-finite loss, no injected fault.
DIVERGE = ["--opt", "momentum", "--lr", "1e12", "--smoothing", "0", "--epochs", "1"]


def test_nonfinite_loss_stops_naming_the_batch(tool_env, tmp_path):
    proc = run_tool(TRAIN, [*TINY, *DIVERGE, "--output", str(tmp_path), "--experiment", "nan"], tool_env, tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert line.startswith("train.py: error: loss is ") and "at epoch 1, batch " in line, line
    batch = int(line.split("batch ")[1].split("/")[0])
    assert batch >= 2  # the first batch trains on finite weights; the run stops at the first non-finite loss
    # nothing trained on after it: no epoch finished, so no checkpoint was written
    assert not (tmp_path / "nan" / "last.pth").exists()


def test_nonfinite_loss_skip_drops_updates_and_says_so(tool_env, tmp_path):
    proc = run_tool(TRAIN, [*TINY, *DIVERGE, "--nonfinite", "skip", "--output", str(tmp_path), "--experiment", "skip"],
                    tool_env, tmp_path)
    skips = [ln for ln in proc.stdout.splitlines() if ln.startswith("WARNING: non-finite loss")]
    assert skips and all("update skipped (--nonfinite skip)" in ln for ln in skips), proc.stdout[-2000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = read_summary(tmp_path / "skip")[0]
    assert int(float(row["skipped_updates"])) == len(skips)  # every skip is counted, none silently
    assert math.isfinite(float(row["train_loss"]))  # the mean over the batches that were trained on
    assert f"{len(skips)} update(s) skipped for a non-finite loss" in proc.stdout


# VSSM_FULL_RELIABILITY=1 repeats the interrupt below (the teardown hang it guards against came about once in 20 runs).
FAULT_REPEATS = 25 if os.environ.get("VSSM_FULL_RELIABILITY", "") not in ("", "0") else 1


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(FAULT_REPEATS))
def test_ddp_one_rank_failing_brings_the_other_down(tool_env, tmp_path, repeat):
    """Interrupt rank 1 early in training (it raises KeyboardInterrupt): the job must end, non-zero, within a minute.

    Rank 0 is then blocked in a collective rank 1 never joins. Rank 1 used to hang in its own teardown in about one run
    in twenty (a gloo group destroyed with work pending; see ``run_cli``), so each repeat waits a different moment
    (0-0.5 s after the first logged update) before the interrupt.
    """
    import signal
    import time

    env = dict(tool_env, OMP_NUM_THREADS="1")
    cmd = [*_torchrun(), "--standalone", "--nproc_per_node=2", str(TRAIN), *TINY, "--epochs", "50",
           "--log-interval", "1", "--output", str(tmp_path), "--experiment", "fault"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # rank 0 logs; wait until both ranks are inside the training loop
            if line.startswith("Train: 1 ["):
                break
        rank1 = _worker_with_rank(proc.pid, 1)
        assert rank1 is not None, "rank 1 process not found"
        time.sleep(0.5 * repeat / max(1, FAULT_REPEATS))
        os.kill(rank1, signal.SIGINT)
        start = time.monotonic()
        _, stderr = proc.communicate(timeout=120)  # drains both pipes: a full pipe must not stall the job
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:  # torchrun's workers run in sessions of their own: kill the whole tree
            for pid in [*_descendants(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.communicate(timeout=60)
    assert proc.returncode != 0, f"the job ended normally: rank 1 ({rank1}) never saw the interrupt\n{stderr[-3000:]}"
    assert elapsed < 60, elapsed
    assert "train.py: interrupted" in stderr, stderr[-3000:]


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return [d for c in children for d in (*_descendants(c), c)]


def _worker_with_rank(parent: int, rank: int, timeout: float = 60) -> int | None:
    """The pid of torchrun's worker process whose environment has RANK=rank."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{parent}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                if f"RANK={rank}".encode() in environ:
                    return int(child)
        time.sleep(0.2)
    return None


def test_pretrained_without_a_fetchable_release_is_one_line(tool_env, tmp_path):
    """--pretrained goes through vssm.hub: a Drive-only release names the folder and the cache path to fill."""
    env = dict(tool_env, TORCH_HOME=str(tmp_path / "torch"))
    proc = run_tool(TRAIN, [*TINY_DATA, "--model", "msvmamba_nano", "--pretrained", "--epochs", "1",
                            "--output", str(tmp_path / "out")], env, tmp_path)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "msvmamba_nano_in1k.pth"
    assert_one_line_error(proc, "--pretrained", "drive.google.com/drive/folders/", str(cached))


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="inductor on CPU compiles C++: no compiler")
def test_torchcompile_inductor_trains_the_default_model(tool_env, tmp_path):
    """--torchcompile (inductor) on a vssm model: the launcher caches the per-size constants with one eager forward
    first (without it, the compiled run failed: a cache-miss graph break, dynamic-shape recompiles, an inductor
    error), then trains and validates."""
    proc = run_tool(TRAIN, [*TINY_DATA, "-b", "32", "--epochs", "1", "--warmup-epochs", "0", "--torchcompile",
                            "--output", str(tmp_path / "out")], tool_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = [line for line in proc.stdout.splitlines() if line.startswith("Done: 1 epoch(s)")]
    assert done and "Final validation top-1" in done[0]
    losses = [float(line.split("train loss ")[1].split()[0]) for line in proc.stdout.splitlines()
              if "train loss " in line]
    assert losses and all(math.isfinite(v) for v in losses)
