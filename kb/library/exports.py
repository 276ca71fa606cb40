"""Bibliography exports: papers as BibTeX, RIS or CSL-JSON text (pure functions).

Text stays UTF-8 (Chinese titles and names are written as they are); only BibTeX keys are
ASCII. The formats and what each field holds:

- Item types (``item_type``), from what the document is: a report or standard (issued by an
  organisation, or titled so: "... Report", "白皮书", "GB/T 35273": ``@techreport`` with
  ``institution``, RIS ``RPRT`` with ``PB``, CSL ``report`` with ``publisher``); a journal
  paper (a DOI: ``@article``, ``JOUR``, ``article-journal``); an arXiv preprint (``@misc``
  with ``eprint``, RIS ``UNPB``, CSL ``article``, CSL's type for preprints); anything else
  ``@misc``, ``GEN``, ``document``.
- BibTeX: keys like ``doe2024jailbreak`` (first author's ASCII surname, year, first ASCII
  title word; a Chinese surname in pinyin where ``pypinyin`` is installed), ``kb{id}`` when a
  paper has neither an ASCII surname nor an ASCII title word, then ``a``, ``b``, ... appended
  to keep keys unique. LaTeX specials are escaped; the title is wrapped in a second pair of
  braces to keep its case; an arXiv id becomes ``eprint`` + ``archivePrefix = {arXiv}``.
- RIS: CRLF line ends as the format asks; one ``AU``/``KW`` line per author/tag;
  ``AN  - arXiv:ID``.
- CSL-JSON: a JSON array as citeproc, Zotero and pandoc read it.
- The PDF: BibTeX ``file = {:PATH:PDF}`` (JabRef's and Zotero's form), RIS ``L1``; the
  paper's first file, or the link ``files`` gives (a server gives URLs, not its paths).
- GB/T 7714 (``to_gbt7714``): the Chinese national citation style, one numbered line each.

Names (``split_name``): a person's is written family name first in every format (BibTeX
``Doe, Jane``, RIS ``AU  - Doe, Jane``, CSL ``{"family", "given"}``), particles with the family
name ("van Doe, Jane"). A Chinese name is family name first as printed, spaced or not: "陈宏"
and "陈 宏" are both 陈 (family) + 宏 (given); a Chinese name without a known surname stays
whole. An organisation (``Paper.author_kind``) is never split: BibTeX ``{{World Economic
Forum}}``, CSL ``{"literal": ...}``, RIS the name as it is.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ingest.names import chinese_surname
from kb.errors import InvalidInput
from kb.types import Paper

FORMATS = ("bibtex", "ris", "csl-json")
CITE_FORMATS = ("bibtex", "ris", "gbt7714")  # the paper page's "Cite" box
ItemType = Literal["preprint", "report", "article", "misc"]
MEDIA_TYPES = {
    "bibtex": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
    "csl-json": "application/vnd.citationstyles.csl+json",
}
SUFFIXES = {"bibtex": ".bib", "ris": ".ris", "csl-json": ".json"}

_BIBTEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    # BibTeX counts braces even after a backslash: "\{" would unbalance the entry.
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    "%": r"\%",
    "&": r"\&",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_RE = re.compile("|".join(re.escape(c) for c in _BIBTEX_SPECIALS))
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la", "le"}
# A title that says the document is a report, a white paper, a standard or a guide.
_REPORT_RE = re.compile(
    r"\b(?:report|white\s?paper|standard|guidelines?|guide|framework|checklist|handbook"
    r"|playbook|specification|proposal|top\s?10)\b"
    r"|报告|白皮书|蓝皮书|标准|指南|规范|框架|清单|要求|手册"
    r"|\b(?:GB|GB/T|ISO|IEC|ISO/IEC|NIST\s(?:SP|AI)|TC\d+)\s?[\d.-]+",
    re.IGNORECASE,
)
_STANDARD_RE = re.compile(r"标准|\b(?:GB|GB/T|ISO|IEC|ISO/IEC)\s?\d|\bstandard\b", re.IGNORECASE)
# Words too common to tell papers apart in a citation key.
_SKIP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "towards", "toward"}


def export(
    papers: Iterable[Paper],
    fmt: str,
    notes: Mapping[int, str] | None = None,
    files: Mapping[int, str] | None = None,
) -> str:
    """Papers as text in ``fmt`` (``bibtex``, ``ris`` or ``csl-json``).

    Args:
        notes: paper id -> a note to carry (a collection's notes): BibTeX ``annote``,
            RIS ``N1``, CSL ``note``.
        files: paper id -> the link to its PDF (a URL); None: each paper's first file.
    """
    writer = {"bibtex": to_bibtex, "ris": to_ris, "csl-json": to_csl_json}.get(fmt)
    if writer is None:
        raise InvalidInput(f"Export format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    return writer(list(papers), notes or {}, files)


def item_type(p: Paper) -> ItemType:
    """What the document is, the first that holds: a report or standard issued by an
    organisation; a journal paper (a DOI that is not arXiv's: the published version wins
    over its preprint); an arXiv preprint; a report or standard by its title; else ``misc``."""
    doi = (p.doi or "").lower()
    if p.author_kind == "organisation":
        return "report"
    if doi and not doi.startswith("10.48550/arxiv."):
        return "article"
    if p.arxiv_id or doi:
        return "preprint"
    return "report" if _REPORT_RE.search(p.title) else "misc"


def institution(p: Paper) -> str | None:
    """Who issued a report: its organisation authors (None when its authors are people)."""
    if p.author_kind != "organisation" or not p.authors:
        return None
    return ", ".join(p.authors)


def _file(p: Paper, files: Mapping[int, str] | None) -> str | None:
    """The link to a paper's PDF: the one ``files`` gives, else its first file."""
    if files is not None:
        return files.get(p.id)
    return p.files[0] if p.files else None


# ---------------------------------------------------------------- keys and names


def _ascii(text: str) -> str:
    """Letters and digits of ``text`` with accents dropped (Müller -> Muller; 王 -> '')."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9]", "", flat)


def split_name(name: str, kind: str = "person") -> tuple[str, str]:
    """(family, given) of an author name: "Doe, Jane" and "Jane Doe" give ("Doe", "Jane").

    "Jane van Doe" gives ("van Doe", "Jane"); "陈宏" and "陈 宏" give ("陈", "宏"), a Chinese
    name being printed family name first. An organisation, a single word and a Chinese name
    without a known surname are all family name (given "").
    """
    name = " ".join(name.split())
    if kind == "organisation":
        return name, ""
    if "," in name:
        family, _, given = name.partition(",")
        return family.strip(), given.strip()
    if _HAN_RE.search(name):
        if " " in name:  # printed with a gap: the family name comes first
            family, _, given = name.partition(" ")
            return family, given.replace(" ", "")
        surname = chinese_surname(name)
        return (surname, name[len(surname) :]) if surname else (name, "")
    words = name.split(" ")
    start = len(words) - 1
    while start > 1 and words[start - 1] in _PARTICLES:
        start -= 1
    return " ".join(words[start:]), " ".join(words[:start])


def citation_keys(papers: list[Paper]) -> list[str]:
    """An ASCII citation key per paper, unique within the list."""
    keys: list[str] = []
    seen: set[str] = set()
    for p in papers:
        surname = _key_name(split_name(p.authors[0], p.author_kind)[0]) if p.authors else ""
        words = (_ascii(w).lower() for w in re.split(r"[\s\-–—:/]+", p.title))
        word = next((w for w in words if w and w not in _SKIP_WORDS and not w.isdigit()), "")
        word, year = word[:20], p.year or ""
        if surname[:1].isalpha():  # a key starts with a letter: some tools refuse others
            base = f"{surname}{year}{word}"
        else:
            base = f"{word}{year}" if word and word[0].isalpha() else f"kb{p.id}"
        key, n = base, 0
        while key.lower() in seen:
            key = base + _suffix(n)
            n += 1
        seen.add(key.lower())
        keys.append(key)
    return keys


def _key_name(family: str) -> str:
    """A family name for a citation key: ASCII letters, a Chinese one in pinyin ("王" ->
    "wang"; ``pypinyin`` is a dependency, the title is used if it is missing)."""
    flat = _ascii(family).lower()
    if flat or not _HAN_RE.search(family):
        return flat[:20]
    try:
        from pypinyin import lazy_pinyin
    except ImportError:
        return ""
    return _ascii("".join(lazy_pinyin(family))).lower()[:20]


def _suffix(n: int) -> str:
    """a, b, ..., z, then 27, 28, ... (so keys stay short and never clash)."""
    return chr(ord("a") + n) if n < 26 else str(n + 1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _arxiv_url(p: Paper) -> str | None:
    return p.url or (f"https://arxiv.org/abs/{p.arxiv_id}" if p.arxiv_id else None)


def _has_lang(p: Paper) -> bool:
    return bool(p.lang) and p.lang != "und"


# ---------------------------------------------------------------- BibTeX


def bibtex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped and whitespace collapsed."""
    return _BIBTEX_RE.sub(lambda m: _BIBTEX_SPECIALS[m.group(0)], _one_line(text))


def _verbatim(text: str) -> str:
    """A DOI or URL: written as is (biblatex reads them verbatim), braces percent-encoded."""
    return _one_line(text).replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


def _bibtex_author(name: str, kind: str) -> str:
    """``Family, Given``; an organisation, or a name that holds " and ", braced whole."""
    family, given = split_name(name, kind)
    if kind == "organisation" or re.search(r"\sand\s", name, re.IGNORECASE) or not given:
        whole = bibtex_escape(name)
        # Braced, BibTeX reads the name as one family name and never splits it on " and ".
        return f"{{{whole}}}" if kind == "organisation" or " " in whole else whole
    return f"{bibtex_escape(family)}, {bibtex_escape(given)}"


_BIBTEX_TYPES = {"preprint": "misc", "report": "techreport", "article": "article", "misc": "misc"}


def _bibtex_file(link: str) -> str:
    """JabRef's ``file`` field (``description:path:type``): ``:`` and ``;`` escaped."""
    return ":" + _verbatim(link).replace(":", "\\:").replace(";", "\\;") + ":PDF"


def to_bibtex(
    papers: list[Paper],
    notes: Mapping[int, str] | None = None,
    files: Mapping[int, str] | None = None,
) -> str:
    """BibTeX entries (``@article``, ``@techreport``, ``@misc``), one blank line apart."""
    notes = notes or {}
    entries = []
    for key, p in zip(citation_keys(papers), papers, strict=True):
        kind = item_type(p)
        fields: list[tuple[str, str]] = [("title", f"{{{bibtex_escape(p.title)}}}")]
        if p.authors:
            names = (_bibtex_author(a, p.author_kind) for a in p.authors)
            fields.append(("author", " and ".join(names)))
        if p.year:
            fields.append(("year", str(p.year)))
        if kind == "report" and (issuer := institution(p)):
            fields.append(("institution", bibtex_escape(issuer)))
        if p.doi:
            fields.append(("doi", _verbatim(p.doi)))
        if p.arxiv_id:
            fields += [("eprint", _verbatim(p.arxiv_id)), ("archivePrefix", "arXiv")]
        if url := _arxiv_url(p):
            fields.append(("url", _verbatim(url)))
        if _has_lang(p):
            fields.append(("language", bibtex_escape(p.lang)))
        if p.tags:
            fields.append(("keywords", bibtex_escape(", ".join(p.tags))))
        if p.abstract.strip():
            fields.append(("abstract", bibtex_escape(p.abstract)))
        if notes.get(p.id, "").strip():
            fields.append(("annote", bibtex_escape(notes[p.id])))
        if link := _file(p, files):
            fields.append(("file", _bibtex_file(link)))
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@{_BIBTEX_TYPES[kind]}{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


# ---------------------------------------------------------------- RIS


_RIS_TYPES = {"preprint": "UNPB", "report": "RPRT", "article": "JOUR", "misc": "GEN"}


def _ris_author(name: str, kind: str) -> str:
    """RIS's ``Family, Given``; an organisation (or a single name) without a comma, which
    reference managers read as a name not to split."""
    family, given = split_name(name, kind)
    return f"{family}, {given}" if given else family


def to_ris(
    papers: list[Paper],
    notes: Mapping[int, str] | None = None,
    files: Mapping[int, str] | None = None,
) -> str:
    """RIS records (``TY`` first, ``ER`` last), CRLF line ends."""
    notes = notes or {}
    lines: list[str] = []
    for key, p in zip(citation_keys(papers), papers, strict=True):
        kind = item_type(p)
        tags: list[tuple[str, str | None]] = [
            ("TY", _RIS_TYPES[kind]),
            ("ID", key),
            ("TI", p.title),
        ]
        tags += [("AU", _ris_author(a, p.author_kind)) for a in p.authors]
        tags += [("PY", str(p.year) if p.year else None), ("AB", p.abstract), ("DO", p.doi)]
        tags += [("AN", f"arXiv:{p.arxiv_id}" if p.arxiv_id else None), ("UR", _arxiv_url(p))]
        tags += [("LA", p.lang if _has_lang(p) else None)]
        tags += [("KW", t) for t in p.tags]
        tags += [("PB", institution(p) if kind == "report" else None)]
        tags += [("N1", notes.get(p.id)), ("L1", _file(p, files))]
        for tag, value in tags:
            if value and value.strip():
                lines.append(f"{tag}  - {_one_line(value)}")
        lines += ["ER  - ", ""]
    return "".join(line + "\r\n" for line in lines)


# ---------------------------------------------------------------- CSL-JSON


def _csl_name(name: str, kind: str) -> dict[str, str]:
    family, given = split_name(name, kind)
    if not given:
        return {"literal": family}
    return {"family": family, "given": given}


_CSL_TYPES = {
    "preprint": "article",
    "report": "report",
    "article": "article-journal",
    "misc": "document",
}


def csl_items(
    papers: list[Paper],
    notes: Mapping[int, str] | None = None,
    files: Mapping[int, str] | None = None,
) -> list[dict[str, Any]]:
    """CSL-JSON items (dicts), one per paper (CSL has no field for a file: ``files`` unused)."""
    notes = notes or {}
    items = []
    for key, p in zip(citation_keys(papers), papers, strict=True):
        kind = item_type(p)
        item: dict[str, Any] = {"id": key, "type": _CSL_TYPES[kind], "title": p.title}
        if p.authors:
            item["author"] = [_csl_name(a, p.author_kind) for a in p.authors]
        if p.year:
            item["issued"] = {"date-parts": [[p.year]]}
        optional = {
            "DOI": p.doi,
            "URL": _arxiv_url(p),
            "number": f"arXiv:{p.arxiv_id}" if p.arxiv_id else None,
            "publisher": "arXiv" if kind == "preprint" else institution(p),
            "abstract": p.abstract.strip() or None,
            "language": p.lang if _has_lang(p) else None,
            "keyword": ", ".join(p.tags) or None,
            "note": (notes.get(p.id) or "").strip() or None,
        }
        item.update({name: value for name, value in optional.items() if value})
        items.append(item)
    return items


def to_csl_json(
    papers: list[Paper],
    notes: Mapping[int, str] | None = None,
    files: Mapping[int, str] | None = None,
) -> str:
    """A CSL-JSON array, UTF-8, indented."""
    return json.dumps(csl_items(papers, notes), ensure_ascii=False, indent=2) + "\n"


# ---------------------------------------------------------------- GB/T 7714


_GBT_CODES = {"preprint": "EB/OL", "report": "R", "article": "J", "misc": "Z"}


def _gbt_author(name: str, kind: str) -> str:
    """GB/T 7714's form of a name: a Chinese or an organisation's as printed; a Western one
    family name in capitals, given names as initials ("Jane Doe" -> "DOE J")."""
    if kind == "organisation" or _HAN_RE.search(name):
        return " ".join(name.split())
    family, given = split_name(name, kind)
    initials = "".join(w[0] for w in re.split(r"[\s.\-]+", given) if w)
    return f"{family.upper()} {initials.upper()}".strip()


def gbt7714(p: Paper) -> str:
    """One reference in GB/T 7714-2015 (its numbered-list form without the number)."""
    kind = item_type(p)
    code = "S" if kind == "report" and _STANDARD_RE.search(p.title) else _GBT_CODES[kind]
    names = [_gbt_author(a, p.author_kind) for a in p.authors[:3]]
    if len(p.authors) > 3:
        names.append("等" if p.lang == "zh" else "et al")
    parts = [", ".join(names)] if names else []
    parts.append(f"{_one_line(p.title)}[{code}]")
    year = str(p.year) if p.year else ""
    if kind == "preprint":
        parts.append(", ".join(filter(None, [f"arXiv:{p.arxiv_id}" if p.arxiv_id else "", year])))
    elif kind == "report":
        parts.append(", ".join(filter(None, [institution(p) or "", year])))
    elif year:
        parts.append(year)
    text = ". ".join(part.rstrip(".") for part in parts if part) + "."
    if p.doi:
        text += f" DOI: {_one_line(p.doi)}."
    elif url := _arxiv_url(p):
        text += f" {_one_line(url)}."
    return text


def to_gbt7714(papers: list[Paper]) -> str:
    """A numbered GB/T 7714 reference list, one line per paper ("[1] ...")."""
    return "".join(f"[{n}] {gbt7714(p)}\n" for n, p in enumerate(papers, start=1))
