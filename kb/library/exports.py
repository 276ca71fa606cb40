"""Bibliography exports: papers as BibTeX, RIS or CSL-JSON text (pure functions).

Text stays UTF-8 (Chinese titles and names are written as they are); only BibTeX keys are
ASCII. The formats and what each field holds:

- BibTeX: ``@misc`` entries (kb does not know venues), keys like ``doe2024jailbreak`` (first
  author's ASCII surname, year, first ASCII title word), ``kb{id}`` when a paper has neither
  an ASCII surname nor an ASCII title word, then ``a``, ``b``, ... appended to keep keys
  unique. LaTeX specials are escaped; the title is wrapped in a second pair of braces to keep
  its case; an arXiv id becomes ``eprint`` + ``archivePrefix = {arXiv}``.
- RIS: ``TY  - JOUR`` (a DOI), ``UNPB`` (an arXiv preprint) or ``GEN``; CRLF line ends as the
  format asks; one ``AU``/``KW`` line per author/tag; ``AN  - arXiv:ID``.
- CSL-JSON: a JSON array as citeproc, Zotero and pandoc read it.

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
from typing import Any

from ingest.names import chinese_surname
from kb.errors import InvalidInput
from kb.types import Paper

FORMATS = ("bibtex", "ris", "csl-json")
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
# Words too common to tell papers apart in a citation key.
_SKIP_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "towards", "toward"}


def export(papers: Iterable[Paper], fmt: str, notes: Mapping[int, str] | None = None) -> str:
    """Papers as text in ``fmt`` (``bibtex``, ``ris`` or ``csl-json``).

    Args:
        notes: paper id -> a note to carry (a collection's notes): BibTeX ``annote``,
            RIS ``N1``, CSL ``note``.
    """
    writer = {"bibtex": to_bibtex, "ris": to_ris, "csl-json": to_csl_json}.get(fmt)
    if writer is None:
        raise InvalidInput(f"Export format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    return writer(list(papers), notes or {})


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
        surname = (
            _ascii(split_name(p.authors[0], p.author_kind)[0]).lower()[:20] if p.authors else ""
        )
        words = (_ascii(w).lower() for w in re.split(r"[\s\-–—:/]+", p.title))
        word = next((w for w in words if w and w not in _SKIP_WORDS and not w.isdigit()), "")
        word, year = word[:20], p.year or ""
        if surname:
            base = f"{surname}{year}{word}"
        else:  # a key starts with a letter: some tools refuse others
            base = f"{word}{year}" if word and word[0].isalpha() else f"kb{p.id}"
        key, n = base, 0
        while key.lower() in seen:
            key = base + _suffix(n)
            n += 1
        seen.add(key.lower())
        keys.append(key)
    return keys


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


def to_bibtex(papers: list[Paper], notes: Mapping[int, str] | None = None) -> str:
    """BibTeX ``@misc`` entries, one blank line apart."""
    notes = notes or {}
    entries = []
    for key, p in zip(citation_keys(papers), papers, strict=True):
        fields: list[tuple[str, str]] = [("title", f"{{{bibtex_escape(p.title)}}}")]
        if p.authors:
            names = (_bibtex_author(a, p.author_kind) for a in p.authors)
            fields.append(("author", " and ".join(names)))
        if p.year:
            fields.append(("year", str(p.year)))
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
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@misc{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


# ---------------------------------------------------------------- RIS


def _ris_type(p: Paper) -> str:
    if p.doi:
        return "JOUR"
    return "UNPB" if p.arxiv_id else "GEN"


def _ris_author(name: str, kind: str) -> str:
    """RIS's ``Family, Given``; an organisation (or a single name) without a comma, which
    reference managers read as a name not to split."""
    family, given = split_name(name, kind)
    return f"{family}, {given}" if given else family


def to_ris(papers: list[Paper], notes: Mapping[int, str] | None = None) -> str:
    """RIS records (``TY`` first, ``ER`` last), CRLF line ends."""
    notes = notes or {}
    lines: list[str] = []
    for key, p in zip(citation_keys(papers), papers, strict=True):
        tags: list[tuple[str, str | None]] = [("TY", _ris_type(p)), ("ID", key), ("TI", p.title)]
        tags += [("AU", _ris_author(a, p.author_kind)) for a in p.authors]
        tags += [("PY", str(p.year) if p.year else None), ("AB", p.abstract), ("DO", p.doi)]
        tags += [("AN", f"arXiv:{p.arxiv_id}" if p.arxiv_id else None), ("UR", _arxiv_url(p))]
        tags += [("LA", p.lang if _has_lang(p) else None)]
        tags += [("KW", t) for t in p.tags]
        tags += [("N1", notes.get(p.id))]
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


def csl_items(papers: list[Paper], notes: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """CSL-JSON items (dicts), one per paper."""
    notes = notes or {}
    items = []
    for key, p in zip(citation_keys(papers), papers, strict=True):
        item: dict[str, Any] = {
            "id": key,
            "type": "article-journal" if p.doi else "article",
            "title": p.title,
        }
        if p.authors:
            item["author"] = [_csl_name(a, p.author_kind) for a in p.authors]
        if p.year:
            item["issued"] = {"date-parts": [[p.year]]}
        optional = {
            "DOI": p.doi,
            "URL": _arxiv_url(p),
            "number": f"arXiv:{p.arxiv_id}" if p.arxiv_id else None,
            "publisher": "arXiv" if p.arxiv_id and not p.doi else None,
            "abstract": p.abstract.strip() or None,
            "language": p.lang if _has_lang(p) else None,
            "keyword": ", ".join(p.tags) or None,
            "note": (notes.get(p.id) or "").strip() or None,
        }
        item.update({name: value for name, value in optional.items() if value})
        items.append(item)
    return items


def to_csl_json(papers: list[Paper], notes: Mapping[int, str] | None = None) -> str:
    """A CSL-JSON array, UTF-8, indented."""
    return json.dumps(csl_items(papers, notes), ensure_ascii=False, indent=2) + "\n"
