"""Text that is right in both languages: quality scores, normalisation, the pdfminer fallback,
running headers and footers, references, and the OCR path (its tools hidden or stood in for)."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from ingest import parse_pdf, pdf_fonts, read_pdf
from ingest.documents import ocr_note
from ingest.normalize import clean_text, drop_running_lines, remove_cid_tokens
from ingest.ocr import ocr_available, ocr_pages
from ingest.quality import GOOD_QUALITY, USABLE_QUALITY, drop_garbage_lines, text_quality
from ingest.references import arxiv_ids, split_references
from kb.errors import IngestError
from kb.store.files import sha256_file
from kb.types import ParsedDocument
from tests.conftest import AES_PDF, PDFS, MakePdf

HAN = re.compile(r"[\u4e00-\u9fff]")
HAN_SPACE_HAN = re.compile(r"[\u4e00-\u9fff] +[\u4e00-\u9fff]")
KANGXI = re.compile(r"[\u2e80-\u2fdf]")
EN = "Red teaming finds failures of large language models before attackers do. "
ZH = "红队测试能在攻击者之前发现大语言模型的失败模式，并帮助改进安全对齐。"
# What pypdf gives for zh_rucaibox_llm_survey_chinese.pdf page 1 (fonts without /ToUnicode).
MOJIBAKE = "܂ࣇଽ҆࿐༝\u0d50Ⴈ Ч໓෮Ⴕ໓ሳa\u0e6dோaі۬ϱಃູ ෮Ⴕđԛϱؿі\u0d50Ⴈླ\u0c70сྶᆘ֤Ч໓ቔᆀ\u0e5dၩb"


def _parse(path: Path, **options: Any) -> ParsedDocument:
    """``parse_pdf`` as kb's pipeline calls it, with the file hashed by the caller."""
    return parse_pdf(path, content_hash=sha256_file(path), **options)


# ---------------------------------------------------------------- quality


def test_letters_from_a_wrong_font_are_checked_by_langdetect() -> None:
    shifted = text_quality("Wkh txlfn eurzq ira mxpsv ryhu wkh odcb grj dqg uxqv dzdb. " * 6)
    assert shifted.lang != "und" and shifted.score < 1.0


def test_clean_english_and_chinese_are_good() -> None:
    en, zh = text_quality(EN * 5), text_quality(ZH * 5)
    # natural letters: langdetect is not asked (it would cost as much as pypdf on the page)
    assert en.good and en.score == 1.0 and en.latin_share == 1.0 and en.lang == "und"
    assert zh.good and zh.score == 1.0 and zh.cjk_share == 1.0
    mixed = text_quality((ZH + " GPT-4 jailbreak prompt injection " + ZH) * 3)
    assert mixed.good and 0.5 < mixed.cjk_share < 1


def test_run_together_words_are_poor() -> None:
    text = "ThispaperaddressesthetopicofincidentresponseinthecontextofAIsystems. " * 5
    quality = text_quality(text)
    assert quality.missing_space_share > 0.9
    assert not quality.good
    # Constants in capitals are not prose without spaces.
    assert text_quality(EN * 3 + "RUNTIMEMODELCONFIDENTIALITY").missing_space_share == 0


def test_spaced_out_chinese_is_poor() -> None:
    quality = text_quality(" ".join("大语言模型的安全对齐研究综述") * 3)
    assert quality.spaced_cjk_share > 0.9
    assert not quality.good


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (MOJIBAKE * 3, "mojibake_share"),
        ("Ã©tÃ© trÃ¨s ÖÐÎÄ " * 10, "mojibake_share"),
        ("(cid:6408)(cid:1982)(cid:1604) " * 20, "cid_share"),
        ("\ufffd\ufffd a\ufffd " * 20, "replacement_share"),
        ("\ue000\ue001\ue002 b " * 20, "private_use_share"),
        ("\x01\x02\x03 c " * 20, "control_share"),
    ],
)
def test_garbage_is_unusable(text: str, field: str) -> None:
    quality = text_quality(text)
    assert getattr(quality, field) > 0.3
    assert not quality.usable


def test_no_letters_scores_zero() -> None:
    for text in ("", "   ", "12 34 .. --"):
        assert text_quality(text).score == 0
    assert 0 < USABLE_QUALITY < GOOD_QUALITY < 1


def test_garbage_lines_are_dropped() -> None:
    entry = "[6] R. Rosenfeld, 2000."
    assert drop_garbage_lines(f"{MOJIBAKE} 35\n{entry}") == entry
    assert drop_garbage_lines(ZH + "\nΣ α β\n" + EN) == ZH + "\nΣ α β\n" + EN


# ---------------------------------------------------------------- normalisation


def test_clean_text_repairs_chinese() -> None:
    # Kangxi radicals from zh_owasp_llm_top10_v1_1_zh.pdf's fonts become unified ideographs.
    assert clean_text("⼤语⾔模型⼈⼯智能") == "大语言模型人工智能"
    assert clean_text("大 语 言 模 型 的 安 全") == "大语言模型的安全"
    assert clean_text("引言……见第 3 节") == "引言……见第 3 节"  # printed punctuation stays
    assert clean_text("引言………………………3") == "引言 3"  # a leader of ellipses does not


def test_clean_text_keeps_paragraphs_and_words() -> None:
    text = "Models are de-\nployed widely.\n\n\n\nSecond para\x07graph.\nIntro . . . . . . . . 3"
    assert clean_text(text) == "Models are deployed widely.\n\nSecond paragraph.\nIntro 3"
    assert remove_cid_tokens("模型(cid:12)(cid:345)安全") == "模型安全"


def test_running_lines_are_dropped() -> None:
    pages = [f"AI Safety Report 2024\nBody {n} of the text.\nPage {n} of 5" for n in range(1, 6)]
    pages[2] = "AI Safety Report 2024\n第3页 is not a footer here\nBody 3.\nPage 3 of 5"
    assert drop_running_lines(pages) == [
        "Body 1 of the text.",
        "Body 2 of the text.",
        "第3页 is not a footer here\nBody 3.",
        "Body 4 of the text.",
        "Body 5 of the text.",
    ]
    zh = [f"人工智能安全白皮书\n第{n}章 正文内容。\n第 {n} 页" for n in range(1, 4)]
    assert drop_running_lines(zh) == ["第1章 正文内容。", "第2章 正文内容。", "第3章 正文内容。"]
    # Two pages are too few to tell a running line from content.
    assert drop_running_lines(pages[:2]) == pages[:2]


def test_headers_and_footers_leave_the_chunks(make_pdf: MakePdf) -> None:
    sections = ["Scope of the review", "Threat models", "Mitigations in use", "Evaluation"]
    header = "可信人工智能研究报告"
    pages = [[header, title, EN, ZH, f"Page {n}"] for n, title in enumerate(sections, start=1)]
    doc = _parse(make_pdf("running.pdf", pages), max_tokens=200, overlap=0)
    text = "\n".join(chunk.text for chunk in doc.chunks)
    assert all(title in text for title in sections) and "红队测试" in text
    assert header not in text
    assert not re.search(r"Page \d", text)
    assert [p.extractor for p in doc.pages] == ["pypdf"] * 4


# ---------------------------------------------------------------- references


def test_split_references_english_and_chinese() -> None:
    body = [EN * 10, EN * 5 + "\nReferences\n[1] A. Zou. Attacks. arXiv:2307.15043v2, 2023."]
    refs = split_references([*body, "[2] B. Li. CoRR abs/2310.03684, 2023.\nAppendix A: Proofs\nQ"])
    assert refs.start_page == 2
    assert refs.pages == [EN * 10, (EN * 5).strip(), "Appendix A: Proofs\nQ"]
    assert refs.arxiv_ids == ["2307.15043", "2310.03684"]

    zh = [ZH * 20, ZH * 5 + "\n五、参考文献\n[1] 张三. 大模型安全综述[J]. 计算机学报, 2023."]
    refs = split_references(zh)
    assert refs.start_page == 2 and refs.pages[1] == ZH * 5
    assert refs.text.startswith("五、参考文献")


def test_early_or_unlikely_references_stay() -> None:
    toc = ["Contents\n1 Introduction\n7 References", EN * 30]
    assert split_references(toc).start_page is None
    # A "References:" label followed by more prose is not a references section.
    labelled = [EN * 10, EN + "\nReferences:\n" + EN * 20]
    assert split_references(labelled).start_page is None


def test_arxiv_ids() -> None:
    text = (
        "arXiv preprint arXiv:2305.13534v2; https://arxiv.org/abs/2310.03684 and "
        "arxiv.org/pdf/2307.15043.pdf; arXiv 2401.00001; cs.CL/0301001; arXiv:hep-th/9901001v3; "
        "again arXiv:2305.13534"
    )
    assert arxiv_ids(text) == [
        "2305.13534",
        "2310.03684",
        "2307.15043",
        "2401.00001",
        "hep-th/9901001",
    ]


def test_references_leave_the_chunks(make_pdf: MakePdf) -> None:
    en = make_pdf(
        "en.pdf",
        [
            ["Jailbreak Attacks on Aligned Language Models", "Abstract", *[EN] * 8],
            ["2 Method", *[EN] * 8],
            [
                "References",
                "[1] A. Zou, Z. Wang. Universal and transferable attacks. arXiv:2307.15043, 2023.",
                "[2] M. Zhang. How hallucinations snowball. arXiv preprint arXiv:2305.13534, 2023.",
                "[3] A. Robey. SmoothLLM. https://arxiv.org/abs/2310.03684v4 (2023).",
            ],
        ],
    )
    doc = _parse(en, max_tokens=120, overlap=10)
    text = "\n".join(chunk.text for chunk in doc.chunks)
    assert "Red teaming" in text
    assert "References" not in text and "Universal and transferable" not in text
    assert doc.cited_arxiv_ids == ["2307.15043", "2305.13534", "2310.03684"]
    assert doc.chunks[-1].page_end == 2

    zh = make_pdf(
        "zh.pdf",
        [
            ["大语言模型安全对齐研究综述", *[ZH] * 10],
            [*[ZH] * 6, "参考文献", "[1] 张三. 大模型安全综述[J]. 计算机学报, 2023.",
             "[2] Zou A, et al. Universal attacks. arXiv:2307.15043, 2023."],
        ],
    )  # fmt: skip
    doc = _parse(zh, max_tokens=120, overlap=10)
    text = "\n".join(chunk.text for chunk in doc.chunks)
    assert "红队测试" in text and doc.meta.lang == "zh"
    assert "参考文献" not in text and "计算机学报" not in text
    assert doc.cited_arxiv_ids == ["2307.15043"]


# ---------------------------------------------------------------- real PDFs


def test_chinese_without_tounicode_comes_from_pdfminer() -> None:
    # pypdf turns these fonts into mojibake; pdfminer.six reads them (see pdfs/NOTES.md).
    pdf = read_pdf(PDFS / "zh_rucaibox_llm_survey_chinese.pdf", first_pages=2)
    assert [r.extractor for r in pdf.reports] == ["pdfminer", "pdfminer"]
    assert all(r.quality >= GOOD_QUALITY for r in pdf.reports)
    assert "大语言模型综述" in pdf.pages[0]
    for page in pdf.pages:
        quality = text_quality(page)
        assert quality.cjk_share > 0.7 and quality.mojibake_share == 0


def test_type3_chinese_has_no_gaps_or_radicals() -> None:
    pdf = read_pdf(PDFS / "zh_owasp_llm_top10_v1_1_zh.pdf", first_pages=6)
    text = "\n".join(pdf.pages)
    assert "大语言模型" in text and "翻译" in text
    assert not HAN_SPACE_HAN.search(text)
    assert not KANGXI.search(text)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("en_cosai_ai_incident_response.pdf", "incident response"),
        ("en_cosai_ai_supply_chain_risks_controls_v1.pdf", "supply chain"),
        ("en_cosai_preparing_defenders_of_ai_systems.pdf", "AI systems"),
        ("en_cosai_signing_ml_artifacts.pdf", "Signing ML Artifacts"),
    ],
)
def test_run_together_english_gets_word_spaces(name: str, phrase: str) -> None:
    # pypdf drops the spaces between words of these xdvipdfmx files (its space width for their
    # composite fonts is a letter's); ingest.pdf_fonts mends it, so pypdf's text is kept.
    pdf = read_pdf(PDFS / name, first_pages=1)
    assert pdf.reports[0].extractor == "pypdf"
    assert phrase.lower() in pdf.pages[0].lower()
    assert text_quality(pdf.pages[0]).missing_space_share < 0.05


def test_run_together_english_goes_to_pdfminer_without_the_font_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Words run together by another cause (or another pypdf) still get pdfminer's spaces.
    monkeypatch.setattr(pdf_fonts, "fix_space_width", lambda font: None)
    pdf = read_pdf(PDFS / "en_cosai_signing_ml_artifacts.pdf", first_pages=1)
    assert pdf.reports[0].extractor == "pdfminer"
    assert "signing ml artifacts" in pdf.pages[0].lower()
    assert text_quality(pdf.pages[0]).missing_space_share < 0.05


def test_pypdf_is_mended_only_inside_the_context() -> None:
    # An xdvipdfmx report whose Montserrat fonts (Identity-H) draw no space glyph.
    page = PdfReader(PDFS / "en_cosai_signing_ml_artifacts.pdf").pages[0]
    with pdf_fonts.mended_word_spaces() as mended:
        inside = page.extract_text()
    outside = page.extract_text()
    assert mended
    assert "Signing ML Artifacts" in inside
    assert "SigningMLArtifacts" in outside


def test_good_pdfs_keep_pypdf_text() -> None:
    pdf = read_pdf(AES_PDF, first_pages=4)  # AES-128 with an empty user password
    assert pdf.n_pages == 35
    assert [r.extractor for r in pdf.reports] == ["pypdf"] * 4
    assert "可信隐私计算研究报告" in pdf.pages[0]


@pytest.fixture
def no_ocr_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without tesseract, pdftoppm or pdftotext, whatever is installed."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.mark.parametrize(
    "name",
    ["zh_so_large_lm_ch3_harms_part1.pdf", "zh_so_large_lm_ch4_harms_part2.pdf",
     "zh_so_large_lm_ch6_llm_law.pdf"],
)  # fmt: skip
@pytest.mark.usefixtures("no_ocr_tools")
def test_broken_fonts_need_ocr_without_poppler(name: str) -> None:
    # pypdf gives mojibake and pdfminer only (cid:N) tokens; pdftotext, hidden here, reads
    # them (tests/test_library_ocr.py).
    pdf = read_pdf(PDFS / name, first_pages=3, require_text=False)
    assert pdf.pages == ["", "", ""]
    assert pdf.needs_ocr == [1, 2, 3]
    assert all(r.extractor == "none" and r.chars == 0 for r in pdf.reports)


@pytest.mark.usefixtures("no_ocr_tools")
def test_pdf_without_usable_text_says_ocr() -> None:
    with pytest.raises(
        IngestError, match=r"need OCR.*tesseract is not installed.*`kb ingest --ocr`"
    ):
        read_pdf(PDFS / "zh_so_large_lm_ch3_harms_part1.pdf")


# ---------------------------------------------------------------- OCR


@pytest.mark.usefixtures("no_ocr_tools")
def test_ocr_unavailable_says_why(make_pdf: MakePdf) -> None:
    reason = ocr_available()
    assert reason is not None and "tesseract is not installed" in reason
    assert "apt install tesseract-ocr tesseract-ocr-chi-sim poppler-utils" in reason
    path = make_pdf("scan.pdf", [[EN], []])
    with pytest.raises(IngestError, match=r"Cannot OCR 'scan.pdf': tesseract is not installed"):
        ocr_pages(path, [2])


@pytest.mark.usefixtures("no_ocr_tools")
def test_parse_with_ocr_unavailable_keeps_the_other_pages(make_pdf: MakePdf) -> None:
    path = make_pdf("half.pdf", [["Red Teaming Report", EN * 3], [], ["Conclusion", EN]])
    doc = _parse(path, max_tokens=100, overlap=0, ocr=True)
    assert [(p.extractor, p.needs_ocr) for p in doc.pages] == [
        ("pypdf", False),
        ("none", True),
        ("pypdf", False),
    ]
    assert doc.chunks
    note = ocr_note(doc)
    assert note is not None and "(page 2)" in note and "tesseract is not installed" in note

    blank = make_pdf("blank.pdf", [[], []])
    with pytest.raises(IngestError, match=r"need OCR, which is not available: tesseract"):
        _parse(blank, max_tokens=100, overlap=0, ocr=True)
    with pytest.raises(IngestError, match=r"kb ingest --ocr"):
        _parse(blank, max_tokens=100, overlap=0)


@pytest.mark.usefixtures("no_ocr_tools")
def test_a_mostly_unread_pdf_has_no_language_yet(make_pdf: MakePdf) -> None:
    mostly = make_pdf("mostly.pdf", [["Red Teaming Report", EN * 3], [], []])
    assert _parse(mostly, max_tokens=100, overlap=0).meta.lang == "und"
    half = make_pdf("half.pdf", [["Red Teaming Report", EN * 3], [], ["Conclusion", EN]])
    assert _parse(half, max_tokens=100, overlap=0).meta.lang == "en"


def _fake_ocr_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page_text: str) -> None:
    """Stand-ins for pdftoppm and tesseract first on PATH (the real ones need not be
    installed), so the plumbing around them is real; ``page_text`` is the shell command
    tesseract runs to print a page's text ("$1" is the page image)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    _script(tools, "pdftoppm", 'for a; do stem="$a"; done; echo "$stem" > "$stem.png"')
    _script(
        tools,
        "tesseract",
        'if [ "$1" = --list-langs ]; then printf "List of available languages (2):\\n'
        'chi_sim\\neng\\n"; exit 0; fi\n' + page_text,
    )
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_ocr_availability_is_checked_once_for_many_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    _fake_ocr_tools(tmp_path, monkeypatch, "echo text")
    tesseract = tmp_path / "bin" / "tesseract"
    script = tesseract.read_text(encoding="utf-8")
    tesseract.write_text(script.replace("\n", f"\necho run >> {calls}\n", 1), encoding="utf-8")
    assert [ocr_available() for _ in range(5)] == [None] * 5
    assert calls.read_text(encoding="utf-8").count("run") == 1
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # another PATH is checked anew
    assert ocr_available() is not None


def test_ocr_runs_on_exactly_the_pages_that_need_it(
    make_pdf: MakePdf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-ins for the two command line tools (not installed here), so that the plumbing
    # around them is real: pdftoppm writes STEM.png, tesseract prints text for that page.
    _fake_ocr_tools(
        tmp_path,
        monkeypatch,
        'echo "扫 描 页 面 识 别 出 的 文 字 ， $(basename "$1") recognised by OCR from the scan"',
    )
    assert ocr_available() is None
    assert ocr_available("chi_sim+jpn") == (
        "tesseract has no jpn language data (apt install tesseract-ocr-jpn)"
    )
    path = make_pdf("mixed.pdf", [["Red Teaming Report", EN * 3], [], ["Conclusion", EN], []])
    doc = _parse(path, max_tokens=100, overlap=0, ocr=True)
    assert [p.extractor for p in doc.pages] == ["pypdf", "ocr", "pypdf", "ocr"]
    assert ocr_note(doc) is None
    text = "\n".join(chunk.text for chunk in doc.chunks)
    assert "扫描页面识别出的文字， page-2.png recognised" in text
    assert "page-4.png" in text and "page-1.png" not in text


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed")
def test_real_tesseract_reads_a_page_with_broken_fonts() -> None:
    from ingest.ocr import ocr_available, ocr_pages

    if ocr_available() is not None:
        pytest.skip(f"OCR not usable here: {ocr_available()}")
    text = ocr_pages(PDFS / "zh_so_large_lm_ch3_harms_part1.pdf", [1])[1]
    assert text_quality(text).cjk_share > 0.5 and "语言模型" in text


def test_a_scans_title_and_authors_come_from_its_ocr_text(
    make_pdf: MakePdf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scan with no text layer whose PDF info is the scanner's: the OCR text names the
    # title and the by-line, and the info's title is not printed anywhere in it.
    _fake_ocr_tools(
        tmp_path,
        monkeypatch,
        'printf "Red Teaming Language Models\\nwith Language Models\\n'
        "Ethan Perez, Saffron Huang and Nat McAleese\\nAbstract\\n"
        'Language models often harm users in ways that are hard to predict.\\n"',
    )
    path = make_pdf("scan.pdf", [[]], title="Scanned Document 0042", author="Scanner Operator")
    meta = _parse(path, max_tokens=100, overlap=0, ocr=True).meta
    assert meta.title == "Red Teaming Language Models with Language Models"
    assert meta.authors == ["Ethan Perez", "Saffron Huang", "Nat McAleese"]
    assert meta.abstract.startswith("Language models often harm users")
