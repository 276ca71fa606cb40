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
    assert keys[:3] == ["doe2024jailbreak", "wang2023", "doe2024jailbreaka"]
    assert keys[3] == "labreward"  # no year: surname and first title word
    # nothing to build a key from (no author, a title with no ASCII word): the paper's id
    assert citation_keys([paper(9, "大模型安全", year=None)]) == ["kb9"]
    assert keys[4] == "doe2024jailbreakb"
    assert all(k.isascii() and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", k) for k in keys)
    assert citation_keys([paper(9, "对齐", authors=["San Zhang"], year=2022)]) == ["zhang2022"]
    assert citation_keys([paper(9, "2024: a year", authors=["陈"], year=2024)]) == ["chen2024year"]
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
    assert list(db.entries) == ["doe2024jailbreak", "wang2023", "doe2024jailbreaka", "labreward"]
    first = db.entries["doe2024jailbreak"]
    assert first.type == "article"  # a DOI (not arXiv's): the journal version
    assert first.fields["title"] == "{Jailbreak attacks on aligned chatbots}"  # case kept
    assert [str(p) for p in first.persons["author"]] == ["Doe, Jane", "Müller, Hans"]
    assert first.fields["doi"] == "10.1234/jb_x"  # verbatim: biblatex reads DOIs as is
    assert first.fields["eprint"] == "2306.05499"
    assert first.fields["archivePrefix"] == "arXiv"
    assert first.fields["url"] == "https://arxiv.org/abs/2306.05499"
    assert first.fields["year"] == "2024" and first.fields["language"] == "en"
    assert unescape(first.fields["keywords"]) == "jail_break, red team"
    assert first.fields["abstract"] == "Misuse of aligned models."
    chinese = db.entries["wang2023"]
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
    assert [i["id"] for i in items] == [
        "doe2024jailbreak",
        "wang2023",
        "doe2024jailbreaka",
        "labreward",
    ]
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
    assert chinese["note"] == "读第3节" and chinese["type"] == "document"  # neither DOI nor arXiv
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


# ---------------------------------------------------------------- item types, files, GB/T 7714

KINDS = [
    paper(21, "Deep reinforcement learning from human preferences", authors=["Paul Christiano"],
          year=2017, doi="10.5555/3295222"),
    paper(22, "Universal and transferable adversarial attacks", authors=["Andy Zou"], year=2023,
          arxiv_id="2307.15043"),
    paper(23, "AI Incident Response", authors=["Coalition for Secure AI"], year=2025,
          author_kind="organisation", doi="10.1234/cosai"),
    paper(24, "信息安全技术 个人信息安全规范 GB/T 35273-2020", authors=["王伟"], year=2020,
          lang="zh"),
    paper(25, "Notes on shutdown", authors=["Ada Lovelace"], year=2024,
          files=["/srv/kb/files/abc.pdf"]),
]  # fmt: skip


def test_item_types_follow_what_the_document_is():
    from kb.library.exports import item_type

    assert [item_type(p) for p in KINDS] == ["article", "preprint", "report", "report", "misc"]
    # an arXiv DOI is a preprint's, not a journal's
    assert item_type(paper(26, "x", doi="10.48550/arXiv.2401.00001")) == "preprint"
    bib = parse_string(export(KINDS, "bibtex"), "bibtex").entries
    assert [e.type for e in bib.values()] == ["article", "misc", "techreport", "techreport", "misc"]
    assert bib["zou2023universal"].fields["archivePrefix"] == "arXiv"
    assert list(bib.values())[2].fields["institution"] == "Coalition for Secure AI"
    ris = rispy.loads(export(KINDS, "ris"))
    assert [r["type_of_reference"] for r in ris] == ["JOUR", "UNPB", "RPRT", "RPRT", "GEN"]
    assert ris[2]["publisher"] == "Coalition for Secure AI" and "publisher" not in ris[3]
    csl = json.loads(export(KINDS, "csl-json"))
    assert [i["type"] for i in csl] == [
        "article-journal",
        "article",
        "report",
        "report",
        "document",
    ]
    assert csl[1]["publisher"] == "arXiv" and csl[2]["publisher"] == "Coalition for Secure AI"


def test_the_pdf_is_linked_from_bibtex_and_ris():
    bib = parse_string(export(KINDS[4:], "bibtex"), "bibtex").entries["lovelace2024notes"]
    assert bib.fields["file"] == r":/srv/kb/files/abc.pdf:PDF"
    assert rispy.loads(export(KINDS[4:], "ris"))[0]["file_attachments1"] == "/srv/kb/files/abc.pdf"
    # a server passes its own links (URLs) instead of its paths; {} links none
    url = "http://kb.example/api/papers/25/pdf"
    linked = parse_string(export(KINDS[4:], "bibtex", files={25: url}), "bibtex")
    assert (
        linked.entries["lovelace2024notes"].fields["file"]
        == r":http\://kb.example/api/papers/25/pdf:PDF"
    )
    assert "file" not in export(KINDS[4:], "bibtex", files={}) and "L1" not in export(
        KINDS, "ris", files={}
    )


def test_gbt7714_reference_list():
    from kb.library.exports import gbt7714, to_gbt7714

    assert gbt7714(KINDS[0]) == (
        "CHRISTIANO P. Deep reinforcement learning from human preferences[J]. 2017. "
        "DOI: 10.5555/3295222."
    )
    assert gbt7714(KINDS[1]) == (
        "ZOU A. Universal and transferable adversarial attacks[EB/OL]. arXiv:2307.15043, 2023. "
        "https://arxiv.org/abs/2307.15043."
    )
    assert gbt7714(KINDS[2]).startswith(
        "Coalition for Secure AI. AI Incident Response[R]. Coalition for Secure AI, 2025."
    )
    assert gbt7714(KINDS[3]) == "王伟. 信息安全技术 个人信息安全规范 GB/T 35273-2020[S]. 2020."
    many = paper(
        27, "大模型综述", authors=["赵鑫", "周昆", "李军毅", "唐天一"], year=2023, lang="zh"
    )
    assert gbt7714(many) == "赵鑫, 周昆, 李军毅, 等. 大模型综述[Z]. 2023."
    four = paper(
        28, "Sleeper agents", authors=["Evan Hubinger", "Carson Denison", "J. Mu", "M. Lambert"]
    )
    assert gbt7714(four).startswith("HUBINGER E, DENISON C, MU J, et al. Sleeper agents[Z].")
    assert to_gbt7714(KINDS[:2]).splitlines()[1].startswith("[2] ZOU A.")


def test_chinese_surnames_in_pinyin_keys():
    assert citation_keys([paper(29, "越狱攻击", authors=["王伟"], year=2023)]) == ["wang2023"]
    assert citation_keys([paper(30, "大模型", authors=["欧阳明"], year=2024)]) == ["ouyang2024"]


def test_a_citation_key_starts_with_a_letter():
    digits = paper(31, "3D attacks on robots", authors=["3M Company"], year=2022)
    anonymous = paper(32, "2024 AI Index", year=2024)
    keys = citation_keys([digits, anonymous])
    assert all(key[:1].isalpha() and key.isascii() for key in keys), keys
