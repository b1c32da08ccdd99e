"""Scan protocol, base class, registry and spec resolution.

A scan strategy is an index map (DESIGN.md, "A scan is an index map"): ``K`` orders over the ``H * W`` positions
of a feature map, given as an int32 tensor ``order[K, T]`` whose entries are flat positions ``h * W + w``; ``-1``
pads a path that is shorter than ``T``. The selective-scan op walks each path inside the kernel, so a scan is
nothing but this tensor; it holds no parameters and never appears in a state dict.

Scans are plain, immutable configuration objects: equal configuration means equal scans (and equal hashes), and
the orders of one ``(H, W, device)`` are computed once per scan object and then returned as the very same tensor.
"""
from __future__ import annotations

import contextlib
import difflib
import inspect
import operator
import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, Mapping, Protocol, Sequence, Union, runtime_checkable

import numpy as np
import torch

__all__ = [
    "Scan",
    "BaseScan",
    "ScanSpec",
    "VARIANTS",
    "register_scan",
    "get_scan",
    "list_scans",
    "resolve_scans",
    "check_size",
    "check_int",
    "apply_variant",
    "transpose_positions",
    "parse_variants",
]

DeviceLike = Union[str, torch.device, int, None]

# The four variants of a single-path construction, in VMamba's cross-scan order (forward, transposed, and both
# reversed), so that a 4-variant scan is a drop-in replacement for ``cross`` path by path.
VARIANTS = ("normal", "transposed", "reversed", "transposed_reversed")

_CPU = torch.device("cpu")
# One lock for every scan's cache: lookups are cheap, and a miss computes once even under nn.DataParallel threads.
_CACHE_LOCK = threading.RLock()
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@runtime_checkable
class Scan(Protocol):
    """What a model needs from a scan strategy.

    Attributes:
        name: Registered name (or ``'a+b'`` for a combination).
        K: Number of paths, known at construction time so that models can size per-path parameters.
    """

    name: str

    @property
    def K(self) -> int:
        ...

    def orders(self, H: int, W: int, device: DeviceLike = None) -> torch.Tensor:
        """Returns the ``(K, T)`` int32 orders for an ``H x W`` map, cached per ``(H, W, device)``."""
        ...



def real_tensors() -> contextlib.ExitStack:
    """A context in which torch ops make real, ordinary tensors even while ``torch.export`` traces (its fake and
    proxy modes set aside) or inside ``torch.inference_mode()``: for the constants a model derives from its input
    size, such as scan orders, computed once, checked and cached. A constant first built under inference mode would
    otherwise be an inference tensor, which has no version counter and cannot be saved for a later backward."""
    stack = contextlib.ExitStack()
    if torch.is_inference_mode_enabled():
        stack.enter_context(torch.inference_mode(False))
    fake = getattr(getattr(torch, "_subclasses", None), "fake_tensor", None)
    if hasattr(fake, "unset_fake_temporarily"):
        stack.enter_context(fake.unset_fake_temporarily())
    try:
        from torch.fx.experimental.proxy_tensor import disable_proxy_modes_tracing
    except ImportError:  # pragma: no cover - old torch
        return stack
    stack.enter_context(disable_proxy_modes_tracing())
    return stack



ScanSpec = Union[str, Mapping[str, Any], Scan, Sequence[Any]]


# ----------------------------------------------------------------------------------------------------------------
# Validation helpers


def _check_dim(arg: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{arg} must be a positive integer (>= 1), got {value!r} (a bool)")
    try:
        ivalue = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{arg} must be a positive integer (>= 1), got {value!r} of type {type(value).__name__}"
        ) from None
    if ivalue < 1:
        raise ValueError(f"{arg} must be a positive integer (>= 1), got {ivalue}")
    return int(ivalue)


def check_size(H: Any, W: Any) -> tuple[int, int]:
    """Validates a feature-map size.

    Args:
        H: Height: an integer >= 1 (anything with ``__index__`` except ``bool``).
        W: Width: an integer >= 1.

    Returns:
        ``(H, W)`` as Python ints.

    Raises:
        ValueError: Naming the argument, the value and what is allowed.
    """
    return _check_dim("H", H), _check_dim("W", W)


def check_int(owner: str, arg: str, value: Any, low: int, high: int | None = None) -> int:
    """Validates an integer constructor argument ``low <= value <= high`` (``high=None``: unbounded)."""
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {arg} must be {allowed}, got {value!r}")
    try:
        ivalue = int(operator.index(value))
    except TypeError:
        raise ValueError(f"{owner}: {arg} must be {allowed}, got {value!r} of type {type(value).__name__}") from None
    if ivalue < low or (high is not None and ivalue > high):
        raise ValueError(f"{owner}: {arg} must be {allowed}, got {ivalue}")
    return ivalue


def parse_variants(owner: str, variants: Union[str, Sequence[str]]) -> tuple[str, ...]:
    """Validates a variant list (a name or a sequence of names from :data:`VARIANTS`, at least one)."""
    if isinstance(variants, str):
        variants = (variants,)
    try:
        out = tuple(variants)
    except TypeError:
        raise ValueError(f"{owner}: variants must be a sequence of names from {VARIANTS}, got {variants!r}") from None
    if not out:
        raise ValueError(f"{owner}: variants must name at least one of {VARIANTS}, got an empty sequence")
    bad = [v for v in out if v not in VARIANTS]
    if bad:
        raise ValueError(f"{owner}: unknown variant(s) {bad}; allowed: {VARIANTS}")
    return out


def transpose_positions(path: np.ndarray, H: int, W: int) -> np.ndarray:
    """Maps flat positions on the transposed ``W x H`` grid back to flat positions on the ``H x W`` grid."""
    return (path % H) * W + path // H


def apply_variant(path_fn: Callable[[int, int], np.ndarray], H: int, W: int, variant: str) -> np.ndarray:
    """Builds one variant of a single-path construction.

    Args:
        path_fn: ``path_fn(H, W)`` returns a full path (every flat position once) on an ``H x W`` grid.
        H: Height.
        W: Width.
        variant: One of :data:`VARIANTS`. ``'transposed'`` runs the construction on the transposed ``W x H`` grid
            and maps it back (rows and columns swap roles); ``'reversed'`` walks the path backwards.

    Returns:
        ``(H * W,)`` int64 flat positions.
    """
    if variant.startswith("transposed"):
        path = transpose_positions(path_fn(W, H), H, W)
    else:
        path = path_fn(H, W)
    if variant.endswith("reversed"):
        path = path[::-1]
    return path


def _normalize_device(device: DeviceLike) -> torch.device:
    try:
        dev = _CPU if device is None else torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: got {device!r}; allowed: None (cpu), a torch.device or a device string such as "
                         "'cpu', 'cuda:0', 'meta'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: got {device!r}; allowed: a device of this machine (CUDA is not available here)")
    if dev.type == "cuda" and dev.index is None and torch.cuda.is_available():
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _freeze(value: Any) -> Any:
    """A hashable, order-preserving image of a configuration value (lists become tuples, dicts sorted items)."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    hash(value)  # raises TypeError for unhashable leaves
    return value


def _plain(value: Any) -> Any:
    """A YAML/JSON-friendly image of a configuration value (tuples become lists, scans their config)."""
    if isinstance(value, BaseScan):
        return value.config
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------------------------------------------
# Base class


class BaseScan:
    """Base class of the built-in scans: validation, caching, ``K``, ``repr``, equality and hashing by config.

    Subclasses implement :meth:`_orders` (``(K, T)`` positions for one size, as a numpy array or tensor) and
    :meth:`_config` (the constructor arguments that rebuild the scan), and expose ``K`` as a property.

    Orders are cached per scan object in a small LRU keyed by ``(H, W, device)`` (``cache_size`` entries); a hit
    returns the same tensor object. Treat it as read-only. Copies (``copy.deepcopy``, pickling) drop the cache.
    """

    name: str = ""
    cache_size: int = 32

    @property
    def K(self) -> int:
        """Number of paths."""
        raise NotImplementedError

    @property
    def num_paths(self) -> int:
        """Alias of :attr:`K`."""
        return self.K

    def _orders(self, H: int, W: int) -> Union[np.ndarray, torch.Tensor]:
        """Computes ``(K, T)`` flat positions (``-1`` = padding) for an ``H x W`` map; called once per size."""
        raise NotImplementedError

    def _config(self) -> Dict[str, Any] | None:
        """Constructor arguments that rebuild this scan (``None``: compare and hash by identity)."""
        return None

    # -- public API ------------------------------------------------------------------------------------------

    @property
    def config(self) -> Dict[str, Any]:
        """A plain dict ``{'type': name, **kwargs}`` that :func:`get_scan` turns back into an equal scan."""
        cfg = self._config() or {}
        return {"type": self.name, **{k: _plain(v) for k, v in cfg.items()}}

    def orders(self, H: int, W: int, device: DeviceLike = None) -> torch.Tensor:
        """Returns the orders of an ``H x W`` feature map.

        Args:
            H: Height (integer >= 1).
            W: Width (integer >= 1).
            device: Where the tensor lives (default CPU).

        Returns:
            ``(K, T)`` int32 tensor of flat positions ``h * W + w``, ``-1`` padding shorter paths; the same object
            for repeated calls with the same ``(H, W, device)``.
        """
        H, W = check_size(H, W)
        dev = _normalize_device(device)
        cache = self.__dict__.get("_order_cache")
        hit = None if cache is None else cache.get((H, W, dev))  # no lock: what torch.compile traces
        if hit is not None:
            return hit
        return self._orders_locked(H, W, dev)

    def _orders_locked(self, H: int, W: int, dev: torch.device) -> torch.Tensor:
        key = (H, W, dev)
        with _CACHE_LOCK:
            cache = self.__dict__.get("_order_cache")
            if cache is None:
                cache = self.__dict__["_order_cache"] = OrderedDict()
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return hit
            host = cache.get((H, W, _CPU))
            with real_tensors():  # cached constants: real even when first asked for inside torch.export
                if host is None:
                    host = self._build(H, W)
                    cache[(H, W, _CPU)] = host
                out = host if dev == _CPU else host.to(dev)
            cache[key] = out
            cache.move_to_end(key)
            while len(cache) > max(1, self.cache_size):
                cache.popitem(last=False)
            return out

    def clear_cache(self) -> None:
        """Forgets every cached order tensor of this scan."""
        with _CACHE_LOCK:
            self.__dict__.pop("_order_cache", None)

    # -- internals -------------------------------------------------------------------------------------------

    def _build(self, H: int, W: int) -> torch.Tensor:
        raw = self._orders(H, W)
        if isinstance(raw, torch.Tensor):
            out = raw.detach().to(device=_CPU, dtype=torch.int32).contiguous()
        else:
            out = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.int32))
        if out.dim() != 2 or out.shape[0] != self.K:
            raise RuntimeError(f"{self!r} produced orders of shape {tuple(out.shape)} for {H}x{W}; "
                               f"expected ({self.K}, T)")
        if out.numel() and (int(out.min()) < -1 or int(out.max()) >= H * W):
            raise RuntimeError(f"{self!r} produced positions outside [-1, {H * W}) for {H}x{W}")
        return out

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_order_cache", None)
        return state

    def __repr__(self) -> str:
        cfg = self._config()
        args = "" if not cfg else ", ".join(f"{k}={v!r}" for k, v in cfg.items())
        return f"{type(self).__name__}({args})"

    def _key(self) -> Any:
        cfg = self._config()
        return None if cfg is None else (type(self), _freeze(cfg))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, BaseScan):
            return NotImplemented
        mine = self._key()
        return mine is not None and mine == other._key()

    def __hash__(self) -> int:
        key = self._key()
        return id(self) if key is None else hash(key)


# ----------------------------------------------------------------------------------------------------------------
# Registry

_REGISTRY: Dict[str, Callable[..., Scan]] = {}


def register_scan(
    name: str, factory: Callable[..., Scan] | None = None, *, override: bool = False
) -> Callable[..., Any]:
    """Registers a scan class (or any factory returning a :class:`Scan`) under ``name``.

    Usable as a decorator (``@register_scan('hilbert')``) or directly (``register_scan('mine', MyScan)``).
    A :class:`BaseScan` subclass without its own ``name`` gets ``name`` as its name.

    Args:
        name: Identifier (letters, digits, ``_ . -``; ``'+'`` is reserved for combinations).
        factory: The class or factory; omitted when used as a decorator.
        override: Replace an existing registration instead of raising.

    Returns:
        The factory (so the decorator leaves the class unchanged), or the decorator.

    Raises:
        ValueError: For a malformed name, or a name already registered to something else without ``override``.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"scan name must be an identifier-like string (letters, digits, '_', '.', '-'; "
                         f"'+' combines scans), got {name!r}")

    def add(f: Callable[..., Scan]) -> Callable[..., Scan]:
        if not callable(f):
            raise ValueError(f"register_scan({name!r}): expected a class or factory, got {f!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not f and not override:
            raise ValueError(f"a scan named {name!r} is already registered ({_describe(existing)}); "
                             f"pass override=True to replace it")
        if isinstance(f, type) and issubclass(f, BaseScan) and "name" not in f.__dict__:
            f.name = name
        _REGISTRY[name] = f
        return f

    return add if factory is None else add(factory)


def _describe(f: Callable[..., Any]) -> str:
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"


def list_scans() -> list[str]:
    """Sorted names of every registered scan."""
    return sorted(_REGISTRY)


def _lookup(name: str) -> Callable[..., Scan]:
    factory = _REGISTRY.get(name)
    if factory is None:
        names = list_scans()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"unknown scan {name!r}; {hint}registered scans: {', '.join(names)}")
    return factory


def _construct(name: str, kwargs: Dict[str, Any]) -> Scan:
    factory = _lookup(name)
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call speak
        sig = None
    if sig is not None and not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        accepted = [p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(f"scan {name!r} got unknown argument(s) {unknown}; it accepts: "
                             f"{', '.join(accepted) if accepted else 'no arguments'}")
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        missing = [p.name for p in sig.parameters.values()
                   if p.default is p.empty and p.kind in named and p.name not in kwargs]
        if missing:
            raise ValueError(f"scan {name!r} needs argument(s) {missing}, e.g. get_scan({name!r}, {missing[0]}=...)")
    scan = factory(**kwargs)
    if not _is_scan(scan):
        raise TypeError(f"factory registered as {name!r} returned {type(scan).__name__}, not a Scan")
    return scan


def _is_scan(obj: Any) -> bool:
    if isinstance(obj, BaseScan):
        return True
    if isinstance(obj, (str, Mapping, list, tuple, type)):
        return False
    return callable(getattr(type(obj), "orders", None)) and hasattr(obj, "name") and hasattr(obj, "K")


def get_scan(spec: ScanSpec, **kwargs: Any) -> Scan:
    """Builds a scan from a spec.

    Args:
        spec: One of
            - a registered name (``'hilbert'``), or several joined by ``'+'`` (``'cross+hilbert'``: combined);
            - a dict ``{'type': name, **kwargs}`` (``{'type': 'window', 'size': 2}``);
            - a list/tuple of specs (combined: their paths are concatenated along ``K``);
            - a :class:`Scan` instance, returned as is.
        **kwargs: Constructor arguments for a single registered name or dict (they override the dict's).

    Returns:
        The scan.

    Raises:
        ValueError: Unknown name (with the closest registered names), unknown or invalid arguments, or arguments
            given with a spec they cannot apply to (an instance, a combination).
        TypeError: A spec of an unsupported type.
    """
    if _is_scan(spec):
        if kwargs:
            raise ValueError(f"get_scan: arguments {sorted(kwargs)} cannot be applied to an existing scan {spec!r}")
        return spec
    if isinstance(spec, str):
        name = spec.strip()
        if "+" in name:
            if kwargs:
                raise ValueError(f"get_scan: arguments {sorted(kwargs)} are ambiguous for the combination {spec!r}; "
                                 f"configure each part with a dict inside a list instead")
            return get_scan([part.strip() for part in name.split("+")])
        return _construct(name, dict(kwargs))
    if isinstance(spec, Mapping):
        cfg = dict(spec)
        if "type" not in cfg:
            raise ValueError(f"get_scan: a dict spec needs a 'type' key naming a registered scan, got {spec!r}")
        name = cfg.pop("type")
        if not isinstance(name, str):
            raise ValueError(f"get_scan: 'type' must be a scan name (str), got {name!r}")
        cfg.update(kwargs)
        return get_scan(name, **cfg)
    if isinstance(spec, (list, tuple)):
        if kwargs:
            raise ValueError(f"get_scan: arguments {sorted(kwargs)} are ambiguous for a list of scans; "
                             f"configure each part with a dict instead")
        if not spec:
            raise ValueError("get_scan: an empty list names no scan")
        if len(spec) == 1:
            return get_scan(spec[0])
        return _construct("combine", {"scans": list(spec)})
    raise TypeError(f"get_scan: a scan spec is a name, a dict with 'type', a list of specs or a Scan; "
                    f"got {type(spec).__name__}: {spec!r}")


def _spec_key(spec: Any) -> Any:
    try:
        return _freeze(spec) if isinstance(spec, (str, Mapping, list, tuple)) else ("obj", id(spec))
    except TypeError:
        return None


def resolve_scans(spec: Any, depths: Sequence[int]) -> list[list[Scan]]:
    """Chooses a scan per layer: one for the whole model, one per stage, or one per layer.

    Args:
        spec: One of
            - a single spec (a name, ``'a+b'``, a dict, a :class:`Scan`): every layer of every stage;
            - a list with one entry per stage, each entry a single spec (every layer of that stage) or a list with
              one spec per layer of that stage;
            - a flat list with one spec per layer of the whole model (``sum(depths)`` entries).
            Lists are always read as stages/layers here; to combine scans into one use ``'a+b'`` or
            ``{'type': 'combine', 'scans': [...]}`` (or a list at the per-layer level).
        depths: Number of layers of each stage.

    Returns:
        ``scans[stage][layer]``. Equal specs share one scan object, hence one order cache.

    Raises:
        ValueError: When the list lengths match neither the stages nor the layers, naming what was expected.
    """
    if isinstance(depths, (int, str)) or not isinstance(depths, Sequence):
        raise ValueError(f"resolve_scans: depths must be a sequence of layer counts, got {depths!r}")
    depths = [check_int("resolve_scans", f"depths[{i}]", d, 0) for i, d in enumerate(depths)]
    memo: Dict[Any, Scan] = {}

    def build(s: Any) -> Scan:
        key = _spec_key(s)
        if key is None:
            return get_scan(s)
        if key not in memo:
            memo[key] = get_scan(s)
        return memo[key]

    if not isinstance(spec, (list, tuple)):
        scan = build(spec)
        return [[scan] * d for d in depths]
    n_stages, n_layers = len(depths), sum(depths)
    if len(spec) == n_stages:
        out = []
        for i, (entry, depth) in enumerate(zip(spec, depths)):
            if isinstance(entry, (list, tuple)):
                if len(entry) != depth:
                    raise ValueError(f"resolve_scans: stage {i} has {depth} layer(s) (depths={depths}) but its "
                                     f"per-layer scan list has {len(entry)} entries")
                out.append([build(s) for s in entry])
            else:
                scan = build(entry)
                out.append([scan] * depth)
        return out
    if len(spec) == n_layers:
        flat = [build(s) for s in spec]
        out, start = [], 0
        for depth in depths:
            out.append(flat[start:start + depth])
            start += depth
        return out
    raise ValueError(f"resolve_scans: a scan list of {len(spec)} entries fits neither the {n_stages} stage(s) nor "
                     f"the {n_layers} layer(s) of depths={depths}; give one spec, a list of {n_stages} (one per "
                     f"stage, each a spec or a list of that stage's layer count), or a flat list of {n_layers} "
                     f"(one per layer). To combine scans into one, write 'a+b' or "
                     f"{{'type': 'combine', 'scans': [...]}}")
