"""Read the text and document info of a PDF; every failure becomes an IngestError.

Each page is read with pypdf (its word spaces in fonts without a space glyph mended by
``ingest.pdf_fonts``) and judged by ``ingest.quality``. Pages whose text is poor (fonts
without a usable /ToUnicode map, lost word spaces; see ../shared/data/pdfs/NOTES.md)
are read again with pdfminer.six, in one pass over the file (which also lays out page 1 for
the metadata when asked), and the better text is kept.
Pages still poor after that are read with poppler's ``pdftotext`` when it is installed
(``ingest.poppler``), judged the same way. A page where none gives usable text is reported
as needing OCR.

pypdf raises many exception types on damaged or hostile files, several of them outside
``pypdf.errors.PyPdfError`` (TypeError, AssertionError, NotImplementedError,
DependencyError, ...; see ../shared/data/badpdfs/NOTES.md), so the boundaries here catch
``Exception`` and name the file in one clear message.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError, EmptyFileError, LimitReachedError

from ingest.layout import TextLine, layout_params, page_lines
from ingest.names import is_placeholder_author
from ingest.normalize import clean_text, remove_cid_tokens
from ingest.ocr import ocr_advice
from ingest.pdf_fonts import mended_word_spaces
from ingest.poppler import poppler_pages
from ingest.quality import TextQuality, drop_garbage_lines, text_quality
from kb.errors import IngestError
from kb.types import Extractor, PageReport

__all__ = ["DEFAULT_MAX_PAGES", "PdfText", "clean_text", "read_pdf"]

DEFAULT_MAX_PAGES = 5000

# pypdf and pdfminer report recoverable damage through their loggers; a reader recovers or
# we raise IngestError, so their warnings are noise for the user.
logging.getLogger("pypdf").setLevel(logging.ERROR)
logging.getLogger("pdfminer").setLevel(logging.ERROR)
log = logging.getLogger(__name__)

_INFO_KEYS = {
    "/Title": "title",
    "/Author": "author",
    "/Subject": "subject",
    "/Keywords": "keywords",
    "/CreationDate": "creation_date",
}
_MAX_INFO_CHARS = 2000
# pdfminer's text replaces pypdf's only if it keeps at least this share of pypdf's letters
# (or pypdf's text is unusable): clean text with half the page missing is not better.
_MIN_LETTERS_KEPT = 0.5
_REPAIR_HINT = "Is it a complete PDF? Try re-downloading it or repairing it with qpdf."
_OCR_HINT = (
    "its pages need OCR (scanned, image-only, or fonts that map to no characters). {advice}, "
    "or OCR the file first (e.g. ocrmypdf) and ingest the result."
)


@dataclass(frozen=True)
class PdfText:
    """The text of a PDF, one string per page (index 0 is page 1), and its document info.

    ``reports`` says, per page, which extractor's text was kept and how good it is; a page
    with no usable text has "" in ``pages`` and ``needs_ocr`` in its report. ``lines`` are
    page 1's lines with their font sizes when they were asked for (``read_pdf(layout=True)``)
    and pdfminer could lay the page out.
    """

    pages: list[str]
    info: dict[str, str]
    n_pages: int
    reports: list[PageReport] = field(default_factory=list)
    lines: list[TextLine] = field(default_factory=list)

    @property
    def needs_ocr(self) -> list[int]:
        """The 1-based numbers of the pages that only OCR could read."""
        return [report.number for report in self.reports if report.needs_ocr]


def read_pdf(
    path: Path,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    first_pages: int | None = None,
    last_page: bool = False,
    require_text: bool = True,
    layout: bool = False,
) -> PdfText:
    """Extract the text of every page and the document info of the PDF at ``path``.

    A page that no extractor can read gives "" and the others are kept. Raises IngestError
    if the file cannot be read, needs a password, or has more than ``max_pages`` pages.

    Args:
        first_pages: read only this many pages from the start (``n_pages`` still counts all).
        last_page: with ``first_pages``, also read the last page (a back cover's imprint), as
            the last item of ``pages``.
        require_text: raise IngestError when no page has usable text (a scanned PDF, or
            broken fonts), saying that it needs OCR; with False such a PDF is returned with
            every page marked ``needs_ocr``.
        layout: also lay page 1 out with pdfminer.six for its lines and font sizes (``lines``),
            in the same pdfminer pass as the pages pypdf read poorly: one pass per file.
    """
    with _quiet(), mended_word_spaces():
        reader = _open(path)
        n_pages = _count_pages(reader, path, max_pages)
        count = n_pages if first_pages is None else max(0, min(n_pages, first_pages))
        numbers = list(range(count)) + ([n_pages - 1] if last_page and n_pages > count else [])
        results = [_page_text(reader, i, path) for i in numbers]
        info = _read_info(reader)
        texts = [text for text, _ in results]
        judged = [text_quality(text) for text in texts]
        poor = [i for i, q in enumerate(judged) if not q.good and _retry(results[i][1])]
        # Page 1's layout, unless pypdf stopped at a resource limit there (see _retry).
        lined = layout and count > 0 and _retry(results[0][1])
        by_number, lines = _pdfminer_pass(path, [numbers[i] for i in poor], lines=lined)
        mined = {numbers.index(number): text for number, text in by_number.items()}
        texts, judged, used = _choose(texts, judged, {"pdfminer": mined})
        still = [i for i in poor if not judged[i].good]
        by_page = poppler_pages(path, [numbers[i] + 1 for i in still]) if still else {}
        index_of = {number: i for i, number in enumerate(numbers)}
        popped = {index_of[n - 1]: clean_text(text) for n, text in by_page.items()}
        texts, judged, used = _choose(texts, judged, {"poppler": popped}, used)
    pages, reports = _report(texts, judged, used, numbers)
    if require_text and not any(pages):
        failures = [f"page {i + 1}: {_reason(e)}" for i, (_, e) in enumerate(results) if e]
        raise _no_text(path, n_pages, failures, had_text=any(map(_has_word, texts)))
    return PdfText(pages=pages, info=info, n_pages=n_pages, reports=reports, lines=lines)


def _retry(error: Exception | None) -> bool:
    """Whether pdfminer may try a page that pypdf read poorly or failed on.

    Not after pypdf stopped at one of its resource limits: pdfminer has none, and inflated
    ../shared/data/badpdfs/synthetic_flate_bomb_nested.pdf to 2 GB (pdfminer.six 20260107).
    """
    return not isinstance(error, LimitReachedError)


def _choose(
    texts: list[str],
    judged: list[TextQuality],
    others: dict[Extractor, dict[int, str]],
    used: list[Extractor] | None = None,
) -> tuple[list[str], list[TextQuality], list[Extractor]]:
    """Keep the better text of each page: the current one, or another extractor's.

    Another extractor's text (``others``: extractor -> {index: text}) replaces the current
    text when it scores better and keeps at least half its letters (or the current text is
    unusable). Returns the texts, their qualities and which extractor gave each.
    """
    texts, judged = list(texts), list(judged)
    used = list(used) if used is not None else ["pypdf"] * len(texts)
    for extractor, found in others.items():
        for index, text in found.items():
            quality, other = judged[index], text_quality(text)
            enough = other.letters >= _MIN_LETTERS_KEPT * quality.letters or not quality.usable
            if other.score > quality.score and enough:
                texts[index], judged[index], used[index] = text, other, extractor
    return texts, judged, used


def _report(
    texts: list[str], judged: list[TextQuality], used: list[Extractor], numbers: list[int]
) -> tuple[list[str], list[PageReport]]:
    """The kept text of each page and its report; a page without usable text becomes "".

    ``numbers`` are the pages' 0-based numbers in the file, in the order of ``texts``.
    """
    pages, reports = [], []
    for index, (text, quality) in enumerate(zip(texts, judged, strict=True)):
        extractor = used[index]
        if not quality.usable:
            text, extractor = "", "none"
        if quality.mojibake_share or quality.cid_share:  # else there is nothing to drop
            text = drop_garbage_lines(remove_cid_tokens(text))
        pages.append(text)
        reports.append(
            PageReport(
                number=numbers[index] + 1,
                extractor=extractor,
                quality=quality.score,
                chars=len(text),
                needs_ocr=extractor == "none",
            )
        )
    return pages, reports


def _pdfminer_pass(
    path: Path, indexes: list[int], *, lines: bool
) -> tuple[dict[int, str], list[TextLine]]:
    """pdfminer.six's cleaned text of the pages at ``indexes`` (0-based), by index, and page
    1's lines (``ingest.layout.page_lines``) when ``lines`` is True.

    One pass over the file for all of them; no pass when nothing is wanted. pdfminer fails in
    its own ways on damaged files; any failure ends the pass and keeps what was read so far.
    """
    wanted = sorted(set(indexes) | ({0} if lines else set()))
    if not wanted:
        return {}, []
    try:
        from pdfminer.high_level import extract_pages
    except ImportError:
        log.warning("pdfminer.six is not available - pip install pdfminer.six; kept pypdf text")
        return {}, []
    texts: dict[int, str] = {}
    found: list[TextLine] = []
    try:
        # pdfminer yields the wanted pages in document order.
        layouts = extract_pages(path, page_numbers=wanted, laparams=layout_params())
        poor = set(indexes)
        for index, layout in zip(wanted, layouts, strict=False):
            if index in poor:
                texts[index] = clean_text(_layout_text(layout))
            if index == 0 and lines:
                found = page_lines(layout, 1)
    except Exception as e:  # MemoryError and RecursionError too: pdfminer has few limits
        log.info("pdfminer stopped on %s: %s", path.name, _reason(e))
    return texts, found


def _layout_text(layout: Any) -> str:
    """The text of a pdfminer page layout: text boxes in reading order, a blank line apart."""
    from pdfminer.layout import LTFigure, LTTextBox

    boxes = []
    stack = list(reversed(list(layout)))
    while stack:  # depth first, in the layout's order: figures hold text boxes too
        item = stack.pop()
        if isinstance(item, LTTextBox):
            boxes.append(item)
        elif isinstance(item, LTFigure):
            stack.extend(reversed(list(item)))
    return "\n\n".join(box.get_text() for box in _reading_order(boxes, layout.bbox))


def _reading_order(boxes: list[Any], bbox: tuple[float, float, float, float]) -> list[Any]:
    """Text boxes in reading order; on two-column pages the left column comes first.

    pdfminer's own order interleaves the columns of some two-column pages (e.g. Chinese
    papers with a diagonal watermark, zh_rucaibox_llm_survey_chinese.pdf, pdfminer.six
    20260107), so a page whose boxes mostly sit on one side of the middle is read column by
    column, between the full-width boxes (titles, wide figures) that cross the middle.
    """
    middle = (bbox[0] + bbox[2]) / 2
    width = bbox[2] - bbox[0]

    def side(box: Any) -> str:
        if box.x1 <= middle + 2:
            return "left"
        if box.x0 >= middle - 2:
            return "right"
        if box.width >= width / 2:
            return "full"
        return "left" if (box.x0 + box.x1) / 2 < middle else "right"

    lines = {"left": 0, "right": 0, "full": 0}
    for box in boxes:
        lines[side(box)] += len(box)
    if min(lines["left"], lines["right"]) < 0.25 * sum(lines.values()):
        return boxes
    ordered: list[Any] = []
    block: list[Any] = []
    for box in sorted(boxes, key=lambda b: -b.y1) + [None]:
        if box is None or side(box) == "full":
            block.sort(key=lambda b: (side(b) == "right", -b.y1))
            ordered += block + ([box] if box is not None else [])
            block = []
        else:
            block.append(box)
    return ordered


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep pypdf's Python warnings from escaping (the tests run with warnings as errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open(path: Path) -> PdfReader:
    if not path.is_file():
        raise IngestError(f"Cannot read {str(path)!r}: no such file.")
    try:
        reader = PdfReader(path, strict=False)
    except EmptyFileError as e:
        raise IngestError(f"Cannot read {path.name!r}: the file is empty (0 bytes).") from e
    except OSError as e:
        raise IngestError(f"Cannot read {path.name!r}: {e.strerror or e}.") from e
    except Exception as e:  # pypdf raises many types on damaged files
        raise _unreadable(path, e) from e
    _decrypt(reader, path)
    return reader


def _decrypt(reader: PdfReader, path: Path) -> None:
    """Open an encrypted PDF with the empty user password, or explain what is needed."""
    try:
        if not reader.is_encrypted:
            return
        opened = reader.decrypt("")
    except DependencyError as e:
        raise IngestError(
            f"Cannot decrypt {path.name!r}: {e}. Install it with: pip install cryptography"
        ) from e
    except Exception as e:
        raise _unreadable(path, e) from e
    if not opened:
        raise IngestError(
            f"{path.name!r} is encrypted and needs a password to open. Remove the password "
            "first (e.g. qpdf --password=PASSWORD --decrypt in.pdf out.pdf) and ingest the copy."
        )


def _count_pages(reader: PdfReader, path: Path, max_pages: int) -> int:
    try:
        # For encrypted files pypdf trusts the /Count entry, which may lie; bad indexes then
        # fail per page in _page_text.
        n_pages = max(0, int(len(reader.pages)))
    except Exception as e:
        raise _unreadable(path, e) from e
    if n_pages > max_pages:
        raise IngestError(
            f"{path.name!r} has {n_pages} pages, more than the limit of {max_pages}. "
            "Split it (e.g. qpdf --split-pages=1000 in.pdf out.pdf) or raise the page limit."
        )
    return n_pages


def _page_text(reader: PdfReader, index: int, path: Path) -> tuple[str, Exception | None]:
    """The cleaned text of one page, and ("", error) when pypdf fails on it."""
    try:
        raw = reader.pages[index].extract_text()
    except MemoryError as e:
        raise IngestError(
            f"Ran out of memory extracting page {index + 1} of {path.name!r}; the page may be a "
            "decompression bomb. Repair or rewrite the PDF (e.g. with qpdf) and try again."
        ) from e
    except Exception as e:  # RecursionError too, on deep nesting
        return "", e
    return clean_text(raw or ""), None


def _read_info(reader: PdfReader) -> dict[str, str]:
    """The PDF document info as plain strings; unreadable or empty entries are dropped."""
    try:
        raw = reader.metadata
        items: dict[str, object] = {
            name: raw[key] for key, name in _INFO_KEYS.items() if raw and key in raw
        }
    except Exception:  # a damaged info dict is not worth failing for
        return {}
    if is_placeholder_author(str(items.get("author", ""))) and (creators := _xmp_creators(reader)):
        items["author"] = "; ".join(creators)  # XMP dc:creator, where the info names nobody
    info = {}
    for name, value in items.items():
        plain = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
        text = clean_text(plain)[:_MAX_INFO_CHARS].strip()
        if text:
            info[name] = text
    return info


def _xmp_creators(reader: PdfReader) -> list[str]:
    """The names in the XMP metadata's dc:creator, or [] (none, or unreadable XMP)."""
    try:
        xmp = reader.xmp_metadata
        creators = xmp.dc_creator if xmp is not None else None
    except Exception:  # XMP is XML that producers get wrong in many ways
        return []
    return [str(c).strip() for c in creators or [] if str(c).strip()]


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _no_text(path: Path, n_pages: int, failures: list[str], *, had_text: bool) -> IngestError:
    counted = f"{n_pages} page{'' if n_pages == 1 else 's'}"
    if n_pages == 0:
        return IngestError(f"No text extracted from {path.name!r} ({counted}). {_REPAIR_HINT}")
    if failures and not had_text:
        return IngestError(
            f"No text extracted from {path.name!r} ({counted}); extraction failed on "
            f"{len(failures)} (first: {failures[0]}). {_REPAIR_HINT}"
        )
    hint = _OCR_HINT.format(advice=f"{ocr_advice('kb ingest --ocr')} (an upload: ocr=true)")
    return IngestError(f"No text extracted from {path.name!r} ({counted}); {hint}")


def _unreadable(path: Path, error: BaseException) -> IngestError:
    return IngestError(f"Cannot read {path.name!r}: {_reason(error)}. {_REPAIR_HINT}")


def _reason(error: BaseException) -> str:
    """The first line of an exception's message, short, or its type name."""
    lines = str(error).strip().splitlines()
    reason = lines[0].strip().rstrip(".")[:160] if lines else ""
    return reason or type(error).__name__
