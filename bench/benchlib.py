"""Helpers shared by the benchmark scripts: the machine line and the bare-pypdf yardstick."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from pypdf import PdfReader


def machine() -> str:
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def bare_pypdf_pages(path: Path) -> list[str]:
    """pypdf's raw text of every page ("" where it fails, as kb keeps): the yardstick."""
    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        reader.decrypt("")
    texts = []
    for page in reader.pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception:  # a failed page gives "", as in kb
            texts.append("")
    return texts
