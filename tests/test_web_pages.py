"""The web page's HTML through FastAPI's test client (fake embedder: pages, not the model)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.web.i18n import EN, ZH, pick_lang
from api.web.pages import SNIPPET_CHARS, marked, trim
from kb.types import Snippet

API = Path(__file__).resolve().parents[1] / "api"
RECORDS = [
    {"key": "a", "title": "Jailbreak <script>alert(1)</script> attacks on chatbots",
     "abstract": "Jailbreak attacks make aligned chatbots misbehave.", "year": 2024,
     "authors": ["Ada Lovelace", "Alan Turing"], "doi": "10.5555/jb"},
    {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "越狱攻击导致滥用风险。",
     "year": 2023, "authors": ["张三"]},
    {"key": "c", "title": "Reward hacking in coding agents", "abstract": "Agents game tests.",
     "year": 2021},
]  # fmt: skip


def _client(library, settings, tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS))
    library.ingest([feed])
    return TestClient(create_app(settings, library=library))


@pytest.fixture
def client(library, settings, tmp_path):
    with _client(library, settings, tmp_path) as c:
        yield c


def _id(client, key: str) -> int:
    papers = client.get("/api/papers").json()["papers"]
    return next(p["id"] for p in papers if p["key"] == key)


def test_landing_page_lists_the_library(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in r.text
    assert "3 papers" in r.text and "越狱攻击与大模型安全" in r.text
    assert 'href="/static/kb.css"' in r.text and 'src="/static/kb.js"' in r.text


def test_search_renders_cards_and_keeps_the_filters(client):
    r = client.get("/", params={"q": "jailbreak attacks", "year_from": "2022", "year_to": "2025"})
    assert r.status_code == 200
    assert r.text.count('class="card"') == 2  # the 2021 paper is outside the years
    assert 'data-lang="zh"' in r.text and 'class="badge lang-zh"' in r.text
    assert 'name="q" value="jailbreak attacks"' in r.text
    assert 'name="year_from" value="2022"' in r.text and 'name="year_to" value="2025"' in r.text
    assert 'value="all" checked' in r.text
    only_zh = client.get("/", params={"q": "越狱", "lang": "zh"}).text
    assert 'value="zh" checked' in only_zh
    assert only_zh.count('class="card"') == 1 and 'data-lang="en"' not in only_zh
    assert "1 paper for" in only_zh
    nothing = client.get("/", params={"q": "jailbreak", "year_from": "1990", "year_to": "1991"})
    assert nothing.status_code == 200 and EN["search.no_results_hint"] in nothing.text


def test_titles_and_snippets_are_escaped_and_highlighted(client):
    text = client.get("/", params={"q": "jailbreak"}).text
    assert "<script>alert(1)" not in text
    assert "Jailbreak &lt;script&gt;alert(1)&lt;/script&gt; attacks" in text
    assert "<mark>Jailbreak</mark>" in text
    page = client.get(f"/papers/{_id(client, 'a')}").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_marked_escapes_every_piece_and_tolerates_odd_spans():
    s = Snippet(
        text="a <b> & c", page=1, lang="en", score=1.0, highlights=[(2, 5), (3, 4), (8, 99)]
    )
    assert str(marked(s)) == "a <mark>&lt;b&gt;</mark> &amp; <mark>c</mark>"
    assert str(marked(Snippet("x<y", None, "en", 0.0))) == "x&lt;y"


def test_long_snippets_are_trimmed_around_the_first_highlight():
    text = " ".join(f"word{i}" for i in range(120))  # about 800 characters
    at = text.index("word90")
    end = text.index("word119")
    s = Snippet(text, 2, "en", 1.0, highlights=[(end, end + 7), (at, at + 6)])
    short = trim(s)
    assert len(short.text) <= SNIPPET_CHARS + 2 and short.text.startswith("…")
    assert [short.text[a:b] for a, b in short.highlights] == ["word90"]
    cut = Snippet(text, 2, "en", 1.0, highlights=[(at, at + 6), (at + 250, at + 300)])
    assert [trim(cut).text[a:b] for a, b in trim(cut).highlights] == ["word90"]  # no half word
    zh = Snippet("奖励" * 300, 1, "zh", 1.0, highlights=[(0, 2)])
    assert len(trim(zh).text) <= SNIPPET_CHARS * 3 // 5 + 1
    assert trim(zh).text.startswith("奖励") and trim(zh).highlights == [(0, 2)]
    assert trim(Snippet("short", 1, "en", 1.0)).text == "short"


def test_paper_page_shows_metadata_related_and_collections(client, library):
    pid = _id(client, "a")
    coll = library.create_collection("Reading group", "weekly")
    library.add_to_collection(coll.id, pid, note="Discuss <b>section 3</b>")
    r = client.get(f"/papers/{pid}")
    assert r.status_code == 200
    assert "Ada Lovelace, Alan Turing" in r.text and "10.5555/jb" in r.text
    assert "Jailbreak attacks make aligned chatbots misbehave." in r.text
    related = r.text.split('id="related"')[1].split("</section>\n  <section")[0]
    assert "越狱攻击与大模型安全" in related and "Reward hacking in coding agents" in related
    assert 'data-lang="en"' in related and 'data-lang="zh"' in related
    assert "Reading group" in r.text and "Discuss &lt;b&gt;section 3&lt;/b&gt;" in r.text
    assert EN["paper.no_files"] in r.text  # a record: no PDF to open
    by_key = client.get("/papers/b")
    assert by_key.status_code == 200 and EN["paper.no_collections"] in by_key.text
    fragment = client.get(f"/papers/{pid}/related").text
    assert "<html" not in fragment and "越狱攻击与大模型安全" in fragment


def test_ui_language_from_cookie_or_accept_language(client):
    zh = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in zh.text and ZH["search.button"] in zh.text
    assert ZH["nav.switch"] in zh.text
    en = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
    assert '<html lang="en">' in en.text
    toggled = client.get("/ui-lang/zh", params={"next": "/?q=x"}, follow_redirects=False)
    assert toggled.status_code == 303 and toggled.headers["location"] == "/?q=x"
    assert "kb_lang=zh" in toggled.headers["set-cookie"]
    client.cookies.set("kb_lang", "zh")
    assert '<html lang="zh-CN">' in client.get("/upload").text
    assert ZH["upload.title"] in client.get("/upload", headers={"Accept-Language": "en"}).text
    evil = client.get("/ui-lang/en", params={"next": "//evil.example"}, follow_redirects=False)
    assert evil.headers["location"] == "/"
    assert client.get("/ui-lang/fr").status_code == 400


def test_pick_lang():
    assert pick_lang(None, None) == "en"
    assert pick_lang(None, "zh-TW") == "zh"
    assert pick_lang(None, "fr, en;q=0.5, zh;q=0.7") == "zh"
    assert pick_lang("en", "zh") == "en" and pick_lang("xx", "zh") == "zh"
    assert pick_lang(None, "zh;q=abc, en;q=0.1") == "en"


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [("/papers/999999", 404, "999999"), ("/?q=x&year_from=abc", 400, "year_from"),
     ("/?q=x&year_from=2025&year_to=2020", 400, "after"), ("/papers/nope/related", 404, "nope"),
     ("/?q=" + "x" * 2001, 400, "")],
)  # fmt: skip
def test_errors_are_friendly_html_pages(client, url, status, needle):
    r = client.get(url)
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    assert f'data-status="{status}"' in r.text and needle in r.text
    assert "Traceback" not in r.text and EN["error.home"] in r.text


def test_upload_page(client, library, settings, tmp_path):
    r = client.get("/upload")
    assert r.status_code == 200
    assert 'id="dropzone"' in r.text and 'id="api-key"' in r.text and 'type="file"' in r.text
    assert EN["upload.readonly"] in r.text  # the test settings have no API keys
    with TestClient(
        create_app(settings.replace(api_keys="k1-0123456789abcdef"), library=library)
    ) as keyed:
        assert EN["upload.readonly"] not in keyed.get("/upload").text


def test_keyed_reading_asks_for_the_key(library, settings):
    keyed = settings.replace(api_keys="secret-0123456789abcdef", read_access="key")
    with TestClient(create_app(keyed, library=library)) as c:
        r = c.get("/")
        assert (
            r.status_code == 401
            and 'id="readkey"' in r.text
            and "secret-0123456789abcdef" not in r.text
        )
        c.cookies.set("kb_key", "wrong")
        assert c.get("/upload").status_code == 401
        c.cookies.set("kb_key", "secret-0123456789abcdef")
        assert c.get("/").status_code == 200
        assert c.get("/static/kb.css").status_code == 200  # assets are public


_URL = re.compile(r"https?://[^\s\"'<>)]+")
_ATTR = re.compile(r"<(\w+)[^>]*?\s(?:src|href|action)=\"([^\"]*)\"")


def test_no_external_urls_anywhere(client, library):
    """Offline: no asset from another host. Only a paper's DOI may link out (an <a>)."""
    for path in (API / "static").iterdir():
        text = path.read_text(encoding="utf-8")
        urls = [u for u in _URL.findall(text) if u != "http://www.w3.org/2000/svg"]
        assert urls == [], path.name
        assert "@import" not in text and "url(" not in text, path.name
    pid = _id(client, "a")
    pages = [
        "/",
        "/?q=jailbreak",
        f"/papers/{pid}",
        f"/papers/{pid}/related",
        "/upload",
        "/papers/999999",
        "/collections",
        f"/collections/{library.create_collection('Shelf').id}",
    ]
    for url in pages:
        for tag, target in _ATTR.findall(client.get(url).text):
            if tag == "a" and target.startswith("https://doi.org/"):
                continue
            assert target.startswith(("/", "#")) and not target.startswith("//"), (url, target)


def test_catalogues_cover_every_string():
    """Both languages have every message; every key the pages and kb.js use exists."""
    from api.web.i18n import JS_KEYS

    assert set(EN) == set(ZH)
    used = set()
    for path in (API / "templates").glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_.]+)'", path.read_text(encoding="utf-8")))
    prefixes = {k for k in used if k.endswith((".", "_"))}  # completed in the template
    assert used and used - prefixes <= set(EN), used - prefixes - set(EN)
    assert all(any(k.startswith(p) for k in EN) for p in prefixes)
    js = (API / "static" / "kb.js").read_text(encoding="utf-8")
    for key in re.findall(r'msg\("([a-z0-9_.]+)"', js):
        if key.endswith("_"):  # a prefix completed at run time (upload.status_ + status)
            assert any(k.startswith(key) for k in JS_KEYS), key
        else:
            assert key in JS_KEYS, key


def _links(html: str, section: str) -> dict[str, dict[str, list[str]]]:
    """The export links (label -> query) inside the element with id/class ``section``."""
    part = html.split(section, 1)[1].split("</p>", 1)[0]
    found = re.findall(r'<a href="(/api/export\?[^"]*)" data-format="([^"]+)"', part)
    return {label: parse_qs(urlsplit(unescape(url)).query) for url, label in found}


def test_search_results_link_their_export(client):
    params = {"q": "jailbreak attacks", "lang": "en", "year_from": "2022", "k": "5"}
    r = client.get("/", params=params)
    links = _links(r.text, 'id="export-results"')
    assert set(links) == {"BibTeX", "RIS", "CSL-JSON"}
    assert links["RIS"] == {
        "format": ["ris"], "q": ["jailbreak attacks"], "k": ["5"], "lang": ["en"],
        "year_from": ["2022"],
    }  # fmt: skip
    bib = client.get("/api/export", params={k: v[0] for k, v in links["BibTeX"].items()})
    assert bib.status_code == 200 and "attachment" in bib.headers["content-disposition"]
    assert bib.text.count("@misc{") == 1 and "Jailbreak" in bib.text  # only the 2024 EN paper
    # a filter the page applies is applied by the export too (years)
    old = client.get("/api/export", params={"q": "jailbreak", "year_to": "2023", "k": 5}).text
    assert "Jailbreak" not in old and "@misc{" in old


def test_collections_pages(client, library):
    pid, zh = _id(client, "a"), _id(client, "b")
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
    assert _links(page.text, 'id="export-library"')["CSL-JSON"] == {"format": ["csl-json"]}
    one = client.get(f"/collections/{evil.id}")
    assert one.status_code == 200 and "<script>alert(" not in one.text
    assert "&lt;script&gt;alert(&#39;n&#39;)&lt;/script&gt; see §3" in one.text
    assert f'href="/papers/{pid}"' in one.text and f'href="/papers/{zh}"' in one.text
    assert 'class="badge lang-zh"' in one.text and "Ada Lovelace, Alan Turing" in one.text
    assert one.text.count('class="card item"') == 2 and EN["paper.no_note"] in one.text
    links = _links(one.text, 'class="exports"')
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


def test_paper_page_offers_the_collections(client, library):
    pid = _id(client, "c")
    assert EN["paper.add_none"] in client.get(f"/papers/{pid}").text
    shelf = library.create_collection("Agents & tests")
    library.create_collection("Other")
    library.add_to_collection(shelf.id, pid, note="Week 2")
    page = client.get(f"/papers/{pid}").text
    assert f'<a class="coll" href="/collections/{shelf.id}">Agents &amp; tests</a>' in page
    assert "Week 2" in page and 'id="add-form"' in page
    assert f'<option value="{shelf.id}">Agents &amp; tests {EN["paper.in_collection"]}' in page
    assert re.search(r'<option value="\d+">Other</option>', page)
    assert EN["upload.readonly"] in page  # the test server has no keys: writes would be 403


def test_unknown_collection_is_a_friendly_404(client):
    for url in ("/collections/999999", "/collections/no-such-list"):
        r = client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert 'data-status="404"' in r.text and EN["error.home"] in r.text
        assert "No collection" in r.text and "Traceback" not in r.text


def test_collection_writes_answer_what_the_page_explains(client, library, settings):
    """The statuses kb.js turns into messages: 403 without keys, 401, 409 on a taken name."""
    body = {"name": "Reading group"}
    assert client.post("/api/collections", json=body).status_code == 403
    keyed = settings.replace(api_keys="k1-0123456789abcdef")
    with TestClient(create_app(keyed, library=library)) as c:
        assert c.post("/api/collections", json=body).status_code == 401
        auth = {"Authorization": "Bearer k1-0123456789abcdef"}
        made = c.post("/api/collections", json=body, headers=auth)
        assert made.status_code == 201
        taken = c.post("/api/collections", json={"name": "reading GROUP"}, headers=auth)
        assert taken.status_code == 409 and "already exists" in taken.json()["error"]
        assert EN["upload.readonly"] not in c.get(f"/collections/{made.json()['id']}").text
    for status in (401, 403, 404, 409):
        assert f"write.err_{status}" in EN and f"write.err_{status}" in ZH


def test_rename_and_delete_answer_what_the_page_explains(client, library, settings):
    """PATCH/DELETE /api/collections/{id} as the collection page's form and button send them."""
    shelf = library.create_collection("Week 1", "old")
    library.create_collection("Week 2")
    pid = _id(client, "a")
    library.add_to_collection(shelf.id, pid, note="keep me")
    url = f"/api/collections/{shelf.id}"
    assert client.patch(url, json={"name": "x"}).status_code == 403  # no keys: read-only
    assert client.delete(url).status_code == 403
    keyed = settings.replace(api_keys="k1-0123456789abcdef")
    auth = {"Authorization": "Bearer k1-0123456789abcdef"}
    with TestClient(create_app(keyed, library=library)) as c:
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
