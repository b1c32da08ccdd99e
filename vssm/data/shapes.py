"""Coloured geometric shapes: a small data set generated on the fly with OpenCV, for demos and tests.

Two tasks come from the same renderer:

* **classification** (``write_classification`` / ``prepare_classification``): one shape per image, ImageFolder
  layout ``<root>/{train,val}/<class>/<class>_<i>.png``, exactly the same number of images per class. This is what
  ``python tools/train.py`` trains on when no ``--data-dir`` is given.
* **scenes** (``write_scenes`` / ``prepare_scenes``): several non-overlapping shapes per image with COCO-format
  instance annotations and semantic label maps, for detection and segmentation (mmdet / mmseg)::

      <root>/images/{train,val}/<id>.png            RGB images
      <root>/annotations/instances_{train,val}.json COCO: bbox [x, y, w, h], polygon (or RLE) segmentation, area,
                                                     iscrowd=0, categories 1..K in the order of ``classes``
      <root>/masks/{train,val}/<id>.png             uint8 label maps: 0 = background, k = classes[k - 1]

  The label maps use 0 for background and no ignore value (255 never occurs). With mmseg, either keep background as
  a class (``reduce_zero_label=False``, classes ``('background', *SHAPES)``) or ignore it ADE20K-style
  (``reduce_zero_label=True``, classes ``SHAPES``: 0 becomes 255 and k becomes k - 1).

Backgrounds are random dark colours with a random gradient and Gaussian noise; shapes get a random colour at least
70 (luma) brighter. Keeping the figure lighter than the ground is what makes the set learnable in a few hundred
steps: with backgrounds of any colour a network must first learn contrast-polarity invariance, and small models
need about ten times as many steps before they leave chance level.

Every image is drawn from its own generator seeded by ``(seed, split, index)``, so a data set depends only on its
parameters, not on the order or the process that drew it. Shapes are rasterised at 4x and area-downsampled: edges are
anti-aliased, and a pixel belongs to an object's mask when the object covers at least half of it.

``prepare_*`` write a data set once into a cache folder named after a hash of its parameters
(``$VSSM_DATA`` or ``~/.cache/vssm``) and return the path. Writing goes to a temporary folder next to the target
that is renamed into place only when complete, so an interrupted run never leaves a half data set behind.

Command line: ``python -m vssm.data.shapes {classification,scenes} [--out DIR] [...]`` (``--help`` for the rest).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

__all__ = [
    "GENERATOR_VERSION",
    "SHAPES",
    "mask_to_polygons",
    "mask_to_rle",
    "prepare_classification",
    "prepare_scenes",
    "render_sample",
    "render_scene",
    "shapes_cache_dir",
    "write_classification",
    "write_scenes",
]

GENERATOR_VERSION = 2  # bump when the rendering changes: cached data sets are keyed by it
SHAPES = ("circle", "triangle", "square", "pentagon", "star", "cross", "heart", "crescent")
MANIFEST = "shapes.json"

_SS = 4  # supersampling factor of the rasteriser
_SHIFT = 4  # fractional bits of the polygon coordinates given to cv2.fillPoly
_SPLIT_CODE = {"train": 0, "val": 1}


def _unit_outline(kind: str) -> list[tuple[np.ndarray, int]]:
    """Polygons of a shape of radius 1 centred at the origin, as ``(points (P, 2), fill)`` drawn in order."""
    def ring(n: int, radius: float = 1.0, phase: float = -np.pi / 2) -> np.ndarray:
        t = phase + 2 * np.pi * np.arange(n) / n
        return radius * np.stack([np.cos(t), np.sin(t)], axis=1)

    if kind == "circle":
        return [(ring(96), 1)]
    if kind == "triangle":
        return [(ring(3), 1)]
    if kind == "square":
        return [(ring(4, phase=np.pi / 4), 1)]
    if kind == "pentagon":
        return [(ring(5), 1)]
    if kind == "star":
        pts = ring(10)
        pts[1::2] *= 0.42
        return [(pts, 1)]
    if kind == "cross":
        a, w = 1.0 / np.sqrt(2) * 1.25, 0.28  # arm half-length (fits the unit circle), arm half-width
        arm = np.array([[w, w], [a, w], [a, -w], [w, -w]])
        pts = np.concatenate([arm @ np.array([[np.cos(q), np.sin(q)], [-np.sin(q), np.cos(q)]])
                              for q in np.arange(4) * np.pi / 2])
        return [(pts, 1)]
    if kind == "heart":
        t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        pts = np.stack([x, y + 2.5], axis=1) / 17.0
        return [(pts, 1)]
    if kind == "crescent":
        inner = ring(96, 0.8) + np.array([0.45, -0.1])
        return [(ring(96), 1), (inner, 0)]
    raise ValueError(f"unknown shape {kind!r}; known shapes: {', '.join(SHAPES)}")


def _rasterise(kind: str, cx: float, cy: float, radius: float, angle: float, size: tuple[int, int]) -> np.ndarray:
    """Coverage (float32 in [0, 1], shape ``size``) of one shape; centre and radius in pixels of the output."""
    h, w = size
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, sin], [-sin, cos]])
    canvas = np.zeros((h * _SS, w * _SS), np.uint8)
    for pts, fill in _unit_outline(kind):
        xy = (pts @ rot) * radius + np.array([cx, cy])  # output pixel units, pixel i spans [i, i + 1)
        hi = np.round((xy * _SS - 0.5) * (1 << _SHIFT)).astype(np.int32)  # hi-res pixel centres at integers
        cv2.fillPoly(canvas, [hi], 255 * fill, lineType=cv2.LINE_8, shift=_SHIFT)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


_LUMA = np.array([0.299, 0.587, 0.114])


def _background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A random dark colour with a linear gradient, and its mean colour."""
    base = rng.uniform(0, 100, 3)
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(theta) * xx / w + np.sin(theta) * yy / h)[..., None]  # in [-1.5, 1.5], mean about 0
    return base + ramp * rng.uniform(-30, 30, 3), base


def _foreground_colour(rng: np.random.Generator, background: np.ndarray, min_contrast: float = 70.0) -> np.ndarray:
    """A random colour at least ``min_contrast`` brighter (luma, 0..255) than the background."""
    floor = float(background @ _LUMA) + min_contrast
    for _ in range(100):
        colour = rng.uniform(0, 255, 3)
        if colour @ _LUMA >= floor:
            return colour
    return np.full(3, 255.0)


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    sigma = rng.uniform(3, 18)
    img = img + rng.normal(0, sigma, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_sample(rng: np.random.Generator, kind: str, img_size: int = 64) -> np.ndarray:
    """Draws one image for classification: a single shape of random size, position, angle and colour.

    Args:
        rng: Source of randomness (e.g. ``np.random.default_rng(0)``).
        kind: One of ``SHAPES``.
        img_size: Side of the square image in pixels.

    Returns:
        ``(img_size, img_size, 3)`` uint8 RGB image.
    """
    radius = rng.uniform(0.2, 0.45) * img_size
    cx, cy = rng.uniform(radius, img_size - radius, 2)
    alpha = _rasterise(kind, cx, cy, radius, rng.uniform(0, 2 * np.pi), (img_size, img_size))[..., None]
    img, mean = _background(rng, img_size, img_size)
    colour = _foreground_colour(rng, mean)
    return _finish(rng, img * (1 - alpha) + colour * alpha)


def render_scene(
        rng: np.random.Generator,
        classes: Sequence[str] = SHAPES,
        img_size: int = 128,
        max_objects: int = 4,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Draws several non-overlapping shapes on one image.

    Args:
        rng: Source of randomness.
        classes: Shape names to draw from (labels index into it).
        img_size: Side of the square image in pixels.
        max_objects: Most shapes per image (at least one is always drawn).

    Returns:
        The ``(img_size, img_size, 3)`` uint8 RGB image and one dict per object with ``label`` (index into
        ``classes``) and ``mask`` (bool ``(img_size, img_size)``, the pixels the object covers at least half of).
    """
    img, mean = _background(rng, img_size, img_size)
    placed: list[tuple[float, float, float]] = []
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        radius = rng.uniform(0.08, 0.22) * img_size
        for _attempt in range(50):
            cx, cy = rng.uniform(radius, img_size - radius, 2)
            if all(np.hypot(cx - x, cy - y) >= radius + r + 2 for x, y, r in placed):
                break
        else:
            continue
        label = int(rng.integers(len(classes)))
        alpha = _rasterise(classes[label], cx, cy, radius, rng.uniform(0, 2 * np.pi), (img_size, img_size))
        mask = alpha >= 0.5
        if mask.sum() < 16:
            continue
        colour = _foreground_colour(rng, mean)
        img = img * (1 - alpha[..., None]) + colour * alpha[..., None]
        placed.append((cx, cy, radius))
        objects.append({"label": label, "mask": mask})
    return _finish(rng, img), objects


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons (``[[x1, y1, x2, y2, ...], ...]``, pixel i spanning [i, i + 1)) tracing a binary mask."""
    hi = cv2.resize(mask.astype(np.uint8), None, fx=_SS, fy=_SS, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(hi, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for contour in contours:
        contour = cv2.approxPolyDP(contour, 1.0, True)[:, 0, :].astype(np.float64)
        if len(contour) < 3:
            continue
        xy = (contour + 0.5) / _SS  # hi-res pixel centres back to output pixel units
        polygons.append([round(float(v), 2) for v in xy.reshape(-1)])
    return polygons


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE (``{'size': [h, w], 'counts': [...]}``, column-major, starting with zeros)."""
    flat = mask.reshape(-1, order="F").astype(np.uint8)
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": [int(c) for c in counts]}


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def _write_png(path: Path, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    unknown = [c for c in classes if c not in SHAPES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {', '.join(SHAPES)}; got {list(classes)}")
    return classes


def write_classification(
        root: str | os.PathLike,
        *,
        classes: Sequence[str] = SHAPES,
        img_size: int = 64,
        train_per_class: int = 500,
        val_per_class: int = 100,
        seed: int = 0,
) -> Path:
    """Writes the classification data set in ImageFolder layout (``root/{train,val}/<class>/*.png``).

    Writes into ``root`` directly (it may exist and should be empty); use ``prepare_classification`` for a cached,
    atomically written copy.

    Returns:
        ``root`` as a Path.
    """
    classes = _check_classes(classes)
    root = Path(root)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for kind in classes:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                rng = np.random.default_rng([seed, _SPLIT_CODE[split], SHAPES.index(kind), i])
                _write_png(folder / f"{kind}_{i:05d}.png", render_sample(rng, kind, img_size))
    return root


def write_scenes(
        root: str | os.PathLike,
        *,
        classes: Sequence[str] = SHAPES,
        img_size: int = 128,
        num_train: int = 200,
        num_val: int = 50,
        max_objects: int = 4,
        seed: int = 0,
        segmentation: str = "polygon",
) -> Path:
    """Writes multi-object scenes with COCO instance annotations and semantic label maps (layout in the module doc).

    Args:
        root: Output folder.
        classes: Shape names; COCO category ``k + 1`` and label-map value ``k + 1`` are ``classes[k]``.
        img_size: Side of the square images.
        num_train: Number of training images.
        num_val: Number of validation images.
        max_objects: Most shapes per image.
        seed: Seed of the whole data set.
        segmentation: ``'polygon'`` (COCO polygons, what mmdet reads by default) or ``'rle'`` (uncompressed RLE,
            exact).

    Returns:
        ``root`` as a Path.
    """
    classes = _check_classes(classes)
    if segmentation not in ("polygon", "rle"):
        raise ValueError(f"segmentation must be 'polygon' or 'rle'; got {segmentation!r}")
    root = Path(root)
    categories = [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(classes)]
    for split, count in (("train", num_train), ("val", num_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            rng = np.random.default_rng([seed, _SPLIT_CODE[split], 1000, i])
            img, objects = render_scene(rng, classes, img_size, max_objects)
            name = f"{i:06d}.png"
            _write_png(root / "images" / split / name, img)
            label_map = np.zeros((img_size, img_size), np.uint8)
            images.append({"id": i + 1, "file_name": name, "width": img_size, "height": img_size})
            for obj in objects:
                label_map[obj["mask"]] = obj["label"] + 1
                segm = mask_to_polygons(obj["mask"]) if segmentation == "polygon" else mask_to_rle(obj["mask"])
                annotations.append({
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": obj["label"] + 1,
                    "bbox": _bbox(obj["mask"]),
                    "area": float(obj["mask"].sum()),
                    "iscrowd": 0,
                    "segmentation": segm,
                })
            _write_png(root / "masks" / split / name, label_map)
        coco = {
            "info": {"description": f"vssm shapes scenes ({split})", "version": str(GENERATOR_VERSION)},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        (root / "annotations").mkdir(exist_ok=True)
        with open(root / "annotations" / f"instances_{split}.json", "w", encoding="utf-8") as f:
            json.dump(coco, f)
    return root


def shapes_cache_dir() -> Path:
    """Where ``prepare_*`` keep data sets: ``$VSSM_DATA``, else ``$XDG_CACHE_HOME/vssm``, else ``~/.cache/vssm``."""
    if os.environ.get("VSSM_DATA"):
        return Path(os.environ["VSSM_DATA"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "vssm"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _build_once(task: str, params: dict[str, Any], writer: Callable[[Path], Any], root: Path | None) -> Path:
    """Returns a complete data set for ``params``, writing it atomically (temp folder + rename) if missing."""
    manifest = {"generator": "vssm.data.shapes", "version": GENERATOR_VERSION, "task": task, "params": params}
    key = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:10]
    final = Path(root) if root is not None else shapes_cache_dir() / f"shapes-{task}-v{GENERATOR_VERSION}-{key}"
    done = final / MANIFEST
    if done.is_file():
        with open(done, encoding="utf-8") as f:
            found = json.load(f)
        if {k: found.get(k) for k in manifest} == manifest:
            return final
        raise FileExistsError(f"{final} holds a different shapes data set ({found.get('params')}); "
                              "choose another folder or delete it")
    if final.exists() and any(final.iterdir()):
        raise FileExistsError(f"{final} exists, is not empty and is not a shapes data set")
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.tmp-"
    for stale in final.parent.glob(prefix + "*"):  # left by a killed writer
        pid = stale.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        writer(tmp)
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        try:
            os.rename(tmp, final)  # atomic; also replaces an empty folder given as root
        except OSError:
            if not done.is_file():  # another process did not finish it first: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def prepare_classification(
        root: str | os.PathLike | None = None,
        *,
        classes: Sequence[str] = SHAPES,
        img_size: int = 64,
        train_per_class: int = 500,
        val_per_class: int = 100,
        seed: int = 0,
) -> Path:
    """Returns the classification data set for these parameters, generating it once (atomically) if needed.

    Args:
        root: Folder to hold it; by default a folder named after the parameters under ``shapes_cache_dir()``.
        classes, img_size, train_per_class, val_per_class, seed: As in ``write_classification``.

    Returns:
        The data set's root (contains ``train/`` and ``val/``).
    """
    params = dict(classes=list(_check_classes(classes)), img_size=img_size, train_per_class=train_per_class,
                  val_per_class=val_per_class, seed=seed)
    return _build_once("cls", params, lambda d: write_classification(d, **params), Path(root) if root else None)


def prepare_scenes(
        root: str | os.PathLike | None = None,
        *,
        classes: Sequence[str] = SHAPES,
        img_size: int = 128,
        num_train: int = 200,
        num_val: int = 50,
        max_objects: int = 4,
        seed: int = 0,
        segmentation: str = "polygon",
) -> Path:
    """Returns the scenes data set (COCO json + label maps) for these parameters, generating it once if needed.

    Args:
        root: Folder to hold it; by default a folder named after the parameters under ``shapes_cache_dir()``.
        classes, img_size, num_train, num_val, max_objects, seed, segmentation: As in ``write_scenes``.

    Returns:
        The data set's root.
    """
    params = dict(classes=list(_check_classes(classes)), img_size=img_size, num_train=num_train, num_val=num_val,
                  max_objects=max_objects, seed=seed, segmentation=segmentation)
    return _build_once("scenes", params, lambda d: write_scenes(d, **params), Path(root) if root else None)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: writes (or finds in the cache) a data set and prints its path."""
    parser = argparse.ArgumentParser(prog="python -m vssm.data.shapes", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="task", required=True)
    cls = sub.add_parser("classification", help="one shape per image, ImageFolder layout")
    cls.add_argument("--train-per-class", type=int, default=500)
    cls.add_argument("--val-per-class", type=int, default=100)
    scenes = sub.add_parser("scenes", help="several shapes per image, COCO json + semantic label maps")
    scenes.add_argument("--num-train", type=int, default=200)
    scenes.add_argument("--num-val", type=int, default=50)
    scenes.add_argument("--max-objects", type=int, default=4)
    scenes.add_argument("--segmentation", choices=("polygon", "rle"), default="polygon")
    for p, size in ((cls, 64), (scenes, 128)):
        p.add_argument("--out", default=None, help="output folder (default: a cache folder, see shapes_cache_dir)")
        p.add_argument("--img-size", type=int, default=size)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--classes", nargs="+", default=list(SHAPES), choices=SHAPES, metavar="NAME",
                       help=f"shapes to draw (default: all of {', '.join(SHAPES)})")
    args = parser.parse_args(argv)
    kwargs = {k: v for k, v in vars(args).items() if k not in ("task", "out")}
    prepare = prepare_classification if args.task == "classification" else prepare_scenes
    print(prepare(args.out, **kwargs))


if __name__ == "__main__":
    main()
