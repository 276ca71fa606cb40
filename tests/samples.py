"""Sample records built in code, and small helpers shared by several test files."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def write_feed(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write ``records`` as a JSONL feed (one record per line, UTF-8 as is) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    return path


# Two papers, one per language (the HTTP API's search and listing tests).
API_RECORDS = [
    {"key": "a", "title": "Jailbreak attacks on aligned chatbots", "abstract": "Misuse.",
     "year": 2024, "doi": "10.1234/jb"},
    {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "滥用风险。", "year": 2023},
]  # fmt: skip

# Three papers for the web pages: a title with markup to escape, two languages, three years.
WEB_RECORDS = [
    {"key": "a", "title": "Jailbreak <script>alert(1)</script> attacks on chatbots",
     "abstract": "Jailbreak attacks make aligned chatbots misbehave.", "year": 2024,
     "authors": ["Ada Lovelace", "Alan Turing"], "doi": "10.5555/jb"},
    {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "越狱攻击导致滥用风险。",
     "year": 2023, "authors": ["张三"]},
    {"key": "c", "title": "Reward hacking in coding agents", "abstract": "Agents game tests.",
     "year": 2021},
]  # fmt: skip

# Three papers with the fields bibliographies use (collections and exports).
COLLECTION_RECORDS = [
    {"key": "a", "title": "Jailbreak attacks on aligned chatbots", "abstract": "Misuse.",
     "year": 2024, "doi": "10.1234/jb", "authors": ["Jane Doe"], "arxiv_id": "2401.00001"},
    {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "滥用风险。", "year": 2023,
     "authors": ["王伟"], "lang": "zh"},
    {"key": "c", "title": "Reward hacking in RLHF", "abstract": "Specification gaming.",
     "year": 2022, "authors": ["Ada Lovelace"]},
]  # fmt: skip


def export_links_in(html: str, section: str) -> dict[str, dict[str, list[str]]]:
    """The export links (label -> query) inside the element with id/class ``section``."""
    part = html.split(section, 1)[1].split("</p>", 1)[0]
    found = re.findall(r'<a href="(/api/export\?[^"]*)" data-format="([^"]+)"', part)
    return {label: parse_qs(urlsplit(unescape(url)).query) for url, label in found}


def paper_id(client: Any, key: str) -> int:
    """The id of the paper with this key, as the JSON API lists it."""
    papers = client.get("/api/papers").json()["papers"]
    return next(p["id"] for p in papers if p["key"] == key)
