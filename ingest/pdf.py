"""Read the text and document info of a PDF with pypdf; every failure becomes an IngestError.

pypdf raises many exception types on damaged or hostile files, several of them outside
``pypdf.errors.PyPdfError`` (TypeError, AssertionError, NotImplementedError,
DependencyError, ...; see ../shared/data/badpdfs/NOTES.md), so the boundaries here catch
``Exception`` and name the file in one clear message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, EmptyFileError

from ingest.lang import CJK_PUNCT, UNSPACED_CHARS
from kb.errors import IngestError

DEFAULT_MAX_PAGES = 5000

# pypdf reports recoverable damage through the "pypdf" logger; a reader recovers or we
# raise IngestError, so its warnings are noise for the user.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_INFO_KEYS = {
    "/Title": "title",
    "/Author": "author",
    "/Subject": "subject",
    "/Keywords": "keywords",
    "/CreationDate": "creation_date",
}
_MAX_INFO_CHARS = 2000
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
_BREAK_RE = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_SPACES_RE = re.compile(r"[ \t]*\n[ \t]*|[ ]{2,}")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_HYPHEN_BREAK_RE = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
# Spaces that pypdf puts inside Chinese text: between two Chinese characters or CJK
# punctuation marks, and after a Chinese character + ASCII punctuation ("模型, 安全").
_U, _P = UNSPACED_CHARS, UNSPACED_CHARS + CJK_PUNCT
_ASCII_P = r",.;:!?)\]"
_HAN_GAP_RE = re.compile(
    f"(?<=[{_U}]) (?=[{_P}{_ASCII_P}])"
    f"|(?<=[{_P}(\\[]) (?=[{_U}])"
    f"|(?<=[{_U}][{_ASCII_P}]) (?=[{_U}])"
)
_REPAIR_HINT = "Is it a complete PDF? Try re-downloading it or repairing it with qpdf."


@dataclass(frozen=True)
class PdfText:
    """The text of a PDF, one string per page (index 0 is page 1), and its document info."""

    pages: list[str]
    info: dict[str, str]
    n_pages: int


def read_pdf(path: Path, *, max_pages: int = DEFAULT_MAX_PAGES) -> PdfText:
    """Extract the text of every page and the document info of the PDF at ``path``.

    A page that pypdf cannot extract gives "" and the others are kept. Raises IngestError
    if the file cannot be read, needs a password, has more than ``max_pages`` pages, or
    yields no text at all (a scanned or image-only PDF).
    """
    with _quiet():
        reader = _open(path)
        n_pages = _count_pages(reader, path, max_pages)
        results = [_page_text(reader, i, path) for i in range(n_pages)]
        info = _read_info(reader)
    pages = [text for text, _ in results]
    if not any(_has_word(page) for page in pages):
        failures = [f"page {i + 1}: {err}" for i, (_, err) in enumerate(results) if err]
        raise _no_text(path, n_pages, failures)
    return PdfText(pages=pages, info=info, n_pages=n_pages)


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path`` as hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as e:
        raise IngestError(f"Cannot read {str(path)!r}: {e.strerror or e}.") from e
    return digest.hexdigest()


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


def _page_text(reader: PdfReader, index: int, path: Path) -> tuple[str, str | None]:
    """The cleaned text of one page and why it failed; ("", reason) when pypdf fails on it."""
    try:
        raw = reader.pages[index].extract_text()
    except MemoryError as e:
        raise IngestError(
            f"Ran out of memory extracting page {index + 1} of {path.name!r}; the page may be a "
            "decompression bomb. Repair or rewrite the PDF (e.g. with qpdf) and try again."
        ) from e
    except Exception as e:  # RecursionError too, on deep nesting
        return "", _reason(e)
    return clean_text(raw or ""), None


def _read_info(reader: PdfReader) -> dict[str, str]:
    """The PDF document info as plain strings; unreadable or empty entries are dropped."""
    try:
        raw = reader.metadata
        items = {name: raw[key] for key, name in _INFO_KEYS.items() if raw and key in raw}
    except Exception:  # a damaged info dict is not worth failing for
        return {}
    info = {}
    for name, value in items.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        text = clean_text(str(value))[:_MAX_INFO_CHARS].strip()
        if text:
            info[name] = text
    return info


def clean_text(text: str) -> str:
    """Normalise extracted text lightly: NFKC, no control characters, single spaces.

    A lowercase word hyphenated at a line end is rejoined ("de-" + "ployed" -> "deployed").
    Spaces next to Chinese characters are removed too: Chinese has none, and some PDFs
    (Type3 fonts, e.g. ../shared/data/pdfs/zh_owasp_llm_top10_v1_1_zh.pdf) make pypdf
    emit one between every character.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _BREAK_RE.sub("\n", text)
    text = _CONTROL_RE.sub("", text)
    text = _SPACES_RE.sub(lambda m: "\n" if "\n" in m.group() else " ", text)
    text = _BLANK_LINES_RE.sub("\n\n", text)
    text = _HYPHEN_BREAK_RE.sub("", text)  # "de-\nployed" -> "deployed"
    # Twice: "型 , 安" only shows its second gap once the first is gone.
    return _HAN_GAP_RE.sub("", _HAN_GAP_RE.sub("", text)).strip()


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _no_text(path: Path, n_pages: int, failures: list[str]) -> IngestError:
    counted = f"{n_pages} page{'' if n_pages == 1 else 's'}"
    if n_pages == 0:
        return IngestError(f"No text extracted from {path.name!r} ({counted}). {_REPAIR_HINT}")
    if failures:
        return IngestError(
            f"No text extracted from {path.name!r} ({counted}); extraction failed on "
            f"{len(failures)} (first: {failures[0]}). {_REPAIR_HINT}"
        )
    return IngestError(
        f"No text extracted from {path.name!r} ({counted}); it is probably a scanned or "
        "image-only PDF. Run OCR on it first (e.g. ocrmypdf) and ingest the result."
    )


def _unreadable(path: Path, error: BaseException) -> IngestError:
    return IngestError(f"Cannot read {path.name!r}: {_reason(error)}. {_REPAIR_HINT}")


def _reason(error: BaseException) -> str:
    """The first line of an exception's message, short, or its type name."""
    lines = str(error).strip().splitlines()
    reason = lines[0].strip().rstrip(".")[:160] if lines else ""
    return reason or type(error).__name__
