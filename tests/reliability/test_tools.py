"""tools/train.py, tools/validate.py and tools/convert_checkpoint.py under bad flags, configs and files: one line on
stderr naming the flag, the value and what is allowed, a non-zero exit status, never a traceback.

The tools run in this process through their own ``main`` (argparse, ``run_cli``), which is what ``python tools/X.py``
runs: an exception that escapes ``run_cli`` is the traceback a user would see, and fails the test. That the scripts
wrap ``main`` this way is checked once per tool through a real subprocess.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from rel_support import ERROR, record

import vssm  # noqa: F401  (registers the models)

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--img-size", "32", "--shapes-train-per-class", "8", "--shapes-val-per-class", "2", "-j", "0",
        "--log-interval", "0", "--model", "test_resnet", "-b", "16", "--epochs", "1", "--warmup-epochs", "0",
        "--lr", "0.01"]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"vssm_tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Bomb:
    """Unpickling it creates a file: the proof that a loader ran code from the checkpoint."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    sd = timm.create_model("test_resnet", num_classes=8).state_dict()
    torch.save(sd, d / "weights.pth")
    torch.save(timm.create_model("test_vmamba", num_classes=8).state_dict(), d / "vmamba.pth")
    torch.save({"state_dict": sd, "config": Bomb(d / "PWNED")}, d / "bomb.pth")
    data = (d / "weights.pth").read_bytes()
    (d / "truncated.pth").write_bytes(data[: len(data) // 2])
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "broken.yaml").write_text("epochs: [1\n")
    (d / "typed.yaml").write_text("epochs: abc\n")
    (d / "switch.yaml").write_text("amp: 'yes'\n")
    (d / "typo.yaml").write_text("bach_size: 8\n")
    return d


def _run(tool, argv, capsys, needles, entry):
    mod = _load(tool)
    with pytest.raises(SystemExit) as info:
        if tool == "convert_checkpoint":
            sys.exit(mod.main(argv))
        mod.run_cli(mod.main, argv)
    err = capsys.readouterr().err
    assert info.value.code not in (0, None), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "error:" in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    record(entry, ERROR)


def train_cases(d):
    return {
        "int flag": (["--epochs", "abc"], ["--epochs", "'abc'", "int"]),
        "choice": (["--amp-dtype", "float8"], ["--amp-dtype", "'float8'", "float16"]),
        "unknown flag": (["--no-such-flag", "3"], ["unrecognized arguments", "--no-such-flag"]),
        "nargs": (["--input-size", "3", "32"], ["--input-size", "3 arguments"]),
        "batch 0": (["-b", "0"], ["-b/--batch-size", "0", "at least 1"]),
        "negative lr": (["--lr", "-1"], ["--lr", "-1", "positive"]),
        "smoothing": (["--smoothing", "1.5"], ["--smoothing", "1.5", "[0, 1)"]),
        "img size": (["--img-size", "4"], ["--img-size", "4", "at least 8"]),
        "unknown model": (["--model", "vmamba_tinyy"], ["--model", "'vmamba_tinyy'", "vmamba_tiny"]),
        "unknown optimizer": (["--opt", "adamww"], ["--opt", "'adamww'", "one of"]),
        "unknown device": (["--device", "tpu"], ["--device", "'tpu'", "cpu"]),
        "unknown scan": (["--model", "test_vmamba", "--scan", "spiral"], ["--scan", "'spiral'", "cross"]),
        "model kwarg form": (["--model-kwargs", "depth"], ["--model-kwargs", "KEY=VALUE", "'depth'"]),
        "model kwarg name": (["--model", "test_vmamba", "--model-kwargs", "depht=2"], ["--model-kwargs", "'depht'"]),
        "config list": (["-c", str(d / "list.yaml")], ["--config", "list.yaml", "mapping"]),
        "config yaml": (["-c", str(d / "broken.yaml")], ["--config", "broken.yaml", "YAML"]),
        "config type": (["-c", str(d / "typed.yaml")], ["epochs", "'abc'", "int"]),
        "config switch": (["-c", str(d / "switch.yaml")], ["amp", "'yes'", "true or false"]),
        "config key": (["-c", str(d / "typo.yaml")], ["'bach_size'", "batch_size"]),
        "config missing": (["-c", str(d / "none.yaml")], ["--config", "none.yaml", "no such file"]),
        "resume missing": (["--resume", str(d / "none.pth")], ["--resume", "none.pth", "does not exist"]),
        "resume truncated": (["--resume", str(d / "truncated.pth")], ["--resume", "truncated.pth", "not a readable"]),
        "resume pickle": (["--resume", str(d / "bomb.pth")], ["--resume", "bomb.pth", "globals"]),
        "resume foreign": (["--resume", str(d / "weights.pth")], ["--resume", "weights.pth", "not a checkpoint"]),
        "initial other model": (["--initial-checkpoint", str(d / "vmamba.pth")],
                                ["--initial-checkpoint", "vmamba.pth", "test_resnet"]),
    }


@pytest.mark.parametrize("case", list(train_cases(Path("."))))
def test_train_bad_input(case, files, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("VSSM_DATA", str(files / "data"))
    args, needles = train_cases(files)[case]
    _run("train", [*TINY, "--output", str(tmp_path), *args], capsys, needles, "tools/train.py")
    assert not (files / "PWNED").exists(), "a checkpoint ran code while being read"


def validate_cases(d):
    return {
        "nothing": ([], ["--model is required"]),
        "no weights": (["--model", "test_resnet"], ["nothing to evaluate", "--checkpoint"]),
        "int flag": (["--model", "test_resnet", "-b", "x"], ["-b/--batch-size", "'x'", "int"]),
        "batch 0": (["--model", "test_resnet", "-b", "0", "--pretrained"], ["-b/--batch-size", "0", "at least 1"]),
        "choice": (["--amp-dtype", "int8"], ["--amp-dtype", "'int8'", "float16"]),
        "unknown model": (["--model", "vmamba_tinyy", "--pretrained"], ["--model", "'vmamba_tinyy'"]),
        "missing file": (["--checkpoint", str(d / "none.pth")], ["--checkpoint", "none.pth", "does not exist"]),
        "truncated": (["--checkpoint", str(d / "truncated.pth")], ["--checkpoint", "truncated.pth", "not a readable"]),
        "pickle": (["--checkpoint", str(d / "bomb.pth")], ["--checkpoint", "bomb.pth", "globals"]),
        "foreign without data": (["--model", "test_resnet", "--checkpoint", str(d / "weights.pth")],
                                 ["--data-dir is required"]),
        "config key": (["-c", str(d / "typo.yaml")], ["'bach_size'", "batch_size"]),
    }


@pytest.mark.parametrize("case", list(validate_cases(Path("."))))
def test_validate_bad_input(case, files, capsys):
    args, needles = validate_cases(files)[case]
    _run("validate", args, capsys, needles, "tools/validate.py")
    assert not (files / "PWNED").exists(), "a checkpoint ran code while being read"


def convert_cases(d, out):
    return {
        "no files": (["--model", "test_vmamba"], ["required", "input, output"]),
        "int flag": (["--model", "test_vmamba", "--num-classes", "ten", "a", "b"], ["--num-classes", "'ten'", "int"]),
        "unknown model": (["--model", "vmamba_tinyy", str(d / "vmamba.pth"), out], ["'vmamba_tinyy'", "vssm models"]),
        "missing file": (["--model", "test_vmamba", str(d / "none.pth"), out], ["none.pth", "does not exist"]),
        "truncated": (["--model", "test_vmamba", str(d / "truncated.pth"), out], ["truncated.pth", "not a readable"]),
        "pickle": (["--model", "test_vmamba", str(d / "bomb.pth"), out], ["bomb.pth", "--allow-pickle"]),
        "kwargs json": (["--model", "test_vmamba", "--model-kwargs", "depths=1", str(d / "vmamba.pth"), out],
                        ["--model-kwargs", "'depths=1'", "JSON object"]),
        "kwargs list": (["--model", "test_vmamba", "--model-kwargs", "[1]", str(d / "vmamba.pth"), out],
                        ["--model-kwargs", "'[1]'", "JSON object"]),
        "other model": (["--model", "test_vmamba", str(d / "weights.pth"), out], ["test_vmamba", "does not fit"]),
    }


@pytest.mark.parametrize("case", list(convert_cases(Path("."), "")))
def test_convert_bad_input(case, files, capsys, tmp_path):
    args, needles = convert_cases(files, str(tmp_path / "out.safetensors"))[case]
    _run("convert_checkpoint", args, capsys, needles, "tools/convert_checkpoint.py")
    assert not (files / "PWNED").exists(), "a checkpoint ran code while being read"
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize("tool,args", [("train", ["--epochs", "abc"]), ("validate", ["-b", "x"]),
                                       ("convert_checkpoint", ["--model", "x"])])
def test_scripts_print_one_line(tool, args, tool_env):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *args], env=tool_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    record(f"tools/{tool}.py", ERROR)
