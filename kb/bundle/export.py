"""Library exchange: export papers, chunks and vectors to one ``.kbundle`` file; import one.

Application layer over ``kb.bundle.archive`` (the archive format). Two groups pool their reading
without sharing a server: one runs ``kb export-bundle``, the other ``kb import-bundle``
(``kb.bundle.importer``). The vectors travel as stored, so the importing side embeds nothing
when both use the same encoders (checked by weight fingerprint; other weights are refused).
The collections (reading lists) of the exported papers travel too, with their notes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.dense import DenseIndex
from kb.bundle.archive import FORMAT, FORMAT_VERSION, BundleWriter
from kb.bundle.importer import ImportSummary, import_bundle
from kb.bundle.records import (
    BundleChunk,
    BundleCollection,
    BundleEncoder,
    BundleItem,
    BundleMeta,
    BundlePage,
    BundlePaper,
    known_lang,
)
from kb.errors import InvalidInput, StoreError
from kb.store import atomic_path
from kb.types import Paper, PaperMeta

if TYPE_CHECKING:
    from kb.library.facade import Library

__all__ = ["ExportSummary", "ImportSummary", "export_bundle", "import_bundle", "select_papers"]

Progress = Callable[[int, int], None]  # (papers done, papers in all)
_PAGE = 500  # papers read per query on export


@dataclass
class ExportSummary:
    path: str
    papers: int
    chunks: int
    pdfs: int
    encoders: list[str]
    collections: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ---------------------------------------------------------------- export


def export_bundle(
    lib: Library,
    dest: Path,
    *,
    with_pdfs: bool = False,
    paper_ids: list[int] | None = None,
    collection: int | str | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the library (or the papers ``paper_ids``) to the bundle ``dest``, atomically.

    Args:
        with_pdfs: also carry each paper's PDF files (those still on disk and unchanged).
        paper_ids: only these papers (default: all).
        collection: carry only this collection (id or name); default: every collection
            (with ``paper_ids``: every one that holds one of them), each with only the
            bundle's papers.
    """
    if dest.is_dir():
        raise InvalidInput(f"{dest} is a folder; give the bundle's file name, e.g. lab.kbundle.")
    # One ingest at a time: the papers stay as counted; searches go on meanwhile.
    with lib.ingest_turn():
        with lib.locked():
            lib.load()  # the encoders, checked against the store; fills missing vectors
            sides = lib.encoders()
            papers = _papers(lib, paper_ids)
            lists = _collections(lib, papers, collection, whole=paper_ids is None)
        encoders = [_encoder(side) for side in sides]
        n_chunks = sum(p.n_chunks for p in papers)
        notes: list[str] = []
        try:
            writer = _write(
                lib, dest, papers, lists, sides, encoders, n_chunks, with_pdfs, notes, progress
            )
        except OSError as e:
            raise StoreError(
                f"Cannot write the bundle {dest}: {e}. Check the folder and free space."
            ) from e
    pdfs = len(writer.pdfs)
    names = [e.model if e.slot is None else f"{e.slot}: {e.model}" for e in encoders]
    return ExportSummary(str(dest), len(papers), n_chunks, pdfs, names, len(lists), notes)


def _write(
    lib: Library,
    dest: Path,
    papers: list[Paper],
    lists: list[BundleCollection],
    sides: list[DenseIndex],
    encoders: list[BundleEncoder],
    n_chunks: int,
    with_pdfs: bool,
    notes: list[str],
    progress: Progress | None,
) -> BundleWriter:
    """Write the bundle: into a temp file next to ``dest``, which then replaces it."""
    with (
        atomic_path(dest) as tmp,
        tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as work,
    ):
        writer = BundleWriter(tmp, Path(work), encoders, n_chunks)
        try:
            for done, paper in enumerate(papers, 1):
                with lib.locked():
                    entry, vectors, files = _export_paper(lib, paper, sides)
                if with_pdfs:
                    entry.pdfs = _add_pdfs(writer, files, notes)
                writer.add_paper(entry, vectors)
                if progress:
                    progress(done, len(papers))
            counts = {
                "papers": len(papers),
                "chunks": n_chunks,
                "pdfs": len(writer.pdfs),
                "collections": len(lists),
            }
            writer.finish(_manifest(lib, encoders, counts), lists)
        finally:
            writer.close()
    return writer


def select_papers(lib: Library, refs: list[str], collection: str | None = None) -> list[int]:
    """Ids of the papers named by ``refs`` (ids or keys) and in ``collection`` (id or name)."""
    chosen = [lib.paper(ref).id for ref in refs]
    if collection is not None:
        chosen += [item.paper.id for item in lib.collection(collection).items]
    if not chosen:
        raise InvalidInput("No papers selected: the given ids and collection name none.")
    return list(dict.fromkeys(chosen))


def _papers(lib: Library, ids: list[int] | None) -> list[Paper]:
    """The papers to export, in the given order (default: all, by id)."""
    out: list[Paper] = []
    if ids is None:
        while page := lib.store.papers.select(limit=_PAGE, offset=len(out)):
            out += page
        return out
    for start in range(0, len(ids), _PAGE):
        found = lib.store.papers.by_ids(ids[start : start + _PAGE])
        missing = [i for i in ids[start : start + _PAGE] if i not in found]
        if missing:
            raise InvalidInput(f"No papers with ids {missing[:10]}. `kb list` shows the ids.")
        out += [found[i] for i in ids[start : start + _PAGE]]
    return out


def _collections(
    lib: Library, papers: list[Paper], ref: int | str | None, *, whole: bool
) -> list[BundleCollection]:
    """The collections to carry (held: the library's lock), with only the bundle's papers.

    Args:
        ref: only this collection; else every one, or (``whole`` False: a selection of
            papers) every one that holds one of the papers.
    """
    found = [lib.collection(ref)] if ref is not None else lib.collections()
    keys = {p.id: p.key for p in papers}
    out = []
    for c in found:
        items = [
            BundleItem(keys[i.paper.id], i.note, i.added_at) for i in c.items if i.paper.id in keys
        ]
        if items or whole or ref is not None:
            out.append(BundleCollection(c.name, c.description, c.created_at, items))
    return out


def _encoder(side: DenseIndex) -> BundleEncoder:
    ident = side.identity
    return BundleEncoder(side.slot, ident.name, ident.dim, ident.fingerprint)


def _export_paper(
    lib: Library, paper: Paper, sides: list[DenseIndex]
) -> tuple[BundlePaper, list[np.ndarray], list[tuple[str, str]]]:
    """One paper's bundle entry, its chunks' vectors per encoder, and its (path, hash) files."""
    store = lib.store
    chunks = sorted(store.chunks.by_ids(store.chunks.ids_of(paper.id)).values(), key=_by_ord)
    cids = [c.id for c in chunks]
    vectors = [store.chunks.vectors_of(cids, s.identity.dim, s.slot) for s in sides]
    extra = store.works.paper_internals(paper.id)
    twins = store.papers.by_ids(paper.translations)
    meta = PaperMeta(
        paper.title, paper.authors, paper.year, paper.abstract, paper.doi, paper.arxiv_id,
        known_lang(paper.lang), paper.n_pages, paper.url, paper.author_kind, paper.title_en,
    )  # fmt: skip
    entry = BundlePaper(
        key=paper.key,
        kind=paper.kind,
        source=paper.source,
        content_hash=paper.content_hash,
        meta=BundleMeta(**meta.__dict__),
        chunks=[BundleChunk(c.ord, c.text, c.lang, c.page_start, c.page_end) for c in chunks],
        row=0,
        tags=list(paper.tags),
        edits=extra["edits"],
        work_ids=extra["work_ids"],
        pages=[BundlePage(**p.__dict__) for p in store.works.pages_of(paper.id)],
        cited=extra["cited"],
        signature=None if extra["signature"] is None else extra["signature"].hex(),
        translations=[twins[t].key for t in paper.translations if t in twins],
    )
    return entry, vectors, extra["files"]


def _by_ord(chunk: Any) -> int:
    return int(chunk.ord)


def _add_pdfs(writer: BundleWriter, files: list[tuple[str, str]], notes: list[str]) -> list[str]:
    """Put a paper's files in the bundle; a file gone or changed since ingest is left out."""
    hashes = []
    for path, content_hash in files:
        try:
            data = Path(path).read_bytes()
        except OSError:
            notes.append(f"{path} is gone from disk; left out")
            continue
        if hashlib.sha256(data).hexdigest() != content_hash:
            notes.append(f"{path} changed since it was ingested; left out")
            continue
        writer.add_pdf(content_hash, data)
        if content_hash not in hashes:
            hashes.append(content_hash)
    return hashes


def _manifest(
    lib: Library, encoders: list[BundleEncoder], counts: dict[str, int]
) -> dict[str, Any]:
    s = lib.settings
    try:
        version = importlib.metadata.version("kb")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kb_version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoders": [e.__dict__ for e in encoders],
        "chunking": {"max_tokens": s.chunk_tokens, "overlap": s.chunk_overlap},
        "counts": counts,
    }
