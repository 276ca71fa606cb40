"""Package surfaces that import their names on first use (PEP 562).

A package whose public names pull in heavy modules (numpy, FAISS, the PDF readers) declares
where each name lives; ``import package`` then stays cheap, and a name is imported the first
time it is used. ``kb``, ``kb.library``, ``kb.store`` and ``ingest`` do this, so that
``kb search`` asking a running server starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: ``where`` maps each name to its module."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups are plain attributes
        return value

    return __getattr__
