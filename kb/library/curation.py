"""Library methods that change papers: tags, corrections, deletion, uploaded PDFs.

A mixin of ``kb.library.facade.Library`` (split out to keep modules small); it uses the Library's
store, indexes, settings and lock. Uploaded PDFs are kept in ``Settings.files_dir`` by
``kb.store.uploads``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from kb.errors import IngestError, InvalidInput, NotFound
from kb.library.ingest import STATUSES, IngestEvent
from kb.library.maintenance import check_edit
from kb.store.uploads import discard, is_kept, save_upload
from kb.types import Paper

if TYPE_CHECKING:
    from kb.library.facade import Library as _Base
else:
    _Base = object


class Curation(_Base):
    """Methods of the Library that edit, tag, delete or add single papers."""

    def pdf_path(self, ref: str | int) -> Path:
        """The paper's first PDF file that still exists on disk (NotFound when none)."""
        paper = self.paper(ref)
        if not paper.files:
            raise NotFound(f"Paper {paper.id} has no PDF: it was ingested from a record.")
        for name in paper.files:
            if Path(name).is_file():
                return Path(name)
        raise NotFound(
            f"The PDF of paper {paper.id} is gone from disk ({paper.files[0]}); put it back, "
            "or re-ingest the paper from another copy."
        )

    def tag(self, ref: str | int, tags: list[str], *, remove: bool = False) -> Paper:
        """Add (or remove) tags on a paper; returns the paper as it is now."""
        clean = _clean_tags(tags)
        with self._lock:
            paper = self.paper(ref)
            self.store.tag(paper.id, clean, remove=remove)
            return self.store.paper(paper.id)

    def update_paper(
        self,
        ref: str | int,
        fields: dict[str, Any],
        *,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Paper:
        """Correct metadata (as ``edit``) and add or remove tags, all checked before any change.

        Args:
            fields: editable fields (title, authors, year, abstract, doi, arxiv_id, url); an
                empty string clears a field.
        """
        if fields:
            check_edit(fields)
        added = _clean_tags(add_tags) if add_tags else []
        removed = _clean_tags(remove_tags) if remove_tags else []
        if not fields and not added and not removed:
            raise InvalidInput("Nothing to change: give at least one field or tag.")
        with self._lock:
            paper = self.paper(ref)
            if fields:
                self.edit(paper.id, fields)
            if added:
                self.store.tag(paper.id, added)
            if removed:
                self.store.tag(paper.id, removed, remove=True)
            return self.store.paper(paper.id)

    def remove(self, ref: str | int) -> Paper:
        """Delete a paper; its uploaded copies in ``files_dir`` go too (the user's files stay)."""
        with self._lock:
            paper = self.paper(ref)
            ids = self.store.remove_paper(paper.id)
            for side in self.dense:
                side.remove(ids)
            self._save_index()
            self._discard_unused([Path(f) for f in paper.files])
            return paper

    def add_upload(self, stream: BinaryIO, name: str) -> tuple[str, Paper]:
        """Keep an uploaded PDF in ``files_dir`` and ingest it now.

        Returns:
            (status, paper): status ``ingested`` or ``updated`` for a new paper, ``duplicate``
            or ``skipped`` when the library already had it (``paper`` is that one).

        Raises:
            TooLarge, UnsupportedMedia, InvalidInput for a bad upload; IngestError when the
            PDF cannot be read (the kept file is then deleted).
        """
        path = self.keep_upload(stream, name)
        try:
            return self.ingest_one(path, name)
        except IngestError:
            self._discard_unused([path])
            raise

    def keep_upload(self, stream: BinaryIO, name: str) -> Path:
        """Copy an uploaded PDF into ``files_dir`` (named by its content hash), size-checked."""
        limit = self.settings.upload_max_mb << 20
        return save_upload(stream, self.settings.files_dir, max_bytes=limit, name=name)

    def ingest_one(self, path: Path, name: str) -> tuple[str, Paper]:
        """Ingest one PDF; (status, paper) as ``add_upload``; IngestError naming ``name``."""
        events: list[IngestEvent] = []
        self.ingest([path], lambda e: events.append(e) if e.status in STATUSES else None)
        last = events[-1] if events else None
        if last is None or last.status == "failed" or last.paper_id is None:
            why = last.detail if last is not None else "nothing was ingested"
            why = why.replace(str(path), name).replace(path.name, name)
            raise IngestError(f"{name!r} could not be ingested: {why}")
        return last.status, self.paper(last.paper_id)

    def _discard_unused(self, paths: list[Path]) -> None:
        """Delete kept uploads (in ``files_dir``) that no paper records any more."""
        with self._lock:
            for path in paths:
                kept = is_kept(path, self.settings.files_dir)
                if kept and self.store.file_owner(str(path.resolve())) is None:
                    discard(path)


def _clean_tags(tags: list[str]) -> list[str]:
    clean = [t.strip() for t in tags if t.strip()]
    if not clean or any(len(t) > 100 for t in clean):
        raise InvalidInput("Give one or more tags of 1 to 100 characters.")
    return clean
