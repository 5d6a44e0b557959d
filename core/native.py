"""The compiled twins of three hot paths, and the one switch that turns them off.

``core/_smt_native.c`` (the state tree's apply), ``core/_canonical_native.c`` (the canonical
encoder's type guard) and ``core/adapters/_murmur2_native.c`` (Kafka's key hash) are optional C
extensions (``setup.py``): each Python module beside them stays the reference, which the
mutation tools change and property tests compare the compiled one with. ``load`` gives a
compiled module unless it was not built (no C compiler where the package was installed) or
``TRACO_NATIVE=0`` asks for the Python ones (diagnosis, and the mutation runs).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["enabled", "load"]


def enabled() -> bool:
    """Whether compiled twins may be used (``TRACO_NATIVE`` is not ``0``)."""
    return os.environ.get("TRACO_NATIVE", "1") != "0"


def load(name: str) -> ModuleType | None:
    """The compiled module ``name``, or None (not built, or switched off)."""
    if not enabled():
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
