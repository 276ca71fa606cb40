"""Each package declares its public surface in ``__all__`` (as httpx's
tests/test_exported_members.py): every declared name exists, and the names a user sees in the
package are exactly the declared ones."""

from __future__ import annotations
import __future__

import importlib
import subprocess
import sys
import types

import pytest

PACKAGES = [
    "kb",
    "kb.store",
    "kb.library",
    "kb.bundle",
    "kb.evaluate",
    "kb.cli",
    "api",
    "index",
    "ingest",
]


def _public_names(module: types.ModuleType) -> set[str]:
    """The names of ``module`` that a user sees: not private, not a module (the package's own
    submodules are bound as attributes once imported), and not ``from __future__`` flags."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and value is not getattr(__future__, name, None)
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_all_declared_names_exist_and_are_the_public_names(package):
    module = importlib.import_module(package)
    declared = getattr(module, "__all__", None)
    assert declared is not None, f"{package}/__init__.py declares no __all__"
    assert len(declared) == len(set(declared)), f"{package}.__all__ repeats a name"
    for name in declared:
        assert hasattr(module, name), f"{package}.__all__ names {name!r}, which it lacks"
    assert _public_names(module) == set(declared)


@pytest.mark.parametrize(
    ("imports", "heavy"),
    [
        # ``import kb`` gives the public surface without the model stack (Library is lazy)
        ("kb", ("torch", "sentence_transformers", "faiss", "kb.library")),
        # ``kb search`` with a running server only asks it over HTTP: loading the command
        # line and the search query value must not pay for numpy, FAISS, torch or the PDF
        # readers (issue 12: ``kb search`` in about a second)
        (
            "kb.cli, kb.library.query",
            ("numpy", "faiss", "torch", "pypdf", "kb.library.facade", "kb.store.store"),
        ),
    ],
)
def test_imports_stay_cheap(imports: str, heavy: tuple[str, ...]) -> None:
    code = f"import sys, {imports}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
