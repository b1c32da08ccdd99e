"""Data sets that ship inside the package (generated on the fly, never downloaded)."""
from .shapes import (
    SHAPES,
    prepare_classification,
    prepare_scenes,
    render_sample,
    render_scene,
    shapes_cache_dir,
    write_classification,
    write_scenes,
)

__all__ = [
    "SHAPES",
    "prepare_classification",
    "prepare_scenes",
    "render_sample",
    "render_scene",
    "shapes_cache_dir",
    "write_classification",
    "write_scenes",
]
