"""README.md's model-zoo table is the one generated from the registered pretrained cfgs (tools/model_zoo.py), with
the GFLOPs and CPU throughput of one benchmark run (the GFLOPs cells are checked by tests/utils/test_flops.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import timm

from vssm.zoo import BEGIN, END, add_measurements, markdown_table, parse_table, releases, split_block

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_block() -> str:
    text = README.read_text()
    assert BEGIN in text and END in text
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_readme_table_is_generated_from_the_cfgs():
    caption, table = split_block(_readme_block())
    rows = releases()
    measured = parse_table(table)
    assert set(measured) == {r["name"] for r in rows}, "README.md is stale: run python tools/model_zoo.py --write"
    bench = {"models": {r["model"]: dict(measured[r["name"]], size=r["input_size"]) for r in rows
                        if measured[r["name"]]["img_s"] is not None}}
    add_measurements(rows, bench, gflops={r["name"]: measured[r["name"]]["gflops"] for r in rows})
    assert table == markdown_table(rows), "README.md is stale: run python tools/model_zoo.py --write"
    names = {r["name"] for r in rows}
    assert {"vmamba_tiny_s1l8.in1k", "vim_tiny.in1k", "mambavision_tiny.in1k", "mlla_tiny.in1k",
            "efficient_vmamba_tiny.in1k", "msvmamba_tiny.in1k", "localvmamba_small.in1k"} <= names
    counts = {r["name"]: r["params"] for r in rows}
    assert abs(counts["vmamba_tiny_s1l8.in1k"] / 1e6 - 30.2) < 0.1  # the README's VMamba-T[s1l8]: 30M
    published = {r["name"]: r["published_gflops"] for r in rows}
    assert published["vmamba_tiny_s1l8.in1k"] == 4.9 and published["mambavision_large3_512.in21k_ft_in1k"] == 489.1
    assert published["vim_tiny.in1k"] is None  # Vim publishes no FLOPs


def test_readme_table_holds_one_benchmark_run():
    caption, table = split_block(_readme_block())
    assert caption.startswith("CPU img/s (median of"), caption
    measured = parse_table(table)
    rows = {r["name"]: r for r in releases(params=False)}
    # every model measured at its cfg's size, in the same run: one img/s and one peak per model, whatever its tags;
    # a tag at another size (MobileMamba-B1's r384 / r512) has no measurement but its own GFLOPs
    by_model, by_size = {}, {}
    for name, m in measured.items():
        model = name.split(".")[0]
        at_cfg = rows[name]["input_size"] == timm.create_model(model, device="meta").pretrained_cfg["input_size"][-1]
        if at_cfg:
            assert m["img_s"] and m["img_s"] > 0 and m["peak_mib"] is not None, name
            by_model.setdefault(model, set()).add((m["img_s"], m["peak_mib"]))
        else:
            assert m["img_s"] is None and m["peak_mib"] is None, name
        by_size.setdefault((model, rows[name]["input_size"]), set()).add(m["gflops"])
    assert all(len(v) == 1 for v in by_model.values()) and all(len(v) == 1 for v in by_size.values())
    b1 = {s: g for (m, s), (g,) in by_size.items() if m == "mobilemamba_b1"}
    assert b1[256] < b1[384] < b1[512]  # counted at each tag's size


def test_parse_table_round_trip():
    rows = [dict(name="a_b.in1k", model="a_b", tag="in1k", params=1.5e6, top1=None, published_gflops=None,
                 input_size=224, kind="url", where="https://example.org/x.pth", gflops=1.234, img_s=None,
                 peak_mib=12.0)]
    parsed = parse_table(markdown_table(rows))
    assert parsed == {"a_b.in1k": dict(gflops=pytest.approx(1.23), img_s=None, peak_mib=12.0)}


def test_plot_writes_one_point_per_measured_model(tmp_path):
    from vssm.zoo import plot

    rows = [dict(model=m, gflops=g, img_s=v) for m, g, v in
            (("vmamba_tiny", 4.9, 7.0), ("vmamba_tiny", 4.9, 7.0), ("mlla_tiny", 4.2, 6.4), ("vim_tiny", 1.3, None))]
    out = tmp_path / "zoo.png"
    plot(rows, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no row has both img_s and gflops"):
        plot([dict(model="vim_tiny", gflops=1.3, img_s=None)], str(tmp_path / "none.png"))
