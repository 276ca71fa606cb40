from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ingest import estimate_tokens, read_records
from kb.errors import IngestError
from kb.types import ParsedDocument
from tests.conftest import XLING

GOOD = {
    "key": "arxiv:2306.05499",
    "title": "Prompt Injection attack against LLM-integrated Applications",
    "abstract": "We study prompt injection. We attack 36 applications.",
    "authors": ["Yi Liu", "Gelei Deng"],
    "year": "2023",
    "doi": "10.48550/arXiv.2306.05499",
    "arxiv_id": "arXiv:2306.05499v2",
    "url": "https://arxiv.org/abs/2306.05499",
}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    text = [
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    ]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def only_doc(results: list[ParsedDocument | IngestError]) -> ParsedDocument:
    assert len(results) == 1
    assert isinstance(results[0], ParsedDocument), results[0]
    return results[0]


def test_good_record(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "feed.jsonl", [GOOD])
    doc = only_doc(read_records(path, max_tokens=200, overlap=20))
    assert doc.key == "arxiv:2306.05499"
    assert doc.source == f"{path}#arxiv:2306.05499"
    assert doc.kind == "record"
    assert re.fullmatch(r"[0-9a-f]{64}", doc.content_hash)
    meta = doc.meta
    assert meta.title == GOOD["title"]
    assert meta.abstract == GOOD["abstract"]
    assert meta.authors == ["Yi Liu", "Gelei Deng"]
    assert meta.year == 2023
    assert (meta.doi, meta.arxiv_id, meta.url) == (GOOD["doi"], "2306.05499", GOOD["url"])
    assert (meta.lang, meta.n_pages) == ("en", None)
    assert [c.text for c in doc.chunks] == [f"{GOOD['title']} {GOOD['abstract']}"]
    assert (doc.chunks[0].page_start, doc.chunks[0].page_end) == (None, None)


def test_body_text_chunks_follow_title_and_abstract(tmp_path: Path) -> None:
    body = " ".join(f"Section {i} explains attack number {i} in detail." for i in range(40))
    path = write_jsonl(tmp_path / "feed.jsonl", [{**GOOD, "text": body}])
    doc = only_doc(read_records(path, max_tokens=40, overlap=5))
    assert doc.chunks[0].text.startswith(GOOD["title"])
    assert [c.ord for c in doc.chunks] == list(range(len(doc.chunks)))
    assert len(doc.chunks) > 5
    assert doc.chunks[-1].text.endswith("attack number 39 in detail.")
    assert all(estimate_tokens(c.text) <= 40 for c in doc.chunks)


def test_chinese_record_language_is_detected(tmp_path: Path) -> None:
    record = {"key": "zh-1", "title": "大语言模型的提示注入攻击", "abstract": "本文研究提示注入。"}
    doc = only_doc(
        read_records(write_jsonl(tmp_path / "f.jsonl", [record]), max_tokens=50, overlap=5)
    )
    assert doc.meta.lang == "zh"
    assert [c.text for c in doc.chunks] == ["大语言模型的提示注入攻击本文研究提示注入。"]
    assert doc.chunks[0].lang == "zh"


def test_given_lang_is_normalised(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "f.jsonl", [{**GOOD, "lang": "zh-CN"}])
    assert only_doc(read_records(path, max_tokens=50, overlap=5)).meta.lang == "zh"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "expected a JSON object, got array"),
        ({"title": "T T", "abstract": ""}, "'key' must be a non-empty string, got nothing"),
        ({"key": "  ", "title": "T T", "abstract": ""}, "'key' must be a non-empty string"),
        (
            {"key": "k", "title": 5, "abstract": ""},
            "'title' must be a non-empty string, got number 5",
        ),
        ({"key": "k", "title": "T T"}, "'abstract' must be a string"),
        ({**GOOD, "authors": "Yi Liu"}, "'authors' must be a list of strings"),
        ({**GOOD, "year": "about 2023"}, "'year' must be a four-digit year"),
        ({**GOOD, "year": True}, "'year' must be a four-digit year"),
        ({**GOOD, "doi": 10.1}, "'doi' must be a string"),
        ({"key": "k", "title": "???", "abstract": ""}, "no text to index"),
    ],
)
def test_bad_line_gives_one_error_with_its_line_number(
    tmp_path: Path, line: Any, message: str
) -> None:
    path = write_jsonl(tmp_path / "feed.jsonl", [GOOD, "", line, {**GOOD, "key": "other"}])
    results = read_records(path, max_tokens=100, overlap=10)
    assert len(results) == 3
    first, error, last = results
    assert isinstance(first, ParsedDocument) and first.key == GOOD["key"]
    assert isinstance(last, ParsedDocument) and last.key == "other"
    assert isinstance(error, IngestError)
    assert str(error).startswith("feed.jsonl line 3: ")
    assert message in str(error)


def test_invalid_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"key": "\xff"}\n')
    results = read_records(path, max_tokens=100, overlap=10)
    assert isinstance(results[0], ParsedDocument)
    assert isinstance(results[1], IngestError)
    assert "line 2: not UTF-8" in str(results[1])


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="Cannot read"):
        read_records(tmp_path / "absent.jsonl", max_tokens=100, overlap=10)


def test_content_hash_ignores_unknown_fields_only(tmp_path: Path) -> None:
    variants = [GOOD, {**GOOD, "source": "feed-2"}, {**GOOD, "abstract": "Changed."}]
    path = write_jsonl(tmp_path / "feed.jsonl", variants)
    hashes = [only_doc([r]).content_hash for r in read_records(path, max_tokens=100, overlap=10)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_duplicate_keys_are_all_returned_in_order(tmp_path: Path) -> None:
    lines = [GOOD, {**GOOD, "title": "Updated Title Here"}]
    results = read_records(write_jsonl(tmp_path / "f.jsonl", lines), max_tokens=100, overlap=10)
    assert [(r.key, r.meta.title) for r in results if isinstance(r, ParsedDocument)] == [
        (GOOD["key"], GOOD["title"]),
        (GOOD["key"], "Updated Title Here"),
    ]


def test_real_bilingual_records(tmp_path: Path) -> None:
    with (XLING / "safety_pairs_dev.jsonl").open(encoding="utf-8") as f:
        pairs = [json.loads(next(f)) for _ in range(20)]
    lines = []
    for pair in pairs:
        lines.append({"key": f"{pair['id']}#en", "title": pair["en_title"], "abstract": pair["en"]})
        lines.append({"key": f"{pair['id']}#zh", "title": pair["zh_title"], "abstract": pair["zh"]})
    results = read_records(write_jsonl(tmp_path / "pairs.jsonl", lines), max_tokens=200, overlap=30)
    docs = [r for r in results if isinstance(r, ParsedDocument)]
    assert len(docs) == 40
    assert [d.meta.lang for d in docs] == ["en", "zh"] * 20
    for doc in docs:
        assert all(estimate_tokens(c.text) <= 200 for c in doc.chunks)
        assert doc.chunks[0].text.startswith(doc.meta.title)
        if doc.meta.lang == "zh":
            assert not re.search(
                r"[\u4e00-\u9fff] [\u4e00-\u9fff]", "".join(c.text for c in doc.chunks)
            )


# ---------------------------------------------------------------- hostile lines (issue 13)


def test_deeply_nested_lines_are_one_error_each_and_the_rest_is_read(tmp_path: Path) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    inner: Any = 1
    for _ in range(40):  # 40 levels: within Python's recursion limit, over kb's
        inner = [inner]
    nested = json.dumps({**GOOD, "key": "n", "extra": inner})
    path = write_jsonl(tmp_path / "feed.jsonl", [GOOD, deep, nested, {**GOOD, "key": "last"}])
    results = read_records(path, max_tokens=100, overlap=10)
    assert [type(r).__name__ for r in results] == [
        "ParsedDocument", "IngestError", "IngestError", "ParsedDocument",
    ]  # fmt: skip
    assert "line 2: nests 200000 levels deep" in str(results[1])
    assert "line 3: nests 41 levels deep" in str(results[2])


def test_a_deep_line_does_not_stop_the_library_ingest(library, tmp_path: Path) -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    path = write_jsonl(tmp_path / "feed.jsonl", [GOOD, deep, {**GOOD, "key": "last"}])
    summary = library.ingest([path])
    assert len(summary.ingested) == 2 and len(summary.failed) == 1


def test_an_overlong_line_is_skipped_in_bounded_memory(tmp_path: Path, monkeypatch) -> None:
    import tracemalloc

    monkeypatch.setattr("ingest.records.MAX_LINE_BYTES", 1 << 20)
    path = tmp_path / "feed.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(GOOD) + "\n")
        fh.write('{"key": "big", "title": "T", "abstract": "' + "x" * (40 << 20) + '"}\n')
        fh.write(json.dumps({**GOOD, "key": "last"}) + "\n")
    tracemalloc.start()
    try:
        results = read_records(path, max_tokens=100, overlap=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [type(r).__name__ for r in results] == [
        "ParsedDocument", "IngestError", "ParsedDocument",
    ]  # fmt: skip
    assert "line 2: longer than 1 MiB" in str(results[1])
    assert peak < 8 << 20, peak  # a line is at most 1 MiB here; the file is 40 MiB


def test_control_characters_are_stripped_from_every_text_field(tmp_path: Path) -> None:
    esc = "\x1b[2J\x1b[31m"
    record = {
        "key": f"k{esc}1\x00", "title": f"Prompt {esc}injection\x07 attacks", "abstract":
        "Line one\r\nline\x00 two\x85", "authors": ["Yi\x1b Liu", "\x00"], "doi": "10.1/x\x1b",
        "arxiv_id": "2306.05499\x00", "url": "https://x.org/\x1b", "text": f"Body{esc} text.",
        "lang": "en\x00",
    }  # fmt: skip
    doc = only_doc(read_records(write_jsonl(tmp_path / "f.jsonl", [record]), max_tokens=99,
                                overlap=5))  # fmt: skip
    m = doc.meta
    shown = [doc.key, m.title, m.abstract, *m.authors, m.doi, m.arxiv_id, m.url, m.lang]
    shown += [c.text for c in doc.chunks]
    for text in shown:
        assert text is not None
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text)
    assert (doc.key, m.title) == ("k[2J[31m1", "Prompt [2J[31minjection attacks")
    assert m.abstract == "Line one\nline two" and m.authors == ["Yi Liu"] and m.lang == "en"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lang": "klingon"}, "'lang' must be an ISO 639-1 language code"),
        ({"lang": "xx"}, "'lang' must be an ISO 639-1 language code"),
        ({"title": "T \ud800 x"}, "'title' is not valid Unicode"),
        ({"authors": ["A \udfff"]}, "'authors' is not valid Unicode"),
    ],
)
def test_unknown_languages_and_lone_surrogates_are_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    line = json.dumps({**GOOD, **change})  # ASCII-escaped: "\ud800" reaches json.loads
    results = read_records(write_jsonl(tmp_path / "f.jsonl", [line, GOOD]), max_tokens=99,
                           overlap=5)  # fmt: skip
    assert isinstance(results[0], IngestError) and message in str(results[0])
    assert isinstance(results[1], ParsedDocument)
