"""README.md's model-zoo table is the one generated from the registered pretrained cfgs (tools/model_zoo.py)."""
from __future__ import annotations

from pathlib import Path

from vssm.zoo import BEGIN, END, markdown_table, releases

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_generated_from_the_cfgs():
    text = README.read_text()
    assert BEGIN in text and END in text
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    rows = releases()
    assert block == markdown_table(rows), "README.md is stale: run python tools/model_zoo.py --write"
    names = {r["name"] for r in rows}
    assert {"vmamba_tiny_s1l8.in1k", "vim_tiny.in1k", "mambavision_tiny.in1k", "mlla_tiny.in1k",
            "efficient_vmamba_tiny.in1k", "msvmamba_tiny.in1k", "localvmamba_small.in1k"} <= names
    counts = {r["name"]: r["params"] for r in rows}
    assert abs(counts["vmamba_tiny_s1l8.in1k"] / 1e6 - 30.2) < 0.1  # the README's VMamba-T[s1l8]: 30M
