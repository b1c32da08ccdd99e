"""The embedded shapes generator (vssm.data.shapes): determinism, balance, atomic caching, COCO and masks."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vssm.data import shapes
from vssm.data.shapes import SHAPES, prepare_classification, prepare_scenes, render_sample, render_scene


def test_same_seed_same_image_other_seed_other_image():
    a = render_sample(np.random.default_rng([3, 0, 1, 7]), "triangle", 48)
    b = render_sample(np.random.default_rng([3, 0, 1, 7]), "triangle", 48)
    c = render_sample(np.random.default_rng([4, 0, 1, 7]), "triangle", 48)
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_every_class_renders_a_distinct_visible_shape():
    masks = {kind: shapes._rasterise(kind, 32, 32, 20, 0.3, (64, 64)) >= 0.5 for kind in SHAPES}
    for kind, mask in masks.items():
        assert 0.35 * 64 * 64 > mask.sum() > 0.05 * 64 * 64, kind
        for other, mask2 in masks.items():
            if other != kind:
                assert (mask & mask2).sum() / (mask | mask2).sum() < 0.9, (kind, other)
    with pytest.raises(ValueError, match="unknown shape"):
        shapes._rasterise("blob", 32, 32, 20, 0.0, (64, 64))


def test_classification_is_balanced_and_deterministic(tmp_path):
    kwargs = dict(classes=("circle", "star", "cross"), img_size=24, train_per_class=5, val_per_class=2, seed=1)
    a = shapes.write_classification(tmp_path / "a", **kwargs)
    b = shapes.write_classification(tmp_path / "b", **kwargs)
    for split, n in (("train", 5), ("val", 2)):
        assert sorted(p.name for p in (a / split).iterdir()) == ["circle", "cross", "star"]
        for kind in ("circle", "star", "cross"):
            files = sorted((a / split / kind).glob("*.png"))
            assert len(files) == n
            for f in files:
                assert f.read_bytes() == (b / split / kind / f.name).read_bytes()
    img = cv2.imread(str(next((a / "train" / "star").glob("*.png"))))
    assert img.shape == (24, 24, 3)


def test_prepare_caches_by_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("VSSM_DATA", str(tmp_path))
    kwargs = dict(img_size=16, train_per_class=2, val_per_class=1)
    root = prepare_classification(**kwargs)
    assert root.parent == tmp_path and root.name.startswith(f"shapes-cls-v{shapes.GENERATOR_VERSION}-")
    manifest = json.loads((root / shapes.MANIFEST).read_text())
    assert manifest["params"]["train_per_class"] == 2
    stamp = (root / shapes.MANIFEST).stat().st_mtime_ns
    assert prepare_classification(**kwargs) == root  # found, not rewritten
    assert (root / shapes.MANIFEST).stat().st_mtime_ns == stamp
    assert prepare_classification(**dict(kwargs, seed=5)) != root
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("VSSM_DATA", str(tmp_path))
    calls = {"n": 0}
    real = shapes._write_png

    def dying_write(path, img):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way
        real(path, img)

    monkeypatch.setattr(shapes, "_write_png", dying_write)
    with pytest.raises(KeyboardInterrupt):
        prepare_classification(img_size=16, train_per_class=2, val_per_class=1)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(shapes, "_write_png", real)
    root = prepare_classification(img_size=16, train_per_class=2, val_per_class=1)
    assert len(list((root / "train").rglob("*.png"))) == 2 * len(SHAPES)


def test_stale_temporary_folder_of_a_killed_writer_is_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("VSSM_DATA", str(tmp_path))
    root = prepare_classification(img_size=16, train_per_class=1, val_per_class=1, seed=9)
    stale = tmp_path / f".{root.name}-other.tmp-999999999-abcd"  # another name: left alone
    stale.mkdir()
    import shutil
    shutil.rmtree(root)
    dead = tmp_path / f".{root.name}.tmp-999999999-abcd"  # no process 999999999
    (dead / "train").mkdir(parents=True)
    assert prepare_classification(img_size=16, train_per_class=1, val_per_class=1, seed=9) == root
    assert not dead.exists() and stale.exists()


def test_scene_has_several_non_overlapping_shapes():
    counts = []
    for i in range(20):
        img, objects = render_scene(np.random.default_rng(i), SHAPES, 96, 4)
        assert img.shape == (96, 96, 3)
        total = np.zeros((96, 96), int)
        for obj in objects:
            total += obj["mask"]
        assert total.max() <= 1
        counts.append(len(objects))
    assert min(counts) >= 1 and max(counts) >= 3


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("scenes")
    kw = dict(img_size=64, num_train=6, num_val=3, max_objects=4, seed=2)
    return {"polygon": prepare_scenes(base / "poly", **kw),
            "rle": prepare_scenes(base / "rle", segmentation="rle", **kw)}


@pytest.mark.parametrize("kind", ["polygon", "rle"])
def test_coco_annotations_load_and_agree_with_label_maps(scenes, kind):
    pycocotools = pytest.importorskip("pycocotools.coco")
    root = scenes[kind]
    coco = pycocotools.COCO(str(root / "annotations" / "instances_train.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SHAPES)
    assert len(coco.getImgIds()) == 6 and len(coco.getAnnIds()) >= 6
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        label_map = cv2.imread(str(root / "masks" / "train" / info["file_name"]), cv2.IMREAD_UNCHANGED)
        assert label_map.dtype == np.uint8 and label_map.shape == (64, 64)
        assert cv2.imread(str(root / "images" / "train" / info["file_name"])).shape == (64, 64, 3)
        assert set(np.unique(label_map)) <= set(range(len(SHAPES) + 1))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert anns
        for ann in anns:
            assert ann["iscrowd"] == 0 and ann["area"] > 0
            decoded = coco.annToMask(ann).astype(bool)
            x, y, w, h = ann["bbox"]
            ys, xs = np.nonzero(decoded)
            tol = 0 if kind == "rle" else 1  # polygons trace the mask to within a pixel
            assert abs(xs.min() - x) <= tol and abs(ys.min() - y) <= tol
            assert abs(xs.max() + 1 - (x + w)) <= tol and abs(ys.max() + 1 - (y + h)) <= tol
            same_class = label_map == ann["category_id"]
            inter = (decoded & same_class).sum()
            assert inter / decoded.sum() > (0.999 if kind == "rle" else 0.85)
            if kind == "rle":
                assert decoded.sum() == ann["area"]


def test_command_line_writes_a_dataset(tmp_path, capsys):
    shapes.main(["scenes", "--out", str(tmp_path / "s"), "--num-train", "2", "--num-val", "1", "--img-size", "32"])
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "s"
    assert json.loads((tmp_path / "s" / "annotations" / "instances_val.json").read_text())["images"]
