"""The ingest pipeline of the Library: parse in workers, recognise duplicates, embed in batches.

Application layer (used by ``Library.ingest``). PDFs are parsed in worker processes
(``ingest.workers``), each under a time and memory cap; what comes back is checked against the
library (same file, same content elsewhere, same work by DOI / arXiv id or near-identical
text) and the new papers are embedded together, many files per batch. Every input ends as one
``IngestEvent``: ingested, updated (a changed file replaced its old version), duplicate (the
file was recorded on the paper it duplicates), skipped (unchanged) or failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.dedup import best_match, text_signature, work_ids
from ingest.documents import iter_inputs, ocr_note
from ingest.records import read_records
from ingest.workers import ParseJob, ParseOutcome, parse_many
from kb.errors import IngestError
from kb.library.core import Core
from kb.library.encoders import keyword_text, passage_texts
from kb.library.links import link_translations
from kb.store import sha256_file
from kb.types import IngestSummary, ParsedDocument

EMBED_BATCH_CHUNKS = 256  # chunks embedded together, across files
RECORD_BATCH = 64  # records embedded together
OCR_TIMEOUT_FACTOR = 10  # with --ocr, a file may take this many times KB_PARSE_TIMEOUT_S
STATUSES = ("ingested", "updated", "duplicate", "skipped", "failed")


@dataclass
class IngestEvent:
    """One input's outcome (``status`` in STATUSES), or a progress marker: ``start`` (with
    ``total``), ``parsed`` (a PDF read, before it is embedded), ``file`` (a feed done)."""

    status: str
    name: str
    detail: str = ""
    paper_id: int | None = None
    pages: int | None = None
    chars: int | None = None
    lang: str | None = None
    extractor: str | None = None
    seconds: float | None = None
    total: int | None = None  # "start" only: number of inputs
    needs_ocr: list[int] | None = None  # pages without usable text

    def report(self) -> dict[str, Any]:
        """The line of ``kb ingest --report``: status, paper id, pages, chars, ..., error."""
        out = {k: v for k, v in asdict(self).items() if k not in ("detail", "total")}
        out["error"] = self.detail if self.status == "failed" else None
        out["detail"] = None if self.status == "failed" else self.detail or None
        return out


Listener = Callable[[IngestEvent], None]
# Builds the pipeline of one run: ``Pipeline`` itself, or another way to parse and embed (the
# Ray ingest of ``kb.library.distributed``) that stores through the same ``Pipeline`` steps.
PipelineFactory = Callable[..., "Pipeline"]


@dataclass
class _Pending:
    doc: ParsedDocument
    replace_id: int | None
    file_path: str | None
    seconds: float
    signature: np.ndarray | None
    work_ids: tuple[str, ...] = field(default_factory=tuple)


def describe_doc(doc: ParsedDocument) -> dict[str, Any]:
    """Report fields of a parsed document: pages, chars, language, extractors used."""
    if not doc.pages:
        chars = sum(len(c.text) for c in doc.chunks)
        return {"pages": doc.meta.n_pages, "chars": chars, "lang": doc.meta.lang}
    used = sorted({p.extractor for p in doc.pages if p.extractor != "none"})
    return {
        "pages": len(doc.pages),
        "chars": sum(p.chars for p in doc.pages),
        "lang": doc.meta.lang,
        "extractor": "+".join(used) or "none",
        "needs_ocr": [p.number for p in doc.pages if p.needs_ocr],
    }


class Ingester:
    """The ingest service: runs pipelines over files and stores what they produce."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def ingest(
        self,
        paths: Iterable[Path],
        listener: Listener | None = None,
        *,
        ocr: bool = False,
        pipeline: PipelineFactory | None = None,
    ) -> IngestSummary:
        """Ingest PDFs and JSONL record files (folders recursively); one failure stops nothing.

        Args:
            listener: called with every ``IngestEvent`` (a "start" event first).
            ocr: run OCR (Tesseract) on pages that have no usable text, when it is installed.
            pipeline: builds the run's pipeline (default ``Pipeline``: parse and embed here).
        """
        files, problems = iter_inputs(list(paths))
        return self._run(files, problems, listener, ocr=ocr, pipeline=pipeline or Pipeline)

    def ocr(
        self, paper_ids: list[int] | None = None, listener: Listener | None = None
    ) -> IngestSummary:
        """Read again the stored PDFs of papers whose pages need OCR, and update them in place.

        The pages without usable text are read with poppler's pdftotext and OCR (Tesseract),
        where installed; each paper keeps its id, tags, edits, files and collections, and its
        chunks and vectors are replaced by those of the new text (an "updated" event).

        Args:
            paper_ids: the papers to read; None: every paper with pages that need OCR. A paper
                whose pages all have text is skipped, one without its PDF at hand fails.
        """
        with self.core.lock:
            needing = self.core.store.works.needing_ocr()
            papers = [self.core.store.papers.get(i) for i in paper_ids or needing]
        targets: dict[Path, int] = {}
        problems, done = [], []
        for paper in papers:
            name = f"paper {paper.id} ({paper.title})"
            path = next((Path(f) for f in paper.files if Path(f).is_file()), None)
            if paper.id not in needing:
                done.append(IngestEvent("skipped", name, "no pages need OCR", paper_id=paper.id))
            elif path is None:
                where = ", ".join(paper.files) or "no file recorded"
                problems.append(
                    (
                        name,
                        f"Cannot read {name} again: its PDF is gone ({where}). "
                        "Ingest the PDF again with `kb ingest --ocr FILE`.",
                    )
                )
            else:
                targets[path.resolve()] = paper.id
        return self._run(list(targets), problems, listener, ocr=True, targets=targets, done=done)

    def _run(
        self,
        files: list[Path],
        problems: list[tuple[str, str]],
        listener: Listener | None,
        *,
        ocr: bool,
        targets: dict[Path, int] | None = None,
        done: list[IngestEvent] | None = None,
        pipeline: PipelineFactory | None = None,
    ) -> IngestSummary:
        """Run one pipeline over ``files``; ``targets``: files that replace a given paper."""
        notify = listener or (lambda event: None)
        summary = IngestSummary()

        def record(event: IngestEvent) -> None:
            if event.status in STATUSES:
                summary.add(event.status, event.name, event.detail)
            notify(event)

        notify(IngestEvent("start", "", total=len(files) + len(problems) + len(done or [])))
        for name, why in problems:
            record(IngestEvent("failed", name, why))
        for event in done or []:
            record(event)
        # One ingest at a time; searches go on meanwhile: the pipeline takes the read/write
        # lock only to check and store, never while parsing or embedding.
        with self.core.ingest_lock:
            self.core.load()  # check the model against the store before any work
            run = (pipeline or Pipeline)(self, record, ocr=ocr, targets=targets)
            try:
                run.run_pdfs([f for f in files if f.suffix.lower() == ".pdf"])
                for feed in (f for f in files if f.suffix.lower() == ".jsonl"):
                    run.run_records(feed)
            finally:  # on Ctrl-C, what is stored stays; unembedded files are redone next run
                with self.core.lock:
                    self.core.save_indexes()
            if run.changed:
                link_translations(self.core)
        return summary

    def embed_docs(self, docs: list[ParsedDocument]) -> list[np.ndarray]:
        """The passage vectors of every chunk of ``docs``, in order, one array per encoder."""
        texts = passage_texts(docs)
        with self.core.lock:
            sides = self.core.encoders()
        vecs = [side.embed_passages(texts) for side in sides]
        self.core.save_indexes_if_due()
        return vecs

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
        """Write one document (all or nothing in SQLite), then add its vectors to every index."""
        store = self.core.store
        with self.core.lock:
            sides = self.core.encoders()
            old = store.papers.by_key(doc.key)
            old_ids = [] if old is None else store.chunks.ids_of(old.id)
            if replace_id is not None:
                old_ids += store.chunks.ids_of(replace_id)
            if self.core.memory.limit_mib:  # refused before anything is written
                grown = sides[0].vectors.size + len(doc.chunks) - len(set(old_ids))
                self.core.memory.check(sides, grown)
            extra = {side.slot or "": v for side, v in zip(sides[1:], vecs[1:], strict=True)}
            paper_id, ids = store.papers.add(
                doc,
                vecs[0],
                keyword_texts=[keyword_text(doc.meta.title, c.text) for c in doc.chunks],
                extra_vectors=extra,
                replace_id=replace_id,
                file_path=file_path,
                signature=signature,
                work_ids=work_ids,
            )
            langs = [c.lang for c in doc.chunks]
            for side, v in zip(sides, vecs, strict=True):
                side.remove(old_ids)
                side.add(ids, v, langs)
            return paper_id


class Pipeline:
    """One ingest run over a list of files, writing through ``ingester``.

    The library's lock is taken only around reads and writes of the store, so searches are
    served while files are parsed and embedded.
    """

    def __init__(
        self,
        ingester: Ingester,
        notify: Listener,
        *,
        ocr: bool = False,
        targets: dict[Path, int] | None = None,
    ) -> None:
        self.ingester, self.core, self.notify, self.ocr = ingester, ingester.core, notify, ocr
        self.targets = targets or {}  # resolved path -> the paper its text replaces
        self.pending: list[_Pending] = []
        self._stored_sigs: tuple[np.ndarray, np.ndarray] | None = None  # cache, per flush
        self.changed = False

    # -- PDFs

    def run_pdfs(self, pdfs: list[Path]) -> None:
        """Parse the PDFs in workers, then place and embed each."""
        s = self.core.settings
        known, jobs = self.prechecked(pdfs)
        outcomes = parse_many(
            jobs,
            workers=s.workers,
            timeout_s=self.parse_timeout_s(),
            memory_mb=s.parse_memory_mb,
        )
        self.consume(outcomes, known)

    def parse_timeout_s(self) -> float:
        """Seconds one file may take to parse (KB_PARSE_TIMEOUT_S, more with OCR)."""
        # OCR reads about a page every 10 s on 2 cores: give scanned files room
        return float(self.core.settings.parse_timeout_s * (OCR_TIMEOUT_FACTOR if self.ocr else 1))

    def prechecked(
        self, pdfs: list[Path]
    ) -> tuple[dict[Path, tuple[int | None, str]], list[ParseJob]]:
        """Check each PDF against the store (an event for those that need no parsing), and
        give (path -> (paper id it replaces, hash)) and the parse jobs of the others."""
        s = self.core.settings
        known: dict[Path, tuple[int | None, str]] = {}
        jobs: list[ParseJob] = []
        for path in pdfs:
            started = time.perf_counter()
            with self.core.lock:
                checked = self._precheck(path)
            if isinstance(checked, IngestEvent):
                checked.seconds = round(time.perf_counter() - started, 3)
                self._done(checked)
            else:
                known[path] = checked
                digest = checked[1]  # the file is hashed once, here in the pre-check
                jobs.append(
                    ParseJob(path, s.chunk_tokens, s.chunk_overlap, self.ocr, content_hash=digest)
                )
        return known, jobs

    def consume(
        self, outcomes: Iterator[ParseOutcome], known: dict[Path, tuple[int | None, str]]
    ) -> None:
        """Place each parse outcome (in order) and embed and store them in batches."""
        try:
            for out in outcomes:
                path = out.job.path
                if out.doc is None:
                    why = out.error or f"{path.name!r} could not be parsed."
                    self._done(IngestEvent("failed", str(path), why, seconds=out.seconds))
                    continue
                replace_id, _ = known[path]
                # progress: parsed (embedding comes in batches, so outcomes come later)
                self.notify(IngestEvent("parsed", str(path), pages=out.doc.meta.n_pages))
                with self.core.lock:
                    self._place(out.doc, replace_id, str(path.resolve()), out.seconds)
                # embed outside the lock, so searches are answered meanwhile
                if sum(len(p.doc.chunks) for p in self.pending) >= EMBED_BATCH_CHUNKS:
                    self.flush()
        finally:
            close(outcomes)
        self.flush()

    def _precheck(self, path: Path) -> IngestEvent | tuple[int | None, str]:
        """An event when the file needs no parsing, else (paper id it replaces, hash)."""
        name = str(path)
        try:
            size_mb, limit = path.stat().st_size / (1 << 20), self.core.settings.max_file_mb
            if size_mb > limit:
                raise IngestError(
                    f"{path.name!r} is {size_mb:.0f} MiB, over the "
                    f"{limit} MiB limit. Raise KB_MAX_FILE_MB to ingest it."
                )
            digest = sha256_file(path)
        except IngestError as e:
            return IngestEvent("failed", name, str(e))
        except OSError as e:
            return IngestEvent("failed", name, f"Cannot read {path.name!r}: {e.strerror or e}.")
        store, resolved = self.core.store, str(path.resolve())
        if (target := self.targets.get(path.resolve())) is not None:
            return (target, digest)
        owner = store.works.file_owner(resolved)
        if owner is not None and owner[1] == digest:
            if self._to_reread(owner[0]):
                return (owner[0], digest)
            return IngestEvent("skipped", name, "unchanged", paper_id=owner[0])
        same = store.works.paper_id_by_file_hash(digest)
        if same is not None and self._to_reread(same):
            return (same, digest)
        if same is not None and (owner is None or owner[0] != same):
            store.works.add_file(same, resolved, digest)
            detail = f"same content as paper {same}; file recorded on it"
            return IngestEvent("duplicate", name, detail, paper_id=same)
        return (owner[0] if owner else None, digest)

    def _to_reread(self, paper_id: int) -> bool:
        """With OCR on, whether a stored paper has pages to read again (unchanged or not)."""
        return self.ocr and bool(self.core.store.papers.get(paper_id).needs_ocr)

    def _place(
        self, doc: ParsedDocument, replace_id: int | None, file_path: str | None, seconds: float
    ) -> None:
        """Record a duplicate on its paper, or queue the document for embedding.

        A stored paper read again for its unread pages (same content) is left as it is when
        no page more has text now: re-embedding the same text would change nothing.
        """
        if replace_id is not None:
            old = self.core.store.papers.get(replace_id)
            unread = [p.number for p in doc.pages if p.needs_ocr]
            if old.content_hash == doc.content_hash and old.needs_ocr and unread == old.needs_ocr:
                note = ocr_note(doc, replace_id) or ""
                event = IngestEvent("skipped", doc.source, f"no page more read; {note}", replace_id)
                self._done(event, doc, seconds)
                return
        ids = tuple(sorted(work_ids(doc.meta)))
        signature = text_signature(" ".join(c.text for c in doc.chunks))
        if replace_id is None:
            dup = self._duplicate_of(set(ids), signature)
            if dup is not None:
                paper_id, why = dup
                if file_path is not None:
                    self.core.store.works.add_file(paper_id, file_path, doc.content_hash)
                detail = f"same work as paper {paper_id} ({why}); file recorded on it"
                event = IngestEvent("duplicate", doc.source, detail, paper_id=paper_id)
                self._done(event, doc, seconds)
                return
        self.pending.append(_Pending(doc, replace_id, file_path, seconds, signature, ids))

    def _duplicate_of(self, ids: set[str], signature: np.ndarray) -> tuple[int, str] | None:
        """(paper id, reason) of a stored or pending paper that is the same work, if any."""
        store = self.core.store
        found = store.works.papers_by_work_ids(ids)
        if found:
            return found[0], "same identifier"
        pending = [p for p in self.pending if p.signature is not None]
        twin = next((p for p in pending if ids & set(p.work_ids)), None)
        reason = "same identifier"
        if twin is None and pending:
            pending_sigs = [p.signature for p in pending if p.signature is not None]
            match = best_match(signature, np.stack(pending_sigs))
            if match is not None:
                twin, reason = pending[match[0]], f"near-identical text, similarity {match[1]:.2f}"
        if twin is not None:
            key = twin.doc.key
            self.flush()  # store the twin first, so the duplicate has a paper to join
            stored = store.papers.by_key(key)
            return (stored.id, reason) if stored is not None else None
        if self._stored_sigs is None:
            self._stored_sigs = store.works.signatures()
        paper_ids, sigs = self._stored_sigs
        if len(paper_ids) and sigs.shape[1] == len(signature):
            match = best_match(signature, sigs)
            if match is not None:
                row, similarity = match
                return int(paper_ids[row]), f"near-identical text, similarity {similarity:.2f}"
        return None

    # -- records

    def run_records(self, path: Path) -> None:
        """Ingest one JSONL feed: changed or new records are embedded in batches."""
        s, store = self.core.settings, self.core.store
        started = time.perf_counter()
        try:
            items = list(read_records(path, max_tokens=s.chunk_tokens, overlap=s.chunk_overlap))
        except IngestError as e:
            items = [e]
        except OSError as e:
            items = [IngestError(f"Cannot read {path.name!r}: {e.strerror or e}.")]
        for item in items:
            if isinstance(item, IngestError):
                self._done(IngestEvent("failed", str(path), str(item)))
                continue
            with self.core.lock:
                known = store.papers.by_key(item.key)
            if known is not None and known.content_hash == item.content_hash:
                self._done(IngestEvent("skipped", item.source, "unchanged", paper_id=known.id))
                continue
            replace_id = None if known is None else known.id
            seconds = (time.perf_counter() - started) / max(len(items), 1)
            ids = tuple(sorted(work_ids(item.meta)))
            self.pending.append(_Pending(item, replace_id, None, seconds, None, ids))
            if len(self.pending) >= RECORD_BATCH:
                self.flush()
        self.flush()
        self.notify(IngestEvent("file", str(path)))  # progress: one feed done

    # -- embedding and storing

    def flush(self) -> None:
        """Embed every pending document in one batch per encoder, then store each."""
        pending, self.pending = self.pending, []
        self._stored_sigs = None
        empty = [p for p in pending if not p.doc.chunks]
        for p in empty:
            self._done(IngestEvent("failed", p.doc.source, f"{p.doc.source!r} has no text."))
        pending = [p for p in pending if p.doc.chunks]
        if not pending:
            return
        vecs = self.embed([p.doc for p in pending])
        start = 0
        for p in pending:
            end = start + len(p.doc.chunks)
            # The check and the write are one transaction: another process ingesting the same
            # files (a second `kb ingest`, the server's job) cannot store it in between.
            with self.core.lock, self.core.store.transaction():
                twin = self._stored_meanwhile(p)
                if twin is None:
                    paper_id = self.ingester.store_doc(
                        p.doc,
                        [v[start:end] for v in vecs],
                        replace_id=p.replace_id,
                        file_path=p.file_path,
                        signature=p.signature,
                        work_ids=p.work_ids,
                    )
            start = end
            if twin is not None:
                detail = "unchanged (stored meanwhile by another ingest)"
                self._done(IngestEvent("skipped", p.doc.source, detail, paper_id=twin))
                continue
            status = "ingested" if p.replace_id is None else "updated"
            detail = f"{len(p.doc.chunks)} chunks"
            if p.doc.kind == "pdf" and (note := ocr_note(p.doc, paper_id)):
                detail += f"; {note}"
            event = IngestEvent(status, p.doc.source, detail, paper_id=paper_id)
            self._done(event, p.doc, p.seconds)
        self.changed = True

    def embed(self, docs: list[ParsedDocument]) -> list[np.ndarray]:
        """The passage vectors of every chunk of ``docs``, one array per encoder."""
        return self.ingester.embed_docs(docs)

    def _stored_meanwhile(self, p: _Pending) -> int | None:
        """The paper another ingest stored with this very content since it was checked."""
        if p.replace_id is not None:
            return None
        known = self.core.store.papers.by_key(p.doc.key)
        if known is not None and known.content_hash == p.doc.content_hash:
            return known.id
        return None

    def _done(
        self, event: IngestEvent, doc: ParsedDocument | None = None, seconds: float | None = None
    ) -> None:
        if doc is not None:
            for name, value in describe_doc(doc).items():
                setattr(event, name, value)
        if seconds is not None:
            event.seconds = round(seconds, 3)
        self.notify(event)


def close(outcomes: Iterator[Any]) -> None:
    """Close a generator of outcomes (its workers stop) before it is garbage-collected."""
    stop = getattr(outcomes, "close", None)
    if stop is not None:
        stop()
