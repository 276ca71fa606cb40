"""Bibliography exports (kb.library.exports), read back by real parsers: pybtex, rispy."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import rispy
from pybtex.database import parse_string

from kb.errors import InvalidInput
from kb.library.exports import bibtex_escape, citation_keys, export, split_name
from kb.types import Paper

NASTY = r"Reward {hacking} in 100% of cases & $x_1$ #3 ~ ^ \o/ {{{"


def paper(pid: int, title: str, **fields) -> Paper:
    base = dict(
        id=pid, key=f"k{pid}", kind="record", source=f"feed.jsonl#k{pid}",
        content_hash=f"h{pid}", title=title, authors=[], year=None, lang="en", doi=None,
        arxiv_id=None, abstract="", url=None, n_pages=None, n_chunks=1,
        added_at="2025-01-01T00:00:00+00:00",
    )  # fmt: skip
    return Paper(**(base | fields))


@pytest.fixture
def papers() -> list[Paper]:
    return [
        paper(1, "Jailbreak attacks on aligned chatbots", authors=["Jane Doe", "Müller, Hans"],
              year=2024, doi="10.1234/jb_x", arxiv_id="2306.05499", tags=["jail_break", "red team"],
              abstract="Misuse of\n\naligned models."),
        paper(2, "越狱攻击与大模型安全", authors=["王伟", "李娜"], year=2023, lang="zh",
              abstract="滥用风险。", tags=["越狱"]),
        paper(3, "Jailbreak attacks, revisited", authors=["J. Doe"], year=2024,
              url="https://example.org/p?a=1&b={2}"),
        paper(4, NASTY, authors=["Tom and Jerry Lab", "Ada Lovelace"], abstract=NASTY, lang="und"),
    ]  # fmt: skip


def unescape(text: str) -> str:
    """The inverse of bibtex_escape (the tests' reference, one character at a time)."""
    table = {r"\textbackslash{}": "\\", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^"}
    table |= {r"\textbraceleft{}": "{", r"\textbraceright{}": "}"}
    table |= {f"\\{c}": c for c in "%&$#_"}
    pattern = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
    return re.sub(pattern, lambda m: table[m.group(0)], text)


def test_keys_are_ascii_unique_and_fall_back_to_the_id(papers):
    keys = citation_keys(papers + [papers[0]])
    assert keys[:3] == ["doe2024jailbreak", "kb2", "doe2024jailbreaka"]
    assert keys[3] == "labreward"  # no year: surname and first title word
    assert keys[4] == "doe2024jailbreakb"
    assert all(k.isascii() and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", k) for k in keys)
    assert citation_keys([paper(9, "对齐", authors=["San Zhang"], year=2022)]) == ["zhang2022"]
    assert citation_keys([paper(9, "2024: a year", authors=["陈"], year=2024)]) == ["year2024"]
    assert citation_keys([paper(9, "Reward hacking")]) == ["reward"]


def test_split_name():
    assert split_name("Jane  van Doe") == ("van Doe", "Jane")
    assert split_name("Doe, Jane") == ("Doe", "Jane")
    assert split_name("J. Zico Kolter") == ("Kolter", "J. Zico")
    # Chinese names are printed family name first, with a gap or without.
    assert split_name("王伟") == ("王", "伟")
    assert split_name("陈 宏") == ("陈", "宏")
    assert split_name("欧阳娜娜") == ("欧阳", "娜娜")
    assert split_name("买买提") == ("买买提", "")  # no known surname: kept whole
    assert split_name("World Economic Forum", "organisation") == ("World Economic Forum", "")


def test_bibtex_parses_back_with_every_field(papers):
    text = export(papers, "bibtex")
    db = parse_string(text, "bibtex")
    assert list(db.entries) == ["doe2024jailbreak", "kb2", "doe2024jailbreaka", "labreward"]
    first = db.entries["doe2024jailbreak"]
    assert first.type == "misc"
    assert first.fields["title"] == "{Jailbreak attacks on aligned chatbots}"  # case kept
    assert [str(p) for p in first.persons["author"]] == ["Doe, Jane", "Müller, Hans"]
    assert first.fields["doi"] == "10.1234/jb_x"  # verbatim: biblatex reads DOIs as is
    assert first.fields["eprint"] == "2306.05499"
    assert first.fields["archivePrefix"] == "arXiv"
    assert first.fields["url"] == "https://arxiv.org/abs/2306.05499"
    assert first.fields["year"] == "2024" and first.fields["language"] == "en"
    assert unescape(first.fields["keywords"]) == "jail_break, red team"
    assert first.fields["abstract"] == "Misuse of aligned models."
    chinese = db.entries["kb2"]
    assert chinese.fields["title"] == "{越狱攻击与大模型安全}"
    assert [(p.last_names, p.first_names) for p in chinese.persons["author"]] == [
        (["王"], ["伟"]),
        (["李"], ["娜"]),
    ]
    assert chinese.fields["language"] == "zh" and chinese.fields["abstract"] == "滥用风险。"
    assert db.entries["doe2024jailbreaka"].fields["url"] == "https://example.org/p?a=1&b=%7B2%7D"


def test_bibtex_escapes_specials_and_keeps_braces_balanced(papers):
    nasty = parse_string(export(papers[3:], "bibtex"), "bibtex").entries["labreward"]
    assert unescape(nasty.fields["title"][1:-1]) == NASTY
    assert unescape(nasty.fields["abstract"]) == NASTY
    assert "language" not in nasty.fields and "year" not in nasty.fields  # lang "und"
    authors = nasty.persons["author"]
    assert len(authors) == 2 and str(authors[0]) == "{Tom and Jerry Lab}"
    assert bibtex_escape("50% & {x}") == r"50\% \& \textbraceleft{}x\textbraceright{}"


def test_ris_parses_back_line_by_line(papers):
    text = export(papers, "ris")
    assert text.endswith("ER  - \r\n\r\n") and "\n" not in text.replace("\r\n", "")
    for line in filter(None, text.split("\r\n")):
        assert re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line), line
    records = rispy.loads(text)
    assert [r["type_of_reference"] for r in records] == ["JOUR", "GEN", "GEN", "GEN"]
    first = records[0]
    assert first["title"] == "Jailbreak attacks on aligned chatbots"
    assert first["authors"] == ["Doe, Jane", "Müller, Hans"]
    assert first["year"] == "2024" and first["doi"] == "10.1234/jb_x"
    assert first["language"] == "en" and first["keywords"] == ["jail_break", "red team"]
    assert first["accession_number"] == "arXiv:2306.05499"
    assert first["urls"] == ["https://arxiv.org/abs/2306.05499"]
    assert first["abstract"] == "Misuse of aligned models."
    chinese = records[1]
    assert chinese["title"] == "越狱攻击与大模型安全" and chinese["authors"] == ["王, 伟", "李, 娜"]
    assert chinese["language"] == "zh" and chinese["keywords"] == ["越狱"]
    assert records[3]["title"] == NASTY and "language" not in records[3]
    assert export([paper(5, "p", arxiv_id="2401.00001")], "ris").startswith("TY  - UNPB\r\n")


def test_csl_json_round_trips(papers):
    items = json.loads(export(papers, "csl-json", notes={2: "读第3节"}))
    assert [i["id"] for i in items] == ["doe2024jailbreak", "kb2", "doe2024jailbreaka", "labreward"]
    first = items[0]
    assert first["type"] == "article-journal" and first["DOI"] == "10.1234/jb_x"
    assert first["author"] == [{"family": "Doe", "given": "Jane"},
                               {"family": "Müller", "given": "Hans"}]  # fmt: skip
    assert first["issued"] == {"date-parts": [[2024]]} and first["language"] == "en"
    assert first["number"] == "arXiv:2306.05499" and first["keyword"] == "jail_break, red team"
    assert "publisher" not in first  # it has a DOI: the arXiv is not its publisher
    chinese = items[1]
    assert chinese["title"] == "越狱攻击与大模型安全" and chinese["language"] == "zh"
    assert chinese["author"] == [{"family": "王", "given": "伟"}, {"family": "李", "given": "娜"}]
    assert chinese["note"] == "读第3节" and chinese["type"] == "article"
    assert items[3]["title"] == NASTY and "language" not in items[3] and "issued" not in items[3]
    assert "越狱攻击" in export(papers, "csl-json")  # UTF-8, not \\u escapes


def test_notes_go_into_every_format(papers):
    notes = {1: "Read § 3 & 4 {first}"}
    bib = parse_string(export(papers[:1], "bibtex", notes), "bibtex").entries["doe2024jailbreak"]
    assert unescape(bib.fields["annote"]) == notes[1]
    assert rispy.loads(export(papers[:1], "ris", notes))[0]["notes"] == [notes[1]]


def test_empty_and_unknown_formats():
    assert export([], "bibtex") == "" and export([], "ris") == ""
    assert json.loads(export([], "csl-json")) == []
    with pytest.raises(InvalidInput, match="bibtex, ris, csl-json"):
        export([], "endnote")


# ---------------------------------------------------------------- names through real tools

NAMED = [
    paper(11, "Sleeper Agents", authors=["Evan Hubinger", "Rob van der Veer"], year=2024),
    paper(12, "恶意网页识别研究综述", authors=["沙泓州", "周 舟", "欧阳娜娜"], lang="zh"),
    paper(13, "Governance in the Age of Generative AI", year=2024, author_kind="organisation",
          authors=["World Economic Forum", "Tom and Jerry Lab"]),
    paper(14, "JADE 3.0：大模型安全对齐", authors=["复旦大学"], year=2024, lang="zh",
          author_kind="organisation"),
]  # fmt: skip
# (family, given) as every format must carry them; given "" for a name never split.
EXPECTED = [
    [("Hubinger", "Evan"), ("van der Veer", "Rob")],
    [("沙", "泓州"), ("周", "舟"), ("欧阳", "娜娜")],
    [("World Economic Forum", ""), ("Tom and Jerry Lab", "")],
    [("复旦大学", "")],
]


def test_bibtex_names_round_trip_through_pybtex():
    db = parse_string(export(NAMED, "bibtex"), "bibtex")
    for entry, expected in zip(db.entries.values(), EXPECTED, strict=True):
        got = []
        for person in entry.persons["author"]:
            family = " ".join(person.prelast_names + person.last_names)
            got.append((family.strip("{}"), " ".join(person.first_names)))
        assert got == expected
    # Organisations are braced whole: {{World Economic Forum}}, never split on " and ".
    assert "author = {{World Economic Forum} and {Tom and Jerry Lab}}" in export(NAMED, "bibtex")


def test_ris_names_round_trip_through_rispy():
    records = rispy.loads(export(NAMED, "ris"))
    for record, expected in zip(records, EXPECTED, strict=True):
        got = [tuple(part.strip() for part in a.partition(",")[::2]) for a in record["authors"]]
        assert got == expected  # "Family, Given"; organisations without a comma


def test_csl_json_names_round_trip_through_citeproc_py():
    citeproc = pytest.importorskip("citeproc")
    from citeproc.source.json import CiteProcJSON

    source = CiteProcJSON(json.loads(export(NAMED, "csl-json")))
    for key, expected in zip(citation_keys(NAMED), EXPECTED, strict=True):
        got = [
            (str(n.get("literal") or n.get("family")), str(n.get("given", "")))
            for n in source[key.lower()]["author"]
        ]
        assert got == expected
    # Rendered by a real style: families cited, organisations whole.
    style = next((Path(citeproc.__file__).parent / "data" / "styles").glob("*.csl"))
    bibliography = citeproc.CitationStylesBibliography(
        citeproc.CitationStylesStyle(str(style), validate=False), source, citeproc.formatter.plain
    )
    citations = [citeproc.Citation([citeproc.CitationItem(k)]) for k in citation_keys(NAMED)]
    for citation in citations:
        bibliography.register(citation)
    cited = [str(bibliography.cite(c, lambda item: None)) for c in citations]
    assert cited[0] == "(Hubinger and van der Veer, 2024)"
    assert cited[1].startswith("(沙, 周 and 欧阳") and cited[3] == "(复旦大学, 2024)"
    assert cited[2] == "(World Economic Forum and Tom and Jerry Lab, 2024)"


def test_export_files_honour_the_umask(tmp_path):
    from kb.store import atomic_path

    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "refs.bib") as tmp:
            tmp.write_text(export(NAMED, "bibtex"), encoding="utf-8")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "refs.bib").stat().st_mode) == 0o640
