"""The curation service: corrections, tags, deletion and uploaded PDFs of single papers.

Uploaded PDFs are kept in ``Settings.files_dir`` by ``kb.store.uploads``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ingest.lang import KNOWN_LANGS, normalize_lang
from kb.errors import IngestError, InvalidInput, NotFound
from kb.library.core import Core
from kb.library.encoders import keyword_text, passage_text
from kb.library.ingest import STATUSES, Ingester, IngestEvent
from kb.store.uploads import discard, is_kept, save_upload
from kb.types import Paper

REEMBED_SLICE = 32  # chunks embedded between two progress calls of a title edit


class Curation:
    """Edits, tags, deletes or adds single papers."""

    def __init__(self, core: Core, ingester: Ingester) -> None:
        self.core, self.ingester = core, ingester

    def pdf_path(self, ref: str | int) -> Path:
        """The paper's first PDF file that still exists on disk (NotFound when none)."""
        paper = self.core.paper(ref)
        if not paper.files:
            raise NotFound(f"Paper {paper.id} has no PDF: it was ingested from a record.")
        for name in paper.files:
            if Path(name).is_file():
                return Path(name)
        raise NotFound(
            f"The PDF of paper {paper.id} is gone from disk ({paper.files[0]}); put it back, "
            "or re-ingest the paper from another copy."
        )

    def edit(
        self,
        ref: str | int,
        fields: dict[str, Any],
        progress: Callable[[int, int], None] | None = None,
    ) -> Paper:
        """Correct a paper's metadata; the correction is kept and survives re-ingest.

        A new title is re-embedded with the chunks (each chunk is embedded with its title);
        ``progress(done, total)`` follows that, in chunks times encoders.
        """
        fields = check_edit(fields)
        with self.core.lock:
            paper = self.core.paper(ref)
            self.core.store.works.edit_paper(paper.id, fields)
            if "title" in fields and fields["title"] != paper.title:
                self._reembed_paper(paper.id, fields["title"], progress)
            return self.core.store.papers.get(paper.id)

    def _reembed_paper(
        self, paper_id: int, title: str, progress: Callable[[int, int], None] | None
    ) -> None:
        chunks = self.core.store.chunks.by_ids(self.core.store.chunks.ids_of(paper_id))
        ids = sorted(chunks)
        texts = [passage_text(title, chunks[i].text) for i in ids]
        langs = [chunks[i].lang for i in ids]
        sides = self.core.encoders()
        total, step = len(texts) * len(sides), REEMBED_SLICE
        for n, side in enumerate(sides):
            parts = []
            for start in range(0, len(texts), step):
                parts.append(side.embed_passages(texts[start : start + step]))
                if progress is not None:
                    progress(n * len(texts) + min(start + step, len(texts)), total)
            vecs = np.concatenate(parts) if parts else side.embed_passages([])
            self.core.store.chunks.set_vectors(ids, vecs, slot=side.slot)
            side.remove(ids)
            side.add(ids, vecs, langs)
        self.core.store.keywords.set_texts([(i, keyword_text(title, chunks[i].text)) for i in ids])
        self.core.save_indexes()

    def tag(self, ref: str | int, tags: list[str], *, remove: bool = False) -> Paper:
        """Add (or remove) tags on a paper; returns the paper as it is now."""
        clean = _clean_tags(tags)
        with self.core.lock:
            paper = self.core.paper(ref)
            self.core.store.papers.tag(paper.id, clean, remove=remove)
            return self.core.store.papers.get(paper.id)

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
            fields: editable fields (title, authors, year, abstract, doi, arxiv_id, url,
                author_kind, title_en); an
                empty string clears a field.
        """
        if fields:
            check_edit(fields)
        added = _clean_tags(add_tags) if add_tags else []
        removed = _clean_tags(remove_tags) if remove_tags else []
        if not fields and not added and not removed:
            raise InvalidInput("Nothing to change: give at least one field or tag.")
        with self.core.lock:
            paper = self.core.paper(ref)
            if fields:
                self.edit(paper.id, fields)
            if added:
                self.core.store.papers.tag(paper.id, added)
            if removed:
                self.core.store.papers.tag(paper.id, removed, remove=True)
            return self.core.store.papers.get(paper.id)

    def remove(self, ref: str | int) -> Paper:
        """Delete a paper; its uploaded copies in ``files_dir`` go too (the user's files stay)."""
        with self.core.lock:
            paper = self.core.paper(ref)
            ids = self.core.store.papers.remove(paper.id)
            for side in self.core.encoders():
                side.remove(ids)
            self.core.save_indexes()
            self.discard_unused([Path(f) for f in paper.files])
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
            self.discard_unused([path])
            raise

    def keep_upload(self, stream: BinaryIO, name: str) -> Path:
        """Copy an uploaded PDF into ``files_dir`` (named by its content hash), size-checked."""
        limit = self.core.settings.upload_max_mb << 20
        path = save_upload(stream, self.core.settings.files_dir, max_bytes=limit, name=name)
        if shown := upload_name(name):
            self.core.store.works.name_upload(path.stem, shown)
        return path

    def upload_names(self, papers: list[Paper]) -> dict[int, str]:
        """paper id -> the file name its PDF was uploaded with (papers read from an upload)."""
        files_dir = self.core.settings.files_dir
        kept = {
            p.id: [Path(f).stem for f in (p.source, *p.files) if is_kept(Path(f), files_dir)]
            for p in papers
        }
        names = self.core.store.works.upload_names(sorted({h for hs in kept.values() for h in hs}))
        found = {pid: next((names[h] for h in hs if h in names), None) for pid, hs in kept.items()}
        return {pid: name for pid, name in found.items() if name}

    def ingest_one(self, path: Path, name: str) -> tuple[str, Paper]:
        """Ingest one PDF; (status, paper) as ``add_upload``; IngestError naming ``name``."""
        events: list[IngestEvent] = []
        self.ingester.ingest([path], lambda e: events.append(e) if e.status in STATUSES else None)
        last = events[-1] if events else None
        if last is None or last.status == "failed" or last.paper_id is None:
            why = last.detail if last is not None else "nothing was ingested"
            why = why.replace(str(path), name).replace(path.name, name)
            raise IngestError(f"{name!r} could not be ingested: {why}")
        return last.status, self.core.paper(last.paper_id)

    def discard_unused(self, paths: list[Path]) -> None:
        """Delete kept uploads (in ``files_dir``) that no paper records any more."""
        with self.core.lock:
            for path in paths:
                kept = is_kept(path, self.core.settings.files_dir)
                if kept and self.core.store.works.file_owner(str(path.resolve())) is None:
                    discard(path)


def upload_name(name: str) -> str:
    """The last part of a client's file name ("C:\\docs\\a.pdf" -> "a.pdf"), printable,
    at most 200 characters; "" when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable()).strip()[:200]


def _clean_tags(tags: list[str]) -> list[str]:
    clean = [t.strip() for t in tags if t.strip()]
    if not clean or any(len(t) > 100 for t in clean):
        raise InvalidInput("Give one or more tags of 1 to 100 characters.")
    return clean


def check_edit(fields: dict[str, Any]) -> dict[str, Any]:
    """Clean user corrections (``kb edit``): strip text, split authors, check year and ids."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if name == "authors":
            items = value if isinstance(value, list) else str(value).replace("；", ";").split(";")
            value = [a.strip() for a in items if str(a).strip()]
        elif name == "year":
            if not (isinstance(value, int) and 1000 <= value <= 3000):
                raise InvalidInput(f"year must be a year such as 2024, not {value!r}.")
        elif name in ("abstract", "title_en"):  # stored as text, never null: clearing leaves ""
            value = str(value).strip()
        elif name == "author_kind":
            if value not in ("person", "organisation"):
                raise InvalidInput(f"author_kind must be person or organisation, not {value!r}.")
        elif name == "lang":  # the paper's language; its chunks keep their own
            value = normalize_lang(str(value))
            if value not in KNOWN_LANGS:
                raise InvalidInput(
                    f"lang must be a language code such as en or zh (und: unknown), not {value!r}."
                )
        else:
            value = str(value).strip() or None
            if name == "title" and value is None:
                raise InvalidInput("The title cannot be empty.")
        out[name] = value
    if not out:
        raise InvalidInput("Nothing to change: give at least one field (e.g. --title).")
    return out
