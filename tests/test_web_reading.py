"""The page as a place to read from (issue 12): uploads named as uploaded, back to the same
search, example queries from the library, paper and collection lists with sort and pages,
the edit form, "add to collection" on results and the "Cite" box (FastAPI's test client,
fake embedder). Layout and the forms in a real browser: test_web_browser.py."""

from __future__ import annotations

import re
import time
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from api.web.i18n import EN
from api.web.pages import example_queries, title_phrase
from kb.library.exports import gbt7714
from tests.samples import WEB_RECORDS, paper_id

KEY = "reading-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _hrefs(html: str, pattern: str) -> list[str]:
    return [unescape(h) for h in re.findall(rf'href="({pattern}[^"]*)"', html)]


def test_an_upload_keeps_its_name_and_no_server_path_is_shown(make_app_client, make_pdf):
    pdf = make_pdf("x.pdf", [["Reward hacking in coding agents: tests gamed by agents."]])
    with make_app_client(api_keys=KEY) as client:
        name = "Reward hacking — final (v2).pdf"
        with pdf.open("rb") as fh:
            r = client.post(
                "/api/papers", files={"file": (name, fh, "application/pdf")}, headers=AUTH
            )
        assert r.status_code == 201, r.text
        pid, kept = r.json()["id"], Path(r.json()["files"][0])
        assert re.fullmatch(r"[0-9a-f]{64}\.pdf", kept.name)  # stored by content hash
        files_dir = str(client.settings.files_dir)
        for url in (f"/papers/{pid}", "/", "/papers", "/?q=reward+hacking"):
            page = client.get(url).text
            assert name in unescape(page), url
            assert kept.name not in page and files_dir not in page, url
        assert client.library.upload_names([client.library.paper(pid)]) == {pid: name}
        # the page's own way, an ingest job; a client's path is cut to its last part
        other = make_pdf("w.pdf", [["越狱攻击与防御：大模型安全评测。"]])
        with other.open("rb") as fh:
            files = {"files": ("C:\\论文\\越狱攻击 综述.pdf", fh, "application/pdf")}
            job = client.post("/api/ingest-jobs", files=files, headers=AUTH).json()
        for _ in range(600):
            job = client.get(f"/api/ingest-jobs/{job['id']}").json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
        zh_id = job["files"][0]["paper_id"]
        assert zh_id and "越狱攻击 综述.pdf" in client.get(f"/papers/{zh_id}").text
        assert "C:" not in client.get(f"/papers/{zh_id}").text


def test_a_kept_upload_without_a_known_name_shows_no_hash(make_app_client, make_pdf, settings):
    from kb.library import Library
    from tests.fakes import HashEmbedder

    pdf = make_pdf("y.pdf", [["Scalable oversight with debate."]])
    lib = Library(settings, embedder=HashEmbedder())
    try:
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        digest_path = settings.files_dir / ("ab" * 32 + ".pdf")
        digest_path.write_bytes(pdf.read_bytes())  # as an upload from before names were kept
        assert lib.ingest([digest_path]).ok
        with make_app_client(lib) as client:
            pid = client.get("/api/papers").json()["papers"][0]["id"]
            page = client.get(f"/papers/{pid}").text
            assert digest_path.name not in page and EN["card.uploaded"] in page
    finally:
        lib.close()


def test_back_to_search_keeps_the_query_and_filters(make_app_client):
    with make_app_client(records=WEB_RECORDS) as client:
        r = client.get("/", params={"q": "jailbreak", "lang": "en", "year_from": "2022"})
        links = _hrefs(r.text, "/papers/")
        titled = [h for h in links if "back=" in h]
        assert titled, links
        back = parse_qs(urlsplit(titled[0]).query)["back"][0]
        assert parse_qs(urlsplit(back).query) == {
            "q": ["jailbreak"], "lang": ["en"], "year_from": ["2022"]
        }  # fmt: skip
        page = client.get(titled[0]).text
        assert f'href="{back}" id="back-link"' in unescape(page)
        pid = paper_id(client, "a")
        for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            page = client.get(f"/papers/{pid}", params={"back": evil}).text
            assert 'href="/" id="back-link"' in page, evil


def test_example_queries_come_from_the_library(make_app_client, tmp_path):
    records = [
        {"key": "t1", "title": "Sandbagging: strategic underperformance on evaluations",
         "year": 2024, "abstract": "x"},
        {"key": "t2", "title": "大模型对齐：方法与挑战", "year": 2024, "abstract": "对齐"},
        {"key": "t3", "title": "思维链监控的可靠性研究", "year": 2025, "abstract": "监控"},
        {"key": "t4", "title": "Honest AI", "year": 2025, "abstract": "y"},
    ]  # fmt: skip
    with make_app_client(records=records, api_keys=KEY) as client:
        first = client.get("/").text.split('class="examples"')[1].split("</p>")[0]
        chips = re.findall(r'<a href="/\?q=[^"]*">([^<]+)</a>', first)
        # key phrases of titles (one word, "Sandbagging", is too vague to try)
        assert set(chips) == {"大模型对齐", "Honest AI", "思维链监控的可靠性研究"}
        assert "reward hacking" not in chips  # the sample library's list is gone
        for key, tag in (("t1", "sandbagging evals"), ("t2", "价值对齐"), ("t3", "价值对齐")):
            edit = {"tags_add": [tag]}
            assert client.patch(
                f"/api/papers/{paper_id(client, key)}", json=edit, headers=AUTH
            ).is_success
        page = client.get("/").text.split('class="examples"')[1].split("</p>")[0]
        chips = re.findall(r'<a href="/\?q=([^"]*)">([^<]+)</a>', page)
        assert [c for _, c in chips][:2] == ["sandbagging evals", "价值对齐"]  # tags first
        assert parse_qs(f"q={chips[1][0]}")["q"] == ["价值对齐"]
    with make_app_client(data_dir=tmp_path / "empty") as empty:
        assert 'class="examples"' not in empty.get("/").text


def test_title_phrases_in_both_languages():
    assert title_phrase("Sleeper Agents: Training Deceptive LLMs") == "Sleeper Agents"
    assert title_phrase("大模型对齐：方法与挑战") == "大模型对齐"
    assert title_phrase("Alignment") == ""  # one word: too vague to try
    assert title_phrase("一种基于强化学习与人类反馈的大语言模型安全对齐方法研究与实现") == ""
    assert example_queries([]) == []


def test_the_paper_list_sorts_and_pages(make_app_client):
    records = [
        {"key": f"p{i:02}", "title": f"Paper {chr(65 + i)} on oversight", "year": 2000 + i,
         "abstract": "x"}
        for i in range(25)
    ]  # fmt: skip
    with make_app_client(records=records) as client:
        first = client.get("/papers").text
        assert first.count('class="card compact"') == 20 and "Page 1 of 2" in first
        titles = re.findall(r'lang="en">(Paper \w) on oversight</a>', first)
        by_title = client.get("/papers", params={"sort": "title"}).text
        assert re.findall(r'lang="en">(Paper \w) on', by_title)[:3] == [
            "Paper A",
            "Paper B",
            "Paper C",
        ]
        by_year = client.get("/papers", params={"sort": "year", "page": "2"}).text
        assert re.findall(r'lang="en">(Paper \w) on', by_year) == [
            "Paper E",
            "Paper D",
            "Paper C",
            "Paper B",
            "Paper A",
        ]
        assert "/papers?sort=year&page=1" in unescape(by_year) and 'rel="next"' not in by_year
        assert len(titles) == 20
        odd = client.get("/papers", params={"sort": "nonsense", "page": "999"})
        assert odd.status_code == 200 and "Page 2 of 2" in odd.text


def test_collection_lists_sort_and_page(make_app_client):
    records = [{"key": f"c{i:02}", "title": f"Item {i:02} about debate", "year": 2000 + i,
                "abstract": "x"} for i in range(22)]  # fmt: skip
    with make_app_client(records=records, api_keys=KEY) as client:
        ids = [p["id"] for p in client.get("/api/papers", params={"limit": 100}).json()["papers"]]
        made = [client.post("/api/collections", json={"name": f"List {n}"}, headers=AUTH).json()
                for n in "BA"]  # fmt: skip
        for pid in ids:
            client.put(f"/api/collections/{made[0]['id']}/papers/{pid}", headers=AUTH, json={})
        listing = client.get("/collections").text
        assert listing.index("List A") < listing.index("List B")  # by name
        by_size = client.get("/collections", params={"sort": "size"}).text
        assert by_size.index("List B") < by_size.index("List A")
        shelf = client.get(f"/collections/{made[0]['id']}", params={"sort": "title"}).text
        assert shelf.count('class="card item"') == 20 and "Page 1 of 2" in shelf
        assert "22 papers" in shelf  # the count is the collection's, not the page's
        rest = client.get(f"/collections/{made[0]['id']}", params={"sort": "title", "page": "2"})
        assert re.findall(r"Item (\d\d) about", rest.text) == ["20", "21"]


def test_paper_page_has_the_edit_form_and_the_cite_box(make_app_client):
    with make_app_client(records=WEB_RECORDS, api_keys=KEY) as client:
        pid = paper_id(client, "a")
        page = client.get(f"/papers/{pid}").text
        form = page.split('id="edit-form"')[1].split("</form>")[0]
        for name in ("title", "authors", "year", "abstract", "doi", "arxiv_id", "tags"):
            assert f'name="{name}"' in form, name
        assert 'value="10.5555/jb"' in form and "Ada Lovelace\nAlan Turing" in form
        cite = page.split('id="cite"')[1].split("</details>")[0]
        assert [f for f in re.findall(r'data-format="([a-z0-9]+)"', cite)] == [
            "bibtex",
            "ris",
            "gbt7714",
        ]
        assert "@article{lovelace2024jailbreak," in cite and "TY  - JOUR" in cite
        assert unescape(cite).count(gbt7714(client.library.paper(pid))) == 1
        assert "&lt;script&gt;" in cite and "<script>alert" not in cite  # escaped


def test_every_search_card_can_be_added_to_a_collection(make_app_client):
    with make_app_client(records=WEB_RECORDS, api_keys=KEY) as client:
        page = client.get("/", params={"q": "jailbreak attacks"}).text
        n = page.count('class="card"')
        assert n and page.count('class="addbox card-add"') == n
        assert page.count(EN["paper.add_none"]) == n  # no collection yet: a link to make one
        client.post("/api/collections", json={"name": "读书会"}, headers=AUTH)
        page = client.get("/", params={"q": "jailbreak attacks"}).text
        assert page.count('class="add-card-form"') == n and page.count(">读书会</option>") == n


def test_api_exports_link_each_pdf_by_url_not_path(make_app_client, make_pdf):
    pdf = make_pdf("z.pdf", [["Debate helps oversight of strong models."]], title="Debate")
    with make_app_client(ingest=[pdf]) as client:
        pid = client.get("/api/papers").json()["papers"][0]["id"]
        bib = client.get("/api/export", params={"format": "bibtex"}).text
        assert f"file = {{:http\\://testserver/api/papers/{pid}/pdf:PDF}}" in bib
        assert str(pdf.parent) not in bib
        ris = client.get("/api/export", params={"format": "ris"}).text
        assert f"L1  - http://testserver/api/papers/{pid}/pdf" in ris
