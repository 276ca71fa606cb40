"""Store I/O for collections: shared reading lists of papers, each paper with a note.

``Store.collections`` (a ``Collections``) reads and writes them. Collections hold no vectors,
so their writes leave the store's ``generation`` alone. A paper's rows here go with the paper
(``ON DELETE CASCADE``, and ``Store.papers.remove`` says so too).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kb.errors import CollectionNotFound, Conflict
from kb.types import Collection, CollectionItem, Membership

if TYPE_CHECKING:
    from kb.store.database import Database
    from kb.store.papers import Papers


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _taken(name: str) -> Conflict:
    return Conflict(
        f"A collection named {name!r} already exists (names ignore case). "
        "Choose another name, or add papers to that one."
    )


class Collections:
    """The collections of the store, with their papers' notes; ``store.collections``."""

    def __init__(self, store: Database, papers: Papers) -> None:
        self._store, self._papers = store, papers

    # -- collections

    def add(self, name: str, description: str) -> int:
        """Create a collection; Conflict when the name (ignoring case) is taken."""
        now = _now()
        try:
            with self._store.transaction() as db:
                cur = db.execute(
                    "INSERT INTO collections (name, description, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (name, description, now, now),
                )
        except sqlite3.IntegrityError as e:
            raise _taken(name) from e
        return int(cur.lastrowid or 0)

    def id_of(self, name: str) -> int | None:
        """The id of the collection with this name (ignoring ASCII case), if any."""
        row = self._store.read_one("SELECT id FROM collections WHERE name = ?", (name,))
        return None if row is None else int(row[0])

    def has(self, collection_id: int) -> bool:
        sql = "SELECT 1 FROM collections WHERE id = ?"
        return self._store.read_one(sql, (collection_id,)) is not None

    def get(self, collection_id: int) -> Collection:
        """One collection with its papers (oldest first); NotFound when there is none."""
        found = self._collections("WHERE id = ?", (collection_id,))
        if not found:
            raise CollectionNotFound(
                f"No collection with id {collection_id}. `kb collection list` shows them."
            )
        return found[0]

    def all(self) -> list[Collection]:
        """Every collection with its papers, by name."""
        return self._collections("", ())

    def _collections(self, where: str, args: tuple[object, ...]) -> list[Collection]:
        rows = self._store.read(
            "SELECT id, name, description, created_at, updated_at FROM collections "
            f"{where} ORDER BY name COLLATE NOCASE, id",
            args,
        )
        if not rows:
            return []
        ids = [int(r["id"]) for r in rows]
        marks = ",".join("?" * len(ids))
        items = self._store.read(
            "SELECT collection_id, paper_id, note, added_at FROM collection_papers "
            f"WHERE collection_id IN ({marks}) ORDER BY added_at, rowid",
            ids,
        )
        papers = self._papers.by_ids(sorted({int(i["paper_id"]) for i in items}))
        by_collection: dict[int, list[CollectionItem]] = {cid: [] for cid in ids}
        for i in items:
            paper = papers.get(int(i["paper_id"]))
            if paper is not None:
                item = CollectionItem(paper=paper, note=i["note"], added_at=i["added_at"])
                by_collection[int(i["collection_id"])].append(item)
        return [
            Collection(
                id=int(r["id"]),
                name=r["name"],
                description=r["description"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                items=by_collection[int(r["id"])],
            )
            for r in rows
        ]

    def update(self, collection_id: int, *, name: str | None, description: str | None) -> None:
        """Rename and/or redescribe a collection; Conflict when the new name is taken."""
        sets, args = ["updated_at = ?"], [_now()]
        if name is not None:
            sets.append("name = ?")
            args.append(name)
        if description is not None:
            sets.append("description = ?")
            args.append(description)
        try:
            with self._store.transaction() as db:
                db.execute(
                    f"UPDATE collections SET {', '.join(sets)} WHERE id = ?",
                    (*args, collection_id),
                )
        except sqlite3.IntegrityError as e:
            raise _taken(name or "") from e

    def delete(self, collection_id: int) -> None:
        """Delete a collection and its notes; the papers stay in the library."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM collection_papers WHERE collection_id = ?", (collection_id,))
            db.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    # -- papers in collections

    def put_paper(self, collection_id: int, paper_id: int, note: str | None) -> None:
        """Add a paper to a collection, or set its note there; ``note=None`` keeps the note."""
        now = _now()
        keep = note is None
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO collection_papers (collection_id, paper_id, note, added_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (collection_id, paper_id) DO UPDATE SET "
                "note = CASE WHEN ? THEN note ELSE excluded.note END",
                (collection_id, paper_id, note or "", now, keep),
            )
            db.execute("UPDATE collections SET updated_at = ? WHERE id = ?", (now, collection_id))

    def delete_paper(self, collection_id: int, paper_id: int) -> bool:
        """Take a paper out of a collection; False when it was not in it."""
        with self._store.transaction() as db:
            gone = db.execute(
                "DELETE FROM collection_papers WHERE collection_id = ? AND paper_id = ?",
                (collection_id, paper_id),
            ).rowcount
            if gone:
                db.execute(
                    "UPDATE collections SET updated_at = ? WHERE id = ?", (_now(), collection_id)
                )
        return bool(gone)

    def memberships(self, paper_id: int) -> list[Membership]:
        """The collections a paper is in, with its note in each, by collection name."""
        rows = self._store.read(
            "SELECT c.id, c.name, p.note FROM collection_papers p "
            "JOIN collections c ON c.id = p.collection_id WHERE p.paper_id = ? "
            "ORDER BY c.name COLLATE NOCASE, c.id",
            (paper_id,),
        )
        return [Membership(collection_id=int(r[0]), name=r[1], note=r[2]) for r in rows]
