"""Prints the model-zoo table (every registered official release, from the pretrained cfgs, with our GFLOPs and the
CPU throughput of one benchmark run), or writes it into README.md between its markers::

    python tools/benchmark.py models --zoo --batch-size 1 --json zoo.json   # one run: img/s, peak memory
    python tools/model_zoo.py --bench zoo.json --plot model_zoo.png --write  # count GFLOPs, table, plot
    python tools/model_zoo.py --write                                         # cfgs changed: keep the measurements

Without ``--bench`` the measured cells (GFLOPs, img/s, peak memory) and the caption are kept from README.md; with
``--count`` the GFLOPs are counted again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vssm.zoo import BEGIN, END, add_measurements, markdown_block, parse_table, plot, releases, split_block

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"replace the table in {README.name}")
    parser.add_argument("--bench", default=None, help="JSON of tools/benchmark.py models --zoo --json")
    parser.add_argument("--count", action="store_true", help="count the GFLOPs again (implied by --bench)")
    parser.add_argument("--plot", default=None, help="write the img/s-against-GFLOPs plot to this PNG")
    args = parser.parse_args()
    text = README.read_text()
    if BEGIN not in text or END not in text:
        parser.error(f"{README} has no model-zoo markers ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    old_block, tail = rest.split(END, 1)
    rows = releases()
    old_caption, old_table = split_block(old_block)
    if args.bench:
        with open(args.bench) as f:
            bench = json.load(f)
        add_measurements(rows, bench)
        meta = bench["meta"]
    else:
        kept = parse_table(old_table) if old_table.startswith("|") else {}
        gflops = None if args.count else {r["name"]: kept.get(r["name"], {}).get("gflops") for r in rows}
        bench = {"models": {r["model"]: dict(kept[r["name"]], size=r["input_size"]) for r in rows
                            if kept.get(r["name"], {}).get("img_s") is not None}}
        add_measurements(rows, bench, gflops)
        meta = None
    block = markdown_block(rows, meta)
    if meta is None and old_caption.startswith("CPU img/s ("):
        block = f"{old_caption}\n\n{split_block(block)[1]}"
    if args.plot:
        plot(rows, args.plot)
    if not args.write:
        print(block)
        return
    README.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


if __name__ == "__main__":
    main()
