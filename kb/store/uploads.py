"""Keeping uploaded PDFs: streamed to disk with a size cap, sniffed, named by content hash.

Uploads land in ``Settings.files_dir`` as ``<sha256>.pdf``. A file is written to a temp file
in the same folder, flushed to disk and then renamed in one step, so a crash never leaves a
half-written PDF under a final name; the same content uploaded twice is kept once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from kb.errors import InvalidInput, TooLarge, UnsupportedMedia

PDF_MAGIC = b"%PDF-"
BLOCK = 1 << 20


def save_upload(stream: BinaryIO, files_dir: Path, *, max_bytes: int, name: str) -> Path:
    """Copy ``stream`` into ``files_dir`` as ``<sha256>.pdf``; return the kept file's path.

    Args:
        max_bytes: refuse (TooLarge) a file longer than this, counted while copying.
        name: the file's name as the client gave it, for error messages.

    Raises:
        TooLarge, UnsupportedMedia (not a PDF), InvalidInput (empty).
    """
    files_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=files_dir)
    tmp = Path(tmp_name)
    try:
        digest = _copy(stream, fd, max_bytes=max_bytes, name=name)
        dest = files_dir / f"{digest}.pdf"
        os.replace(tmp, dest)  # same content: replaces identical bytes
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _copy(stream: BinaryIO, fd: int, *, max_bytes: int, name: str) -> str:
    """Write ``stream`` to ``fd`` (then fsync and close it); return the SHA-256 of the bytes."""
    h, size, head = hashlib.sha256(), 0, b""
    with os.fdopen(fd, "wb") as out:
        while block := stream.read(BLOCK):
            size += len(block)
            if size > max_bytes:
                raise TooLarge(
                    f"{name!r} is over the upload limit of {max_bytes >> 20} MiB "
                    "(KB_UPLOAD_MAX_MB); ingest it on the server with `kb ingest` instead."
                )
            if len(head) < len(PDF_MAGIC):
                head += block[: len(PDF_MAGIC)]
                if len(head) >= len(PDF_MAGIC) and not head.startswith(PDF_MAGIC):
                    raise UnsupportedMedia(_not_pdf(name))
            h.update(block)
            out.write(block)
        if size == 0:
            raise InvalidInput(f"{name!r} is empty; send a PDF file.")
        if not head.startswith(PDF_MAGIC):
            raise UnsupportedMedia(_not_pdf(name))
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()


def _not_pdf(name: str) -> str:
    return f"{name!r} is not a PDF (it does not start with %PDF-); only PDF files can be uploaded."


def discard(path: Path) -> None:
    """Delete a kept upload (missing already: nothing to do)."""
    path.unlink(missing_ok=True)


def is_kept(path: Path, files_dir: Path) -> bool:
    """True when ``path`` lies in ``files_dir`` (a file kb owns, not one of the user's)."""
    try:
        return path.resolve().parent == files_dir.resolve()
    except OSError:
        return False


def unused_uploads(files_dir: Path, used: set[str], *, older_than_s: float) -> list[Path]:
    """Kept uploads no paper records, and leftover partial uploads, older than the given age.

    The age keeps a live server's fresh uploads (waiting in a queued ingest job) safe.
    """
    if not files_dir.is_dir():
        return []
    cutoff = time.time() - older_than_s
    found = []
    for path in sorted(files_dir.iterdir()):
        kept = path.suffix == ".pdf" or path.name.startswith(".upload-")
        try:
            old = path.is_file() and path.stat().st_mtime < cutoff
        except OSError:
            continue
        if kept and old and str(path.resolve()) not in used:
            found.append(path)
    return found
