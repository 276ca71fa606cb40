"""``kb import-bundle``: merge a ``.kbundle`` into the library (see ``kb.bundle.export``).

Application layer over ``kb.bundle.archive``. Each paper is checked against the library like a
newly ingested file:

- same key, or same content as a paper or one of its files: already here;
- same DOI / arXiv id, or near-identical text (MinHash): the same work;
- else stored as a new paper (``imported``) with its metadata, edits, tags and page reports,
  its chunks and vectors (``Library.store_doc``).

A paper found here gains the bundle's tags and PDFs; it is reported ``merged`` when that
changed something and ``skipped`` when not, so importing a bundle twice changes nothing.

Then the bundle's collections (reading lists): one whose name (ignoring case) is new here is
created; one that has a namesake here is merged into it: its papers (mapped to the papers
here, also those found already here) are added, and a bundle note only fills an empty note
here (a note here is never overwritten; the same holds for the description).

All of it, papers, collections and translation links, is one store transaction (nested store
calls are savepoints), taken under the library's lock: the import commits whole or not at all.
While it runs, this process's searches wait for it, and another process's writes (a
``kb serve`` on the same store) wait on SQLite's busy timeout; its reads go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.dense import DenseIndex
from ingest.dedup import best_match
from kb.bundle.archive import BundleReader
from kb.bundle.records import BundleCollection, BundleEncoder, BundlePaper
from kb.errors import CollectionNotFound, IndexMismatch, InvalidInput, KBError
from kb.library.curation import check_edit
from kb.library.encoders import passage_text
from kb.store import sha256_file
from kb.store.works import EDITABLE
from kb.types import ChunkDraft, PageReport, PaperMeta, ParsedDocument

if TYPE_CHECKING:
    from kb.library.facade import Library

Progress = Callable[[int, int], None]  # (papers done, papers in all)


@dataclass
class ImportSummary:
    """What one import did, paper by paper (``key``, paper id here, detail).

    ``failed`` and ``collections_failed`` stay empty since imports are all or nothing (a
    failure raises and nothing is imported); they are kept for the JSON shape.
    """

    imported: list[tuple[str, int, str]] = field(default_factory=list)
    merged: list[tuple[str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # collections: (name, collection id here, detail); failed: (name, error)
    collections_created: list[tuple[str, int, str]] = field(default_factory=list)
    collections_merged: list[tuple[str, int, str]] = field(default_factory=list)
    collections_unchanged: list[tuple[str, int, str]] = field(default_factory=list)
    collections_failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.collections_failed

    def collections_line(self) -> str:
        line = (
            f"collections: created {len(self.collections_created)}, "
            f"merged {len(self.collections_merged)}, "
            f"unchanged {len(self.collections_unchanged)}"
        )
        return line + (f", failed {n}" if (n := len(self.collections_failed)) else "")

    def line(self) -> str:
        return (
            f"imported {len(self.imported)}, merged {len(self.merged)}, "
            f"skipped {len(self.skipped)}, failed {len(self.failed)}"
        )

    def to_dict(self) -> dict[str, Any]:
        def rows(items: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
            return [{"key": k, "paper_id": i, "detail": d} for k, i, d in items]

        def lists(items: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
            return [{"name": n, "collection_id": i, "detail": d} for n, i, d in items]

        collections = {
            "counts": {
                "created": len(self.collections_created),
                "merged": len(self.collections_merged),
                "unchanged": len(self.collections_unchanged),
                "failed": len(self.collections_failed),
            },
            "created": lists(self.collections_created),
            "merged": lists(self.collections_merged),
            "unchanged": lists(self.collections_unchanged),
            "failed": [{"name": n, "error": e} for n, e in self.collections_failed],
        }

        return {
            "counts": {
                "imported": len(self.imported),
                "merged": len(self.merged),
                "skipped": len(self.skipped),
                "failed": len(self.failed),
            },
            "imported": rows(self.imported),
            "merged": rows(self.merged),
            "skipped": rows(self.skipped),
            "failed": [{"key": k, "error": e} for k, e in self.failed],
            "collections": collections,
            "notes": list(self.notes),
        }


def import_bundle(lib: Library, path: Path, *, progress: Progress | None = None) -> ImportSummary:
    """Merge the bundle at ``path`` into the library; see the module docstring.

    The whole archive is checked first (``BundleReader``: checksums, sizes, names, every PDF's
    hash and header, every paper line); a damaged, foreign or hostile one raises
    ``InvalidInput`` before anything is written, and one made with other encoder weights
    raises ``IndexMismatch``. Then the import is all or nothing: one store transaction; on
    any failure it is rolled back, the indexes are reopened from disk (they mirror the store
    as it was) and the PDFs this import wrote are deleted, so the library is as before.

    Memory is bounded by one paper (its line of papers.jsonl, at most 32 MiB, and its
    vectors) plus a signature (1 KiB) and a summary row per paper: vectors are read from the
    archive in paper order, nothing is unpacked to disk. The indexes grow by the vectors
    imported, which are stored uncompressed in the bundle, so by at most the bundle's size.
    """
    reader = BundleReader(path)
    try:
        with lib.ingest_turn():
            return _import(lib, reader, progress)
    finally:
        reader.close()


def _import(lib: Library, reader: BundleReader, progress: Progress | None) -> ImportSummary:
    summary = ImportSummary()
    with lib.locked():
        lib.load()
        sides = lib.encoders()
    columns = _plan_encoders(reader, sides, summary.notes)
    chunking = reader.manifest.get("chunking", {})
    s = lib.settings
    if chunking and chunking != {"max_tokens": s.chunk_tokens, "overlap": s.chunk_overlap}:
        summary.notes.append(f"the bundle was chunked with {chunking}; its chunks are kept as is")
    written: list[Path] = []  # PDFs this import put in files_dir: deleted if it fails
    # The library lock, then the store's (the documented order), for the whole import: the
    # store and the indexes change together, and all of it commits or none of it.
    with lib.locked() as store:
        try:
            with store.transaction():
                importer = _Importer(lib, reader, sides, columns, summary, written)
                importer.run(progress)
                here = {k: pid for k, pid, _ in summary.imported + summary.merged + summary.skipped}
                for found in reader.collections:
                    try:
                        _place_collection(lib, found, here, summary)
                    except KBError as e:
                        raise type(e)(
                            f"Collection {found.name!r} of the bundle could not be imported: "
                            f"{e} Nothing was imported."
                        ) from e
                if summary.imported:
                    lib.link_translations()
        except BaseException:
            lib.reload_indexes()  # they hold the rolled-back papers' vectors: reopened from disk
            for pdf in written:
                pdf.unlink(missing_ok=True)
            raise
        lib.save_indexes()
    return summary


def _place_collection(
    lib: Library, theirs: BundleCollection, here: dict[str, int], summary: ImportSummary
) -> None:
    """Create the bundle collection ``theirs``, or merge it into its namesake here.

    Args:
        here: bundle paper key -> paper id here (papers that failed are not in it).
    """
    name = " ".join(theirs.name.split())
    items = [(here[i.key], i.note.strip()) for i in theirs.items if i.key in here]
    with lib.locked():  # one collection at a time, as a whole
        try:
            mine = lib.collection(name)
        except CollectionNotFound:
            made = lib.create_collection(name, theirs.description)
            for pid, note in items:
                lib.add_to_collection(made.id, pid, note)
            summary.collections_created.append((made.name, made.id, f"{len(items)} papers"))
            return
        notes = {i.paper.id: i.note for i in mine.items}
        added = filled = 0
        for pid, note in items:
            if pid in notes and (notes[pid] or not note):
                continue  # a note here stays; an empty bundle note adds nothing
            added, filled = added + (pid not in notes), filled + (pid in notes)
            lib.add_to_collection(mine.id, pid, note)
            notes[pid] = note
        changes = [f"added {added} papers"] * bool(added)
        changes += [f"filled {filled} notes"] * bool(filled)
        if theirs.description.strip() and not mine.description:
            lib.update_collection(mine.id, description=theirs.description)
            changes.append("filled its description")
    row = (mine.name, mine.id, "; ".join(changes) or "nothing new")
    (summary.collections_merged if changes else summary.collections_unchanged).append(row)


def _plan_encoders(
    reader: BundleReader, sides: list[DenseIndex], notes: list[str]
) -> list[int | None]:
    """For each encoder here, the bundle's vector file to use (None: embed here)."""
    theirs = {e.slot: n for n, e in enumerate(reader.encoders)}
    plan: list[int | None] = []
    for side in sides:
        n = theirs.get(side.slot)
        mine = side.identity
        if n is None and side.slot is None:
            raise InvalidInput(f"The bundle {reader.path.name!r} has no main-model vectors.")
        if n is None:
            notes.append(f"the bundle has no {side.slot} vectors: they were embedded here")
        else:
            enc = reader.encoders[n]
            if (enc.dim, enc.fingerprint) != (mine.dim, mine.fingerprint):
                raise IndexMismatch(_mismatch(reader.path.name, enc, mine.name, mine.dim, side))
        plan.append(n)
    for slot in set(theirs) - {side.slot for side in sides}:
        notes.append(f"the bundle's {slot} vectors were ignored (that encoder is off here)")
    return plan


def _mismatch(name: str, enc: BundleEncoder, model: str, dim: int, side: DenseIndex) -> str:
    which = "main model" if side.slot is None else f"second encoder ({side.slot})"
    setting = "KB_MODEL" if side.slot is None else "KB_SECOND_ENCODER"
    return (
        f"The bundle {name!r} was made with {which} {enc.model!r} (dim {enc.dim}, fingerprint "
        f"{enc.fingerprint}), but this library uses {model!r} (dim {dim}, fingerprint "
        f"{side.identity.fingerprint}); its vectors cannot be mixed with these. Import it into a "
        f"library that uses {enc.model!r} ({setting}), or have the sender switch to {model!r}, "
        "run `kb reindex` and export again."
    )


class _Importer:
    """Places the bundle's papers one at a time (held: the ingest turn, the library's lock
    and the import's transaction)."""

    def __init__(
        self,
        lib: Library,
        reader: BundleReader,
        sides: list[DenseIndex],
        columns: list[int | None],
        summary: ImportSummary,
        written: list[Path],
    ) -> None:
        self.lib, self.reader, self.sides, self.columns = lib, reader, sides, columns
        self.summary, self.written = summary, written
        self.used = sorted({c for c in columns if c is not None})  # vector files to read
        self.rows: dict[int, np.ndarray] = {}  # the current paper's rows, per vector file
        with lib.locked():
            self.sig_ids, self.sigs = lib.store.works.signatures()

    def run(self, progress: Progress | None) -> None:
        """Place every paper; the first failure stops the import, naming the paper."""
        total = self.reader.manifest["counts"].get("papers")
        total = total if isinstance(total, int) else 0
        with contextlib.closing(self.reader.papers_with_vectors(self.used)) as papers:
            for done, (entry, rows) in enumerate(papers, 1):
                self.rows = dict(zip(self.used, rows, strict=True))
                try:
                    self.place(entry)
                except KBError as e:
                    raise type(e)(
                        f"Paper {entry.key!r} of the bundle could not be imported: {e} "
                        "Nothing was imported."
                    ) from e
                if progress:
                    progress(done, max(total, done))

    def place(self, entry: BundlePaper) -> None:
        store = self.lib.store
        with self.lib.locked():
            found = self._find(entry)
        if found is None:
            self._store_new(entry)
            return
        pid, why = found
        added = self._add_pdfs(entry, pid)
        with self.lib.locked():
            clean = {t.strip() for t in entry.tags if t.strip() and len(t.strip()) <= 100}
            new_tags = sorted(clean - set(store.papers.get(pid).tags))
            if new_tags:
                store.papers.tag(pid, new_tags)
        changes = [f"{len(added)} PDF(s)"] * bool(added) + [f"tags {new_tags}"] * bool(new_tags)
        if changes:
            detail = f"{why} paper {pid}; added {', '.join(changes)}"
            self.summary.merged.append((entry.key, pid, detail))
        else:
            self.summary.skipped.append((entry.key, pid, f"{why} paper {pid}; nothing new"))

    def _find(self, entry: BundlePaper) -> tuple[int, str] | None:
        """(paper id here, why) of the paper this entry already is, if any."""
        store = self.lib.store
        same = store.papers.by_key(entry.key)
        if same is not None:
            return same.id, "already here as"
        same_hash = store.works.paper_id_by_file_hash(entry.content_hash)
        if same_hash is not None:
            return same_hash, "same content as"
        by_id = store.works.papers_by_work_ids(set(entry.work_ids))
        if by_id:
            return by_id[0], "same DOI / arXiv id as"
        sig = entry.signature_array
        if sig is not None and len(self.sig_ids) and self.sigs.shape[1] == len(sig):
            match = best_match(sig, self.sigs)
            if match is not None:
                return int(self.sig_ids[match[0]]), f"near-identical text ({match[1]:.2f}) to"
        return None

    def _store_new(self, entry: BundlePaper) -> None:
        doc = _document(entry)
        edits = _edits(entry)
        tags = [t.strip() for t in entry.tags if t.strip() and len(t.strip()) <= 100]
        pairs = zip(self.sides, self.columns, strict=True)
        vecs = [self._vectors(entry, doc, side, col) for side, col in pairs]
        files = self._write_pdfs(entry)
        primary = files.pop(entry.content_hash, None)
        if primary is not None:
            doc = _with_source(doc, primary)
        sig = entry.signature_array
        store = self.lib.store
        with self.lib.locked():
            pid = self.lib.store_doc(
                doc, vecs, file_path=primary, signature=sig, work_ids=tuple(entry.work_ids)
            )
            for content_hash, path in files.items():
                store.works.add_file(pid, path, content_hash)
            if edits:
                store.works.edit_paper(pid, edits)
            if tags:
                store.papers.tag(pid, tags)
        if sig is not None and (not len(self.sig_ids) or self.sigs.shape[1] == len(sig)):
            self.sig_ids = np.append(self.sig_ids, pid)
            self.sigs = np.vstack([self.sigs.reshape(-1, len(sig)), sig[None, :]])
        detail = f"{len(doc.chunks)} chunks" + (f", {len(files) + 1} PDF(s)" if primary else "")
        self.summary.imported.append((entry.key, pid, detail))

    def _vectors(
        self, entry: BundlePaper, doc: ParsedDocument, side: DenseIndex, col: int | None
    ) -> np.ndarray:
        if col is not None:
            return np.array(self.rows[col], dtype=np.float32)
        return side.embed_passages([passage_text(doc.meta.title, c.text) for c in doc.chunks])

    def _write_pdfs(
        self, entry: BundlePaper, have: AbstractSet[str] = frozenset()
    ) -> dict[str, str]:
        """Write the entry's PDFs (but those in ``have``) into ``files_dir``: hash -> path."""
        out = {}
        limit = self.lib.settings.max_file_mb << 20
        for content_hash in (h for h in entry.pdfs if h not in have):
            if self.reader.pdf_size(content_hash) > limit:
                self.summary.notes.append(
                    f"{content_hash[:12]}.pdf is over KB_MAX_FILE_MB; left out"
                )
                continue
            dest = self.lib.settings.files_dir / f"{content_hash}.pdf"
            if not (dest.is_file() and sha256_file(dest) == content_hash):
                if not dest.exists():
                    self.written.append(dest)
                self.reader.copy_pdf(content_hash, dest)
            out[content_hash] = str(dest.resolve())
        return out

    def _add_pdfs(self, entry: BundlePaper, pid: int) -> list[str]:
        """Record the entry's PDFs on paper ``pid``; returns the paths that were new to it."""
        store, added = self.lib.store, []
        with self.lib.locked():
            files = store.works.paper_internals(pid)["files"]
        have = {h for path, h in files if Path(path).is_file()}
        for content_hash, path in self._write_pdfs(entry, have).items():
            with self.lib.locked():
                owner = store.works.file_owner(path)
                if owner is None or owner[0] != pid:
                    store.works.add_file(pid, path, content_hash)
                    added.append(path)
        return added


def _document(entry: BundlePaper) -> ParsedDocument:
    """The bundle entry as a parsed document, ready for ``Library.store_doc``."""
    meta = PaperMeta(**asdict(entry.meta))  # the records have the same fields, checked
    chunks = [ChunkDraft(**asdict(c)) for c in entry.chunks]
    pages = [PageReport(**asdict(p)) for p in entry.pages]
    return ParsedDocument(
        key=entry.key,
        source=entry.source,
        kind="pdf" if entry.kind == "pdf" else "record",
        content_hash=entry.content_hash,
        meta=meta,
        chunks=chunks,
        pages=pages,
        cited_arxiv_ids=list(entry.cited),
    )


def _edits(entry: BundlePaper) -> dict[str, Any]:
    """The entry's recorded corrections, checked like `kb edit` input (None: a cleared field)."""
    edits = {k: v for k, v in entry.edits.items() if k in EDITABLE}
    given = {k: v for k, v in edits.items() if v is not None}
    if given:
        check_edit(given)  # InvalidInput on a bad value: the paper fails, nothing stored
    return edits


def _with_source(doc: ParsedDocument, path: str) -> ParsedDocument:
    return replace(doc, source=path)
