"""Pages that pypdf and pdfminer cannot read: poppler's pdftotext, OCR, and reading a stored
paper again in place (``kb ingest --ocr``, ``kb ocr``) with its id, tags and edits kept."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import read_pdf
from ingest.ocr import ocr_available
from ingest.poppler import poppler_pages
from kb.cli import cli
from kb.library.facade import Library
from kb.library.ingest import IngestEvent
from tests.conftest import PDFS
from tests.fakes import HashEmbedder

SO_LARGE = sorted(PDFS.glob("zh_so_large_lm_*.pdf"))
REPORT = [
    "Reward hacking in reinforcement learning from human feedback",
    "Language models can learn to exploit flaws in their reward model, so that the",
    "measured reward rises while the behaviour the designers wanted does not.",
]
needs_poppler = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("pdftotext", "pdfseparate", "pdfunite")),
    reason="poppler-utils is not installed",
)
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None or ocr_available() is not None,
    reason="Tesseract with chi_sim+eng is not installed",
)


def _events(seen: list[IngestEvent]) -> list[IngestEvent]:
    return [e for e in seen if e.status not in ("start", "parsed", "file")]


@pytest.fixture
def no_poppler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without pdftotext (nor tesseract): only pypdf and pdfminer read."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _scan(target: Path, text: list[str], scanned: list[str]) -> Path:
    """A PDF with ``text`` on page 1 and page 2 a scan of ``scanned``: pixels, no text."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    font = ImageFont.truetype("DejaVuSans.ttf", 44)
    image = Image.new("L", (1700, 140 + 70 * len(scanned)), 255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(scanned):
        draw.text((60, 60 + 70 * row), line, fill=0, font=font)
    pdf = canvas.Canvas(str(target), invariant=1)
    for row, line in enumerate(text):
        pdf.drawString(40, 800 - 14 * row, line)
    pdf.showPage()
    pdf.drawImage(ImageReader(image), 40, 600, image.width * 0.3, image.height * 0.3)
    pdf.showPage()
    pdf.save()
    return target


# ---------------------------------------------------------------- poppler


@needs_poppler
@pytest.mark.parametrize("path", SO_LARGE, ids=lambda p: p.name)
def test_poppler_reads_what_pypdf_and_pdfminer_cannot(path: Path) -> None:
    pdf = read_pdf(path)
    # PingFangSC fonts: pypdf gives mojibake, pdfminer (cid:N); pdftotext maps them
    assert {r.extractor for r in pdf.reports} <= {"poppler", "pypdf"}
    assert "poppler" in {r.extractor for r in pdf.reports} and pdf.needs_ocr == []
    text = "\n".join(pdf.pages)
    assert "语言模型" in text and "(cid:" not in text and len(text) > 3000


@pytest.mark.usefixtures("no_poppler")
def test_without_poppler_those_pages_need_ocr() -> None:
    pdf = read_pdf(SO_LARGE[0], first_pages=2, require_text=False)
    assert pdf.needs_ocr == [1, 2] and pdf.pages == ["", ""]
    assert poppler_pages(SO_LARGE[0], [1]) == {}


@needs_poppler
def test_poppler_reads_runs_of_pages_and_survives_a_bad_file(tmp_path: Path) -> None:
    pages = poppler_pages(SO_LARGE[0], [1, 2, 3, 5, 9])  # it has 6 pages
    assert sorted(pages) == [1, 2, 3, 5] and all("模型" in pages[n] for n in (1, 2))
    assert pages[1] != pages[2]
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    assert poppler_pages(broken, [1]) == {}  # a failure is logged, never raised


@needs_poppler
def test_ingest_stores_poppler_pages_and_their_text_is_found(library: Library) -> None:
    seen: list[IngestEvent] = []
    assert library.ingest([SO_LARGE[2]], listener=seen.append).ok
    (event,) = _events(seen)
    assert event.status == "ingested" and event.needs_ocr == [] and "poppler" in event.extractor
    paper = library.paper(event.paper_id)
    assert paper.lang == "zh" and paper.needs_ocr == []
    pages = library.store.works.pages_of(paper.id)
    assert {p.extractor for p in pages} == {"poppler"}


# ---------------------------------------------------------------- reading a stored paper again


@pytest.fixture
def library(settings) -> Iterator[Library]:
    """A library that parses in this process (workers=0), so that a PATH set here counts:
    parse workers come from a forkserver, which keeps the PATH it started with."""
    lib = Library(settings.replace(workers=0), embedder=HashEmbedder())
    yield lib
    lib.close()


# ch4: without pdftotext its first ten pages have no usable text (pypdf reads 11 to 13).
CH4 = PDFS / "zh_so_large_lm_ch4_harms_part2.pdf"
CH4_UNREAD = list(range(1, 11))


def _stored_without_poppler(library: Library, path: Path) -> int:
    """Ingest ``path`` with pdftotext hidden, as on a machine without poppler-utils."""
    hidden = os.environ["PATH"]
    os.environ["PATH"] = str(path.parent / "no-tools")
    try:
        seen: list[IngestEvent] = []
        assert library.ingest([path], listener=seen.append).ok
    finally:
        os.environ["PATH"] = hidden
    (event,) = _events(seen)
    assert event.status == "ingested" and event.needs_ocr == CH4_UNREAD, event
    assert event.paper_id is not None
    return event.paper_id


@needs_poppler
def test_kb_ocr_reads_the_unread_pages_in_place(library: Library, tmp_path: Path) -> None:
    mixed = tmp_path / "ch4.pdf"
    shutil.copy(CH4, mixed)
    pid = _stored_without_poppler(library, mixed)
    library.tag(pid, ["harms"])
    library.edit(pid, {"title": "Harms of large language models (corrected)"})
    shelf = library.create_collection("reading")
    library.add_to_collection(shelf.id, pid)
    assert library.pages_needing_ocr() == {pid: 10}

    seen: list[IngestEvent] = []
    summary = library.ocr(listener=seen.append)
    (event,) = _events(seen)
    assert summary.ok and (event.status, event.paper_id) == ("updated", pid)
    paper = library.paper(pid)
    assert paper.needs_ocr == [] and paper.tags == ["harms"] and library.count() == 1
    assert paper.title == "Harms of large language models (corrected)"
    assert [i.paper.id for i in library.collection(shelf.id).items] == [pid]
    pages = library.store.works.pages_of(pid)
    assert [p.extractor for p in pages] == ["poppler"] * 11 + ["pypdf"] * 2
    text = " ".join(
        c.text for c in library.store.chunks.by_ids(library.store.chunks.ids_of(pid)).values()
    )
    assert "语言模型" in text and "有毒性" in text
    assert library.pages_needing_ocr() == {}
    assert library.doctor().healthy
    # nothing left to read: the paper is skipped, not re-embedded
    again: list[IngestEvent] = []
    library.ocr([pid], listener=again.append)
    assert [(e.status, e.detail) for e in _events(again)] == [("skipped", "no pages need OCR")]


@needs_poppler
def test_ingest_ocr_on_a_stored_file_reads_it_again_instead_of_skipping(
    library: Library, tmp_path: Path
) -> None:
    mixed = tmp_path / "ch4.pdf"
    shutil.copy(CH4, mixed)
    pid = _stored_without_poppler(library, mixed)
    library.tag(pid, ["toxicity"])
    plain: list[IngestEvent] = []
    library.ingest([mixed], listener=plain.append)
    assert [e.status for e in _events(plain)] == ["skipped"]  # without --ocr: unchanged
    seen: list[IngestEvent] = []
    library.ingest([mixed], listener=seen.append, ocr=True)
    (event,) = _events(seen)
    assert (event.status, event.paper_id, event.needs_ocr) == ("updated", pid, [])
    assert library.paper(pid).tags == ["toxicity"] and library.count() == 1


@needs_poppler
def test_kb_ocr_without_the_pdf_says_what_to_do(library: Library, tmp_path: Path) -> None:
    mixed = tmp_path / "ch4.pdf"
    shutil.copy(CH4, mixed)
    pid = _stored_without_poppler(library, mixed)
    mixed.unlink()
    seen: list[IngestEvent] = []
    assert not library.ocr([pid], listener=seen.append).ok
    (event,) = _events(seen)
    assert event.status == "failed" and "its PDF is gone" in event.detail
    assert "kb ingest --ocr FILE" in event.detail


@needs_tesseract
def test_ocr_reads_a_scanned_page_of_a_stored_paper(library: Library, tmp_path: Path) -> None:
    mixed = _scan(
        tmp_path / "scan.pdf", REPORT, ["Sleeper agents persist", "through safety training"]
    )
    seen: list[IngestEvent] = []
    assert library.ingest([mixed], listener=seen.append).ok
    (first,) = _events(seen)
    assert first.needs_ocr == [2] and f"run `kb ocr {first.paper_id}`" in first.detail
    assert "Tesseract with chi_sim+eng is installed" in first.detail
    pid = first.paper_id
    library.tag(pid, ["sleeper"])

    again: list[IngestEvent] = []
    library.ingest([mixed], listener=again.append, ocr=True)
    (event,) = _events(again)
    assert (event.status, event.paper_id, event.needs_ocr) == ("updated", pid, [])
    pages = library.store.works.pages_of(pid)
    assert [p.extractor for p in pages] == ["pypdf", "ocr"]
    text = " ".join(
        c.text for c in library.store.chunks.by_ids(library.store.chunks.ids_of(pid)).values()
    ).lower()
    assert "sleeper agents" in text and "safety training" in text
    assert library.paper(pid).tags == ["sleeper"]


# ---------------------------------------------------------------- the command


@needs_poppler
def test_kb_ocr_command(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = Library(settings.replace(workers=0), embedder=HashEmbedder())
    monkeypatch.setattr("kb.cli.ocr.open_library", lambda ctx: library)
    mixed = tmp_path / "ch4.pdf"
    shutil.copy(CH4, mixed)
    pid = _stored_without_poppler(library, mixed)
    result = CliRunner().invoke(cli, ["ocr", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "reading with pdftotext (poppler)" in result.output
    assert f"{pid}: updated, 13 pages read by poppler+pypdf; every page has text" in result.output
    result = CliRunner().invoke(cli, ["ocr"], catch_exceptions=False)
    assert "No paper has pages that need OCR." in result.output
    result = CliRunner().invoke(cli, ["ocr", "999"], catch_exceptions=False)
    assert result.exit_code == 1 and "No paper with id 999" in result.output
    library.close()


# ---------------------------------------------------------------- the API


@needs_poppler
def test_upload_with_ocr_reads_a_stored_papers_unread_pages(
    make_app_client, settings, tmp_path: Path
) -> None:
    key = "k" * 20
    auth = {"Authorization": f"Bearer {key}"}
    library = Library(settings.replace(workers=0, api_keys=key), embedder=HashEmbedder())
    copy = tmp_path / "ch4.pdf"
    shutil.copy(CH4, copy)
    pid = _stored_without_poppler(library, copy)
    library.tag(pid, ["toxicity"])
    with make_app_client(library) as client:
        plain = client.post(
            "/api/papers", files={"file": ("ch4.pdf", CH4.read_bytes())}, headers=auth
        )
        assert plain.status_code == 200 and plain.json()["needs_ocr"] == CH4_UNREAD
        r = client.post(
            "/api/papers",
            files={"file": ("ch4.pdf", CH4.read_bytes())},
            data={"ocr": "true"},
            headers=auth,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["id"], body["needs_ocr"], body["tags"]) == (pid, [], ["toxicity"])
        job = client.post(
            "/api/ingest-jobs",
            files=[("files", ("ch4.pdf", CH4.read_bytes()))],
            data={"ocr": "true"},
            headers=auth,
        ).json()
        assert job["ocr"] is True
    library.close()


def test_upload_page_offers_ocr_only_where_it_can_run(
    make_app_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.web.i18n import EN

    with make_app_client() as client:
        page = client.get("/upload").text
        if ocr_available() is None:
            assert EN["upload.ocr"] in page and 'id="ocr"' in page
            assert "Install Tesseract" not in page
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
        page = client.get("/upload").text
        assert 'id="ocr"' not in page and "tesseract is not installed" in page
