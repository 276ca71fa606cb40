"""Shared reading lists (collections with per-paper notes) and bibliography exports.

The collections service: it uses the core's store and lock.
"""

from __future__ import annotations

from collections.abc import Mapping

from kb.errors import CollectionNotFound, InvalidInput, NotFound
from kb.library import exports
from kb.library.core import Core
from kb.types import Collection, Membership, Paper

MAX_NAME = 200
MAX_TEXT = 5000  # a description or a note
MAX_ID = 2**63 - 1  # SQLite's largest integer


class Collections:
    """Collections, notes and exports."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def create_collection(self, name: str, description: str = "") -> Collection:
        """A new, empty collection; Conflict when the name (ignoring case) is taken."""
        name, description = _check_name(name), _check_text(description, "description")
        with self.core.lock:
            store = self.core.store
            return store.collections.get(store.collections.add(name, description))

    def collections(self) -> list[Collection]:
        """Every collection, by name, with its papers and notes."""
        with self.core.lock:
            return self.core.store.collections.all()

    def collection(self, ref: int | str) -> Collection:
        """A collection by id or by name (names ignore ASCII case)."""
        with self.core.lock:
            return self.core.store.collections.get(self._collection_id(ref))

    def update_collection(
        self, ref: int | str, *, name: str | None = None, description: str | None = None
    ) -> Collection:
        """Rename a collection and/or change its description; the others stay."""
        if name is None and description is None:
            raise InvalidInput("Nothing to change: give a new name or a new description.")
        name = None if name is None else _check_name(name)
        description = None if description is None else _check_text(description, "description")
        with self.core.lock:
            cid = self._collection_id(ref)
            self.core.store.collections.update(cid, name=name, description=description)
            return self.core.store.collections.get(cid)

    def delete_collection(self, ref: int | str) -> None:
        """Delete a collection and its notes; its papers stay in the library."""
        with self.core.lock:
            self.core.store.collections.delete(self._collection_id(ref))

    def add_to_collection(
        self, ref: int | str, paper_ref: int | str, note: str | None = None
    ) -> Collection:
        """Put a paper in a collection, or change its note there.

        Args:
            note: the group's note on the paper; None keeps the note it has (none when new),
                "" clears it.
        """
        note = None if note is None else _check_text(note, "note")
        with self.core.lock:
            cid = self._collection_id(ref)
            self.core.store.collections.put_paper(cid, self.core.paper(paper_ref).id, note)
            return self.core.store.collections.get(cid)

    def remove_from_collection(self, ref: int | str, paper_ref: int | str) -> Collection:
        """Take a paper out of a collection (the paper stays in the library)."""
        with self.core.lock:
            cid = self._collection_id(ref)
            paper = self.core.paper(paper_ref)
            if not self.core.store.collections.delete_paper(cid, paper.id):
                name = self.core.store.collections.get(cid).name
                raise NotFound(
                    f"Paper {paper.id} is not in the collection {name!r}. "
                    f"`kb collection show {cid}` lists its papers."
                )
            return self.core.store.collections.get(cid)

    def memberships(self, paper_ref: int | str) -> list[Membership]:
        """The collections a paper is in, with its note in each."""
        with self.core.lock:
            return self.core.store.collections.memberships(self.core.paper(paper_ref).id)

    def all_papers(self) -> list[Paper]:
        """Every paper in the library, oldest first (for a whole-library export)."""
        with self.core.lock:
            return self.core.store.papers.select(limit=self.core.store.papers.count())

    def export(
        self,
        papers: list[Paper],
        fmt: str,
        *,
        notes: Mapping[int, str] | None = None,
        files: Mapping[int, str] | None = None,
    ) -> str:
        """Papers as ``bibtex``, ``ris`` or ``csl-json`` text.

        Args:
            notes: paper id -> note (a collection's notes) to carry in the export.
            files: paper id -> the link to its PDF; None: each paper's first file.
        """
        return exports.export(papers, fmt, notes, files)

    def export_collection(
        self, ref: int | str, fmt: str, *, files: Mapping[int, str] | None = None
    ) -> str:
        """A collection's papers, with their notes, as ``fmt`` text."""
        found = self.collection(ref)
        notes = {i.paper.id: i.note for i in found.items}
        return self.export([i.paper for i in found.items], fmt, notes=notes, files=files)

    def _collection_id(self, ref: int | str) -> int:
        """The id of a collection given by id or name (CollectionNotFound when neither)."""
        if isinstance(ref, int) or str(ref).strip().isdigit():
            cid = int(ref)
            if 0 <= cid <= MAX_ID and self.core.store.collections.has(cid):
                return cid
            raise CollectionNotFound(
                f"No collection with id {cid}. `kb collection list` shows them."
            )
        found = self.core.store.collections.id_of(str(ref).strip())
        if found is None:
            raise CollectionNotFound(
                f"No collection named {str(ref)!r}. `kb collection list` shows them; "
                "`kb collection create NAME` makes one."
            )
        return found


def _check_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > MAX_NAME:
        raise InvalidInput(f"A collection name has 1 to {MAX_NAME} characters, not {len(clean)}.")
    if clean.isdigit():
        raise InvalidInput(
            f"A collection name cannot be only digits ({clean!r} would read as an id). "
            "Add a word, e.g. 'reading group'."
        )
    return clean


def _check_text(text: str, what: str) -> str:
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"A {what} has at most {MAX_TEXT} characters, not {len(text)}.")
    return text
