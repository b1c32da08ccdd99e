"""The layering rules of docs/DESIGN.md, read from the source: imports flow one way (tools -> vssm -> vssm.kernels /
vssm.scans), nothing imports a top-level ``kernels`` / ``scans``, only vssm/checkpoint.py reads checkpoint files,
tools/ define no modules, data sets or loaders, and no source file grows past 700 lines."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kernels", "scans", "vssm", "tools")
FILES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, absolute-or-relative module name, relative level) of every import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.lineno, node.module or "", node.level))
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_sources_are_found():
    assert {_rel(p).split("/")[0] for p in FILES} == set(PACKAGES) and len(FILES) > 40


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_imports_flow_one_way(path):
    top = _rel(path).split("/")[0]
    for line, module, level in _imports(path):
        where = f"{_rel(path)}:{line} imports {'.' * level}{module}"
        root = module.split(".")[0]
        if level == 0:
            assert root not in ("kernels", "scans"), f"{where}: the installed names are vssm.kernels / vssm.scans"
            assert root != "tools" or top == "tools", f"{where}: the package never imports the tools"
        if top in ("kernels", "scans") and level == 0 and root == "vssm":
            assert module == f"vssm.{top}" or module.startswith(f"vssm.{top}."), \
                f"{where}: vssm.{top} imports nothing else of vssm"
        if top in ("kernels", "scans") and level > 0:
            depth = len(path.relative_to(ROOT / top).parts) - 1  # folders below the package root
            assert level <= depth + 1, f"{where}: a relative import leaving vssm.{top}"


def test_only_the_checkpoint_module_reads_checkpoint_files():
    readers = ("torch.load(", "safe_open(", "load_file(")
    found = [f"{_rel(p)}:{i}" for p in FILES if p != ROOT / "vssm" / "checkpoint.py"
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if any(r in line for r in readers) and not line.lstrip().startswith("#") and "``" not in line]
    assert not found, found


def test_tools_define_no_modules_datasets_or_loaders():
    bases = {"Module", "Dataset", "IterableDataset", "Sampler", "DataLoader", "BaseModule"}
    found = []
    for path in (ROOT / "tools").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
                if names & bases or "Loader" in node.name or "Dataset" in node.name or "Sampler" in node.name:
                    found.append(f"{_rel(path)}:{node.lineno} class {node.name}")
    assert not found, f"library classes belong in the package (vssm.train): {found}"


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_no_source_file_over_700_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 700, f"{_rel(path)} has {lines} lines: split it along its parts"
