"""tools/validate.py on a checkpoint of tools/train.py and on a foreign (release-style) checkpoint."""
from __future__ import annotations

import json

import torch
from toolrun import VALIDATE, run_tool


def _validate(args, tool_env, tmp_path, name="results.json"):
    out = tmp_path / name
    proc = run_tool(VALIDATE, [*args, "-j", "0", "-b", "32", "--results-file", str(out)], tool_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert " * Acc@1 " in proc.stdout and "img/s" in proc.stdout
    return json.loads(out.read_text()), proc


def test_own_checkpoint_needs_only_its_path(trained_run, tool_env, tmp_path):
    results, _ = _validate(["--checkpoint", str(trained_run / "best.pth")], tool_env, tmp_path)
    ckpt = torch.load(trained_run / "best.pth", weights_only=True)
    best = next(h for h in ckpt["history"] if h["epoch"] == ckpt["best_epoch"])
    assert results["model"] == "vmamba_micro" and results["count"] == 160
    assert abs(results["top1"] - best["eval_top1"]) < 1e-6  # same weights, same preprocessing, same images
    assert abs(results["loss"] - best["eval_loss"]) < 1e-4
    assert results["img_per_s"] > 0


def test_foreign_checkpoint_goes_through_the_model_filter(trained_run, tool_env, tmp_path):
    ckpt = torch.load(trained_run / "best.pth", weights_only=True)
    release = tmp_path / "release.pth"
    torch.save({"model": ckpt["state_dict"]}, release)  # the layout of official releases
    data_dir = ckpt["data"]["data_dir"]
    ours, _ = _validate(["--checkpoint", str(trained_run / "best.pth")], tool_env, tmp_path, "ours.json")
    theirs, proc = _validate(["--model", "vmamba_micro", "--checkpoint", str(release), "--data-dir", data_dir,
                              "--img-size", "32", "--crop-pct", "1.0"], tool_env, tmp_path, "theirs.json")
    assert "checkpoint filter" in proc.stdout
    assert theirs["top1"] == ours["top1"] and abs(theirs["loss"] - ours["loss"]) < 1e-5


def test_bad_checkpoint_is_one_line(trained_run, tool_env, tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes((trained_run / "best.pth").read_bytes()[:1000])
    proc = run_tool(VALIDATE, ["--checkpoint", str(broken)], tool_env, tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"validate.py: error: --checkpoint {broken} is not a readable checkpoint (truncated or corrupted: not a "
        "complete zip archive as torch.save writes)"]
