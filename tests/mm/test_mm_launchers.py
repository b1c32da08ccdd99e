"""tools/mm_train.py and tools/mm_test.py on the shapes smoke configs: real training on CPU, checkpoints on disk,
resuming in a fresh process (torch >= 2.6 ``weights_only`` loading of mmengine checkpoints), COCO / mIoU evaluation,
and one-line errors for bad input."""
from __future__ import annotations

import importlib.util
import re

import pytest
import torch
from mm_helpers import DET_SMOKE, FAMILY_SMOKES, MM_TEST, MM_TRAIN, ROOT, SEG_SMOKE, run_tool

from vssm.mm import allow_mmengine_checkpoints


def _load_tool(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _needs_allow_list(checkpoint):
    """The checkpoint holds objects ``weights_only`` refuses by default, all of them in our allow-list."""
    registered = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()  # as in a fresh process (the in-process mm_test may have added them)
    try:
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(checkpoint)))
    finally:
        torch.serialization.add_safe_globals(registered)
    assert unsafe, "expected mmengine's HistoryBuffer / numpy objects in the checkpoint"
    assert unsafe <= set(allow_mmengine_checkpoints()), unsafe - set(allow_mmengine_checkpoints())


def test_torch_loads_weights_only_by_default():
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    assert (major, minor) >= (2, 6), "these tests prove resuming under weights_only=True, torch >= 2.6's default"


@pytest.mark.slow
def test_detection_smoke_train_resume_evaluate(tmp_path):
    work = tmp_path / "det"
    # epoch 1 (2 iterations), no validation yet; it writes epoch_1.pth
    out = _ok(run_tool(MM_TRAIN, str(DET_SMOKE), "--work-dir", str(work), "--cfg-options", "train_cfg.max_epochs=1",
                       "train_cfg.val_interval=2", cwd=tmp_path))
    assert (work / "epoch_1.pth").is_file() and "Epoch(train) [1][2/2]" in out
    _needs_allow_list(work / "epoch_1.pth")
    # a fresh process resumes from the latest checkpoint of the work dir, trains epoch 2 and runs CocoMetric
    out = _ok(run_tool(MM_TRAIN, str(DET_SMOKE), "--work-dir", str(work), "--resume", cwd=tmp_path))
    assert re.search(r"Auto resumed from the latest checkpoint .*epoch_1\.pth", out)
    assert "resumed epoch: 1, iter: 2" in out and "Epoch(train) [2][2/2]" in out
    assert "Epoch(train) [1]" not in out
    for metric in ("coco/bbox_mAP:", "coco/bbox_mAP_50:", "coco/segm_mAP:", "coco/segm_mAP_50:"):
        assert metric in out, metric
    print(re.findall(r"coco/(?:bbox|segm)_mAP: [-\d.]+", out))
    assert (work / "epoch_2.pth").is_file()

    # tools/mm_test.py, in this process: strict loading of the checkpoint, CocoMetric on the test split
    mm_test = _load_tool(MM_TEST)
    assert mm_test.main([str(DET_SMOKE), str(work / "epoch_2.pth"), "--work-dir", str(tmp_path / "test")]) == 0
    log = next((tmp_path / "test").glob("*/*.log")).read_text()
    assert re.search(r"coco/bbox_mAP: [\d.]+ .*coco/segm_mAP: [\d.]+", log)


@pytest.mark.slow
def test_segmentation_smoke_train_resume_evaluate(tmp_path):
    work = tmp_path / "seg"
    out = _ok(run_tool(MM_TRAIN, str(SEG_SMOKE), "--work-dir", str(work), "--cfg-options", "train_cfg.max_iters=2",
                       cwd=tmp_path))
    assert (work / "iter_2.pth").is_file() and "Iter(train) [2/2]" in out
    _needs_allow_list(work / "iter_2.pth")
    # resume from an explicit checkpoint in a fresh process: iterations 3 and 4, then IoUMetric
    out = _ok(run_tool(MM_TRAIN, str(SEG_SMOKE), "--work-dir", str(work), "--resume", str(work / "iter_2.pth"),
                       cwd=tmp_path))
    assert "resumed epoch: 0, iter: 2" in out and "Iter(train) [4/4]" in out and "Iter(train) [2/4]" not in out
    assert re.search(r"mIoU: [\d.]+", out) and "| background |" in out
    print(re.findall(r"aAcc: [\d.]+ +mIoU: [\d.]+", out))
    assert (work / "iter_4.pth").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("config", FAMILY_SMOKES, ids=lambda p: "-".join(p.name.split("_")[:2])[:-5])
def test_family_smoke_train_resume_evaluate(config, tmp_path):
    """Every other family's smoke config through tools/mm_train.py in this process (the fresh-process resume and the
    checkpoint allow-list are proved above on VMamba): half the schedule, then ``--resume`` of the latest checkpoint
    for the rest and the evaluation."""
    mm_train = _load_tool(MM_TRAIN)
    work = tmp_path / "work"
    det = config.parent.name == "detection"
    first = ["train_cfg.max_epochs=1", "train_cfg.val_interval=2"] if det else ["train_cfg.max_iters=2"]
    assert mm_train.main([str(config), "--work-dir", str(work), "--cfg-options", *first]) == 0
    assert (work / ("epoch_1.pth" if det else "iter_2.pth")).is_file()
    assert mm_train.main([str(config), "--work-dir", str(work), "--resume"]) == 0
    log = sorted(work.glob("*/*.log"))[-1].read_text()  # the resumed run's
    assert re.search(r"Auto resumed from the latest checkpoint .*(epoch_1|iter_2)\.pth", log)
    if det:
        assert "resumed epoch: 1, iter: 2" in log and "Epoch(train) [2][2/2]" in log and "Epoch(train) [1]" not in log
        metrics = ["coco/bbox_mAP: "] + ([] if re.match("retinanet|ssdlite", config.name) else ["coco/segm_mAP: "])
        assert all(re.search(re.escape(m) + r"[\d.]+", log) for m in metrics), metrics
        assert (work / "epoch_2.pth").is_file()
    else:
        assert "resumed epoch: 0, iter: 2" in log and "Iter(train) [4/4]" in log and "Iter(train) [2/4]" not in log
        assert re.search(r"mIoU: [\d.]+", log) and "| background |" in log
        assert (work / "iter_4.pth").is_file()
    assert not re.search(r"loss\w*: nan", log)


def test_missing_config_is_one_line(tmp_path):
    proc = run_tool(MM_TRAIN, "configs/detection/nope.py", cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: config 'configs/detection/nope.py' does not exist"]


def test_unknown_arch_is_one_line(tmp_path, capsys):
    mm_train = _load_tool(MM_TRAIN)
    rc = mm_train.main([str(DET_SMOKE), "--work-dir", str(tmp_path), "--cfg-options", "model.backbone.arch=huge"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert re.match(r"error: .*VMambaBackbone: arch='huge' is not a VMamba model; allowed: an alias \(tiny", err[0])


def test_mm_test_refuses_a_corrupted_checkpoint(tmp_path, capsys):
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not really a checkpoint")
    mm_test = _load_tool(MM_TEST)
    rc = mm_test.main([str(SEG_SMOKE), str(tmp_path / "broken.pth"), "--work-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"error: checkpoint '{tmp_path / 'broken.pth'}' does not load into the config's model")


@pytest.mark.parametrize("script", [MM_TRAIN, MM_TEST], ids=["mm_train", "mm_test"])
def test_help_lists_the_standard_flags(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load_tool(script).parse_args(["--help"])
    out = capsys.readouterr().out
    flags = ["--work-dir", "--cfg-options", "--launcher"] + (["--resume", "--amp"] if script == MM_TRAIN else [])
    assert exit_info.value.code == 0 and all(f in out for f in flags)
    assert "{none,pytorch}" in out


def test_resume_and_amp_flags_reach_the_config(tmp_path):
    config = tmp_path / "tiny_cfg.py"  # a config without package bases: this checks the flags, not our configs
    config.write_text("optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))\n"
                      "train_dataloader = dict(batch_size=2)\n")
    mm_train = _load_tool(MM_TRAIN)
    args = mm_train.parse_args([str(config), "--work-dir", str(tmp_path), "--resume", "--amp",
                                "--cfg-options", "train_dataloader.batch_size=4"])
    cfg = mm_train.build_config(args)
    assert cfg.resume is True and cfg.load_from is None and cfg.work_dir == str(tmp_path)
    assert cfg.optim_wrapper.type == "AmpOptimWrapper" and cfg.optim_wrapper.loss_scale == "dynamic"
    assert cfg.train_dataloader.batch_size == 4 and cfg.launcher == "none"
    args = mm_train.parse_args([str(config), "--resume", str(config), "--launcher", "pytorch"])
    cfg = mm_train.build_config(args)
    assert cfg.resume is True and cfg.load_from == str(config) and cfg.launcher == "pytorch"
    assert cfg.work_dir == "./work_dirs/tiny_cfg" and cfg.optim_wrapper.type == "OptimWrapper"
    with pytest.raises(FileNotFoundError, match=r"--resume checkpoint 'nope\.pth' does not exist"):
        mm_train.build_config(mm_train.parse_args([str(config), "--resume", "nope.pth"]))
