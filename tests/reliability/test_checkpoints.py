"""Checkpoints: safe loading by default, strict loading, clear errors for damaged files, atomic writes under kill -9,
and tools/train.py killed with SIGKILL at random moments (during checkpoint writes too), resumed each time, ending
with exactly the weights of an uninterrupted run."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from rel_support import ERROR, FIGURES, FULL, RESULT, expect_error, record

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError, check_state_dict, load_weights, read_checkpoint

ROOT = Path(__file__).resolve().parents[2]


class Bomb:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_runs_only_when_asked(tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"state_dict": {"w": torch.ones(2)}, "cfg": Bomb(marker)}, tmp_path / "bomb.pth")
    expect_error("checkpoint read_checkpoint", lambda: read_checkpoint(tmp_path / "bomb.pth"), CheckpointError,
                 ["bomb.pth", "globals", "open)", "weights_only=True", "allow_pickle=True"])
    model = timm.create_model("test_vmamba")
    expect_error("checkpoint load_weights", lambda: load_weights(model, tmp_path / "bomb.pth"), CheckpointError,
                 ["bomb.pth", "globals", "allow_pickle=True"])
    mm = pytest.importorskip("vssm.mm")
    backbone = mm.VMambaBackbone(arch="test", init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "bomb.pth")))
    expect_error("checkpoint mm init_cfg", backbone.init_weights, CheckpointError,
                 ["bomb.pth", "globals", "allow_pickle=True"])
    assert not marker.exists()
    read_checkpoint(tmp_path / "bomb.pth", allow_pickle=True)  # asked for explicitly: the file's code runs
    assert marker.exists(), "the bomb is not a real one: the test above proves nothing"


def _damaged(path: Path):
    data = path.read_bytes()
    for cut in (0, 1, 100, len(data) // 4, len(data) // 2, len(data) - 1):
        yield f"truncated at {cut}", data[:cut]
    for where in (len(data) // 3, len(data) // 2):  # a flipped byte inside the tensor data
        flipped = bytearray(data)
        flipped[where] ^= 0x10
        yield f"byte {where} flipped", bytes(flipped)
    yield "not a checkpoint", b"hello\n" * 50


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_damaged_files_are_clear_errors(tmp_path, suffix):
    from safetensors.torch import save_file

    good = tmp_path / f"good{suffix}"
    sd = {"a": torch.randn(64, 64), "b": torch.arange(4096.0)}
    torch.save(sd, good) if suffix == ".pth" else save_file(sd, str(good))
    for what, data in _damaged(good):
        bad = tmp_path / f"bad{suffix}"
        bad.write_bytes(data)
        if suffix == ".pth":
            expect_error("checkpoint read_checkpoint", lambda bad=bad: read_checkpoint(bad), CheckpointError,
                         [str(bad), "not a readable checkpoint"])
        try:
            out = read_checkpoint(bad)
        except CheckpointError as e:
            assert str(bad) in str(e) and "not a readable checkpoint" in str(e), (what, str(e))
            record("checkpoint read_checkpoint", ERROR)
        else:  # safetensors has no checksum: a flipped data byte is the one damage it cannot see
            assert suffix == ".safetensors" and "flipped" in what, what
            assert set(out) == set(sd) and any(not torch.equal(out[k], sd[k]) for k in sd)


def test_strict_loading_lists_every_kind_of_mismatch():
    model = timm.create_model("test_vmamba", num_classes=4)
    sd = model.state_dict()
    sd.pop("head.fc.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["norm.weight"] = torch.zeros(3)
    msg = expect_error("checkpoint check_state_dict", lambda: check_state_dict(sd, model),
                       CheckpointError, ["1 shape mismatch(es): norm.weight: checkpoint (3,) vs model",
                                         "1 missing key(s): head.fc.bias", "1 unexpected key(s): extra.weight"])
    assert "test" not in msg or "VMamba" in msg


def test_load_weights_is_strict_except_an_adapted_classifier(tmp_path):
    """Only the classifier may differ, and only when asked; everything else that differs is named."""
    src = timm.create_model("test_vmamba", num_classes=4)
    dst = timm.create_model("test_vmamba", num_classes=7)
    fresh_head = dst.head.fc.weight.detach().clone()
    expect_error("checkpoint load_weights", lambda: load_weights(dst, src.state_dict()), CheckpointError,
                 ["does not fit model 'test_vmamba'", "head.fc.weight: checkpoint (4, ", "vs model (7, "])
    note = load_weights(dst, src.state_dict(), adapt_classifier=True)
    assert "the state dict" in note
    assert torch.equal(dst.head.fc.weight, fresh_head)  # the classifier keeps its initialisation
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in dst.state_dict().items() if not k.startswith("head."))
    sd = src.state_dict()
    sd.pop("stages.0.blocks.0.mixer.A_log")
    expect_error("checkpoint load_weights", lambda: load_weights(dst, sd, adapt_classifier=True), CheckpointError,
                 ["the state dict", "stages.0.blocks.0.mixer.A_log"])


_WRITER = """
import torch
from vssm.checkpoint import save_atomic
i = 0
while True:
    i += 1
    save_atomic({{"i": i, "w": torch.full((1 << 20,), float(i))}}, {path!r})
"""


def test_atomic_save_survives_kill_9(tmp_path):
    """A process rewriting one checkpoint in a loop, killed at random moments: the file is always a whole one."""
    path = tmp_path / "last.pth"
    rng = random.Random(0)
    for cycle in range(6 if FULL else 3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER.format(path=str(path))])
        while not path.exists():
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ckpt = read_checkpoint(path)
        assert torch.equal(ckpt["w"], torch.full((1 << 20,), float(ckpt["i"]))), cycle
        record("checkpoint save_atomic", RESULT)


# ----------------------------------------------------------------------------------------------------------------
# tools/train.py killed and resumed

TRAIN = ROOT / "tools" / "train.py"
ARGS = ["--img-size", "32", "--shapes-train-per-class", "8", "--shapes-val-per-class", "2", "-j", "0",
        "--log-interval", "0", "--model", "test_resnet", "-b", "16", "--warmup-epochs", "0", "--lr", "0.01",
        "--model-ema", "--model-ema-decay", "0.9", "--checkpoint-hist", "2", "--seed", "7"]
EPOCHS = 12 if FULL else 5
KILLS = 10 if FULL else 2


def _kill_at_random(cmd, env, run_dir, rng, mode):
    """Starts ``cmd`` and SIGKILLs it: while a checkpoint is being written (a temporary file next to last.pth), or
    at a random moment after training started. Returns the exit code (None when killed)."""
    def tmp_files():
        return {p.name for p in os.scandir(run_dir) if p.name.endswith(".tmp")} if run_dir.is_dir() else set()

    def log_size():
        return (run_dir / "log.txt").stat().st_size if (run_dir / "log.txt").exists() else -1

    stale, size0 = tmp_files(), log_size()  # left by an earlier kill
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    delay = rng.uniform(0.0, 3.0)
    started = None
    while proc.poll() is None and time.monotonic() < deadline:
        if mode == "write" and tmp_files() - stale:
            break
        if mode == "random":
            if started is None and log_size() > size0:  # this process has logged its first line
                started = time.monotonic()
            if started is not None and time.monotonic() - started >= delay:
                break
        time.sleep(0.001)
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


@pytest.mark.slow
def test_kill_9_and_resume_equals_uninterrupted(tool_env, tmp_path):
    whole = subprocess.run([sys.executable, str(TRAIN), *ARGS, "--epochs", str(EPOCHS), "--output", str(tmp_path),
                            "--experiment", "whole"], env=tool_env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]

    run_dir = tmp_path / "killed"
    rng = random.Random(1234)
    kills, epochs_seen, finished = 0, [], False
    for attempt in range(KILLS + 1):
        last = run_dir / "last.pth"
        if last.exists():
            cmd = [sys.executable, str(TRAIN), "--resume", str(last)]
        else:
            cmd = [sys.executable, str(TRAIN), *ARGS, "--epochs", str(EPOCHS), "--output", str(tmp_path),
                   "--experiment", "killed"]
        if attempt == KILLS:  # the last run goes to the end
            proc = subprocess.run(cmd, env=tool_env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            finished = True
            break
        code = _kill_at_random(cmd, tool_env, run_dir, rng, "write" if attempt % 2 == 0 else "random")
        if code is not None:
            assert code == 0, f"the run failed instead of being killed (exit {code})"
            finished = True
            break
        kills += 1
        # whatever the moment of the kill, last.pth is absent (killed before the first epoch) or a whole checkpoint
        if last.exists():
            ckpt = read_checkpoint(last)
            assert ckpt["format"] == "vssm-train/1" and 1 <= ckpt["epoch"] <= EPOCHS
            assert not epochs_seen or ckpt["epoch"] >= epochs_seen[-1], "a resumed run went back in time"
            epochs_seen.append(ckpt["epoch"])
        for extra in run_dir.glob("*.pth") if run_dir.is_dir() else []:
            read_checkpoint(extra)  # best.pth and checkpoint-N.pth are whole too
    assert finished
    a, b = read_checkpoint(tmp_path / "whole" / "last.pth"), read_checkpoint(run_dir / "last.pth")
    assert a["epoch"] == b["epoch"] == EPOCHS
    for key in ("state_dict", "state_dict_ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after {kills} kill(s)"
    FIGURES["kill -9 / resume cycles survived with identical final weights (train.py, test_resnet)"] = (
        f"{kills} kill(s) (epochs at the kills: {epochs_seen}), final weights and EMA identical to the uninterrupted "
        f"{EPOCHS}-epoch run")
    record("tools/train.py kill -9 + --resume", RESULT, kills)
