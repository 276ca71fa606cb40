from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import pytest

from ingest import SUPPORTED_SUFFIXES, PdfText, iter_inputs, parse_pdf, read_pdf
from ingest.pdf import clean_text
from kb.errors import IngestError
from kb.store.files import sha256_file
from tests.conftest import AES_PDF, BADPDFS, PDFS, MakePdf

BAD_FILES = sorted(BADPDFS.glob("*.pdf"))
HAN_SPACE_HAN = re.compile(r"[\u4e00-\u9fff] [\u4e00-\u9fff]")


def test_reads_english_pdf_pages_in_order(make_pdf: MakePdf) -> None:
    path = make_pdf(
        "en.pdf",
        [["Red teaming large language models", "First page body."], ["Second page body."]],
        title="Red Teaming LLMs",
        author="Alice Smith; Bob Jones",
        date="D:20230512101010Z",
    )
    pdf = read_pdf(path)
    assert pdf.n_pages == 2
    assert pdf.pages == [
        "Red teaming large language models\nFirst page body.",
        "Second page body.",
    ]
    assert pdf.info["title"] == "Red Teaming LLMs"
    assert pdf.info["author"] == "Alice Smith; Bob Jones"
    assert pdf.info["creation_date"] == "D:20230512101010Z"


def test_reads_chinese_pdf_without_spaces_between_characters(make_pdf: MakePdf) -> None:
    path = make_pdf("zh.pdf", [["大语言模型安全对齐研究综述", "摘要：本文研究模型的安全问题。"]])
    pdf = read_pdf(path)
    # Text as printed: the full-width colon stays (NFKC is for matching only).
    assert pdf.pages[0] == "大语言模型安全对齐研究综述\n摘要：本文研究模型的安全问题。"


def test_aes_pdf_with_empty_password_opens() -> None:
    pdf = read_pdf(AES_PDF)
    assert pdf.n_pages == 35
    assert "可信隐私计算研究报告" in pdf.pages[0]
    assert pdf.info["author"] == "富数科技"


def test_spaced_chinese_from_type3_fonts_is_repaired() -> None:
    # pypdf puts a space between most characters of this file (see pdfs/NOTES.md).
    pdf = read_pdf(PDFS / "zh_owasp_llm_top10_v1_1_zh.pdf")
    text = "\n".join(pdf.pages)
    assert "大语言模型" in text
    assert len(HAN_SPACE_HAN.findall(text)) < 20


def test_password_protected_pdf_says_so() -> None:
    path = BADPDFS / "samplefiles_libreoffice-writer-password.pdf"
    with pytest.raises(IngestError, match="password") as err:
        read_pdf(path)
    assert path.name in str(err.value)
    assert "qpdf" in str(err.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"This is a text file, not a PDF.\n", "Cannot read"),
        (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", "Cannot read"),
    ],
)
def test_unreadable_files_raise_ingest_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "paper.pdf"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=reason) as err:
        read_pdf(path)
    assert "'paper.pdf'" in str(err.value)


def test_truncated_pdf_raises_ingest_error(make_pdf: MakePdf, tmp_path: Path) -> None:
    whole = make_pdf("whole.pdf", [["Some text on page one."], ["And page two."]]).read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IngestError, match=r"Cannot read 'cut.pdf'.*complete PDF"):
        read_pdf(cut)


def test_missing_file_raises_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        read_pdf(tmp_path / "absent.pdf")


@pytest.mark.parametrize(
    "name",
    [
        "samplefiles_imagemagick-CCITTFaxDecode_image_only.pdf",
        "rucaibox_long_cot_figure_image_only.pdf",
    ],
)
def test_image_only_pdf_needs_ocr(name: str) -> None:
    with pytest.raises(IngestError, match=r"No text extracted .*\(1 page\).*OCR.*kb ingest --ocr"):
        read_pdf(BADPDFS / name)


def test_blank_pages_need_ocr(make_pdf: MakePdf) -> None:
    path = make_pdf("blank.pdf", [[], [], [" "]])
    with pytest.raises(IngestError, match=r"No text extracted from 'blank.pdf' \(3 pages\)"):
        read_pdf(path)


def test_zero_page_pdf_raises() -> None:
    with pytest.raises(IngestError, match=r"No text extracted .*\(0 pages\)"):
        read_pdf(BADPDFS / "qpdf_empty_zero_pages.pdf")


def test_page_limit(make_pdf: MakePdf) -> None:
    path = make_pdf("three.pdf", [["one"], ["two"], ["three"]])
    assert read_pdf(path, max_pages=3).n_pages == 3
    with pytest.raises(IngestError, match="has 3 pages, more than the limit of 2"):
        read_pdf(path, max_pages=2)


def test_ten_thousand_pages_are_refused_by_default() -> None:
    with pytest.raises(IngestError, match="10000 pages, more than the limit of 5000"):
        read_pdf(BADPDFS / "synthetic_10000_pages.pdf")


def test_the_bad_pdf_corpus_is_complete() -> None:
    assert len(BAD_FILES) == 35


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_every_bad_pdf_reads_or_raises_ingest_error(path: Path) -> None:
    try:
        pdf = read_pdf(path)
    except IngestError as e:
        assert path.name in str(e)
    else:
        assert isinstance(pdf, PdfText)
        assert pdf.n_pages == len(pdf.pages) == len(pdf.reports) >= 1
        assert any(page.strip() for page in pdf.pages)


def test_recovered_damage_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    # pypdf logs 8 warnings while recovering this file's broken xref table.
    with caplog.at_level(logging.WARNING):
        pdf = read_pdf(BADPDFS / "qpdf_xref-errors.pdf")
    assert pdf.n_pages == 1
    assert [r for r in caplog.records if r.name.startswith("pypdf")] == []


def test_clean_text() -> None:
    raw = "\ufb01ne-tuning\x00 of  the\x07 model\r\nnext\tline\u00ad\n\n\n\nend"
    assert clean_text(raw) == "fine-tuning of the model\nnext\tline\n\nend"
    assert clean_text("大 语 言 模 型 , 安 全 。 LLM 模 型") == "大语言模型,安全。 LLM 模型"
    assert clean_text("models are de-\nployed at scale") == "models are deployed at scale"
    # Full-width letters and digits are an encoding (CNKI files); the punctuation is printed.
    assert clean_text("ＬＬＭ安全（２０２３）") == "LLM安全（2023）"
    assert clean_text("方向02：评测，见图①") == "方向02：评测，见图①"
    assert clean_text("使用GPT，Claude等模型") == "使用GPT，Claude等模型"
    # ... but a font that spells all its Latin text in full width gives English punctuation.
    assert clean_text("technology ， which enhances lives．However ，") == (
        "technology, which enhances lives. However ，"
    )
    assert (
        clean_text("ＡＰＴ （ ａｄｖａｎｃｅｄ ｔｈｒｅａｔ ） ａｔｔａｃｋｓ")
        == "APT (advanced threat) attacks"
    )
    assert clean_text("５８（５）：９０９－９２６，２０２１") == "58(5):909-926,2021"
    assert clean_text("ＤＯＩ：１０．１１８９７／ＳＰ．Ｊ．１０１６") == "DOI:10.11897/SP.J.1016"
    # TeX sets accents apart from their letters.
    assert clean_text("Florian Tram`er, Aur´elien Bellet, Jakub Koneˇcn´y") == (
        "Florian Tramèr, Aurélien Bellet, Jakub Konečný"
    )


def test_parse_pdf(make_pdf: MakePdf) -> None:
    path = make_pdf(
        "paper.pdf",
        [["Adversarial Attacks on Aligned Models", "Abstract", "We attack models."], ["More."]],
        date="D:20220101000000Z",
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = parse_pdf(path, content_hash=digest, max_tokens=50, overlap=5)
    assert doc.kind == "pdf"
    assert doc.key == doc.content_hash == digest
    assert doc.source == str(path)
    assert doc.meta.title == "Adversarial Attacks on Aligned Models"
    assert doc.meta.year == 2022
    assert doc.meta.n_pages == 2
    assert doc.meta.lang == "en"
    assert [(c.ord, c.page_start, c.page_end) for c in doc.chunks] == [(0, 1, 2)]


def test_parse_pdf_falls_back_to_file_name_for_title(make_pdf: MakePdf) -> None:
    path = make_pdf("report_2024.pdf", [["42", "x"]])
    doc = parse_pdf(path, content_hash=sha256_file(path), max_tokens=50, overlap=5)
    assert doc.meta.title == "report_2024"


def test_iter_inputs(tmp_path: Path) -> None:
    for rel in ["b.PDF", "a.pdf", "sub/c.jsonl", "sub/notes.txt", ".hidden.pdf", ".git/d.pdf"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    extra = tmp_path / "report.docx"
    extra.write_bytes(b"x")
    files, problems = iter_inputs([tmp_path, tmp_path / "a.pdf", tmp_path / "missing.pdf", extra])
    assert files == [tmp_path / "a.pdf", tmp_path / "b.PDF", tmp_path / "sub" / "c.jsonl"]
    assert problems == [
        (str(tmp_path / "missing.pdf"), f"{str(tmp_path / 'missing.pdf')!r} does not exist."),
        (str(extra), problems[1][1]),
    ]
    assert "'.docx' files" in problems[1][1] and ".pdf" in problems[1][1]
    assert SUPPORTED_SUFFIXES == (".pdf", ".jsonl")
