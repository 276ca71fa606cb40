"""Collections (shared reading lists with notes) and exports through the Library (the HTTP API:
test_api_collections.py, test_api_exports.py; the CLI: test_cli_collections.py)."""

from __future__ import annotations

import sqlite3

import pytest
import rispy
from pybtex.database import parse_string

from kb.errors import CollectionNotFound, Conflict, InvalidInput, NotFound
from kb.library.facade import Library
from kb.store import Store
from kb.store.migrations import MIGRATIONS
from tests.fakes import HashEmbedder
from tests.samples import COLLECTION_RECORDS, write_feed

RECORDS = COLLECTION_RECORDS


@pytest.fixture
def lib(library, tmp_path):
    assert library.ingest([write_feed(tmp_path / "feed.jsonl", RECORDS)]).ok
    return library


def ids(lib: Library) -> dict[str, int]:
    return {key: lib.paper(key).id for key in "abc"}


# ---------------------------------------------------------------- Library


def test_create_find_update_delete(lib):
    made = lib.create_collection("  Reading   group ", "Papers for Friday")
    assert made.name == "Reading group" and made.description == "Papers for Friday"
    assert made.items == [] and made.created_at == made.updated_at
    assert lib.collection(made.id) == lib.collection("reading GROUP") == made
    assert lib.collection(str(made.id)) == made
    with pytest.raises(Conflict, match="already exists"):
        lib.create_collection("READING GROUP")
    other = lib.create_collection("对齐读书会")
    assert [c.name for c in lib.collections()] == ["Reading group", "对齐读书会"]
    with pytest.raises(Conflict):
        lib.update_collection(other.id, name="reading group")
    renamed = lib.update_collection(other.id, name="Alignment club")
    assert renamed.name == "Alignment club" and renamed.description == ""
    described = lib.update_collection("alignment club", description="周三")
    assert described.name == "Alignment club" and described.description == "周三"
    lib.delete_collection("Alignment club")
    assert [c.id for c in lib.collections()] == [made.id]
    with pytest.raises(CollectionNotFound, match="kb collection list"):
        lib.collection(other.id)
    with pytest.raises(CollectionNotFound, match="No such list"):
        lib.collection("No such list")


@pytest.mark.parametrize(
    "name, description",
    [("", ""), ("   ", ""), ("x" * 201, ""), ("2024", ""), ("ok", "d" * 5001)],
)
def test_bad_names_and_descriptions(lib, name, description):
    with pytest.raises(InvalidInput):
        lib.create_collection(name, description)
    assert lib.collections() == []


def test_papers_notes_and_memberships(lib):
    p = ids(lib)
    c = lib.create_collection("Reading group")
    c = lib.add_to_collection(c.id, "a", "Read section 4 first")
    c = lib.add_to_collection("reading group", p["b"])
    assert [(i.paper.key, i.note) for i in c.items] == [("a", "Read section 4 first"), ("b", "")]
    c = lib.add_to_collection(c.id, "a")  # again without a note: the note stays
    assert c.items[0].note == "Read section 4 first"
    c = lib.add_to_collection(c.id, "b", "对齐税的定义在第2节")
    assert [i.paper.key for i in c.items] == ["a", "b"]  # the order of addition stays
    other = lib.create_collection("Club")
    lib.add_to_collection(other.id, "b", "")
    assert [(m.name, m.note) for m in lib.memberships("b")] == [
        ("Club", ""),
        ("Reading group", "对齐税的定义在第2节"),
    ]
    assert lib.memberships(p["c"]) == []
    c = lib.add_to_collection(c.id, "a", "")  # "" clears
    assert c.items[0].note == ""
    with pytest.raises(InvalidInput):
        lib.add_to_collection(c.id, "a", "n" * 5001)
    with pytest.raises(NotFound, match="999"):
        lib.add_to_collection(c.id, 999)
    c = lib.remove_from_collection(c.id, "a")
    assert [i.paper.key for i in c.items] == ["b"]
    with pytest.raises(NotFound, match="not in the collection"):
        lib.remove_from_collection(c.id, "a")
    lib.delete_collection(c.id)
    assert lib.paper("b").id == p["b"]  # the papers stay
    assert [m.name for m in lib.memberships("b")] == ["Club"]


def test_removing_a_paper_drops_it_from_collections(lib):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "a", "note")
    lib.add_to_collection(c.id, "c")
    lib.remove("a")
    assert [i.paper.key for i in lib.collection(c.id).items] == ["c"]
    rows = lib.store.db.execute("SELECT COUNT(*) FROM collection_papers").fetchone()[0]
    assert rows == 1


def test_collections_persist_and_old_stores_migrate(lib, settings, tmp_path):
    c = lib.create_collection("Reading group", "desc")
    lib.add_to_collection(c.id, "a", "kept")
    lib.close()
    again = Library(settings, embedder=HashEmbedder())
    try:
        assert again.collection("Reading group").items[0].note == "kept"
    finally:
        again.close()
    old = tmp_path / "v5.sqlite"  # a store from before collections
    db = sqlite3.connect(old, isolation_level=None)
    for number, migration in enumerate(MIGRATIONS[:5], start=1):
        migration(db)
        db.execute(f"PRAGMA user_version = {number}")
    db.close()
    store = Store(old)
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert store.collections.all() == []
    finally:
        store.close()


def test_exports_of_collections_and_library(lib):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "b", "读第3节")
    lib.add_to_collection(c.id, "a", "Read § 4 & 5")
    bib = parse_string(lib.export_collection(c.id, "bibtex"), "bibtex")
    assert list(bib.entries) == ["wang2023", "doe2024jailbreak"]  # in the collection's order
    assert bib.entries["wang2023"].fields["annote"] == "读第3节"
    assert bib.entries["doe2024jailbreak"].fields["eprint"] == "2401.00001"
    whole = rispy.loads(lib.export(lib.all_papers(), "ris"))
    assert [r["title"] for r in whole] == [r["title"] for r in RECORDS]
    assert whole[1]["language"] == "zh" and whole[1]["authors"] == ["王, 伟"]  # family name first
    with pytest.raises(InvalidInput):
        lib.export(lib.all_papers(), "docx")
