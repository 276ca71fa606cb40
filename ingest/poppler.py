"""Read the text of PDF pages with poppler's ``pdftotext`` (poppler-utils), when installed.

The third extractor, after pypdf and pdfminer.six and before OCR: poppler maps the glyphs of
some fonts that both Python readers get wrong. The so_large_lm PDFs of ../shared/data/pdfs
(PingFangSC Type0 fonts) give mojibake with pypdf and only ``(cid:N)`` with pdfminer, while
pdftotext 22.12 reads clean Chinese from all 29 of their pages in about 0.3 s (OCR: ~20 s a
page, with errors).

``-raw`` (the order of the content stream) is used: on the pages that pypdf reads well it
agrees with pypdf's text best (character-level similarity 0.97 on so_large_lm ch4, 0.94 on
zh_rucaibox_llm_survey_chinese, 1.00 on en_garak; the default reading-order mode 0.94, 0.55,
0.88, and ``-layout`` 0.94, 0.53, 0.65: it sets two columns side by side on one line).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

DEFAULT_TIMEOUT_S = 60.0
INSTALL_HINT = "apt install poppler-utils"

log = logging.getLogger(__name__)


def poppler_available() -> bool:
    """Whether ``pdftotext`` is on the PATH."""
    return shutil.which("pdftotext") is not None


def poppler_pages(
    path: Path, numbers: list[int], timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[int, str]:
    """The raw text ``pdftotext`` finds on the given pages; {} when it is not installed.

    Consecutive pages are read by one command (pages end with a form feed). A command that
    fails or takes longer than ``timeout_s`` leaves its pages out of the result (logged).

    Args:
        numbers: 1-based page numbers.
        timeout_s: seconds allowed to one command (one run of consecutive pages).
    """
    if not numbers or not poppler_available():
        return {}
    texts: dict[int, str] = {}
    for first, last in _runs(sorted(set(numbers))):
        command = ["pdftotext", "-f", str(first), "-l", str(last), "-raw", "-enc", "UTF-8"]
        try:
            done = subprocess.run(
                [*command, str(path), "-"],
                capture_output=True,
                timeout=timeout_s,
                check=True,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as e:
            stderr = getattr(e, "stderr", None) or b""
            detail = _last_line(stderr.decode("utf-8", errors="replace")) or str(e)
            log.warning("pdftotext failed on pages %d-%d of %s: %s", first, last, path.name, detail)
            continue
        # every page ends with a form feed: the piece after the last one is no page
        pages = done.stdout.decode("utf-8", errors="replace").split("\f")[:-1]
        for number, text in zip(range(first, last + 1), pages, strict=False):
            texts[number] = text
    return texts


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    """Sorted page numbers as (first, last) runs of consecutive pages."""
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
