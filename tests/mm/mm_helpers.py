"""Paths and a subprocess runner shared by the OpenMMLab tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
MM_TRAIN = ROOT / "tools" / "mm_train.py"
MM_TEST = ROOT / "tools" / "mm_test.py"
DET_SMOKE = CONFIGS / "detection" / "mask-rcnn_vmamba-test_fpn_shapes-smoke.py"
SEG_SMOKE = CONFIGS / "segmentation" / "upernet_vmamba-test_shapes-smoke.py"

# The smoke configs of the other families (the same shapes data, each family's own detector / segmentor recipe)
FAMILY_SMOKES = [
    CONFIGS / "detection" / "cascade-mask-rcnn_vim-test_simple-fpn_shapes-smoke.py",
    CONFIGS / "detection" / "cascade-mask-rcnn_mambavision-test_fpn_shapes-smoke.py",
    CONFIGS / "detection" / "mask-rcnn_mlla-test_fpn_shapes-smoke.py",
    CONFIGS / "detection" / "retinanet_efficient-vmamba-test_fpn_shapes-smoke.py",
    CONFIGS / "detection" / "mask-rcnn_msvmamba-test_fpn_shapes-smoke.py",
    CONFIGS / "detection" / "mask-rcnn_mobilemamba-test_upsample-fpn_shapes-smoke.py",
    CONFIGS / "detection" / "ssdlite_mobilemamba-test_shapes-smoke.py",
    CONFIGS / "segmentation" / "upernet_vim-test_shapes-smoke.py",
    CONFIGS / "segmentation" / "upernet_mambavision-test_shapes-smoke.py",
    CONFIGS / "segmentation" / "upernet_mlla-test_shapes-smoke.py",
    CONFIGS / "segmentation" / "upernet_efficient-vmamba-test_shapes-smoke.py",
    CONFIGS / "segmentation" / "upernet_msvmamba-test_shapes-smoke.py",
    CONFIGS / "segmentation" / "fpn_mobilemamba-test_shapes-smoke.py",
]


def run_tool(script: Path, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs ``python script args...`` (environment inherited, shapes folder included); stdout and stderr as text.

    One OpenMP thread: the smoke models are tiny, and on a shared CPU two threads mostly wait for each other.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
