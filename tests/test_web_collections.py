"""The web page's collection pages (shared reading lists with notes, export links) and the
API answers their scripts turn into messages, through FastAPI's test client (fake embedder)."""

from __future__ import annotations

import pytest

from api.web.i18n import EN, ZH
from tests.samples import WEB_RECORDS, export_links_in, paper_id


@pytest.fixture
def client(make_app_client, library):
    with make_app_client(library, records=WEB_RECORDS) as c:
        yield c


def test_collections_pages(client, library):
    pid, zh = paper_id(client, "a"), paper_id(client, "b")
    evil = library.create_collection("<script>alert('c')</script> list", "Read <b>first</b>")
    library.add_to_collection(evil.id, pid, note="<script>alert('n')</script> see §3")
    library.add_to_collection(evil.id, zh)
    library.create_collection("Empty shelf")
    page = client.get("/collections")
    assert page.status_code == 200 and 'aria-current="page"' in page.text
    assert "<script>alert(" not in page.text
    assert "&lt;script&gt;alert(&#39;c&#39;)&lt;/script&gt; list" in page.text
    assert "Read &lt;b&gt;first&lt;/b&gt;" in page.text and "2 papers" in page.text
    assert f'href="/collections/{evil.id}"' in page.text and "Empty shelf" in page.text
    assert 'id="create-collection"' in page.text and 'id="api-key"' in page.text
    assert export_links_in(page.text, 'id="export-library"')["CSL-JSON"] == {"format": ["csl-json"]}
    one = client.get(f"/collections/{evil.id}")
    assert one.status_code == 200 and "<script>alert(" not in one.text
    assert "&lt;script&gt;alert(&#39;n&#39;)&lt;/script&gt; see §3" in one.text
    assert f'href="/papers/{pid}"' in one.text and f'href="/papers/{zh}"' in one.text
    assert 'class="badge lang-zh"' in one.text and "Ada Lovelace, Alan Turing" in one.text
    assert one.text.count('class="card item"') == 2 and EN["paper.no_note"] in one.text
    links = export_links_in(one.text, 'class="exports"')
    assert links["BibTeX"] == {"format": ["bibtex"], "collection": [str(evil.id)]}
    ris = client.get("/api/export", params={"format": "ris", "collection": evil.id})
    assert "N1  - <script>alert('n')</script> see §3" in ris.text  # the note, as data
    assert client.get("/collections/Empty shelf").text.count(EN["coll.empty"]) == 1  # by name
    # rename / describe / delete: the form is filled with the current values, escaped
    assert 'id="collection-form"' in one.text and 'id="delete-collection"' in one.text
    assert EN["coll.edit"] in one.text and EN["coll.delete"] in one.text
    assert 'value="&lt;script&gt;alert(&#39;c&#39;)&lt;/script&gt; list"' in one.text
    assert ">Read &lt;b&gt;first&lt;/b&gt;</textarea>" in one.text
    empty = client.get("/collections/Empty shelf").text
    assert '<p class="desc" hidden></p>' in empty and 'value="Empty shelf"' in empty
    zh_page = client.get("/collections", headers={"Accept-Language": "zh"})
    assert ZH["coll.new"] in zh_page.text and "2 篇论文" in zh_page.text


def test_unknown_collection_is_a_friendly_404(client):
    for url in ("/collections/999999", "/collections/no-such-list"):
        r = client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert 'data-status="404"' in r.text and EN["error.home"] in r.text
        assert "No collection" in r.text and "Traceback" not in r.text


def test_collection_writes_answer_what_the_page_explains(make_app_client, client, library):
    """The statuses kb.js turns into messages: 403 without keys, 401, 409 on a taken name."""
    body = {"name": "Reading group"}
    assert client.post("/api/collections", json=body).status_code == 403
    with make_app_client(library, api_keys="k1-0123456789abcdef") as c:
        assert c.post("/api/collections", json=body).status_code == 401
        auth = {"Authorization": "Bearer k1-0123456789abcdef"}
        made = c.post("/api/collections", json=body, headers=auth)
        assert made.status_code == 201
        taken = c.post("/api/collections", json={"name": "reading GROUP"}, headers=auth)
        assert taken.status_code == 409 and "already exists" in taken.json()["error"]
        assert EN["upload.readonly"] not in c.get(f"/collections/{made.json()['id']}").text
    for status in (401, 403, 404, 409):
        assert f"write.err_{status}" in EN and f"write.err_{status}" in ZH


def test_rename_and_delete_answer_what_the_page_explains(make_app_client, client, library):
    """PATCH/DELETE /api/collections/{id} as the collection page's form and button send them."""
    shelf = library.create_collection("Week 1", "old")
    library.create_collection("Week 2")
    pid = paper_id(client, "a")
    library.add_to_collection(shelf.id, pid, note="keep me")
    url = f"/api/collections/{shelf.id}"
    assert client.patch(url, json={"name": "x"}).status_code == 403  # no keys: read-only
    assert client.delete(url).status_code == 403
    auth = {"Authorization": "Bearer k1-0123456789abcdef"}
    with make_app_client(library, api_keys="k1-0123456789abcdef") as c:
        assert c.patch(url, json={"name": "x"}).status_code == 401
        assert c.delete(url).status_code == 401
        taken = c.patch(url, json={"name": "WEEK 2", "description": ""}, headers=auth)
        assert taken.status_code == 409 and "already exists" in taken.json()["error"]
        # the form always sends both fields: the unchanged name is not "taken" by itself
        same = c.patch(url, json={"name": "Week 1", "description": "<i>new</i>"}, headers=auth)
        assert same.status_code == 200 and same.json()["description"] == "<i>new</i>"
        renamed = c.patch(url, json={"name": "Week 1 & 2", "description": ""}, headers=auth)
        assert renamed.status_code == 200 and renamed.json()["name"] == "Week 1 & 2"
        page = c.get(f"/collections/{shelf.id}").text
        assert "<h1>Week 1 &amp; 2</h1>" in page and '<p class="desc" hidden></p>' in page
        assert "keep me" in page  # renaming keeps the papers and notes
        assert c.delete(url, headers=auth).status_code == 204
        assert c.delete(url, headers=auth).status_code == 404
        assert c.patch(url, json={"name": "y"}, headers=auth).status_code == 404
        listing = c.get("/collections").text
        assert "Week 1 &amp; 2" not in listing and "Week 2" in listing
        assert c.get(f"/collections/{shelf.id}").status_code == 404
        assert c.get(f"/api/papers/{pid}").status_code == 200  # the paper stays
    assert "{name}" in EN["write.confirm_delete"] and "{name}" in ZH["write.confirm_delete"]
