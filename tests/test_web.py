"""The web page in a real headless Chromium (Playwright), over the sample papers and the real model.

Needs Debian's ``chromium`` (Playwright's own browser download is not used). Screenshots in
docs/screenshots are rewritten only when KB_SCREENSHOTS=1, so a normal run changes no file.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHOTS = ROOT / "docs" / "screenshots"
KEY = "web-test-key-0123456789"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt install chromium) at /usr/bin/chromium"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[str]:
    """kb serving the eight sample papers with the real model, on a free loopback port."""
    import uvicorn

    from api.app import create_app
    from kb.library.facade import Library
    from kb.settings import Settings

    tmp = tmp_path_factory.mktemp("web")
    settings = Settings(
        data_dir=tmp / "kb-data", model_dir=tmp / "models", second_encoder="none", api_keys=KEY
    )
    lib = Library(settings, embedder=real_embedder)
    assert lib.ingest(sorted(EXAMPLES.glob("*.pdf"))).ok
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, library=lib), host="127.0.0.1", port=port, log_level="warning",
        ws="none", lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    lib.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 860}, locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def shot(page: Any, name: str) -> None:
    """Save a screenshot for docs/WEB.md, only when asked (KB_SCREENSHOTS=1)."""
    if os.environ.get("KB_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        width = page.viewport_size["width"]
        height = min(page.evaluate("document.documentElement.scrollHeight"), 1600)
        clip = {"x": 0, "y": 0, "width": width, "height": height}  # the top: keeps docs small
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, clip=clip)


def search(page: Any, query: str) -> None:
    page.goto("/")
    page.fill("input[name=q]", query)
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("ol.results li.card")


def test_english_query_finds_the_chinese_paper(page: Any) -> None:
    search(page, "reward hacking")
    cards = page.locator("li.card")
    langs = [cards.nth(i).get_attribute("data-lang") for i in range(cards.count())]
    assert "zh" in langs[:3] and "en" in langs[:3], langs
    zh_card = page.locator("li.card[data-lang=zh]").first
    assert "奖励黑客" in zh_card.locator("h3").inner_text()
    page_link = zh_card.locator("a.page").first
    assert re.match(r"/papers/\d+/read\?page=\d+&", page_link.get_attribute("href") or "")
    assert page.locator("li.card mark").count() > 0  # the English paper's matching words
    zh_card.locator("details.related summary").click()
    related = zh_card.locator(".related-body")
    related.locator(".related-group[data-lang=en] li.mini").first.wait_for()
    assert related.locator(".related-group[data-lang=zh]").count() == 1
    shot(page, "search")


@pytest.mark.parametrize("query", ["reward hacking", "越狱攻击"])
def test_a_snippet_opens_the_pdf_at_its_page_with_the_terms_highlighted(
    page: Any, query: str
) -> None:
    """The page link of a snippet opens kb's own pdf.js reader (offline) at that page, with
    the query's terms highlighted in the PDF's text there; back returns to the search."""
    search(page, query)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    link = page.locator("li.card .snippet a.page").first
    href = link.get_attribute("href") or ""
    want = int(re.search(r"[?&]page=(\d+)", href).group(1))
    link.click()
    page.wait_for_url(re.compile(r"/papers/\d+/read\?"))
    page.wait_for_selector("#reader[data-found]", timeout=60_000)
    assert page.locator("#reader").get_attribute("data-found") == "yes"
    assert page.locator("#reader .textLayer .highlight").count() > 0
    shown = page.evaluate(
        "() => { const c = document.getElementById('reader').getBoundingClientRect();"
        " const pages = [...document.querySelectorAll('#viewer .page')];"
        " const hit = document.querySelector('#reader .textLayer .highlight.selected')"
        "   || document.querySelector('#reader .textLayer .highlight');"
        " return Number(hit.closest('.page').dataset.pageNumber); }"
    )
    assert shown == want, (shown, want)
    assert page.locator("#reader-status").inner_text() == (
        f"Page {want}: the passage's terms are highlighted"
    )
    base = page.url.split("/papers/")[0]
    elsewhere = [u for u in requested if not u.startswith((base, "blob:", "data:"))]
    assert elsewhere == [] and any("/static/pdfjs/" in u for u in requested), elsewhere
    if query == "reward hacking":
        shot(page, "reader")
    page.click("#back-link")
    page.wait_for_selector("ol.results li.card")
    assert page.locator("input[name=q]").input_value() == query


def test_open_a_result_and_follow_related_work(page: Any) -> None:
    search(page, "reward hacking")
    zh_title = page.locator("li.card[data-lang=zh] h3 a").first
    title = zh_title.inner_text()
    zh_title.click()
    page.wait_for_url(re.compile(r"/papers/\d+\?back=/%3Fq%3D"))
    assert page.locator("h1").inner_text() == title
    assert page.locator(".abstract").inner_text().strip()
    pdf = page.locator("#files a.button")
    assert re.fullmatch(r"/api/papers/\d+/pdf", pdf.get_attribute("href") or "")
    en = page.locator("#related .related-group[data-lang=en] li.mini a")
    zh = page.locator("#related .related-group[data-lang=zh] li.mini a")
    assert en.count() >= 1 and zh.count() >= 1  # nearest papers in both languages
    next_title = en.first.inner_text()
    en.first.click()
    page.wait_for_function("t => document.querySelector('h1').innerText === t", arg=next_title)
    assert page.locator("#related li.mini").count() >= 2


def _papers_by_title(page: Any) -> dict[str, int]:
    listing = page.request.get("/api/papers", params={"limit": 100}).json()["papers"]
    return {p["title"]: p["id"] for p in listing}


def test_collections_from_the_browser(page: Any) -> None:
    """Create a collection, add a paper, edit its note, export, remove a paper, rename, delete."""
    page.goto("/collections")
    assert page.locator("#keybox").get_attribute("open") is not None  # no key yet: shown
    page.fill("#coll-name", "Reading group: reward hacking")
    page.click("#create-collection button[type=submit]")
    assert "API key" in page.locator("#create-collection .msg").inner_text()
    page.fill("#api-key", KEY)
    page.click("#keyform button[type=submit]")
    page.fill("#coll-desc", "Week 1: reward hacking in RLHF and in coding agents, EN and 中文.")
    page.click("#create-collection button[type=submit]")
    page.wait_for_url(re.compile(r"/collections/\d+$"))
    shelf_url = page.url
    assert page.locator("h1").inner_text() == "Reading group: reward hacking"
    page.goto("/collections")  # the same name again (case aside): 409, said in words
    page.fill("#coll-name", "reading group: REWARD hacking")
    page.click("#create-collection button[type=submit]")
    page.wait_for_selector("#create-collection .msg[data-state=failed]")
    assert "already exists" in page.locator("#create-collection .msg").inner_text()

    search(page, "reward hacking")  # add the Chinese paper from its page, with a note
    zh_title = page.locator("li.card[data-lang=zh] h3 a").first
    title = zh_title.inner_text()
    zh_title.click()
    page.wait_for_url(re.compile(r"/papers/\d+\?back=/%3Fq%3D"))
    page.click("#add-box summary")
    page.select_option("#add-collection", label="Reading group: reward hacking")
    note = "第 3 节的奖励模型过度优化曲线：与英文论文的编码智能体结果对照。"
    page.fill("#add-note", note)
    page.click("#add-form button[type=submit]")
    member = page.locator("#collections .memberships li")
    member.first.wait_for()
    assert note in member.inner_text()
    shot(page, "paper")
    member.locator("a.coll").click()  # the membership links to the collection page
    page.wait_for_url(shelf_url)
    item = page.locator("li.item").filter(has_text=title)
    assert item.locator(".note").inner_text() == note

    # a second paper through the API, then edit its note on the page
    ids = _papers_by_title(page)
    en_title = next(t for t in ids if t.startswith("Passing the Tests"))
    shelf_id = shelf_url.rsplit("/", 1)[1]
    auth = {"Authorization": f"Bearer {KEY}"}
    put = page.request.put(f"/api/collections/{shelf_id}/papers/{ids[en_title]}", headers=auth)
    assert put.ok
    page.reload()
    en_item = page.locator("li.item").filter(has_text=en_title)
    en_item.locator("details.edit-note summary").click()
    en_item.locator("textarea").fill("Start here: the test-tampering examples in section 4.")
    en_item.locator("button[type=submit]").click()
    en_item.locator(".msg[data-state=ok]").wait_for()
    assert "section 4" in en_item.locator(".note").inner_text()
    shot(page, "collection")

    with page.expect_download() as download:  # the BibTeX link downloads the collection
        page.locator(".collection > .exports a", has_text="BibTeX").click()
    assert download.value.suggested_filename.endswith(".bib")
    bib = Path(download.value.path()).read_text(encoding="utf-8")
    assert bib.count("\n}\n") == 2 and title in bib and "section 4" in bib
    assert bib.count("/pdf:PDF}") == 2  # each entry links its PDF on this server

    other = page.request.post(
        "/api/collections", headers=auth,
        data={"name": "Oversight and evaluations", "description": "Debate, sandbagging, uplift."},
    ).json()  # fmt: skip
    for t in ids:
        if t.startswith(("Debate", "Measuring Uplift", "以算力")):
            page.request.put(f"/api/collections/{other['id']}/papers/{ids[t]}", headers=auth)
    page.goto("/collections")
    assert page.locator("li.coll-card").count() == 2
    shot(page, "collections")

    page.goto(shelf_url)  # remove a paper: asked first, then gone (the paper stays)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("li.item").filter(has_text=en_title).locator("button.remove").click()
    page.wait_for_function("() => document.querySelectorAll('li.item').length === 1")
    assert page.request.get(f"/api/papers/{ids[en_title]}").ok

    # rename: a taken name is refused in words (409), a free one is saved; then delete it
    page.click("details.edit-collection summary")
    page.fill("#edit-name", "oversight and EVALUATIONS")
    page.click("#collection-form button[type=submit]")
    page.wait_for_selector("#collection-msg[data-state=failed]")
    assert "already exists" in page.locator("#collection-msg").inner_text()
    page.fill("#edit-name", "Reward hacking, week 1")
    page.fill("#edit-desc", "")
    page.click("#collection-form button[type=submit]")
    page.wait_for_selector("#collection-msg[data-state=ok]")
    assert page.locator("h1").inner_text() == "Reward hacking, week 1"
    assert page.title().startswith("Reward hacking, week 1") and page.locator(".desc").is_hidden()
    assert page.request.get(f"/api/collections/{shelf_id}").json()["description"] == ""
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-collection")
    page.wait_for_url(re.compile(r"/collections$"))
    assert page.locator("li.coll-card").count() == 1
    assert "Reward hacking, week 1" not in page.inner_text("main")
    assert page.request.get(f"/api/collections/{shelf_id}").status == 404


def test_search_results_export(page: Any) -> None:
    search(page, "越狱攻击")
    link = page.locator("#export-results a", has_text="RIS")
    assert "q=%E8%B6%8A%E7%8B%B1%E6%94%BB%E5%87%BB" in (link.get_attribute("href") or "")
    with page.expect_download() as download:
        link.click()
    ris = Path(download.value.path()).read_text(encoding="utf-8")
    first = page.locator("li.card h3 a").first.inner_text()
    assert f"TI  - {first}" in ris and ris.count("ER  -") == page.locator("li.card").count()


def _drop(page: Any, path: Path) -> None:
    """Drop a file on the drop zone, as dragging it from the desktop does."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: "application/pdf"}));
            return dt;
        }""",
        [data, path.name],
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def test_upload_needs_a_key_then_ingests(page: Any, make_pdf: Any) -> None:
    pdf = make_pdf(
        "sandbagging.pdf",
        [["Detecting Sandbagging in Frontier Model Evaluations", "Grace Hopper", "2025",
          "Abstract. Models may strategically underperform on capability evaluations.",
          "We propose noise-injection probes that reveal hidden capabilities."]],
        title="Detecting Sandbagging in Frontier Model Evaluations", author="Grace Hopper",
    )  # fmt: skip
    page.goto("/upload")
    rows = page.locator("#uploads li.upload")
    page.set_input_files("#file-input", str(pdf))  # no key yet: refused before sending
    page.wait_for_selector("#uploads li.upload:nth-child(1)[data-state=failed]")
    assert "API key" in rows.nth(0).inner_text()
    page.fill("#api-key", "not-the-key-0123456789")
    page.click("#keyform button[type=submit]")
    page.set_input_files("#file-input", str(pdf))  # a wrong key: the server says 401
    page.wait_for_selector("#uploads li.upload:nth-child(2)[data-state=failed]")
    assert "not valid" in rows.nth(1).inner_text()
    page.fill("#api-key", KEY)
    page.click("#keyform button[type=submit]")
    _drop(page, pdf)
    page.wait_for_selector("#uploads li.upload:nth-child(3)[data-state=ok]", timeout=60_000)
    done = rows.nth(2)
    assert "Ingested" in done.inner_text()
    assert page.locator("#uploads progress").nth(2).get_attribute("value") == "100"
    assert page.evaluate("localStorage.getItem('kb_api_key')") == KEY
    shot(page, "upload")
    # a PDF whose second page has no text: stored, and the row says which pages need OCR
    # and, where the server can run it, how to read them from this page
    half = make_pdf(
        "half_blank.pdf",
        [["Evaluating Refusal Robustness", "Ada Lovelace",
          "Abstract. Refusals of harmful requests are measured under paraphrase attacks."], []],
        title="Evaluating Refusal Robustness",
    )  # fmt: skip
    _drop(page, half)
    page.wait_for_selector("#uploads li.upload:nth-child(4)[data-state=ok]", timeout=60_000)
    note = rows.nth(3).inner_text()
    assert "1 of 2 pages" in note and "half_blank.pdf" in note, note
    ocr_box = page.locator("#ocr").count() == 1
    assert ("send the file again" in note) == ocr_box, note
    done.locator("a.open").click()
    page.wait_for_url(re.compile(r"/papers/\d+$"))
    assert "Sandbagging" in page.locator("h1").inner_text()


def test_chinese_interface(browser: Any, base_url: str, page: Any) -> None:
    context = browser.new_context(
        base_url=base_url, locale="zh-CN", viewport={"width": 1280, "height": 860}
    )
    zh_page = context.new_page()
    zh_page.goto("/")  # Accept-Language: zh-CN picks Chinese
    assert zh_page.locator("html").get_attribute("lang") == "zh-CN"
    assert zh_page.locator("button[type=submit]").inner_text() == "检索"
    context.close()
    search(page, "奖励黑客")
    assert page.locator("html").get_attribute("lang") == "en"
    page.click("#lang-toggle")  # the toggle keeps the query and the results
    page.wait_for_selector("html[lang=zh-CN]")
    assert page.locator("input[name=q]").input_value() == "奖励黑客"
    assert page.locator("li.card").count() >= 2 and "相关研究" in page.inner_text("main")
    shot(page, "search-zh")
    page.set_viewport_size({"width": 390, "height": 800})  # a phone
    shot(page, "search-zh-narrow")


def test_api_docs_render_offline(page: Any) -> None:
    """Swagger UI at /docs renders every route from local assets (the machine is offline)."""
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/ingest-jobs" in p for p in paths) and any("/api/search" in p for p in paths)
