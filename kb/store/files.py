"""Files of the store: atomic writes (temp file in the same folder, then ``os.replace``),
JSON, FAISS and array files, and the one file hasher of kb (SHA-256).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import StoreError


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (threads share it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; on success it replaces ``dest`` in one step.

    The file gets the mode an ordinary ``open()`` would give it (0666 less the umask), not
    the owner-only mode of ``mkstemp``: an exported bibliography is for others to read too.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temp folder next to ``dest``; on success it becomes ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(dest: Path, data: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StoreError(f"Cannot read {path}: {e}. Run `kb reindex` to rebuild it.") from e


def write_faiss(index: Any, dest: Path) -> None:
    import faiss

    with atomic_path(dest) as tmp:
        faiss.write_index(index, str(tmp))


def read_faiss(path: Path) -> Any:
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as e:
        raise StoreError(f"The vector index {path} is damaged ({e}); run `kb reindex`.") from e


def write_arrays(dest: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            # numpy 2.4.6's stub is savez(file, *args, allow_pickle: bool, **kwds): mypy matches
            # a **dict of arrays against allow_pickle too. The keys here are array names.
            np.savez(fh, **arrays)  # type: ignore[arg-type]


def read_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays saved by ``write_arrays``, or None when the file is missing or damaged."""
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
