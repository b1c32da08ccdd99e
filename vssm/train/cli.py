"""The command-line side the tools share: one-line errors and exit statuses, YAML configs as defaults, ``KEY=VALUE``
arguments, and the arguments as plain values.

``ParseKwargs`` stays ours rather than ``timm.utils.ParseKwargs``: timm's (1.0.31) stops with a ValueError traceback
on an item without ``=`` and accepts an empty key; ours reports both as a one-line argparse error naming the item.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import torch.distributed as dist
import yaml

from .errors import TrainingError, UsageError

__all__ = ["ParseKwargs", "finite", "format_args", "one_line_errors", "parse_with_config", "run_cli"]


def run_cli(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> None:
    """Runs ``main(argv)``, turning ``UsageError`` / ``TrainingError`` / Ctrl-C into one line on stderr.

    A rank of a distributed run that fails leaves at once (``os._exit``) after flushing its output: the other
    ranks wait in collectives this rank will never join, and letting the interpreter tear down a DDP model with
    work pending on the gloo group can deadlock (the group's destructor joins its worker thread while holding the
    GIL that thread needs to release a tensor), leaving a live rank that torchrun never reaps. The peers then get
    a closed connection, or torchrun stops them, and the whole job exits non-zero.
    """
    prog = Path(sys.argv[0]).name
    status = 0
    try:
        main(argv)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        status = 2
    except TrainingError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        status = 130
    except Exception:
        if not _distributed_run():
            raise
        traceback.print_exc()
        status = 1
    if _distributed_run():
        if status:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        dist.destroy_process_group()
    if status:
        sys.exit(status)

def _distributed_run() -> bool:
    return dist.is_available() and dist.is_initialized()

class ParseKwargs(argparse.Action):
    """``--model-kwargs a=1 b=foo c=[1,2]`` -> ``{'a': 1, 'b': 'foo', 'c': [1, 2]}`` (python literals, else strings)."""

    def __call__(self, parser, namespace, values, option_string=None):
        kwargs = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                parser.error(f"argument {option_string}: expected KEY=VALUE, got {item!r}")
            kwargs[key] = _literal(value)
        setattr(namespace, self.dest, kwargs)

def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text

def _coerce(action: argparse.Action, value: Any, source: str) -> Any:
    """Converts one YAML value the way argparse would convert the same text on the command line."""
    flag = "/".join(action.option_strings) or action.dest
    if isinstance(action, ParseKwargs):
        if not isinstance(value, dict):
            raise UsageError(f"{source}: {action.dest} must be a mapping, got {value!r}")
        return value
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{source}: {action.dest} is a switch ({flag}) and takes true or false, got {value!r}")
        return value
    if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 0):
        items = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(action.nargs, int) and len(items) != action.nargs:
            raise UsageError(f"{source}: {action.dest} ({flag}) takes {action.nargs} values, got {value!r}")
        return [_coerce_one(action, v, flag, source) for v in items]
    return _coerce_one(action, value, flag, source)

def _coerce_one(action: argparse.Action, value: Any, flag: str, source: str) -> Any:
    if value is not None and action.type is not None and not isinstance(value, bool):
        try:
            value = action.type(value) if isinstance(value, str) or action.type is not str else str(value)
        except (TypeError, ValueError):
            kind = getattr(action.type, "__name__", "the expected type")
            raise UsageError(f"{source}: {action.dest} ({flag}) must be {kind}, got {value!r}") from None
        if action.type in (int, float) and isinstance(value, (int, float)):
            value = action.type(value)
    if action.choices is not None and value is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise UsageError(f"{source}: {action.dest} ({flag}) is {value!r}; allowed: {choices}")
    return value

def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Makes argparse's own errors (a bad value, a missing value, an unknown flag) one line on stderr and exit status
    2, instead of the whole usage block before the message."""
    def error(message: str) -> None:
        parser.exit(2, f"{parser.prog}: error: {message} (see --help)\n")

    parser.error = error  # type: ignore[method-assign]
    return parser

def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                      defaults: dict[str, Any] | None = None) -> argparse.Namespace:
    """Parses ``argv``; values from ``-c/--config FILE.yaml`` (and ``defaults``) replace the parser's defaults.

    Precedence, lowest first: the parser's defaults, ``defaults`` (e.g. a resumed run's arguments), the YAML file,
    the command line. YAML keys are argument names with ``_`` or ``-``; unknown keys and ill-typed values stop with
    a one-line error.
    """
    one_line_errors(parser)
    pre = one_line_errors(argparse.ArgumentParser(prog=parser.prog, add_help=False, allow_abbrev=False))
    pre.add_argument("-c", "--config", default="")
    known, _ = pre.parse_known_args(argv)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    merged: dict[str, Any] = dict(defaults or {})
    if known.config:
        path = Path(known.config)
        if not path.is_file():
            raise UsageError(f"--config {known.config}: no such file")
        try:
            with open(path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise UsageError(f"--config {known.config}: not valid YAML{where}") from None
        if not isinstance(cfg, dict):
            raise UsageError(f"--config {known.config}: expected a mapping of argument names to values")
        for key, value in cfg.items():
            dest = str(key).replace("-", "_")
            if dest not in actions:
                close = difflib.get_close_matches(dest, list(actions), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UsageError(f"--config {known.config}: unknown argument {key!r}{hint}")
            merged[dest] = _coerce(actions[dest], value, f"--config {known.config}")
    parser.set_defaults(**{k: v for k, v in merged.items() if k in actions})
    return parser.parse_args(argv)

def finite(value: float) -> bool:
    return value is not None and math.isfinite(value)

def format_args(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments as plain YAML-able values (tuples to lists, paths to strings)."""
    out = {}
    for k, v in sorted(vars(args).items()):
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, os.PathLike):
            v = os.fspath(v)
        out[k] = v
    return out
