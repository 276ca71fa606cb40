"""The sample corpus in examples/: readable by pypdf, bilingual, and up to date with its script."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pypdf import PdfReader

# the fonts every PDF viewer has (never embedded)
STANDARD_14 = {
    f"/{name}"
    for name in (
        "Times-Roman Times-Bold Times-Italic Times-BoldItalic Helvetica Helvetica-Bold "
        "Helvetica-Oblique Helvetica-BoldOblique Courier Courier-Bold Courier-Oblique "
        "Courier-BoldOblique Symbol ZapfDingbats"
    ).split()
}

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CJK_SPACE_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff][^\S\n]+[\u3400-\u4dbf\u4e00-\u9fff]")


def _load_generator() -> ModuleType:
    # scripts/ is not a package; register the module so its dataclasses can resolve themselves.
    spec = importlib.util.spec_from_file_location(
        "make_examples", ROOT / "scripts/make_examples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make_examples = _load_generator()
PAPERS = make_examples.PAPERS
ids = [paper.filename for paper in PAPERS]


def page_texts(paper) -> list[str]:
    return [page.extract_text() for page in PdfReader(EXAMPLES / paper.filename).pages]


def squash(text: str, lang: str) -> str:
    """Undo line wrapping: drop all whitespace in Chinese, collapse it to one space in English."""
    return re.sub(r"\s+", "" if lang == "zh" else " ", text).strip()


def test_examples_dir_holds_exactly_the_generated_papers():
    assert sorted(p.name for p in EXAMPLES.glob("*.pdf")) == sorted(ids)
    # small enough for the repository; the Chinese ones carry a subset of their font (~120 KiB)
    assert sum(p.stat().st_size for p in EXAMPLES.glob("*.pdf")) < 700 * 1024


def test_corpus_is_bilingual_with_one_shared_topic():
    langs = {paper.lang for paper in PAPERS}
    slugs = {lang: {p.slug for p in PAPERS if p.lang == lang} for lang in langs}
    assert langs == {"en", "zh"}
    assert slugs["en"] & slugs["zh"] == {"reward_hacking"}


@pytest.mark.parametrize("paper", PAPERS, ids=ids)
def test_pdf_has_two_pages_and_title_on_page_one(paper):
    pages = page_texts(paper)
    assert len(pages) == 2
    assert squash(paper.title, paper.lang) in squash(pages[0], paper.lang)
    assert paper.doi in pages[0]
    if paper.arxiv:
        assert f"arXiv:{paper.arxiv}" in pages[0]


@pytest.mark.parametrize("paper", PAPERS, ids=ids)
def test_pdf_metadata(paper):
    meta = PdfReader(EXAMPLES / paper.filename).metadata
    assert meta is not None
    assert meta.title == paper.title
    assert meta.author and paper.authors[0] in meta.author
    assert meta.subject
    assert meta.creation_date is not None and meta.creation_date.year == paper.year


@pytest.mark.parametrize("paper", PAPERS, ids=ids)
def test_text_extracts_in_the_paper_language(paper):
    text = "".join(page_texts(paper))
    letters = [ch for ch in text if ch.isalpha()]
    cjk_share = sum(1 for ch in letters if CJK.match(ch)) / len(letters)
    if paper.lang == "zh":
        assert cjk_share > 0.5
        # Line wraps are fine; a space between two ideographs means the extraction mangled it.
        assert not CJK_SPACE_CJK.findall(text.replace("\n", ""))
    else:
        assert cjk_share == 0


def test_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for paper in PAPERS:
        assert paper.filename in readme
        assert paper.title in readme


@pytest.mark.skipif(
    not make_examples.CJK_FONT_FILE.is_file(),
    reason=f"{make_examples.CJK_FONT_FILE} is not installed (apt install fonts-wqy-microhei)",
)
def test_generator_reproduces_committed_files(tmp_path):
    written = list(make_examples.generate(tmp_path))
    assert [p.name for p in written] == ids
    stale = [p.name for p in written if p.read_bytes() != (EXAMPLES / p.name).read_bytes()]
    assert not stale, (
        f"examples/ is out of date; run .venv/bin/python scripts/make_examples.py ({stale})"
    )


def test_the_chinese_font_is_embedded():
    """Browsers render a non-embedded CJK font (STSong-Light) blank: every font is in the file."""
    for path in sorted(EXAMPLES.glob("zh_*.pdf")):
        fonts = PdfReader(path).pages[0]["/Resources"]["/Font"]
        for font in fonts.values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target.get("/FontDescriptor")
            if font["/BaseFont"] in STANDARD_14:
                continue
            assert descriptor is not None, (path.name, font["/BaseFont"])
            descriptor = descriptor.get_object()
            assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), (
                path.name,
                font["/BaseFont"],
            )
