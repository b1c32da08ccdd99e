"""``timm.create_model(name, pretrained=True)`` end to end, offline: a real HTTP server on 127.0.0.1 serves files in
the official formats (training checkpoints that pickle configuration objects, Hub-style repositories), and the real
download, cache, inert unpickling, conversion and strict loading reproduce the parity fixtures' official logits.
"""
from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import sys
import threading
import types
from pathlib import Path

import pytest
import timm
import torch

import vssm  # noqa: F401
from vssm.checkpoint import CheckpointError, InertObject, read_checkpoint
from vssm.hub import pretrained_source

FIXTURES = Path(__file__).parent / "fixtures"
FAMILIES = ["vmamba", "vim", "mambavision", "mlla", "msvmamba", "efficient_vmamba", "mobilemamba"]


def _fixture(name):
    from safetensors import safe_open

    with safe_open(str(FIXTURES / f"{name}.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return json.loads(meta["config"]), sd, tensors["input"], tensors["logits"]


class Bomb:
    """Unpickling calls open(marker, 'w'): a file appears if code from the checkpoint runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class CfgNode(dict):
    """Pickles as ``yacs.config.CfgNode`` (a dict subclass with attributes), as VMamba's and MLLA's training
    checkpoints hold; yacs itself is not installed, so the class is defined here under yacs' module name."""


CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"


def _yacs_cfg(**items):
    node = CfgNode(items)
    node.__dict__["__immutable__"] = True
    return node


def _training_checkpoint(sd, marker, ema=True):
    ckpt = {"model": sd, "optimizer": {}, "epoch": 299, "max_accuracy": 82.6,
            "config": _yacs_cfg(MODEL=_yacs_cfg(NAME="vssm"), TRAIN=_yacs_cfg(EPOCHS=300)),
            "args": argparse.Namespace(model="vmamba", lr=1e-3), "hook": Bomb(marker)}
    if ema:
        ckpt["model_ema"] = sd
    buf = io.BytesIO()
    yacs = types.ModuleType("yacs.config")
    yacs.CfgNode = CfgNode
    sys.modules.update({"yacs": types.ModuleType("yacs"), "yacs.config": yacs})  # only while pickling: the
    try:  # loader must not find the class
        torch.save(ckpt, buf)
    finally:
        del sys.modules["yacs"], sys.modules["yacs.config"]
    return buf.getvalue()


class _Server:
    """http.server in a thread. ``files`` maps paths to bytes; ``/html/...`` answers a Drive-like HTML page,
    ``/truncated/...`` announces the whole file and sends half; Hub paths (``/<repo>/resolve/main/<file>``) carry
    the headers huggingface_hub reads (commit, ETag, size)."""

    def __init__(self):
        self.files = {}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _respond(self, body_wanted):
                server.requests.append(self.path)
                path = self.path.split("?")[0]
                if path.startswith("/html/"):
                    body = b"<!DOCTYPE html><html><head><title>Google Drive</title></head><body>sign in</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if body_wanted:
                        self.wfile.write(body)
                    return
                data = server.files.get(path.replace("/truncated/", "/", 1))
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                if "/resolve/" in path:
                    self.send_header("X-Repo-Commit", "a" * 40)
                    self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.end_headers()
                if body_wanted:
                    self.wfile.write(data[: len(data) // 2] if path.startswith("/truncated/") else data)

            def do_GET(self):
                self._respond(True)

            def do_HEAD(self):
                self._respond(False)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.stop()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    torch_home, hf_home = tmp_path / "torch", tmp_path / "hf"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return types.SimpleNamespace(torch=torch_home / "hub" / "checkpoints", hf=hf_home / "hub")


def _official(family, overlay, cfg):
    """The family's builder (what its ``timm.create_model`` entrypoints call) with exactly the fixture's model
    arguments and ``pretrained=True``: the real download / cache / convert / load path."""
    import importlib

    create = getattr(importlib.import_module(f"vssm.models.{family}"), f"_create_{family}")
    return create(f"test_{family}", pretrained=True, pretrained_cfg_overlay=overlay, **cfg)


def _files(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []


def _logits(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_url_training_checkpoint_downloads_once_and_reproduces_official_logits(server, caches, tmp_path):
    cfg, sd, x, logits = _fixture("vmamba_v2_s1l")
    marker = tmp_path / "PWNED"
    server.files["/releases/download/%23v2cls/vssm1_test_ckpt_epoch_299.pth"] = _training_checkpoint(sd, marker)
    url = server.url + "/releases/download/%23v2cls/vssm1_test_ckpt_epoch_299.pth"
    overlay = dict(url=url, num_classes=cfg["num_classes"])
    model = _official("vmamba", overlay, cfg)
    torch.testing.assert_close(_logits(model, x), logits, atol=1e-4, rtol=1e-4)
    assert not marker.exists(), "code from the checkpoint ran"
    assert _files(caches.torch) == ["vssm1_test_ckpt_epoch_299.pth"]
    server.stop()  # the second call is served by the cache
    again = _official("vmamba", overlay, cfg)
    torch.testing.assert_close(_logits(again, x), logits, atol=1e-4, rtol=1e-4)
    assert not marker.exists()


def test_hub_checkpoint_and_offline_cache(server, caches, monkeypatch):
    cfg, sd, x, logits = _fixture("parity_vim_even")
    server.files["/hustvl/Vim-test/resolve/main/vim_test.pth"] = _training_checkpoint(sd, "/nonexistent/x", ema=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    overlay = dict(hf_hub_id="hustvl/Vim-test", hf_hub_filename="vim_test.pth", num_classes=cfg["num_classes"])
    model = _official("vim", overlay, cfg)
    torch.testing.assert_close(_logits(model, x), logits, atol=1e-4, rtol=1e-4)
    assert any(p.endswith("/hustvl/Vim-test/resolve/main/vim_test.pth") for p in server.requests)
    assert "vim_test.pth" in _files(caches.hf)
    server.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = _official("vim", overlay, cfg)
    torch.testing.assert_close(_logits(again, x), logits, atol=1e-4, rtol=1e-4)


def test_hub_safetensors_state_dict(server, caches, monkeypatch):
    from safetensors.torch import save

    cfg, sd, x, logits = _fixture("efficient_vmamba")
    server.files["/TerryPei/EV-test/resolve/main/model.safetensors"] = save({k: v.contiguous() for k, v in sd.items()})
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    overlay = dict(hf_hub_id="TerryPei/EV-test", hf_hub_filename="model.safetensors", num_classes=cfg["num_classes"])
    model = _official("efficient_vmamba", overlay, cfg)
    torch.testing.assert_close(_logits(model, x), logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("wrapper", ["model", "state_dict", "model_ema", None])
def test_wrappers(server, caches, wrapper):
    cfg, sd, x, logits = _fixture("mlla")
    ckpt = {wrapper: sd} if wrapper else sd
    if wrapper == "model_ema":  # the plain weights are noise: the EMA ones are the released ones
        ckpt["model"] = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in sd.items()}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    server.files["/f/0123/"] = buf.getvalue()  # a share link that names no file: the cfg's file_name does
    overlay = dict(url=server.url + "/f/0123/?dl=1", file_name="mlla_test.pth", num_classes=cfg["num_classes"])
    model = _official("mlla", overlay, cfg)
    torch.testing.assert_close(_logits(model, x), logits, atol=1e-4, rtol=1e-4)
    assert _files(caches.torch) == ["mlla_test.pth"]


def test_bad_downloads_are_clear_errors_and_leave_nothing(server, caches):
    cfg, sd, _, _ = _fixture("vmamba_v2_s1l")
    server.files["/ok/vmamba.pth"] = _training_checkpoint(sd, "/nonexistent/x")
    cases = {
        "/missing/vmamba.pth": ["HTTP Error 404", "put it at", "pretrained_cfg_overlay=dict(file="],
        "/html/vmamba.pth": ["an HTML page", "not a direct download link"],
        "/truncated/ok/vmamba.pth": ["vmamba.pth"],
    }
    for path, words in cases.items():
        url = server.url + path
        with pytest.raises(CheckpointError) as e:
            timm.create_model("test_vmamba", pretrained=True, pretrained_cfg_overlay=dict(url=url), **cfg)
        assert url in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
        assert "\n" not in str(e.value)
        assert _files(caches.torch) == [], f"{path} left {_files(caches.torch)} in the cache"


def test_bad_hub_file_leaves_nothing(server, caches, monkeypatch):
    server.files["/someone/repo/resolve/main/weights.pth"] = b"<!doctype html><html>blocked</html>"
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    overlay = dict(hf_hub_id="someone/repo", hf_hub_filename="weights.pth")
    with pytest.raises(CheckpointError, match="an HTML page"):
        timm.create_model("test_vmamba", pretrained=True, pretrained_cfg_overlay=overlay)
    assert "weights.pth" not in _files(caches.hf)


def test_no_network_names_url_cache_path_and_overlay(caches):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/releases/vssm_tiny.pth"
    with pytest.raises(CheckpointError) as e:
        timm.create_model("test_vmamba", pretrained=True, pretrained_cfg_overlay=dict(url=url))
    msg = str(e.value)
    assert url in msg and str(caches.torch / "vssm_tiny.pth") in msg and "pretrained_cfg_overlay=dict(file=" in msg


def test_browser_only_release_is_picked_up_from_the_cache(caches):
    drive = "https://drive.google.com/drive/folders/XYZ"
    overlay = dict(origin_url=drive, file_name="msvmamba_test.pth")
    with pytest.raises(CheckpointError) as e:
        timm.create_model("test_msvmamba", pretrained=True, pretrained_cfg_overlay=overlay)
    assert drive in str(e.value) and str(caches.torch / "msvmamba_test.pth") in str(e.value)
    src = timm.create_model("test_msvmamba").eval()
    caches.torch.mkdir(parents=True)
    torch.save({"model": src.state_dict()}, caches.torch / "msvmamba_test.pth")  # put there by hand
    model = timm.create_model("test_msvmamba", pretrained=True, pretrained_cfg_overlay=overlay)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(_logits(model, x), _logits(src, x))


def test_classifier_and_input_channels_adapt_as_in_timm(tmp_path):
    src = timm.create_model("test_vmamba").eval()
    torch.save({"model": src.state_dict()}, tmp_path / "w.pth")
    overlay = dict(file=str(tmp_path / "w.pth"))
    torch.manual_seed(1)
    model = timm.create_model("test_vmamba", pretrained=True, num_classes=3, in_chans=1, pretrained_cfg_overlay=overlay)
    torch.manual_seed(1)
    fresh = timm.create_model("test_vmamba", num_classes=3, in_chans=1)
    first = src.pretrained_cfg["first_conv"] + ".weight"
    sd, ref, init = model.state_dict(), src.state_dict(), fresh.state_dict()
    torch.testing.assert_close(sd[first], ref[first].sum(dim=1, keepdim=True))  # timm's adapt_input_conv for 1
    torch.testing.assert_close(sd["head.fc.weight"], init["head.fc.weight"])  # kept its initialisation
    same = [k for k in ref if k not in (first, "head.fc.weight", "head.fc.bias")]
    assert all(torch.equal(sd[k], ref[k]) for k in same)
    headless = timm.create_model("test_vmamba", pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay)
    assert headless(torch.randn(1, 3, 32, 32)).shape == (1, 32)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    torch.save({"model": timm.create_model("test_mlla").state_dict()}, tmp_path / "mlla.pth")
    with pytest.raises(CheckpointError, match="missing key"):
        timm.create_model("test_vmamba", pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / "mlla.pth")))


def test_inert_objects_run_no_code_and_keep_the_data(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "ckpt.pth").write_bytes(_training_checkpoint({"w": torch.ones(2)}, marker))
    with pytest.raises(CheckpointError, match="allow_pickle"):
        read_checkpoint(tmp_path / "ckpt.pth")  # the default still refuses
    ckpt = read_checkpoint(tmp_path / "ckpt.pth", inert_objects=True)
    assert not marker.exists()
    assert torch.equal(ckpt["model"]["w"], torch.ones(2)) and ckpt["epoch"] == 299
    args, cfg, hook = ckpt["args"], ckpt["config"], ckpt["hook"]
    assert isinstance(args, InertObject) and type(args).__qualname__ == "Namespace"
    assert args.inert_state == {"model": "vmamba", "lr": 1e-3}
    assert type(cfg).__module__ == "yacs.config" and cfg.inert_items["TRAIN"].inert_items == {"EPOCHS": 300}
    assert isinstance(hook, InertObject) and hook.inert_args == (str(marker), "w")  # open() was never called


def _released():
    names = timm.list_pretrained()
    out = []
    for name in names:
        arch = name.split(".")[0]
        if timm.models.get_pretrained_cfg(name) is not None and arch in timm.list_models(module=FAMILIES):
            out.append(name)
    return out


def test_every_release_has_an_official_source_and_its_published_top1():
    released = _released()
    assert len(released) >= 30, released
    hosts = ("https://github.com/MzeroMiko/VMamba/releases/download/", "https://github.com/hunto/LocalMamba/releases/",
             "https://cloud.tsinghua.edu.cn/f/", "https://drive.google.com/drive/folders/")
    for name in released:
        cfg = timm.models.get_pretrained_cfg(name)
        kind, where = pretrained_source(cfg)
        assert kind in ("url", "hf-hub", "manual"), (name, kind)
        if kind == "hf-hub":
            assert where[0].split("/")[0] in ("nvidia", "hustvl", "TerryPei") and where[1], (name, where)
        else:
            assert where.startswith(hosts), (name, where)
        if kind == "manual" or "?" in str(where):
            assert cfg.file_name, name
        assert cfg.top1 is not None and 70 < cfg.top1 < 90, (name, cfg.top1)
