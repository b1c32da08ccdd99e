"""Fixtures shared by the model tests."""
from __future__ import annotations

import pytest
import timm

import vssm  # noqa: F401  (registers the models with timm)


@pytest.fixture(scope="session")
def meta_model():
    """``timm.create_model(name, device="meta")``, built once per name for the whole session.

    The contract's cfg checks, the families' parameter counts and layout checks all read the same registered
    models: building each (up to 240M parameters) once keeps those checks cheap. For read-only checks only: never
    change the model it returns (build your own for that).
    """
    cache = {}

    def build(name: str):
        if name not in cache:
            cache[name] = timm.create_model(name, device="meta")
        return cache[name]

    return build
