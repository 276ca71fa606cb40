"""The benchmark scripts still import: they are run by hand, so a moved function breaks them
silently (``bench/search_latency.py`` and ``bench/embed_throughput.py`` once imported
``passage_text`` from where it no longer was)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "benchlib")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_script_imports_and_has_a_main(name, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import benchlib as a sibling
    module = importlib.import_module(f"bench.{name}")
    assert callable(module.main)
    monkeypatch.delitem(sys.modules, f"bench.{name}")
