"""Ingest as a lab uses it: re-runs, changed files, duplicates, edits, reports, translations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from kb.cli import cli
from kb.library.facade import Library
from kb.library.ingest import IngestEvent
from kb.library.query import SearchQuery
from tests.conftest import MakePdf
from tests.fakes import HashEmbedder

SAFETY = [
    "Reward hacking in reinforcement learning from human feedback",
    "Language models can learn to exploit flaws in their reward model, so that the",
    "measured reward rises while the behaviour the designers wanted does not.",
    "We study this failure on three benchmarks and propose a regularised objective.",
]
DECEPTION = [
    "Deceptive alignment and sleeper agents in large language models",
    "A model may behave well during training and evaluation and pursue another goal",
    "once deployed. We train backdoored models and test whether safety training removes it.",
]
CHINESE = [
    "大语言模型的价值对齐与安全评估",
    "本文研究大语言模型在价值对齐方面的风险，提出一套中文安全评估基准，",
    "并分析奖励模型被利用的情况以及红队测试的效果。",
]


def _events(lib: Library, paths: list[Path]) -> list[IngestEvent]:
    seen: list[IngestEvent] = []
    lib.ingest(paths, listener=seen.append)
    return [e for e in seen if e.status not in ("start", "parsed", "file")]


def test_rerun_on_unchanged_folder_embeds_nothing(settings, make_pdf: MakePdf) -> None:
    a = make_pdf("a.pdf", [SAFETY])
    make_pdf("b.pdf", [CHINESE])
    embedder = HashEmbedder()
    lib = Library(settings, embedder=embedder)
    first = _events(lib, [a.parent])
    assert sorted(e.status for e in first) == ["ingested", "ingested"]
    calls = embedder.calls
    again = _events(lib, [a.parent])
    assert [e.status for e in again] == ["skipped", "skipped"]
    assert embedder.calls == calls  # no embedding work at all
    assert lib.count() == 2
    lib.close()


def test_changed_file_replaces_its_old_version_keeping_id_tags_and_edits(
    library: Library, make_pdf: MakePdf
) -> None:
    path = make_pdf("paper.pdf", [SAFETY])
    (first,) = _events(library, [path])
    pid = first.paper_id
    assert pid is not None
    library.tag(pid, ["rlhf"])
    library.edit(pid, {"title": "Reward Hacking (corrected)", "authors": "张三; Jane Doe"})
    make_pdf("paper.pdf", [SAFETY + ["A new paragraph in the second version of the paper."]])
    (second,) = _events(library, [path])
    assert (second.status, second.paper_id) == ("updated", pid)
    paper = library.paper(pid)
    assert paper.title == "Reward Hacking (corrected)"
    assert paper.authors == ["张三", "Jane Doe"]
    assert paper.tags == ["rlhf"]
    assert sorted(paper.edited) == ["authors", "title"]
    assert library.count() == 1
    text = " ".join(
        c.text for c in library.store.chunks.by_ids(library.store.chunks.ids_of(pid)).values()
    )
    assert "second version" in text
    assert library.doctor().healthy


def test_same_content_at_another_path_is_one_paper_with_two_files(
    library: Library, make_pdf: MakePdf, tmp_path: Path
) -> None:
    path = make_pdf("paper.pdf", [SAFETY])
    copy = tmp_path / "copies" / "paper-copy.pdf"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    events = _events(library, [path, copy])
    assert [e.status for e in events] == ["ingested", "duplicate"]
    paper = library.paper(events[0].paper_id)
    assert paper.files == [str(path.resolve()), str(copy.resolve())]
    assert library.count() == 1


def test_arxiv_versions_are_one_work(library: Library, make_pdf: MakePdf) -> None:
    v1 = make_pdf("v1.pdf", [["arXiv:2401.01234v1 [cs.CL] 3 Jan 2024", *SAFETY]])
    # v2 was rewritten: the text alone would not match, the arXiv id does
    v2 = make_pdf("v2.pdf", [["arXiv:2401.01234v2 [cs.CL] 9 Mar 2024", *DECEPTION]])
    other = make_pdf("other.pdf", [CHINESE])
    events = {Path(e.name).name: e for e in _events(library, [v1, v2, other])}
    assert events["v1.pdf"].status == "ingested"
    assert events["v2.pdf"].status == "duplicate"
    assert events["v2.pdf"].paper_id == events["v1.pdf"].paper_id
    assert "identifier" in events["v2.pdf"].detail
    assert events["other.pdf"].status == "ingested"
    assert library.count() == 2
    assert len(library.paper(events["v1.pdf"].paper_id).files) == 2


def test_near_identical_text_is_a_duplicate(library: Library, make_pdf: MakePdf) -> None:
    a = make_pdf("a.pdf", [SAFETY + DECEPTION])
    b = make_pdf("b.pdf", [SAFETY[:2], SAFETY[2:] + DECEPTION], title="Re-saved copy")
    events = _events(library, [a, b])
    assert [e.status for e in events] == ["ingested", "duplicate"]
    assert "near-identical" in events[1].detail
    assert library.paper(events[0].paper_id).files[-1].endswith("b.pdf")


def test_edit_checks_input_and_new_title_is_searchable(library: Library, make_pdf: MakePdf) -> None:
    (event,) = _events(library, [make_pdf("p.pdf", [SAFETY])])
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))

    library.edit(event.paper_id, {"title": "Specification gaming zebra study"}, progress)
    chunks = library.paper(event.paper_id).n_chunks
    assert calls and calls[-1] == (chunks, chunks)  # one encoder here: every chunk, once
    library.edit(event.paper_id, {"year": 2021}, progress)
    assert calls[-1] == (chunks, chunks) and len(calls) == 1  # not a title: nothing embedded
    hits = library.search(SearchQuery.build("zebra", mode="keyword")).results
    assert [h.paper.id for h in hits] == [event.paper_id]
    # a scanned paper's language, unknown until OCR, can be given by hand
    assert library.edit(event.paper_id, {"lang": "zh-CN"}).lang == "zh"
    assert library.papers(lang="zh")[0].id == event.paper_id
    assert library.edit(event.paper_id, {"lang": ""}).lang == "und"  # cleared: unknown
    for bad in ({"year": 12}, {"title": "  "}, {}, {"lang": "xx-klingon"}):
        try:
            library.edit(event.paper_id, bad)
        except Exception as e:  # noqa: BLE001 - the type is checked below
            assert type(e).__name__ == "InvalidInput", bad
        else:
            raise AssertionError(f"edit {bad} was accepted")


def test_report_has_one_line_per_input(tmp_path: Path, make_pdf: MakePdf, e5_dir: Path) -> None:
    good = make_pdf("good.pdf", [SAFETY])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    report = tmp_path / "report.jsonl"
    env = {"KB_DATA_DIR": str(tmp_path / "data"), "KB_MODEL_DIR": str(e5_dir),
           "KB_SECOND_ENCODER": "none", "KB_WORKERS": "1"}  # fmt: skip
    result = CliRunner().invoke(
        cli, ["ingest", str(good), str(bad), "--report", str(report), "-q"], env=env
    )
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    by_name = {Path(line["name"]).name: line for line in lines}
    assert set(by_name) == {"good.pdf", "bad.pdf"}
    ok, failed = by_name["good.pdf"], by_name["bad.pdf"]
    assert ok["status"] == "ingested" and ok["paper_id"] == 1 and ok["pages"] == 1
    assert ok["lang"] == "en" and ok["chars"] > 100 and ok["extractor"] and ok["seconds"] >= 0
    assert failed["status"] == "failed" and "bad.pdf" in failed["error"]
    assert "\n" not in failed["error"] and failed["paper_id"] is None


def test_translations_share_identifiers_and_show_together(library: Library, tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    rows = [
        {"key": "en", "title": "Scalable oversight of language models", "lang": "en",
         "abstract": "We study debate and recursive reward modelling.", "doi": "10.1234/so.1"},
        {"key": "zh", "title": "大语言模型的可扩展监督", "lang": "zh",
         "abstract": "我们研究辩论与递归奖励建模。", "doi": "https://doi.org/10.1234/SO.1"},
        {"key": "other", "title": "Oversight of reward models in debate", "lang": "en",
         "abstract": "Debate between models for scalable oversight."},
    ]  # fmt: skip
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    library.ingest([feed])
    en, zh = library.paper("en"), library.paper("zh")
    assert en.translations == [zh.id] and zh.translations == [en.id]
    assert library.paper("other").translations == []
    hits = library.search(SearchQuery.build("scalable oversight debate", k=5)).results
    keys = [h.paper.key for h in hits]
    assert not ("en" in keys and "zh" in keys)  # never two competing hits
    shown = next(h for h in hits if h.paper.key in ("en", "zh"))
    assert [t.key for t in shown.translations] == [{"en": "zh", "zh": "en"}[shown.paper.key]]
    related = library.related(en.id, k=2).results
    assert related[0].paper.id == zh.id and related[0].relation == "translation"


def test_two_ingests_of_the_same_files_report_each_paper_once(settings, make_pdf: MakePdf) -> None:
    """A second process (here: a second Library on the same folder) stores a file while the
    first is embedding it: the first then reports it skipped, not ingested a second time."""
    pdf = make_pdf("a.pdf", [SAFETY])
    first, second = (Library(settings, embedder=HashEmbedder()) for _ in range(2))
    embed = first._ingest.embed_docs

    def embed_while_the_other_ingests(docs):  # type: ignore[no-untyped-def]
        assert [e.status for e in _events(second, [pdf])] == ["ingested"]
        return embed(docs)

    first._ingest.embed_docs = embed_while_the_other_ingests  # type: ignore[method-assign]
    events = _events(first, [pdf])
    assert [e.status for e in events] == ["skipped"] and "another ingest" in events[0].detail
    assert first.count() == second.count() == 1
    assert events[0].paper_id == second.all_papers()[0].id
    first.close()
    second.close()


def test_doctor_warns_of_pages_that_need_ocr(library: Library, make_pdf: MakePdf) -> None:
    (event,) = _events(library, [make_pdf("half.pdf", [SAFETY, [], [], DECEPTION])])
    report = library.doctor()
    (finding,) = [f for f in report.findings if f.check == "pages that need OCR"]
    # ingested without --ocr: the two blank pages stay unread
    assert library.pages_needing_ocr() == {event.paper_id: 2}
    assert finding.count == 2 and str(event.paper_id) in finding.detail
    assert "kb ocr" in finding.detail
    assert report.healthy  # a warning, not damage


def test_each_pdf_says_parsed_before_its_batch_is_embedded(
    library: Library, make_pdf: MakePdf
) -> None:
    """A big ingest shows life from the first file: "parsed" comes as each PDF is read,
    before the batch it is in is embedded and stored (its outcome)."""
    seen: list[IngestEvent] = []
    library.ingest([make_pdf("a.pdf", [SAFETY]), make_pdf("b.pdf", [CHINESE])],
                   listener=seen.append)  # fmt: skip
    statuses = [e.status for e in seen if e.status != "start"]
    assert statuses == ["parsed", "parsed", "ingested", "ingested"]
    assert all(e.pages == 1 for e in seen if e.status == "parsed")
