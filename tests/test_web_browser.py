"""Every page in a real headless Chromium (Playwright, Debian's chromium) at a desktop and a
phone width: nothing scrolls sideways, the header keeps one row; and the forms of issue 12:
back to the same search, the edit form, "add to collection" from the results. A library of
awkward names (long unbreakable titles, authors, file and collection names), fake embedder."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM, _draw_pdf

KEY = "browser-test-key-0123456789"
WIDTHS = (1280, 390)
LONG_WORD = "Supercalifragilisticexpialidociouslyunbreakablereinforcementlearningfromhumanfeedback"
LONG_NAME = "x" * 90 + "_final_version_2024_reviewed.pdf"
RECORDS = [
    {"key": "long", "title": f"{LONG_WORD} {LONG_WORD}", "year": 2024,
     "authors": [LONG_WORD, "Ada Lovelace"], "doi": "10.5555/" + "9" * 80,
     "abstract": f"Reward hacking {LONG_WORD} in coding agents."},
    {"key": "zh", "title": "大模型越狱攻击与防御方法的系统性综述及其在安全对齐评测中的应用研究" * 2,
     "year": 2023, "authors": ["欧阳娜娜"], "abstract": "越狱攻击导致奖励黑客与滥用风险。"},
    {"key": "short", "title": "Reward hacking in RLHF", "year": 2022, "authors": ["Alan Turing"],
     "abstract": "Reward hacking and reward model overoptimisation."},
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt install chromium) at /usr/bin/chromium"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """kb serving the awkward library on a free loopback port: base URL and ids."""
    from api.app import create_app
    from kb.library.facade import Library
    from kb.settings import Settings
    from tests.fakes import HashEmbedder
    from tests.live import serve
    from tests.samples import write_feed

    tmp = tmp_path_factory.mktemp("browser")
    settings = Settings(
        data_dir=tmp / "kb-data", model_dir=tmp / "models", second_encoder="none", api_keys=KEY
    )
    lib = Library(settings, embedder=HashEmbedder())
    assert lib.ingest([write_feed(tmp / "feed.jsonl", RECORDS)]).ok
    pdf = _draw_pdf(tmp / "u.pdf", [["Reward hacking in uploaded agents."], ["Page two."]])
    _, uploaded = lib.add_upload(io.BytesIO(pdf.read_bytes()), LONG_NAME)
    shelf = lib.create_collection(f"Reading group {LONG_WORD}", f"About {LONG_WORD}.")
    for paper in lib.all_papers():
        lib.add_to_collection(shelf.id, paper.id, f"Note {LONG_WORD}")
    ids = {p.key: p.id for p in lib.all_papers()}
    with serve(create_app(settings, library=lib)) as port:
        yield {"url": f"http://127.0.0.1:{port}", "ids": ids, "upload": uploaded.id,
               "shelf": shelf.id, "lib": lib}  # fmt: skip
    lib.close()


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(
        base_url=site["url"], viewport={"width": 1280, "height": 860}, locale="en-US"
    )
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def _pages(site: dict[str, Any]) -> list[str]:
    long_id, upload = site["ids"]["long"], site["upload"]
    return [
        "/", "/?q=reward+hacking", "/papers", f"/papers/{long_id}", f"/papers/{upload}",
        f"/papers/{site['ids']['zh']}", "/collections", f"/collections/{site['shelf']}",
        "/upload", "/papers/999999", f"/papers/{upload}/read?page=2&t=Page+two",
    ]  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_page_scrolls_sideways(page: Any, site: dict[str, Any], width: int, lang: str) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    page.context.add_cookies([{"name": "kb_lang", "value": lang, "url": site["url"]}])
    for url in _pages(site):
        page.goto(url)
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        sizes = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth,"
            " document.querySelector('header.top').getBoundingClientRect().height]"
        )
        assert sizes[0] <= sizes[1], f"{url} at {width} px ({lang}): {sizes[0]} px wide"
        assert sizes[2] <= 64, f"{url} at {width} px ({lang}): the header takes {sizes[2]} px"


def test_back_to_search_keeps_the_query_and_filters(page: Any) -> None:
    page.goto("/?q=reward+hacking&lang=en&year_from=2022")
    page.locator("li.card h3 a").first.click()
    page.wait_for_url(re.compile(r"/papers/\d+\?back="))
    page.click("#back-link")
    page.wait_for_url(re.compile(r"/\?q="))
    assert page.locator("input[name=q]").input_value() == "reward hacking"
    assert page.locator("input[name=lang][value=en]").is_checked()
    assert page.locator("input[name=year_from]").input_value() == "2022"


def test_edit_form_saves_with_the_key(page: Any, site: dict[str, Any]) -> None:
    pid = site["ids"]["short"]
    page.goto(f"/papers/{pid}")
    page.click("#edit summary")
    page.fill("#edit-title", "Reward hacking in RLHF, corrected")
    page.fill("#edit-tags", "reward hacking, 奖励黑客")
    page.fill("#edit-arxiv", "2209.13085")
    page.click("#edit-form button[type=submit]")
    assert "API key" in page.locator("#edit-form .msg").inner_text()  # no key yet: said
    page.fill("#api-key", KEY)
    page.click("#keyform button[type=submit]")
    page.click("#edit-form button[type=submit]")
    page.wait_for_function("document.querySelector('h1').innerText.endsWith('corrected')")
    paper = site["lib"].paper(pid)
    assert paper.title == "Reward hacking in RLHF, corrected"
    assert paper.tags == ["reward hacking", "奖励黑客"] and paper.arxiv_id == "2209.13085"
    assert paper.authors == ["Alan Turing"] and paper.year == 2022  # unchanged fields stay
    page.click("#edit summary")
    page.fill("#edit-tags", "奖励黑客")  # a tag removed
    page.click("#edit-form button[type=submit]")
    page.wait_for_load_state("load")
    page.wait_for_function("!document.querySelector('#edit-form .msg[data-state=busy]')")
    assert _wait_for(lambda: site["lib"].paper(pid).tags == ["奖励黑客"])


def test_add_to_collection_from_the_results(page: Any, site: dict[str, Any]) -> None:
    lib = site["lib"]
    target = lib.create_collection("Week 2 读书会")
    page.goto("/upload")
    page.fill("#api-key", KEY)
    page.click("#keyform button[type=submit]")
    page.goto("/?q=reward+hacking")
    card = page.locator("li.card").nth(1)
    pid = int(card.get_attribute("data-paper"))
    card.locator("details.card-add summary").click()
    card.locator("select").select_option(label="Week 2 读书会")
    card.locator("form.add-card-form button").click()
    card.locator(".msg[data-state=ok]").wait_for()
    assert "Week 2 读书会" in card.locator(".msg").inner_text()
    assert [i.paper.id for i in lib.collection(target.id).items] == [pid]


def test_pdf_links_open_at_the_passage_page(page: Any) -> None:
    """A snippet's page link opens the reading page at that page (pdf.js, served by kb), the
    passage's words highlighted; the browser's own viewer is one link away."""
    page.goto("/?q=uploaded+agents")
    links = page.locator("li.snippet a.page").evaluate_all(
        "a => a.map(x => x.getAttribute('href'))"
    )
    assert links and all(re.match(r"/papers/\d+/read\?page=\d+&t=", h) for h in links)
    page.goto(links[0])
    page.wait_for_selector("#reader[data-found=yes]")
    assert page.locator("#reader .textLayer .highlight").count() > 0
    plain = page.locator("a.reader-plain").get_attribute("href") or ""
    assert re.fullmatch(r"/api/papers/\d+/pdf#page=\d+", plain)
    assert page.request.get(plain.split("#")[0]).headers["content-type"] == "application/pdf"


def test_a_paper_without_a_pdf_has_no_reading_page(page: Any, site: dict[str, Any]) -> None:
    r = page.request.get(f"/papers/{site['ids']['short']}/read?page=1")
    assert r.status == 404 and "no PDF" in r.text()


def _wait_for(check: Any, seconds: float = 10) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_screens_are_documented() -> None:
    """docs/WEB.md describes the pages this file drives."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "WEB.md").read_text(encoding="utf-8")
    for words in ("Cite", "GB/T 7714", "/papers", "390"):
        assert words in text, words
