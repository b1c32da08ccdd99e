"""tools/gpu_check.py at toy sizes on CPU (--smoke, Triton interpreted): every section runs and reports.

The GPU figures themselves come only from a GPU session; this keeps the one-shot script working between them.
"""
import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "gpu_check.py")


@pytest.mark.slow
def test_smoke_run_reports_every_section(tmp_path):
    out = tmp_path / "check.json"
    env = dict(os.environ, TRITON_INTERPRET="1")
    run = subprocess.run([sys.executable, SCRIPT, "--smoke", "--json", str(out)], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    sections = {r["section"] for r in rows}
    assert {"correctness", "op fwd", "op fwd+bwd", "fused order", "scan", "model infer", "model train"} <= sections
    assert "error" not in sections
    checks = [r for r in rows if r["section"] == "correctness"]
    assert checks and all(r["ok"] for r in checks)
    assert any(r["case"].startswith("pytest") and "passed" in r["value"] for r in checks)
    import vssm.scans as scans

    assert {r["case"].split(" ")[0] for r in rows if r["section"] == "scan"} == set(scans.list_scans())
    assert all(r["target"] is None for r in rows)  # toy sizes are not judged against the GPU targets
    assert "| section | case | value |" in run.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_without_a_gpu_it_refuses_unless_smoke(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, "--json", str(tmp_path / "x.json")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 2
    assert "no CUDA device" in run.stderr and "--smoke" in run.stderr
    assert not (tmp_path / "x.json").exists()
