"""The Library (ingest, search, remove, reindex, crash recovery) with a fake embedder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index.vectors import CONFIG_FILE, INDEX_FILE
from kb.errors import IndexMismatch, InvalidInput, PaperNotFound
from kb.library.facade import Library
from kb.library.query import SearchQuery
from tests.fakes import HashEmbedder


def _write_records(path, records):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    return path


RECORDS = [
    {"key": "r1", "title": "Reward hacking in reinforcement learning agents",
     "abstract": "Agents exploit misspecified reward functions.", "authors": ["Ann Lee"],
     "year": 2023, "arxiv_id": "2301.00001"},
    {"key": "r2", "title": "大型语言模型的欺骗行为评估",
     "abstract": "我们研究模型在评估时隐藏真实目标的欺骗行为。", "authors": ["张伟", "李娜"],
     "year": 2024},
]  # fmt: skip


def _vectors_match_store(lib: Library) -> bool:
    """Every encoder's FAISS ids are exactly its stored vectors' chunk ids, and all chunks'."""
    chunks = sorted(int(i) for ids in lib.store.chunks.ids_by_lang().values() for i in ids)
    for side in lib.encoders():
        batches = lib.store.chunks.iter_vectors(side.identity.dim, slot=side.slot)
        stored = sorted(int(i) for ids, _, _ in batches for i in ids)
        if not sorted(side.vectors.ids().tolist()) == stored == chunks:
            return False
    return True


def test_records_ingest_skip_and_replace(library, tmp_path):
    feed = _write_records(tmp_path / "feed.jsonl", RECORDS)
    first = library.ingest([feed])
    assert len(first.ingested) == 2 and not first.failed
    again = library.ingest([feed])
    assert len(again.skipped) == 2 and not again.ingested
    changed = [dict(RECORDS[0], abstract="A new abstract about specification gaming."), RECORDS[1]]
    third = library.ingest([_write_records(feed, changed)])
    assert third.ingested == [f"{feed}#r1"] and len(third.skipped) == 1
    assert library.count() == 2
    assert "specification gaming" in library.paper("r1").abstract
    assert _vectors_match_store(library)


def test_search_groups_chunks_by_paper(library, tmp_path, make_pdf):
    (tmp_path / "in").mkdir()
    pdf = make_pdf(
        "in/a.pdf",
        [["Scalable oversight with debate"] + ["Debate helps humans supervise models."] * 40,
         ["Oversight of superhuman systems needs debate."] * 40],
        title="Scalable oversight with debate",
    )  # fmt: skip
    library.ingest([pdf.parent, _write_records(tmp_path / "feed.jsonl", RECORDS)])
    result = library.search(SearchQuery.build("debate oversight of superhuman models", k=5))
    ids = [h.paper.id for h in result.results]
    assert len(ids) == len(set(ids)) == 3
    top = result.results[0]
    assert top.paper.title == "Scalable oversight with debate"
    assert {s.page for s in top.snippets} <= {1, 2} and len(top.snippets) <= 3
    assert [s.score for s in top.snippets] == sorted((s.score for s in top.snippets), reverse=True)
    zh_only = library.search(SearchQuery.build("欺骗行为", k=5, lang="zh"))
    assert [h.paper.key for h in zh_only.results] == ["r2"]
    assert zh_only.to_dict()["results"][0]["snippets"][0]["page"] is None


def test_duplicate_pdf_is_skipped_and_bad_file_fails_alone(library, tmp_path, make_pdf):
    (tmp_path / "in").mkdir()
    good = make_pdf("in/good.pdf", [["Power-seeking AI"] + ["Agents may resist shutdown."] * 20])
    shutil.copy(good, tmp_path / "in" / "copy.pdf")
    (tmp_path / "in" / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
    (tmp_path / "in" / "notes.txt").write_text("ignored: unsupported suffix inside a folder")
    summary = library.ingest([tmp_path / "in"])
    assert len(summary.ingested) == 1 and len(summary.skipped) == 1
    assert [name for name, _ in summary.failed] == [str(tmp_path / "in" / "broken.pdf")]
    assert "broken.pdf" in summary.failed[0][1]
    assert library.count() == 1 and _vectors_match_store(library)


def test_missing_input_is_reported(library, tmp_path):
    summary = library.ingest([tmp_path / "nope.pdf"])
    assert len(summary.failed) == 1 and "nope.pdf" in summary.failed[0][1]


def test_remove(library, tmp_path):
    library.ingest([_write_records(tmp_path / "feed.jsonl", RECORDS)])
    removed = library.remove("r1")
    assert library.count() == 1 and _vectors_match_store(library)
    with pytest.raises(PaperNotFound):
        library.paper(removed.id)


def test_stale_index_is_rebuilt_from_sqlite(settings, tmp_path):
    lib = Library(settings, embedder=HashEmbedder())
    lib.ingest([_write_records(tmp_path / "feed.jsonl", RECORDS)])
    config_path = settings.index_dir / CONFIG_FILE
    config = json.loads(config_path.read_text())
    lib.close()
    # A crash after the SQLite commit, before the index was saved: the file is one step behind.
    config["generation"] -= 1
    config_path.write_text(json.dumps(config))
    (settings.index_dir / INDEX_FILE).write_bytes(b"torn")
    reopened = Library(settings, embedder=HashEmbedder())
    assert reopened.encoders()[0].vectors.size == reopened.store.papers.stats()["chunks"] > 0
    assert _vectors_match_store(reopened)


def test_other_model_is_refused_until_reindex(settings, tmp_path):
    lib = Library(settings, embedder=HashEmbedder(dim=64))
    lib.ingest([_write_records(tmp_path / "feed.jsonl", RECORDS)])
    lib.close()
    other = Library(settings, embedder=HashEmbedder(dim=32, name="other"))
    with pytest.raises(IndexMismatch, match="kb reindex"):
        other.search(SearchQuery.build("reward hacking"))
    assert other.reindex() == other.store.papers.stats()["chunks"]
    assert other.search(SearchQuery.build("reward hacking", k=1)).results[0].paper.key == "r1"
    assert json.loads((settings.index_dir / CONFIG_FILE).read_text())["dim"] == 32


def test_vectors_of_other_numerics_are_refused_until_reindex(settings, tmp_path):
    lib = Library(settings, embedder=HashEmbedder())
    lib.ingest([_write_records(tmp_path / "feed.jsonl", RECORDS)])
    lib.close()
    # The same weights in another fp32 runtime share the library; int8 weights do not.
    same = Library(settings, embedder=HashEmbedder())
    assert same.search(SearchQuery.build("reward hacking")).results
    same.close()
    int8 = HashEmbedder()
    int8.numerics = "onnx-int8"
    other = Library(settings, embedder=int8)
    with pytest.raises(IndexMismatch, match=r"int8 weights \(KB_EMBED_BACKEND=onnx-int8\)"):
        other.search(SearchQuery.build("reward hacking"))
    assert other.reindex() == other.store.papers.stats()["chunks"]
    assert other.search(SearchQuery.build("reward hacking", k=1)).results[0].paper.key == "r1"
    assert json.loads(other.store.get_state("model"))["numerics"] == "onnx-int8"


@pytest.mark.parametrize(("query", "lang"), [("", None), ("   ", None), ("x" * 3000, None),
                                              ("ok", "english")])  # fmt: skip
def test_bad_search_input(library, query, lang):
    with pytest.raises(InvalidInput):
        library.search(SearchQuery.build(query, lang=lang))


def test_every_real_pdf_ingests_or_fails_cleanly(library):
    from tests.conftest import PDFS

    summary = library.ingest([PDFS])
    assert len(summary.ingested) + len(summary.failed) == 22
    assert len(summary.ingested) >= 20, summary.failed
    for name, error in summary.failed:
        assert name.endswith(".pdf") and Path(name).name in error
    garak = next(p for p in library.papers(limit=100) if "garak" in p.source)
    assert garak.n_pages == 19 and garak.lang == "en" and garak.n_chunks > 10
    zh = library.papers(limit=100, lang="zh")
    assert any("caict" in p.source for p in zh)
    assert _vectors_match_store(library)


def test_real_model_on_real_pdfs(settings, real_embedder, tmp_path):
    from tests.conftest import PDFS

    lib = Library(settings, embedder=real_embedder)
    en = PDFS / "en_owasp_ai_security_periodic_table_2024.pdf"
    zh = PDFS / "zh_caict_2022_data_security_risk_analysis.pdf"
    summary = lib.ingest([en, zh])
    assert len(summary.ingested) == 2, summary.failed
    top_zh = lib.search(SearchQuery.build("数据安全风险", k=2)).results[0]
    assert top_zh.paper.source == str(zh) and top_zh.snippets[0].page is not None
    top_en = lib.search(
        SearchQuery.build("data security risks of data processing in China", k=2, lang="zh")
    )
    assert top_en.results[0].paper.source == str(zh)
    lib.close()


def test_same_weights_under_another_name_are_accepted(settings, tmp_path):
    lib = Library(settings, embedder=HashEmbedder(dim=64, name="hub/name"))
    lib.ingest([_write_records(tmp_path / "feed.jsonl", RECORDS)])
    lib.close()
    renamed = Library(settings, embedder=HashEmbedder(dim=64, name="/local/path/same-model"))
    assert renamed.search(SearchQuery.build("reward hacking", k=1)).results[0].paper.key == "r1"


def test_second_encoder_is_backfilled_kept_in_sync_and_reindexed(settings, tmp_path):
    feed = _write_records(tmp_path / "feed.jsonl", RECORDS)
    Library(settings, embedder=HashEmbedder()).ingest([feed])  # a store made without it
    second = HashEmbedder(dim=48, name="second")
    lib = Library(settings, embedder=HashEmbedder(), second=second)
    assert len(lib.encoders()) == 2 and _vectors_match_store(lib)  # backfilled on open
    extra = {**RECORDS[0], "key": "r3", "title": "Scalable oversight"}
    lib.ingest([_write_records(tmp_path / "more.jsonl", [extra])])
    assert _vectors_match_store(lib)
    lib.remove("r1")
    assert _vectors_match_store(lib)
    assert lib.reindex() == lib.store.papers.stats()["chunks"]
    assert _vectors_match_store(lib)
    assert (
        lib.search(SearchQuery.build("Scalable oversight", k=1, mode="dense")).results[0].paper.key
        == "r3"
    )


def test_keyword_rows_are_backfilled_for_an_older_store(settings):
    from kb.store import Store
    from kb.types import ChunkDraft, PaperMeta, ParsedDocument

    store = Store(settings.db_path)
    chunk = ChunkDraft(ord=0, text="Agents resist shutdown in sandboxes.", lang="en")
    meta = PaperMeta(title="Shutdown avoidance", lang="en")
    doc = ParsedDocument("k1", "old.jsonl#k1", "record", "h", meta, [chunk])
    store.papers.add(doc, HashEmbedder().encode([chunk.text], kind="passage"))  # no keyword rows
    store.close()
    lib = Library(settings, embedder=HashEmbedder())
    hits = lib.search(SearchQuery.build("shutdown", mode="keyword")).results
    assert [h.paper.key for h in hits] == ["k1"]
    assert lib.search(
        SearchQuery.build("avoidance", mode="keyword")
    ).results  # the title is indexed too
    lib.close()


def test_a_second_process_writing_the_store_is_seen_and_never_hidden(settings, tmp_path):
    """`kb serve` (lib a) and a `kb ingest` (lib b) on one store: a reloads b's papers, and
    a's later save is never taken as mirroring b's chunks (the next start indexes them)."""
    import json

    from kb.library.facade import Library
    from tests.fakes import HashEmbedder

    def feed(name: str, key: str, title: str):
        path = tmp_path / name
        path.write_text(json.dumps({"key": key, "title": title, "abstract": title + "."}))
        return path

    a = Library(settings, embedder=HashEmbedder())
    a.ingest([feed("1.jsonl", "one", "Reward hacking in coding agents")])
    assert a.search(SearchQuery.build("reward hacking", mode="dense")).results
    b = Library(settings, embedder=HashEmbedder())  # another process, same store
    b.ingest([feed("2.jsonl", "two", "Sandbagging on dangerous capability evaluations")])
    b.close()
    found = a.search(
        SearchQuery.build("sandbagging dangerous capability evaluations", mode="dense", k=1)
    )
    assert found.results[0].paper.key == "two"  # a reloaded its indexes
    c = Library(settings, embedder=HashEmbedder())  # opened while a is still open
    a.ingest([feed("3.jsonl", "three", "Deceptive alignment and trigger backdoors")])
    c.ingest([feed("4.jsonl", "four", "Compute thresholds in AI governance")])
    a.remove("three")  # a writes after c did: a's saved indexes must not claim c's paper
    a.close()
    c.close()
    fresh = Library(settings, embedder=HashEmbedder())
    stale = {f.check: f.count for f in fresh.doctor().findings}["index hash-test"]
    assert stale  # a's last save is marked as not mirroring the store...
    fresh.load()  # ...so the next start rebuilds it from SQLite
    assert fresh.doctor().healthy, fresh.doctor().to_dict()
    top = fresh.search(
        SearchQuery.build("compute thresholds governance", mode="dense", k=1)
    ).results[0]
    assert top.paper.key == "four"
    assert {p.key for p in fresh.papers()} == {"one", "two", "four"}
    fresh.close()
