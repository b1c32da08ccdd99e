"""Temporary dispatcher (ref only) while the fast backends land."""
from .reference import selective_scan_ref


def available_backends():
    return ["ref"]


def default_backend(device):
    return "ref"


def selective_scan(*args, backend=None, **kwargs):
    return selective_scan_ref(*args, **kwargs)


def selective_scan_mamba(*args, **kwargs):
    raise NotImplementedError
