"""Collections (shared reading lists with notes) and exports: Library, HTTP API and CLI."""

from __future__ import annotations

import json
import sqlite3

import pytest
import rispy
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pybtex.database import parse_string

from api.app import create_app
from kb.cli import cli
from kb.errors import CollectionNotFound, Conflict, InvalidInput, NotFound
from kb.library.facade import Library
from kb.store import Store
from kb.store.migrations import MIGRATIONS
from tests.fakes import HashEmbedder

RECORDS = [
    {"key": "a", "title": "Jailbreak attacks on aligned chatbots", "abstract": "Misuse.",
     "year": 2024, "doi": "10.1234/jb", "authors": ["Jane Doe"], "arxiv_id": "2401.00001"},
    {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "滥用风险。", "year": 2023,
     "authors": ["王伟"], "lang": "zh"},
    {"key": "c", "title": "Reward hacking in RLHF", "abstract": "Specification gaming.",
     "year": 2022, "authors": ["Ada Lovelace"]},
]  # fmt: skip
KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def lib(library, tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS))
    assert library.ingest([feed]).ok
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
        assert store.collections() == []
    finally:
        store.close()


def test_exports_of_collections_and_library(lib):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "b", "读第3节")
    lib.add_to_collection(c.id, "a", "Read § 4 & 5")
    bib = parse_string(lib.export_collection(c.id, "bibtex"), "bibtex")
    assert list(bib.entries) == ["kb2", "doe2024jailbreak"]  # in the collection's order
    assert bib.entries["kb2"].fields["annote"] == "读第3节"
    assert bib.entries["doe2024jailbreak"].fields["eprint"] == "2401.00001"
    whole = rispy.loads(lib.export(lib.all_papers(), "ris"))
    assert [r["title"] for r in whole] == [r["title"] for r in RECORDS]
    assert whole[1]["language"] == "zh" and whole[1]["authors"] == ["王伟"]
    with pytest.raises(InvalidInput):
        lib.export(lib.all_papers(), "docx")


# ---------------------------------------------------------------- HTTP API


@pytest.fixture
def client(lib, settings):
    with TestClient(create_app(settings.replace(api_keys=KEY), library=lib)) as c:
        yield c


def test_api_collection_lifecycle(client, lib):
    p = ids(lib)
    made = client.post(
        "/api/collections", json={"name": "Reading group", "description": "Fri"}, headers=AUTH
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert set(made.json()) == {"id", "name", "description", "created_at", "updated_at", "items"}
    taken = client.post("/api/collections", json={"name": "reading group"}, headers=AUTH)
    assert taken.status_code == 409 and taken.json()["status"] == 409
    put = client.put(f"/api/collections/{cid}/papers/{p['b']}", json={"note": "读"}, headers=AUTH)
    assert put.status_code == 200 and put.json()["items"][0]["note"] == "读"
    assert put.json()["items"][0]["paper"]["title"] == "越狱攻击与大模型安全"
    keep = client.put(f"/api/collections/{cid}/papers/{p['b']}", headers=AUTH)
    assert keep.json()["items"][0]["note"] == "读"
    client.put(f"/api/collections/{cid}/papers/{p['a']}", json={"note": ""}, headers=AUTH)
    listing = client.get("/api/collections").json()
    assert listing["total"] == 1 and len(listing["collections"][0]["items"]) == 2
    member = client.get(f"/api/papers/{p['b']}/collections").json()
    assert member == {"paper_id": p["b"], "collections": [
        {"collection_id": cid, "name": "Reading group", "note": "读"}]}  # fmt: skip
    patched = client.patch(f"/api/collections/{cid}", json={"name": "RG"}, headers=AUTH)
    assert patched.json()["name"] == "RG" and patched.json()["description"] == "Fri"
    out = client.delete(f"/api/collections/{cid}/papers/{p['a']}", headers=AUTH)
    assert [i["paper"]["id"] for i in out.json()["items"]] == [p["b"]]
    assert client.delete(f"/api/collections/{cid}", headers=AUTH).status_code == 204
    assert client.get(f"/api/collections/{cid}").status_code == 404
    assert lib.count() == 3


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("post", "/api/collections", {"name": ""}, 422),
        ("post", "/api/collections", {"name": "   "}, 400),
        ("post", "/api/collections", {"name": "x" * 201}, 422),
        ("post", "/api/collections", {}, 422),
        ("patch", "/api/collections/1", {}, 400),
        ("patch", "/api/collections/99", {"name": "y"}, 404),
        ("put", "/api/collections/1/papers/999", {"note": ""}, 404),
        ("put", "/api/collections/1/papers/1", {"note": "n" * 5001}, 422),
        ("delete", "/api/collections/99", None, 404),
        ("delete", "/api/collections/1/papers/3", None, 404),
        ("get", "/api/collections/abc", None, 422),
        ("get", "/api/papers/999/collections", None, 404),
        ("get", "/api/collections/99999999999999999999", None, 404),
        ("put", "/api/collections/1/papers/99999999999999999999", {}, 404),
        ("get", "/api/papers/99999999999999999999/collections", None, 404),
    ],
)
def test_api_bad_requests_are_json_4xx(client, method, path, body, status):
    client.post("/api/collections", json={"name": "one"}, headers=AUTH)  # id 1
    kwargs = {"headers": AUTH} | ({"json": body} if body is not None else {})
    r = client.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"] and r.json()["status"] == status


def test_api_writes_need_a_key(client, lib, settings):
    assert client.post("/api/collections", json={"name": "x"}).status_code == 401
    bad = {"Authorization": "Bearer " + "z" * 20}
    assert client.post("/api/collections", json={"name": "x"}, headers=bad).status_code == 401
    c = lib.create_collection("x")
    assert client.delete(f"/api/collections/{c.id}").status_code == 401
    assert client.put(f"/api/collections/{c.id}/papers/1", json={}).status_code == 401
    assert client.patch(f"/api/collections/{c.id}", json={"name": "y"}).status_code == 401
    with TestClient(create_app(settings, library=lib)) as read_only:
        r = read_only.post("/api/collections", json={"name": "x"}, headers=AUTH)
        assert r.status_code == 403 and "KB_API_KEYS" in r.json()["error"]
    keyed = settings.replace(api_keys=KEY, read_access="key")
    with TestClient(create_app(keyed, library=lib)) as closed:
        assert closed.get("/api/collections").status_code == 401
        assert closed.get("/api/export").status_code == 401
        assert closed.get("/api/collections", headers=AUTH).status_code == 200


def test_api_export_formats_and_downloads(client, lib):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "b", "读第3节")
    whole = client.get("/api/export")
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("application/x-bibtex")
    assert whole.headers["content-disposition"] == 'attachment; filename="kb-library.bib"'
    assert len(parse_string(whole.text, "bibtex").entries) == 3
    ris = client.get("/api/export", params={"format": "ris", "collection": c.id})
    assert ris.headers["content-type"].startswith("application/x-research-info-systems")
    assert ris.headers["content-disposition"].endswith('filename="kb-reading-group.ris"')
    assert [(r["title"], r["notes"]) for r in rispy.loads(ris.text)] == [
        ("越狱攻击与大模型安全", ["读第3节"])
    ]
    csl = client.get("/api/export", params={"format": "csl-json", "q": "jailbreak", "k": 1})
    assert csl.headers["content-type"].startswith("application/vnd.citationstyles.csl+json")
    assert csl.headers["content-disposition"].endswith('filename="kb-search.json"')
    assert len(csl.json()) == 1 and csl.json()[0]["title"]
    zh = lib.create_collection("对齐")
    named = client.get("/api/export", params={"collection": zh.id})
    assert named.headers["content-disposition"].endswith(f'filename="kb-collection-{zh.id}.bib"')
    assert named.text == ""  # empty collection, empty file
    for params in ({"format": "docx"}, {"collection": c.id, "q": "x"}, {"collection": 99},
                   {"q": " "}, {"q": "x", "k": 0}):  # fmt: skip
        r = client.get("/api/export", params=params)
        assert 400 <= r.status_code < 500 and r.json()["error"], params


def test_api_routes_are_in_the_openapi_docs(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/collections", "/api/collections/{collection_id}",
            "/api/collections/{collection_id}/papers/{paper_id}",
            "/api/papers/{paper_id}/collections", "/api/export"} <= set(paths)  # fmt: skip
    assert "application/x-bibtex" in paths["/api/export"]["get"]["responses"]["200"]["content"]


# ---------------------------------------------------------------- CLI


@pytest.fixture
def kb(lib, settings, monkeypatch):
    """Run `kb ...` on the fixture's store, with the fake embedder in place of the model."""
    monkeypatch.setattr("kb.library.facade.load_embedder", lambda s: HashEmbedder())
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_MODEL_DIR": str(settings.model_dir),
           "KB_SECOND_ENCODER": "none"}  # fmt: skip

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


def test_cli_collection_commands(kb, lib):
    made = kb("collection", "create", "Reading group", "--description", "Fri", "--json")
    assert made.exit_code == 0, made.output
    cid = json.loads(made.output)["id"]
    assert kb("collection", "create", "reading group").exit_code == 1
    assert kb("collection", "add", "Reading group", "a", "--note", "Read §4").exit_code == 0
    assert kb("collection", "add", str(cid), "b").exit_code == 0
    assert kb("collection", "note", "Reading group", "b", "对齐税在第2节").exit_code == 0
    shown = json.loads(kb("collection", "show", "reading group", "--json").output)
    assert [(i["paper"]["key"], i["note"]) for i in shown["items"]] == [
        ("a", "Read §4"),
        ("b", "对齐税在第2节"),
    ]
    text = kb("collection", "show", str(cid)).output
    assert "Reading group" in text and "note: 对齐税在第2节" in text and "越狱攻击" in text
    assert "Reading group  (2 papers)" in kb("collection", "list").output
    assert kb("collection", "remove", str(cid), "a").exit_code == 0
    edited = kb("collection", "edit", str(cid), "--name", "RG", "--json")
    assert json.loads(edited.output)["name"] == "RG"
    nothing = kb("collection", "edit", "RG")
    assert nothing.exit_code == 1 and "Nothing to change" in nothing.output
    missing = kb("collection", "show", "nope")
    assert missing.exit_code == 1 and "No collection named 'nope'" in missing.output
    assert "Traceback" not in missing.output
    assert "deleted collection" in kb("collection", "delete", "RG").output
    assert json.loads(kb("collection", "list", "--json").output) == []
    assert lib.count() == 3


def test_cli_export(kb, lib, tmp_path):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "b", "读第3节")
    whole = kb("export")
    assert whole.exit_code == 0 and len(parse_string(whole.stdout, "bibtex").entries) == 3
    out = tmp_path / "sub" / "rg.ris"
    done = kb("export", "--collection", "Reading group", "--format", "ris", "-o", str(out))
    assert done.exit_code == 0 and "exported 1 papers" in done.output
    assert out.read_bytes().decode("utf-8").count("\r\n") > 3
    assert rispy.loads(out.read_text(encoding="utf-8"))[0]["notes"] == ["读第3节"]
    assert [p.name for p in out.parent.iterdir()] == ["rg.ris"]  # no temp file left
    found = kb("export", "--query", "越狱攻击", "-k", "1", "--format", "csl-json")
    assert found.exit_code == 0, found.output
    assert [i["title"] for i in json.loads(found.stdout)] == ["越狱攻击与大模型安全"]
    assert kb("export", "--collection", "x", "--query", "y").exit_code == 2
    assert kb("export", "-k", "3").exit_code == 2
    assert kb("export", "--format", "docx").exit_code == 2
    assert kb("export", "--collection", "nope").exit_code == 1


def test_collection_commands_have_help_with_example(kb):
    for name, command in cli.commands["collection"].commands.items():  # type: ignore[attr-defined]
        assert "Example:" in (command.help or ""), name
        assert kb("collection", name, "--help").exit_code == 0
