"""Moved into the private engine (``stratacache._engine.generations``).

This name goes away in the next release.

Importing it warns once; its names are the engine's, which changed shape.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

warnings.warn(
    "stratacache.generations moved into the private engine"
    " (stratacache._engine.generations) and goes away in the next release;"
    " use TieredCache's public API",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(importlib.import_module("stratacache._engine.generations"), name)
