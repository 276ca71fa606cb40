"""The library: the one object the CLI and the API call (ingest, search, list, remove, reindex).

``Library`` is a thin facade (as txtai's ``Embeddings``): it builds the ``Core`` (settings,
store, encoders, the one lock) and the services that receive it — search, ingest, curation,
collections, maintenance — and hands each call to one of them. Services never call back into
the facade. Routes and commands stay thin wrappers around one method here.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from index.dense import DenseIndex
from index.embedder import Embedder
from kb.library.collections import Collections
from kb.library.core import Core
from kb.library.curation import Curation
from kb.library.distributed import RayPlan, ray_pipeline
from kb.library.doctor import DoctorReport
from kb.library.ingest import Ingester, Listener
from kb.library.jobs import KEEP_JOBS, JobRunner
from kb.library.links import link_translations
from kb.library.maintenance import Maintenance
from kb.library.query import SearchQuery
from kb.library.search import Searcher
from kb.library.watch import watch
from kb.settings import Settings
from kb.store import Store
from kb.store.filters import PaperFilters
from kb.types import (
    Collection,
    IngestSummary,
    Membership,
    PageReport,
    Paper,
    ParsedDocument,
    SearchResponse,
)


class Library:
    """A knowledge base on disk: SQLite store + FAISS indexes + embedding models (loaded on
    ``load()`` or the first call that needs them).

    Args:
        embedder: use this main encoder instead of loading ``settings.model`` (tests).
        second: use this second encoder instead of ``settings.second_encoder`` (tests).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        second: Embedder | None = None,
    ) -> None:
        self.core = Core(settings, embedder, second)
        self._search = Searcher(self.core)
        self._ingest = Ingester(self.core)
        self._curation = Curation(self.core, self._ingest)
        self._collections = Collections(self.core)
        self._maintenance = Maintenance(self.core)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def store(self) -> Store:
        return self.core.store

    def close(self) -> None:
        self.core.close()

    # -- models and indexes

    def load(self) -> list[DenseIndex]:
        """Load the models and open (or rebuild) the indexes, so the first request is fast;
        reloads them when another process changed the store. Returns the encoders."""
        return self.core.load()

    def encoders(self) -> list[DenseIndex]:
        """The encoders of dense search, their indexes opened (loaded on the first call)."""
        with self.core.lock:
            return self.core.encoders()

    def embedder(self) -> Embedder:
        """The main encoder (loaded on the first call)."""
        return self.core.embedder()

    @contextlib.contextmanager
    def ingest_turn(self) -> Iterator[None]:
        """Take the library's one ingest turn: no ingest, job or bundle import runs while
        inside (searches go on)."""
        with self.core.ingest_lock:
            yield

    @contextlib.contextmanager
    def locked(self) -> Iterator[Store]:
        """Hold the library's lock (store and indexes as one consistent pair) for a few
        reads and writes; yields the store."""
        with self.core.lock:
            yield self.core.store

    def save_indexes(self) -> None:
        """Write the opened indexes to disk."""
        with self.core.lock:
            self.core.save_indexes()

    def reload_indexes(self) -> None:
        """Drop the in-memory indexes (after a rolled-back write changed them); the next call
        that needs them reopens them from disk, or rebuilds them from the store."""
        with self.core.lock:
            self.core.forget_indexes()

    # -- ingest

    def ingest(
        self,
        paths: Iterable[Path],
        listener: Listener | None = None,
        *,
        ocr: bool = False,
        ray: str | RayPlan | None = None,
    ) -> IngestSummary:
        """Ingest PDFs and JSONL record files (folders recursively); one failure stops nothing.

        Args:
            listener: called with every ``IngestEvent`` (a "start" event first).
            ocr: run OCR (Tesseract) on pages that have no usable text, when it is installed.
            ray: parse and embed the PDFs on Ray: an address (``local``, ``auto``,
                ``host:port``) or a ``RayPlan``; None: here (docs/SCALING.md).
        """
        if ray is None:
            return self._ingest.ingest(paths, listener, ocr=ocr)
        plan = RayPlan(ray) if isinstance(ray, str) else ray
        return self._ingest.ingest(paths, listener, ocr=ocr, pipeline=ray_pipeline(plan))

    def ocr(
        self, paper_ids: list[int] | None = None, listener: Listener | None = None
    ) -> IngestSummary:
        """Read the pages that need OCR of stored papers again (pdftotext, then Tesseract) and
        update each paper in place: same id, tags, edits and collections (``kb ocr``).

        Args:
            paper_ids: the papers; None: every paper with pages that need OCR.
            listener: called with every ``IngestEvent`` (a "start" event first).
        """
        return self._ingest.ocr(paper_ids, listener)

    def pages_needing_ocr(self) -> dict[int, int]:
        """paper id -> how many of its pages have no usable text yet."""
        with self.core.lock:
            return self.core.store.works.needing_ocr()

    def watch(
        self,
        folder: Path,
        *,
        interval: float,
        stop: threading.Event,
        listener: Listener | None = None,
        on_round: Callable[[IngestSummary], None] | None = None,
        ocr: bool = False,
    ) -> None:
        """Ingest what settles in ``folder`` until ``stop`` is set (``kb ingest --watch``)."""
        watch(
            self._ingest,
            folder,
            interval=interval,
            stop=stop,
            listener=listener,
            on_round=on_round,
            ocr=ocr,
        )

    def store_doc(
        self,
        doc: ParsedDocument,
        vecs: list[np.ndarray],
        *,
        replace_id: int | None = None,
        file_path: str | None = None,
        signature: np.ndarray | None = None,
        work_ids: tuple[str, ...] = (),
    ) -> int:
        """Write one embedded document (all or nothing in SQLite) and index its vectors."""
        return self._ingest.store_doc(
            doc,
            vecs,
            replace_id=replace_id,
            file_path=file_path,
            signature=signature,
            work_ids=work_ids,
        )

    def job_runner(self, *, keep: int = KEEP_JOBS) -> JobRunner:
        """A runner of ingest jobs over this library (``start()`` it); it keeps the last
        ``keep`` jobs in the store."""
        return JobRunner(self.core, self._ingest, keep=keep)

    def link_translations(self) -> int:
        """Find which papers are translations of each other and record the links."""
        return link_translations(self.core)

    # -- read

    def search(self, query: SearchQuery) -> SearchResponse:
        """Papers for a query in any language, from both languages, best first."""
        return self._search.search(query)

    def related(self, ref: str | int, *, k: int | None = None) -> SearchResponse:
        """The papers nearest to one paper (its chunks' mean per encoder), languages alternating."""
        return self._search.related(ref, k)

    def paper(self, ref: str | int) -> Paper:
        """A paper by numeric id, or by key (a record key or a PDF's content hash)."""
        return self.core.paper(ref)

    def pages(self, ref: str | int) -> list[PageReport]:
        """How each page of a PDF paper was read (extractor, quality); [] for records."""
        with self.core.lock:
            return self.core.store.works.pages_of(self.core.paper(ref).id)

    def papers(
        self, *, limit: int = 50, offset: int = 0, sort: str = "id", **filters: Any
    ) -> list[Paper]:
        """A page of papers that pass the filters (``kb.store.filters.PaperFilters``: lang,
        year_from, year_to, tag, author, q).

        Args:
            sort: ``id`` (oldest first), ``added`` (newest first), ``year`` (newest first) or
                ``title``.
        """
        checked = PaperFilters(**filters).checked()
        with self.core.lock:
            return self.core.store.papers.select(
                limit=limit, offset=offset, sort=sort, filters=checked
            )

    def count(self, lang: str | None = None, **filters: Any) -> int:
        """How many papers pass the filters (the same as ``papers``)."""
        checked = PaperFilters(lang=lang, **filters).checked()
        with self.core.lock:
            return self.core.store.papers.count(checked)

    def stats(self) -> dict[str, Any]:
        with self.core.lock:
            return {
                **self.core.store.papers.stats(),
                "data_dir": str(self.settings.data_dir),
                "model": self.settings.model,
            }

    def pdf_path(self, ref: str | int) -> Path:
        """The paper's first PDF file that still exists on disk (NotFound when none)."""
        return self._curation.pdf_path(ref)

    # -- curation

    def edit(
        self,
        ref: str | int,
        fields: dict[str, Any],
        progress: Callable[[int, int], None] | None = None,
    ) -> Paper:
        """Correct a paper's metadata; the correction is kept and survives re-ingest.

        A new title is embedded again with every chunk; ``progress(done, total)`` is called
        as the chunks are (a long report takes minutes)."""
        return self._curation.edit(ref, fields, progress)

    def tag(self, ref: str | int, tags: list[str], *, remove: bool = False) -> Paper:
        """Add (or remove) tags on a paper; returns the paper as it is now."""
        return self._curation.tag(ref, tags, remove=remove)

    def update_paper(
        self,
        ref: str | int,
        fields: dict[str, Any],
        *,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Paper:
        """Correct metadata and add or remove tags, all checked before any change."""
        return self._curation.update_paper(ref, fields, add_tags=add_tags, remove_tags=remove_tags)

    def remove(self, ref: str | int) -> Paper:
        """Delete a paper; its uploaded copies in ``files_dir`` go too (the user's files stay)."""
        return self._curation.remove(ref)

    def add_upload(self, stream: BinaryIO, name: str) -> tuple[str, Paper]:
        """Keep an uploaded PDF in ``files_dir`` and ingest it now: (status, paper)."""
        return self._curation.add_upload(stream, name)

    def keep_upload(self, stream: BinaryIO, name: str) -> Path:
        """Copy an uploaded PDF into ``files_dir`` (named by its content hash), size-checked."""
        return self._curation.keep_upload(stream, name)

    def upload_names(self, papers: list[Paper]) -> dict[int, str]:
        """paper id -> the file name its PDF was uploaded with, for papers from uploads."""
        return self._curation.upload_names(papers)

    def discard_upload(self, path: Path) -> None:
        """Delete a kept upload that no paper records (one that could not be ingested)."""
        self._curation.discard_unused([path])

    # -- collections

    def create_collection(self, name: str, description: str = "") -> Collection:
        """A new, empty collection; Conflict when the name (ignoring case) is taken."""
        return self._collections.create_collection(name, description)

    def collections(self) -> list[Collection]:
        """Every collection, by name, with its papers and notes."""
        return self._collections.collections()

    def collection(self, ref: int | str) -> Collection:
        """A collection by id or by name (names ignore ASCII case)."""
        return self._collections.collection(ref)

    def update_collection(
        self, ref: int | str, *, name: str | None = None, description: str | None = None
    ) -> Collection:
        """Rename a collection and/or change its description; the others stay."""
        return self._collections.update_collection(ref, name=name, description=description)

    def delete_collection(self, ref: int | str) -> None:
        """Delete a collection and its notes; its papers stay in the library."""
        self._collections.delete_collection(ref)

    def add_to_collection(
        self, ref: int | str, paper_ref: int | str, note: str | None = None
    ) -> Collection:
        """Put a paper in a collection (again: change its note when one is given)."""
        return self._collections.add_to_collection(ref, paper_ref, note)

    def remove_from_collection(self, ref: int | str, paper_ref: int | str) -> Collection:
        """Take a paper out of a collection; the paper stays in the library."""
        return self._collections.remove_from_collection(ref, paper_ref)

    def memberships(self, paper_ref: int | str) -> list[Membership]:
        """The collections a paper is in, with its note in each."""
        return self._collections.memberships(paper_ref)

    def all_papers(self) -> list[Paper]:
        """Every paper of the library, in id order."""
        return self._collections.all_papers()

    def export(
        self,
        papers: list[Paper],
        fmt: str,
        *,
        notes: Mapping[int, str] | None = None,
        files: Mapping[int, str] | None = None,
    ) -> str:
        """A bibliography of ``papers`` in ``fmt`` (bibtex, ris, csl-json); ``files``: paper
        id -> the link to its PDF (default: its first file's path)."""
        return self._collections.export(papers, fmt, notes=notes, files=files)

    def export_collection(
        self, ref: int | str, fmt: str, *, files: Mapping[int, str] | None = None
    ) -> str:
        """A collection's bibliography, its notes included."""
        return self._collections.export_collection(ref, fmt, files=files)

    # -- maintenance

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` reports: ``status`` (ok, degraded, error), counts, ``problems``
        and the indexes rebuilt since the start (``repairs``); cheap, loads nothing."""
        return self._maintenance.health()

    def doctor(self, *, repair: bool = False) -> DoctorReport:
        """Check SQLite against the indexes (see ``kb.library.doctor``); optionally repair."""
        return self._maintenance.doctor(repair=repair)

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-embed every chunk with the current encoders and rebuild the indexes."""
        return self._maintenance.reindex(progress)
