"""Shared test data and helpers. Data in ../shared/data is read in place, never copied."""

from __future__ import annotations

import inspect
import itertools
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from tests.samples import write_feed

if TYPE_CHECKING:
    from index.embedder import Embedder
    from kb.library import Library
    from kb.settings import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PDFS = SHARED / "pdfs"
BADPDFS = SHARED / "badpdfs"
XLING = SHARED / "xling"

# An AES-128 encrypted PDF with an empty user password (needs `cryptography`).
AES_PDF = PDFS / "zh_2022_trusted_privacy_computing_report.pdf"

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# How a test reaches ../shared/data: the paths above (or the xling_records fixture below), or
# the benchmark scripts' own readers of it (bench/)
_SHARED_NAMES = ("SHARED", "PDFS", "BADPDFS", "XLING", "AES_PDF")
_READS_SHARED = re.compile(r"\b({})\b".format("|".join(_SHARED_NAMES)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without ../shared/data beside the checkout (a bare clone), the tests that read it skip,
    saying why, as the tests of a missing system tool do; with it, nothing changes. A test
    reads it when its module imports one of ``_SHARED_NAMES`` or a benchmark script's
    function, its own code names one, or it uses the ``xling_records`` fixture."""
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared test data at {SHARED}")
    for item in items:
        if _reads_shared(item):
            item.add_marker(skip)


def _reads_shared(item: pytest.Item) -> bool:
    if "xling_records" in getattr(item, "fixturenames", ()):
        return True
    module = vars(getattr(item, "module", None) or object())
    if any(name in module for name in _SHARED_NAMES) or any(
        str(getattr(value, "__module__", "")).startswith("bench.") for value in module.values()
    ):
        return True
    try:
        return bool(_READS_SHARED.search(inspect.getsource(item.function)))
    except (AttributeError, OSError, TypeError):
        return False


MakePdf = Callable[..., Path]


def _draw_pdf(
    path: Path,
    pages: list[list[str]],
    *,
    title: str | None = None,
    author: str | None = None,
    subject: str | None = None,
    date: str = "",
) -> Path:
    """Write a PDF with one text line per entry of each page; non-ASCII lines use STSong-Light."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(path), invariant=1)
    # The creation date is fixed (default: none) so year tests never see today's date.
    pdf.setDateFormatter(lambda *_: date)
    for key, value in (("setTitle", title), ("setAuthor", author), ("setSubject", subject)):
        if value is not None:
            getattr(pdf, key)(value)
    for lines in pages:
        y = 800
        for line in lines:
            pdf.setFont("STSong-Light" if _NON_ASCII.search(line) else "Helvetica", 10)
            pdf.drawString(40, y, line)
            y -= 14
        pdf.showPage()
    pdf.save()
    return path


@pytest.fixture
def make_pdf(tmp_path: Path) -> MakePdf:
    """Build a PDF in tmp_path: ``make_pdf("a.pdf", [["page 1 line", ...], ...], title=...)``."""

    def make(name: str, pages: list[list[str]], **info: str) -> Path:
        return _draw_pdf(tmp_path / name, pages, **info)

    return make


# ---------------------------------------------------------------- model and library fixtures


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model converted once per test session (the real conversion code)."""
    from index.e5_convert import ensure_default_model

    return ensure_default_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def real_embedder(e5_dir: Path):
    from index.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("multilingual-e5-small", str(e5_dir))


@pytest.fixture(scope="session")
def xling_records() -> list[dict[str, str]]:
    """The first 200 bilingual safety-paper records (English and Chinese title + abstract)."""
    import json

    lines = (XLING / "safety_pairs_dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:200]]


@pytest.fixture
def settings(tmp_path: Path):
    from kb.settings import Settings

    return Settings(
        data_dir=tmp_path / "kb-data", model_dir=tmp_path / "models", second_encoder="none"
    )


@pytest.fixture
def library(settings):
    """A Library over a fresh store with the fast fake embedder (ranking and storage logic)."""
    from kb.library.facade import Library
    from tests.fakes import HashEmbedder

    lib = Library(settings, embedder=HashEmbedder())
    yield lib
    lib.close()


# ---------------------------------------------------------------- the app's test client


class AppClient(TestClient):
    """A TestClient of ``create_app(settings, library=library)`` with both at hand (as
    datasette's test client carries ``.ds``). Use it in a ``with`` block: that runs the
    lifespan (the job runner) as ``kb serve`` does."""

    def __init__(self, settings: Settings, library: Library) -> None:
        from api import create_app

        super().__init__(create_app(settings, library=library))
        self.settings = settings
        self.library = library


MakeAppClient = Callable[..., AppClient]


@pytest.fixture
def make_app_client(settings: Settings, tmp_path: Path) -> Iterator[MakeAppClient]:
    """The one way tests build the app: ``with make_app_client(**overrides) as client: ...``.

    ``make_app_client(library=None, *, embedder=None, records=(), ingest=(), **overrides)``:
    the app's settings are the library's (else the ``settings`` fixture's: a tmp data dir)
    with ``overrides`` (``api_keys=KEY, read_access="key", ...``). Without ``library``, a
    fresh Library is opened with ``embedder`` (default: the fast ``HashEmbedder``) and closed
    after the test. ``records`` (JSONL record dicts) and then the paths in ``ingest`` are
    ingested first, in one call.
    """
    from kb.library import Library
    from tests.fakes import HashEmbedder

    opened: list[Library] = []
    feeds = itertools.count()

    def make(
        library: Library | None = None,
        *,
        embedder: Embedder | None = None,
        records: Sequence[dict[str, Any]] = (),
        ingest: Sequence[Path] = (),
        **overrides: Any,
    ) -> AppClient:
        conf = (library.settings if library is not None else settings).replace(**overrides)
        if library is None:
            library = Library(conf, embedder=embedder or HashEmbedder())
            opened.append(library)
        folder = tmp_path / f"app-records-{next(feeds)}"  # apart from a test's own feed.jsonl
        paths = [write_feed(folder / "feed.jsonl", records)] if records else []
        if paths or ingest:
            assert library.ingest([*paths, *ingest]).ok
        return AppClient(conf, library)

    yield make
    for library in opened:
        library.close()


# -- a real browser (Debian's chromium driven by Playwright), for the web page's tests

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """A headless chromium for the module's tests (they skip when CHROMIUM is None)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def said(output: str) -> list[str]:
    """The lines of a command's output, without the progress lines of loading the models."""
    progress = ("loading models…", "models loaded in ")
    return [line for line in output.strip().splitlines() if not line.startswith(progress)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A server folder for KB_IMPORT_ROOTS: ingest jobs may read PDFs inside it."""
    folder = tmp_path / "shared-pdfs"
    folder.mkdir()
    return folder
