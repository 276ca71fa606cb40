"""The ingest on Ray (kb.library.distributed): the same library as a local ingest, and Ray's
failures (a killed driver, a parse timeout, a killed worker) lose or duplicate nothing.

One real local Ray (2 CPUs) serves the whole test run; its workers import ``tests`` (the fake
encoders and parsers below) through PYTHONPATH. The tests skip only when Ray is not installed.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from index.embedder import Embedder, SentenceTransformerEmbedder
from ingest.workers import ParseJob, parse_job
from kb.cli import cli
from kb.errors import RayUnavailable
from kb.library.distributed import RayPlan, require_ray
from kb.library.facade import Library
from kb.library.ingest import IngestEvent
from kb.library.query import SearchQuery
from kb.settings import Settings
from kb.types import ParsedDocument
from tests.conftest import PDFS
from tests.fakes import HashEmbedder
from tests.samples import API_RECORDS, write_feed

ROOT = Path(__file__).resolve().parents[1]
# the three smallest shared PDFs (two Chinese, one English; 7-25 pages); the Chinese two are
# read by poppler's pdftotext (pypdf gives mojibake, pdfminer (cid:N)): without it they fail
# as needing OCR, so the tests that ingest them skip
SMALL_PDFS = [
    PDFS / "zh_so_large_lm_ch3_harms_part1.pdf",
    PDFS / "en_cosai_preparing_defenders_of_ai_systems.pdf",
    PDFS / "zh_so_large_lm_ch6_llm_law.pdf",
]
needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed"
)
RECORDS = [
    *API_RECORDS,
    {"key": "c", "title": "Scalable oversight with debate", "abstract": "Two models argue.",
     "year": 2022, "authors": ["Geoffrey Irving"]},
    {"key": "d", "title": "奖励欺骗的检测", "abstract": "奖励模型被利用的案例。", "year": 2025},
]  # fmt: skip


# ---------------------------------------------------------------- run inside the Ray workers


def hash_encoders() -> list[Embedder]:
    """The actors' encoders in the fake libraries: the tests' HashEmbedder."""
    return [HashEmbedder()]


def e5_encoders(path: str) -> list[Embedder]:
    """The actors' encoders in the real-model test: the converted e5 model, as the driver's."""
    return [SentenceTransformerEmbedder("multilingual-e5-small", path)]


class DyingOnceEmbedder(HashEmbedder):
    """A HashEmbedder whose process dies (as a killed worker) on its first call ever: the
    ``marker`` file remembers it across Ray's restart of the actor."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def encode(self, texts: list[str], *, kind: str, progress: bool = False) -> np.ndarray:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return super().encode(texts, kind=kind, progress=progress)


def dying_once_encoders(marker: str) -> list[Embedder]:
    return [DyingOnceEmbedder(marker)]


def slow_parse(job: ParseJob) -> ParsedDocument:
    """kb's parser, except that files named slow* never finish."""
    if job.path.name.startswith("slow"):
        time.sleep(600)
    return parse_job(job)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray for the whole test run (2 CPUs, a small object store); its address."""
    try:
        ray = require_ray()
    except RayUnavailable as e:
        pytest.skip(f"Ray is not installed (pip install -e '.[ray]'): {e}")
    ray.init(
        address="local",  # a new Ray of its own, even where `ray start` runs a cluster
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=256 << 20,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},  # the workers import tests.*
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def fake_library(settings: Settings, name: str) -> Library:
    return Library(settings.replace(data_dir=settings.data_dir.parent / name), HashEmbedder())


def snapshot(lib: Library) -> dict[str, Any]:
    """Everything an ingest stores, by paper: fields, chunks, and the main vectors."""
    out: dict[str, Any] = {}
    with lib.locked() as store:
        for paper in lib.papers(limit=1000):
            fields = dataclasses.asdict(paper)
            fields.pop("added_at")
            ids = store.chunks.ids_of(paper.id)
            chunks = [dataclasses.asdict(c) for c in store.chunks.by_ids(ids).values()]
            vectors = store.chunks.vectors_of(ids, lib.embedder().dim)
            out[paper.key] = {"paper": fields, "chunks": chunks, "vectors": vectors}
    return out


def assert_same_library(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys() and a
    for key in a:
        assert a[key]["paper"] == b[key]["paper"]
        assert a[key]["chunks"] == b[key]["chunks"]
        np.testing.assert_allclose(a[key]["vectors"], b[key]["vectors"], atol=1e-4)


def outcomes(events: list[IngestEvent]) -> list[tuple[str, str, str]]:
    """The report lines of an ingest, without their timings."""
    return [(e.status, e.name, e.detail) for e in events if e.status != "start"]


# ---------------------------------------------------------------- tests


@needs_poppler
def test_ray_ingest_stores_the_library_a_local_ingest_stores(
    ray_cluster, settings, tmp_path, monkeypatch
):
    feed = write_feed(tmp_path / "feed.jsonl", RECORDS)
    monkeypatch.chdir(PDFS)  # paths as given, relative: Ray's workers run in another folder
    inputs = [Path(p.name) for p in SMALL_PDFS] + [feed]
    local, on_ray = fake_library(settings, "local"), fake_library(settings, "ray")
    events: dict[str, list[IngestEvent]] = {"local": [], "ray": []}
    plan = RayPlan(ray_cluster, encoders=hash_encoders)
    assert local.ingest(inputs, events["local"].append).ok
    assert on_ray.ingest(inputs, events["ray"].append, ray=plan).ok
    assert_same_library(snapshot(local), snapshot(on_ray))
    assert len(snapshot(on_ray)) == len(SMALL_PDFS) + len(RECORDS)
    # the progress bar and --report see the same events, in the same order
    assert outcomes(events["ray"]) == outcomes(events["local"])
    # a second run on Ray skips everything, as a local one does
    again = on_ray.ingest(inputs, ray=plan)
    assert not again.ingested and len(again.skipped) == len(SMALL_PDFS) + len(RECORDS)


@needs_poppler
def test_ray_ingest_with_the_real_model_matches_a_local_one(
    ray_cluster, settings, e5_dir, real_embedder
):
    pdfs = SMALL_PDFS[:2]
    local = Library(settings.replace(data_dir=settings.data_dir / "local"), real_embedder)
    on_ray = Library(settings.replace(data_dir=settings.data_dir / "ray"), real_embedder)
    plan = RayPlan(ray_cluster, encoders=functools.partial(e5_encoders, str(e5_dir)))
    assert local.ingest(pdfs).ok and on_ray.ingest(pdfs, ray=plan).ok
    assert_same_library(snapshot(local), snapshot(on_ray))
    query = SearchQuery.build("大模型的法律风险", k=2)
    hits = [[h.paper.key for h in lib.search(query).results] for lib in (local, on_ray)]
    assert hits[0] == hits[1] and len(hits[0]) == 2


KILLED_DRIVER = """
import os, sys
from pathlib import Path
from kb.library.distributed import RayPlan
from kb.library.facade import Library
from kb.settings import Settings
from tests.fakes import HashEmbedder
from tests.test_ray_ingest import hash_encoders

data, address, *paths = sys.argv[1:]
settings = Settings(data_dir=Path(data), model_dir=Path(data) / "models", second_encoder="none")
library = Library(settings, embedder=HashEmbedder())

def killed_after_the_first_paper(event):
    if event.status == "ingested":
        os._exit(9)  # as a kill -9: nothing after this is stored or saved

library.ingest([Path(p) for p in paths], killed_after_the_first_paper,
               ray=RayPlan(address, encoders=hash_encoders))
"""


@needs_poppler
def test_a_killed_driver_is_resumed_by_running_the_same_ingest(ray_cluster, settings):
    data = settings.data_dir
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", KILLED_DRIVER, str(data), ray_cluster, *map(str, SMALL_PDFS)]
    killed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert killed.returncode == 9, killed.stderr[-2000:]
    lib = Library(settings, HashEmbedder())
    assert lib.count() == 1  # the first paper was stored before the kill
    summary = lib.ingest(SMALL_PDFS, ray=RayPlan(ray_cluster, encoders=hash_encoders))
    assert len(summary.skipped) == 1 and len(summary.ingested) == 2 and not summary.failed
    papers = lib.papers(limit=100)
    assert sorted(p.source for p in papers) == sorted(map(str, SMALL_PDFS))
    assert lib.doctor().healthy  # the unsaved index was caught up from the store


@needs_poppler
def test_a_file_timing_out_in_a_ray_task_fails_and_the_batch_goes_on(
    ray_cluster, settings, make_pdf
):
    slow = make_pdf("slow.pdf", [["This file never finishes parsing."]])
    lib = Library(settings.replace(parse_timeout_s=15), HashEmbedder())
    plan = RayPlan(ray_cluster, encoders=hash_encoders, parse=slow_parse)
    events: list[IngestEvent] = []
    summary = lib.ingest([slow, *SMALL_PDFS[:2]], events.append, ray=plan)
    assert len(summary.ingested) == 2
    [(name, error)] = summary.failed
    assert name == str(slow)
    assert error == (  # the local ingest's own message
        "'slow.pdf' took longer than 15 s to parse; skipped. "
        "Raise KB_PARSE_TIMEOUT_S to allow more."
    )
    assert [e.status for e in events if e.name == str(slow)] == ["failed"]


@needs_poppler
def test_a_worker_killed_mid_task_loses_and_duplicates_no_paper(ray_cluster, settings, tmp_path):
    marker = tmp_path / "actor-died"
    lib = fake_library(settings, "ray")
    plan = RayPlan(ray_cluster, encoders=functools.partial(dying_once_encoders, str(marker)))
    summary = lib.ingest(SMALL_PDFS, ray=plan)
    assert marker.exists()  # an actor died in its first batch; Ray restarted it and retried
    assert len(summary.ingested) == len(SMALL_PDFS) and not summary.failed
    local = fake_library(settings, "local")
    assert local.ingest(SMALL_PDFS).ok
    assert_same_library(snapshot(local), snapshot(lib))


def test_ray_missing_is_one_line_saying_how_to_install_it(monkeypatch, settings):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is absent
    with pytest.raises(RayUnavailable, match=r"pip install -e '\.\[ray\]'"):
        require_ray()
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_SECOND_ENCODER": "none"}
    # --ray last, or first and followed by a path (read as a path, not as an address)
    for args in (["ingest", str(SMALL_PDFS[0]), "--ray"], ["ingest", "--ray", str(SMALL_PDFS[0])]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "pip install -e '.[ray]'" in result.output


@pytest.mark.parametrize("address", ["nowhere", "host:port"])
def test_a_bad_ray_address_is_a_usage_error(address, settings):
    env = {"KB_DATA_DIR": str(settings.data_dir)}
    result = CliRunner().invoke(cli, ["ingest", str(SMALL_PDFS[0]), f"--ray={address}"], env=env)
    assert result.exit_code == 2 and f"--ray has value {address!r}" in result.output


def test_an_unreachable_ray_head_is_one_line_at_once(settings):
    # a new process: this one's Ray (the session's) would be used whatever the address
    env = {**os.environ, "KB_DATA_DIR": str(settings.data_dir), "KB_SECOND_ENCODER": "none"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from kb.cli import main; main()", "ingest", str(SMALL_PDFS[0]),
         "--ray=127.0.0.1:1"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Cannot reach a Ray head at '127.0.0.1:1'" in done.stderr
    assert time.perf_counter() - started < 60
