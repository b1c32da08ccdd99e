"""Helpers of the tests/tools tests: paths of the scripts, the tiny run's flags, a subprocess runner."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "tools" / "train.py"
VALIDATE = ROOT / "tools" / "validate.py"

# The default run, shortened: the embedded shapes set at 32 px and timm's 0.4M-parameter test_resnet.
TINY_DATA = ["--img-size", "32", "--shapes-train-per-class", "32", "--shapes-val-per-class", "8", "-j", "0",
             "--log-interval", "4"]
TINY = [*TINY_DATA, "--model", "test_resnet", "-b", "32", "--epochs", "2", "--warmup-epochs", "0", "--lr", "0.01"]
# The default run shortened: its model (vmamba_micro, no --model flag) on 100 training images per class, 10 epochs
# at batch 32 (250 updates), validated on 20 images per class.
LEARN = [*TINY_DATA, "--shapes-train-per-class", "100", "--shapes-val-per-class", "20", "-b", "32", "--epochs", "10",
         "--warmup-epochs", "1", "--lr", "0.004"]


def run_tool(script: Path, args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600,
             ) -> subprocess.CompletedProcess:
    """Runs ``python script args...`` and returns the finished process (stdout and stderr as text)."""
    return subprocess.run([sys.executable, str(script), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
