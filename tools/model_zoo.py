"""Prints the model-zoo table (every registered official release, from the pretrained cfgs), or writes it into
README.md between its markers::

    python tools/model_zoo.py            # print
    python tools/model_zoo.py --write    # update README.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vssm.zoo import BEGIN, END, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"replace the table in {README.name}")
    args = parser.parse_args()
    table = markdown_table()
    if not args.write:
        print(table)
        return
    text = README.read_text()
    if BEGIN not in text or END not in text:
        parser.error(f"{README} has no model-zoo markers ({BEGIN!r} ... {END!r})")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"wrote {table.count(chr(10)) - 1} releases into {README}")


if __name__ == "__main__":
    main()
