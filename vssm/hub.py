"""Pretrained weights by name: where a release lives, and getting its file into the local cache once, safely.

A pretrained cfg (``model.pretrained_cfg``, timm's fields plus ours, see ``vssm.models._cfg``) names its source as
timm does, in timm's order of precedence:

1. ``file``: a local file (``pretrained_cfg_overlay=dict(file=...)``);
2. ``hf_hub_id`` + ``hf_hub_filename``: a file of a Hugging Face Hub repository, fetched with ``huggingface_hub``
   into its cache (``HF_HOME`` / ``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` uses the cache only; ``HF_ENDPOINT`` a
   mirror);
3. ``url``: a plain download into torch hub's ``checkpoints`` folder (``TORCH_HOME``), the folder timm uses, under
   ``file_name`` or the URL's last path segment;
4. ``origin_url`` alone: a release that only a browser can fetch (Google Drive folders): the file must be put in
   the cache by hand, and the error says where.

Downloads are atomic: a temporary file next to the target, checked (complete, and a checkpoint rather than an HTML
page) before it is renamed into place, and removed on any failure, so an interrupted or bad download leaves
nothing in the cache. Nothing here unpickles: reading is ``vssm.checkpoint.read_checkpoint``'s job.
"""
from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Tuple
from urllib.error import URLError
from urllib.parse import urlparse

import torch

from .checkpoint import CheckpointError, check_download, first_line

__all__ = ["cache_path", "download_hf", "download_url", "fetch_pretrained", "pretrained_cfg", "pretrained_source"]

_CHUNK = 1 << 20


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    if isinstance(cfg, Mapping):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def cache_path(url: str, file_name: str = "", cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`download_url` keeps ``url``: ``cache_dir`` or torch hub's ``checkpoints`` folder, under
    ``file_name`` or the URL's last path segment."""
    name = file_name or os.path.basename(urlparse(url).path)
    if not name:
        raise CheckpointError(f"checkpoint URL {url!r} names no file; give the cfg a file_name")
    folder = Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"
    return folder / name


def _offline_hint(target: Path) -> str:
    return (f"with no network, download it elsewhere and put it at {target}, or pass "
            "pretrained_cfg_overlay=dict(file='/path/to/the/file')")


def download_url(url: str, file_name: str = "", cache_dir: str | os.PathLike | None = None,
                 timeout: float = 60.0) -> Path:
    """The local copy of ``url`` (see :func:`cache_path`), downloaded there first unless present.

    The body goes to a temporary file in the cache folder; it is renamed into place only when its length matches
    ``Content-Length`` and :func:`vssm.checkpoint.check_download` accepts it (a complete torch zip with good CRCs,
    safetensors, or a torch pickle, not an HTML page). Any failure removes the temporary file.

    Raises:
        CheckpointError: no network / HTTP error (naming the URL and where to put the file by hand), or a download
            that is not a checkpoint.
    """
    target = cache_path(url, file_name, cache_dir)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "vssm"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                expected = response.headers.get("Content-Length")
                got = 0
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    got += len(chunk)
        if expected is not None and got != int(expected):
            raise CheckpointError(f"{url} sent {got} of {expected} bytes (interrupted download); try again")
        check_download(tmp, url)
        os.replace(tmp, target)
    except (URLError, OSError, ValueError) as e:  # HTTPError is a URLError; timeouts are OSErrors
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"cannot download {url} ({first_line(e)}); {_offline_hint(target)}") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def download_hf(repo_id: str, filename: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """``filename`` of the Hub repository ``repo_id``, through ``huggingface_hub.hf_hub_download`` (its cache, its
    atomic ``.incomplete`` files and size check), then checked to be a checkpoint; a bad file is removed from the
    cache. ``HF_ENDPOINT``, ``HF_HOME`` / ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are read when called."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
    except ImportError as e:
        raise CheckpointError(f"loading {repo_id}/{filename} needs huggingface_hub: pip install huggingface_hub") \
            from e
    endpoint = os.environ.get("HF_ENDPOINT") or None
    if cache_dir is None:
        hub = os.environ.get("HF_HUB_CACHE") or (os.environ.get("HF_HOME") and os.path.join(os.environ["HF_HOME"],
                                                                                              "hub"))
        cache_dir = hub or None
    url = f"{(endpoint or 'https://huggingface.co').rstrip('/')}/{repo_id}/resolve/main/{filename}"
    try:
        path = Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir, endpoint=endpoint,
                                    local_files_only=_env_flag("HF_HUB_OFFLINE")))
    except (OSError, ValueError, EntryNotFoundError, HfHubHTTPError) as e:
        where = Path(cache_dir or os.path.expanduser("~/.cache/huggingface/hub"))
        raise CheckpointError(
            f"cannot fetch {url} ({first_line(e)}); with no network, download it elsewhere and pass "
            f"pretrained_cfg_overlay=dict(file='/path/to/{filename}'), or fill the Hub cache under {where} "
            "(huggingface-cli download " + repo_id + " " + filename + ")") from e
    try:
        check_download(path, url)
    except CheckpointError:
        blob = path.resolve()
        for p in {path, blob}:
            if os.path.lexists(p):
                os.remove(p)
        raise
    return path


def pretrained_source(cfg: Any) -> Tuple[str, Any]:
    """``(kind, location)`` of a pretrained cfg in timm's precedence: ``('file', path)``, ``('hf-hub', (repo_id,
    filename))``, ``('url', url)``, ``('manual', origin_url)`` (a browser-only release) or ``('none', '')``."""
    if _get(cfg, "file"):
        return "file", str(_get(cfg, "file"))
    if _get(cfg, "hf_hub_id"):
        if not _get(cfg, "hf_hub_filename"):
            raise CheckpointError(f"pretrained cfg of {_get(cfg, 'architecture')!r} has hf_hub_id "
                                  f"{_get(cfg, 'hf_hub_id')!r} but no hf_hub_filename")
        return "hf-hub", (_get(cfg, "hf_hub_id"), _get(cfg, "hf_hub_filename"))
    if _get(cfg, "url"):
        return "url", _get(cfg, "url")
    if _get(cfg, "origin_url"):
        return "manual", _get(cfg, "origin_url")
    return "none", ""


def _name(cfg: Any) -> str:
    arch, tag = _get(cfg, "architecture") or "this model", _get(cfg, "tag")
    return f"{arch}.{tag}" if tag else arch


def fetch_pretrained(cfg: Any, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local file of a pretrained cfg's weights (downloaded once, see the module docstring).

    Raises:
        CheckpointError: no weights for this cfg, a browser-only release not yet in the cache (naming the page,
            the file and where to put it), a failed or bad download.
    """
    kind, where = pretrained_source(cfg)
    if kind == "file":
        path = Path(os.path.expanduser(where))
        if not path.is_file():
            raise CheckpointError(f"pretrained file {where!r} of {_name(cfg)} does not exist")
        return path
    if kind == "hf-hub":
        return download_hf(*where, cache_dir=cache_dir)
    if kind == "url":
        return download_url(where, _get(cfg, "file_name") or "", cache_dir)
    if kind == "manual":
        name = _get(cfg, "file_name") or ""
        target = cache_path(where, name or "<the file>", cache_dir)
        if name and target.is_file():
            return target
        raise CheckpointError(
            f"{_name(cfg)}: the official weights are published at {where}, which a plain HTTP request cannot "
            f"download; download {name or 'the checkpoint'} from there by hand and put it at {target}, or pass "
            "pretrained_cfg_overlay=dict(file='/path/to/the/file')")
    raise CheckpointError(f"no pretrained weights exist for {_name(cfg)}; use pretrained=False, or pass "
                          "pretrained_cfg_overlay=dict(file='/path/to/weights')")


def pretrained_cfg(name: str) -> Any:
    """The registered pretrained cfg of ``'<model>.<tag>'`` (or ``'<model>'``: its default tag), as timm resolves it.

    Raises:
        CheckpointError: an unknown model, or a tag it does not have (the available ones are named).
    """
    import timm
    from timm.models import get_pretrained_cfg

    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        raise CheckpointError(f"{name!r}: no model {arch!r} is registered (import vssm first?)")
    try:
        cfg = get_pretrained_cfg(name if tag else arch)
    except RuntimeError:  # timm: "Invalid pretrained tag"
        cfg = None
    if cfg is None:
        from timm.models import get_arch_pretrained_cfgs

        tags = [t if "." in t else f"{arch}.{t}" for t in get_arch_pretrained_cfgs(arch) if t]
        raise CheckpointError(f"{name!r}: no such pretrained tag; {arch} has: {', '.join(tags) or 'none'}")
    if not cfg.architecture:
        cfg.architecture = arch
    return cfg
