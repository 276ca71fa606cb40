"""The web page's search, paper and upload pages, and how pages render (escaping, snippets,
error pages, no external URLs), through FastAPI's test client (fake embedder: pages, not the
model). Collection pages: test_web_collections.py; the two languages: test_web_i18n.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.web.i18n import EN
from api.web.pages import SNIPPET_CHARS, trim
from api.web.render import marked
from kb.types import Snippet
from tests.samples import WEB_RECORDS, export_links_in, paper_id

API = Path(__file__).resolve().parents[1] / "api"


@pytest.fixture
def client(make_app_client, library):
    with make_app_client(library, records=WEB_RECORDS) as c:
        yield c


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


def test_weak_results_are_greyed(make_app_client):
    """Cards under the relevance floor (KB_MIN_SCORE) are marked, and only those."""
    with make_app_client(records=WEB_RECORDS, min_score=100.0) as c:
        page = c.get("/", params={"q": "jailbreak attacks"}).text
        assert page.count('class="card"') == page.count('data-weak="1"') == 3
        assert f'title="{EN["card.weak"]}"' in page
    with make_app_client(records=WEB_RECORDS, min_score=-100.0) as c:
        page = c.get("/", params={"q": "jailbreak attacks"}).text
        assert page.count('class="card"') == 3 and 'data-weak="1"' not in page
    assert ".card[data-weak]" in (API / "static" / "kb.css").read_text()


def test_titles_and_snippets_are_escaped_and_highlighted(client):
    text = client.get("/", params={"q": "jailbreak"}).text
    assert "<script>alert(1)" not in text
    assert "Jailbreak &lt;script&gt;alert(1)&lt;/script&gt; attacks" in text
    assert "<mark>Jailbreak</mark>" in text
    page = client.get(f"/papers/{paper_id(client, 'a')}").text
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
    pid = paper_id(client, "a")
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


def test_upload_page(make_app_client, client, library):
    r = client.get("/upload")
    assert r.status_code == 200
    assert 'id="dropzone"' in r.text and 'id="api-key"' in r.text and 'type="file"' in r.text
    assert EN["upload.readonly"] in r.text  # the test settings have no API keys
    with make_app_client(library, api_keys="k1-0123456789abcdef") as keyed:
        assert EN["upload.readonly"] not in keyed.get("/upload").text


def test_keyed_reading_asks_for_the_key(make_app_client, library):
    keyed = {"api_keys": "secret-0123456789abcdef", "read_access": "key"}
    with make_app_client(library, **keyed) as c:
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
    """Offline: no asset from another host. Only a paper's DOI may link out (an <a>).
    (The vendored pdf.js in static/pdfjs/ is checked in a browser instead: tests/test_web.py
    records every request the reading page makes.)"""
    for path in (API / "static").iterdir():
        if path.is_dir():
            continue
        text = path.read_text(encoding="utf-8")
        urls = [u for u in _URL.findall(text) if u != "http://www.w3.org/2000/svg"]
        assert urls == [], path.name
        assert "@import" not in text and "url(" not in text, path.name
    pid = paper_id(client, "a")
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


def test_search_results_link_their_export(client):
    params = {"q": "jailbreak attacks", "lang": "en", "year_from": "2022", "k": "5"}
    r = client.get("/", params=params)
    links = export_links_in(r.text, 'id="export-results"')
    assert set(links) == {"BibTeX", "RIS", "CSL-JSON"}
    assert links["RIS"] == {
        "format": ["ris"], "q": ["jailbreak attacks"], "k": ["5"], "lang": ["en"],
        "year_from": ["2022"],
    }  # fmt: skip
    bib = client.get("/api/export", params={k: v[0] for k, v in links["BibTeX"].items()})
    assert bib.status_code == 200 and "attachment" in bib.headers["content-disposition"]
    assert bib.text.count("\n}\n") == 1 and "Jailbreak" in bib.text  # only the 2024 EN paper
    assert bib.text.startswith("@article{")  # it has a DOI: a journal paper
    # a filter the page applies is applied by the export too (years)
    old = client.get("/api/export", params={"q": "jailbreak", "year_to": "2023", "k": 5}).text
    assert "Jailbreak" not in old and old.startswith("@")


def test_paper_page_offers_the_collections(client, library):
    pid = paper_id(client, "c")
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


def test_recently_added_lists_the_newest_papers_first(make_app_client):
    records = [
        {"key": f"r{i}", "title": f"Paper number {i} on reward hacking", "abstract": "x" * 40}
        for i in range(10)
    ]
    with make_app_client(records=records) as client:
        page = client.get("/").text
    shown = re.findall(r"Paper number (\d+) on reward hacking", page)
    assert shown[:8] == ["9", "8", "7", "6", "5", "4", "3", "2"]  # not the oldest eight
