"""Packaging: one top-level import name, ``vssm``; the op and the scans are ``vssm.kernels`` / ``vssm.scans``.

The repository keeps its top-level ``kernels/`` and ``scans/`` folders; setup.py maps them into the package. These
tests build the real wheel, and import the package the three ways users do: installed (editable here), from the
wheel's file list, and from a bare checkout on ``PYTHONPATH``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of a copy of the checkout (building in place would leave build/ and egg-info in the tree)."""
    src = tmp_path_factory.mktemp("src") / "vssm"
    skip = shutil.ignore_patterns(".venv", ".git", "output", "build", "dist", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(ROOT, src, ignore=skip)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(out.glob("vssm-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_has_one_top_level_name_and_no_tests_tools_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"vssm"}, top
    for folder in ("tests", "tools", "configs", "kernels", "scans", "scripts", "docs"):
        assert not any(n.startswith(f"{folder}/") for n in names), folder
    # the op and the scans are inside the package, every module of them
    for folder, package in (("kernels", "vssm/kernels"), ("scans", "vssm/scans")):
        expected = {f"{package}/{p.relative_to(ROOT / folder).as_posix()}" for p in (ROOT / folder).rglob("*.py")}
        assert expected and expected <= set(names), sorted(expected - set(names))
    top_level = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    if top_level:  # setuptools writes it; its content is what site-packages gets at the top
        assert zipfile.ZipFile(wheel).read(top_level[0]).decode().split() == ["vssm"]


def test_installed_names(tmp_path):
    """In the installed environment ``vssm.kernels`` is the repository's kernels/ and no ``kernels`` exists."""
    code = ("import importlib.util, vssm, vssm.kernels, vssm.scans\n"
            "print(vssm.kernels.__file__); print(vssm.scans.__file__)\n"
            "print(importlib.util.find_spec('kernels'), importlib.util.find_spec('scans'))\n"
            "from vssm.kernels import selective_scan; from vssm.scans import get_scan\n"
            "print(get_scan('cross').orders(2, 2).shape[0])")
    proc = _python(code, cwd=tmp_path)  # outside the checkout: only what is installed is found
    assert proc.returncode == 0, proc.stderr[-3000:]
    kernels_file, scans_file, specs, k = proc.stdout.split("\n")[:4]
    assert Path(kernels_file) == ROOT / "kernels" / "__init__.py"
    assert Path(scans_file) == ROOT / "scans" / "__init__.py"
    assert specs == "None None" and k == "4"


def test_source_checkout_on_pythonpath(tmp_path):
    """A bare checkout on ``PYTHONPATH`` (no install: the editable finder removed) finds the same subpackages."""
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path\n"
            "                    if not getattr(f, '__module__', '').startswith('__editable')]\n"
            "import vssm.kernels, vssm.scans, vssm\n"
            "from vssm.kernels.op import selective_scan\n"
            "print(vssm.kernels.__file__); print(vssm.scans.__file__)\n"
            "print(vssm.kernels is sys.modules['vssm.kernels'])\n"
            "import timm; print(len(timm.list_models('vmamba_*')) > 0)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = _python(code, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kernels_file, scans_file, same, registered = proc.stdout.split("\n")[:4]
    assert Path(kernels_file) == ROOT / "kernels" / "__init__.py"
    assert Path(scans_file) == ROOT / "scans" / "__init__.py"
    assert same == "True" and registered == "True"
