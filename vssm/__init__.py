"""vssm: vision state-space backbones. Importing it registers every model with timm.

Subpackages: ``vssm.kernels`` (the selective-scan op), ``vssm.scans`` (scan strategies), ``vssm.layers``,
``vssm.models``, and ``vssm.mm`` (OpenMMLab backbones, imported on demand). In the repository ``kernels`` and
``scans`` are the top-level folders ``kernels/`` and ``scans/``; an install (editable or not) maps them under
``vssm`` (setup.py's ``package_dir``), so nothing but ``vssm`` is a top-level name.
"""
__version__ = "0.1.0"


def _map_source_subpackages() -> None:
    """Makes ``vssm.kernels`` / ``vssm.scans`` importable from a source checkout that is only on ``sys.path``.

    Running from a checkout without installing it (``PYTHONPATH=.``) finds ``vssm/`` but not the two folders
    beside it that setup.py maps into the package. Only when the import system cannot find them otherwise, and only
    from a checkout (``setup.py`` next to ``vssm/``), they are loaded from there under their ``vssm.`` names.
    """
    import importlib.util
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isfile(os.path.join(root, "setup.py")):
        return
    for name in ("kernels", "scans"):
        full = f"{__name__}.{name}"
        folder = os.path.join(root, name)
        if full in sys.modules or not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        if importlib.util.find_spec(full) is not None:
            continue
        spec = importlib.util.spec_from_file_location(full, os.path.join(folder, "__init__.py"),
                                                      submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full]
            raise
        globals()[name] = module


_map_source_subpackages()

from . import models  # noqa: E402,F401  (registers the models with timm)


def __getattr__(name: str):
    """``vssm.backend_info()``: which op backend runs where (``python -m vssm.env``), imported on first use."""
    if name == "backend_info":
        from .env import backend_info

        return backend_info
    raise AttributeError(f"module 'vssm' has no attribute {name!r}")
