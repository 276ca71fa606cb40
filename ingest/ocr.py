"""OCR for pages without usable text: render them with poppler's ``pdftoppm`` and read them
with the ``tesseract`` command line tool (no Python dependency; both run as subprocesses).

Scanned pages and pages whose fonts map to no real characters (the so_large_lm PDFs in
../shared/data/pdfs) have no text an extractor can recover; only OCR reads them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from kb.errors import IngestError

DEFAULT_LANGS = "chi_sim+eng"
DEFAULT_TIMEOUT_S = 120.0
INSTALL_HINT = "apt install tesseract-ocr tesseract-ocr-chi-sim poppler-utils"
# The long side of a rendered page in pixels: 300 dpi for A4, and a bound on memory for
# posters and other huge pages.
_LONG_SIDE_PX = 3500
_CHECK_TIMEOUT_S = 30
# How long an answer of ocr_available holds: a batch of scanned PDFs, or a page shown many
# times, runs `tesseract --list-langs` once, and a Tesseract installed meanwhile is seen
# within a minute.
_CHECK_TTL_S = 60.0
_CHECKED: dict[tuple[str, str], tuple[float, str | None]] = {}

log = logging.getLogger(__name__)


def ocr_available(langs: str = DEFAULT_LANGS) -> str | None:
    """None when OCR can run with ``langs``; otherwise one line saying why not and what to do.

    The answer is kept for a minute per process (and per PATH), so asking per file or per
    page view costs one check.

    Args:
        langs: Tesseract language codes joined by "+", e.g. "chi_sim+eng".
    """
    key = (langs, os.environ.get("PATH", ""))
    now = time.monotonic()
    checked = _CHECKED.get(key)
    if checked is not None and now - checked[0] < _CHECK_TTL_S:
        return checked[1]
    reason = _check(langs)
    _CHECKED[key] = (now, reason)
    return reason


def _check(langs: str) -> str | None:
    for tool in ("tesseract", "pdftoppm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed ({INSTALL_HINT})"
    try:
        done = subprocess.run(
            ["tesseract", "--list-langs"],
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"tesseract does not run: {_first_line(str(e))} ({INSTALL_HINT})"
    # Tesseract 4+ lists on stdout, 3.x on stderr; the first line is a title.
    listed = (done.stdout + "\n" + done.stderr).splitlines()
    installed = {line.strip() for line in listed if line.strip() and " " not in line.strip()}
    missing = [code for code in langs.split("+") if code not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.replace('_', '-').lower()}" for code in missing)
        return f"tesseract has no {'+'.join(missing)} language data (apt install {packages})"
    return None


def ocr_advice(command: str, langs: str = DEFAULT_LANGS) -> str:
    """What would read pages that need OCR here: ``command`` when Tesseract can run with
    ``langs``, else why not and what to install.

    Args:
        command: the kb command that OCRs them, e.g. "kb ocr 12" or "kb ingest --ocr".
    """
    reason = ocr_available(langs)
    if reason is None:
        return f"Tesseract with {langs} is installed: run `{command}`"
    return f"OCR is not available: {reason}; then run `{command}`"


def ocr_pages(
    path: Path,
    pages: list[int],
    langs: str = DEFAULT_LANGS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[int, str]:
    """OCR the given pages of the PDF at ``path``; the raw Tesseract text by page number.

    A page that fails or takes longer than ``timeout_s`` (per command) is left out of the
    result and logged. Raises IngestError when OCR is not available (see ocr_available).

    Args:
        pages: 1-based page numbers.
        langs: Tesseract language codes joined by "+".
        timeout_s: seconds allowed to render one page, and again to read it.
    """
    reason = ocr_available(langs)
    if reason:
        raise IngestError(f"Cannot OCR {path.name!r}: {reason}.")
    texts: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="kb-ocr-") as tmp:
        for number in sorted(set(pages)):
            text = _ocr_page(path, number, langs, timeout_s, Path(tmp))
            if text is not None:
                texts[number] = text
    return texts


def _ocr_page(path: Path, number: int, langs: str, timeout_s: float, tmp: Path) -> str | None:
    """The OCR text of one page, or None (logged) when rendering or reading it fails."""
    stem = tmp / f"page-{number}"
    render = ["pdftoppm", "-f", str(number), "-l", str(number), "-singlefile", "-gray"]
    render += ["-scale-to", str(_LONG_SIDE_PX), "-png", str(path), str(stem)]
    image = stem.with_suffix(".png")
    read = ["tesseract", str(image), "stdout", "-l", langs]
    try:
        _run(render, timeout_s)
        return _run(read, timeout_s)
    except (OSError, subprocess.SubprocessError) as e:
        stderr = getattr(e, "stderr", None) or b""  # what the tool said, when it ran
        detail = _first_line(stderr.decode("utf-8", errors="replace") or str(e))
        log.warning("OCR of page %d of %s failed: %s", number, path.name, detail)
        return None
    finally:
        image.unlink(missing_ok=True)


def _run(command: list[str], timeout_s: float) -> str:
    """Run a command and return its stdout; a non-zero exit raises CalledProcessError."""
    done = subprocess.run(
        command, capture_output=True, timeout=timeout_s, check=True, stdin=subprocess.DEVNULL
    )
    return done.stdout.decode("utf-8", errors="replace")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:200] if lines else "unknown error"
