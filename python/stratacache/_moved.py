"""Modules that moved into the private engine: importable by their old names for one release.

``import stratacache.records`` (and ``slots``, ``compute``, ``singleflight``,
``generations``, ``health``) still works, with a ``DeprecationWarning`` that names
where it went; the names inside are the engine's, which changed shape.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Final

MOVED: Final = {
    "stratacache.records": "stratacache._engine.chain",
    "stratacache.slots": "stratacache._engine.guard",
    "stratacache.compute": "stratacache._engine.compute",
    "stratacache.singleflight": "stratacache._engine.singleflight",
    "stratacache.generations": "stratacache._engine.generations",
    "stratacache.health": "stratacache._engine.health",
}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved into the private engine ({MOVED[spec.name]}) and goes away"
            " in the next release; use TieredCache's public API",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module is the engine's, already executed."""


def install() -> None:
    """Let the old module names import, once per interpreter."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
