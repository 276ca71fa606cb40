"""Collections (shared reading lists with notes) through the HTTP API (fake embedder)."""

from __future__ import annotations

import pytest

from tests.samples import COLLECTION_RECORDS

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(make_app_client, library):
    with make_app_client(library, records=COLLECTION_RECORDS, api_keys=KEY) as c:
        yield c


@pytest.fixture
def lib(client):
    return client.library


def test_api_collection_lifecycle(client, lib):
    p = {key: lib.paper(key).id for key in "abc"}
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


def test_api_writes_need_a_key(make_app_client, client, lib):
    assert client.post("/api/collections", json={"name": "x"}).status_code == 401
    bad = {"Authorization": "Bearer " + "z" * 20}
    assert client.post("/api/collections", json={"name": "x"}, headers=bad).status_code == 401
    c = lib.create_collection("x")
    assert client.delete(f"/api/collections/{c.id}").status_code == 401
    assert client.put(f"/api/collections/{c.id}/papers/1", json={}).status_code == 401
    assert client.patch(f"/api/collections/{c.id}", json={"name": "y"}).status_code == 401
    with make_app_client(lib) as read_only:
        r = read_only.post("/api/collections", json={"name": "x"}, headers=AUTH)
        assert r.status_code == 403 and "KB_API_KEYS" in r.json()["error"]
    with make_app_client(lib, api_keys=KEY, read_access="key") as closed:
        assert closed.get("/api/collections").status_code == 401
        assert closed.get("/api/export").status_code == 401
        assert closed.get("/api/collections", headers=AUTH).status_code == 200


def test_api_routes_are_in_the_openapi_docs(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/collections", "/api/collections/{collection_id}",
            "/api/collections/{collection_id}/papers/{paper_id}",
            "/api/papers/{paper_id}/collections", "/api/export"} <= set(paths)  # fmt: skip
    assert "application/x-bibtex" in paths["/api/export"]["get"]["responses"]["200"]["content"]
