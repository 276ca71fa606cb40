"""Library exchange (kb export-bundle / kb import-bundle) between two libraries on disk."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kb.bundle.export import export_bundle, import_bundle, select_papers
from kb.bundle.records import BundleChunk, BundleEdits, BundleMeta, BundlePage
from kb.cli import cli
from kb.errors import IndexMismatch, InvalidInput, StoreError
from kb.library.facade import Library
from kb.library.query import SearchQuery
from kb.settings import Settings
from kb.store import sha256_file
from kb.store.works import EDITABLE
from kb.types import ChunkDraft, PageReport, PaperMeta
from tests.fakes import HashEmbedder

RECORDS = [
    {"key": "r1", "title": "Reward hacking in reinforcement learning agents",
     "abstract": "Agents exploit misspecified reward functions in many environments.",
     "authors": ["Ann Lee"], "year": 2023, "arxiv_id": "2301.00001"},
    {"key": "r2", "title": "大型语言模型的欺骗行为评估",
     "abstract": "我们研究模型在评估时隐藏真实目标的欺骗行为。", "authors": ["张伟", "李娜"],
     "year": 2024},
]  # fmt: skip
PDF_LINES = [
    ["Scalable oversight with debate"] + ["Debate helps humans supervise strong models."] * 30,
    ["Oversight of superhuman systems needs debate and careful judges."] * 30,
]


class CountingEmbedder(HashEmbedder):
    """Counts passage texts embedded (the reference means use a fixed, known number)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.passages = 0

    def encode(self, texts: list[str], *, kind: str, progress: bool = False) -> np.ndarray:
        if kind == "passage":
            self.passages += len(texts)
        return super().encode(texts, kind=kind)


def _lib(root: Path, embedder: HashEmbedder | None = None, second=None) -> Library:
    settings = Settings(
        data_dir=root / "kb-data", model_dir=root / "models", second_encoder="none", workers=0
    )
    return Library(settings, embedder=embedder or CountingEmbedder(), second=second)


def _feed(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    return path


@pytest.fixture
def lib_a(tmp_path, make_pdf):
    lib = _lib(tmp_path / "a")
    (tmp_path / "in").mkdir()
    pdf = make_pdf("in/debate.pdf", PDF_LINES, title="Scalable oversight with debate")
    summary = lib.ingest([pdf, _feed(tmp_path / "feed.jsonl", RECORDS)])
    assert len(summary.ingested) == 3, summary
    lib.tag("r1", ["reading-group", "rl"])
    lib.edit("r2", {"doi": "10.1000/Deception.2024"})
    yield lib
    lib.close()


@pytest.fixture
def lib_b(tmp_path):
    lib = _lib(tmp_path / "b")
    yield lib
    lib.close()


def _vectors_by_text(lib: Library) -> dict[tuple[str, str], np.ndarray]:
    """(paper key, chunk text) -> stored main vector."""
    out = {}
    papers = {p.id: p for p in lib.store.papers.select(limit=1000)}
    for ids, vecs, _ in lib.store.chunks.iter_vectors(lib.encoders()[0].identity.dim):
        chunks = lib.store.chunks.by_ids(ids.tolist())
        for cid, vec in zip(ids.tolist(), vecs, strict=True):
            out[(papers[chunks[cid].paper_id].key, chunks[cid].text)] = vec.copy()
    return out


def _index_matches_store(lib: Library) -> bool:
    chunks = sorted(int(i) for ids in lib.store.chunks.ids_by_lang().values() for i in ids)
    for side in lib.encoders():
        stored = sorted(
            int(i) for ids, _, _ in lib.store.chunks.iter_vectors(side.identity.dim, slot=side.slot)
            for i in ids
        )  # fmt: skip
        if not sorted(side.vectors.ids().tolist()) == stored == chunks:
            return False
    return True


def test_round_trip_keeps_vectors_metadata_and_embeds_nothing(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "out" / "lab.kbundle"
    done: list[tuple[int, int]] = []
    exported = export_bundle(lib_a, bundle, progress=lambda d, t: done.append((d, t)))
    assert (exported.papers, exported.pdfs) == (3, 0) and done[-1] == (3, 3)
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert sorted(zf.namelist()) == [
            "collections.json", "manifest.json", "papers.jsonl", "vectors/0.npy"
        ]  # fmt: skip
        assert json.loads(zf.read("collections.json")) == []
    assert manifest["format"] == "kb-bundle" and manifest["version"] == 2
    assert manifest["encoders"] == [
        {"slot": None, "model": "hash-test", "dim": 64, "fingerprint": "hash64"}
    ]
    assert manifest["counts"] == {
        "papers": 3, "chunks": exported.chunks, "pdfs": 0, "collections": 0
    }  # fmt: skip

    lib_b.load()  # the reference means are embedded once, on first use
    before = lib_b.embedder().passages
    held: list[bool] = []
    summary = import_bundle(
        lib_b, bundle, progress=lambda d, t: held.append(lib_b.core.ingest_lock.locked())
    )
    assert summary.line() == "imported 3, merged 0, skipped 0, failed 0"
    assert lib_b.embedder().passages == before  # the bundle's vectors, not re-embedded
    assert held and all(held)
    assert _vectors_by_text(lib_b).keys() == _vectors_by_text(lib_a).keys()
    for k, vec in _vectors_by_text(lib_a).items():
        assert np.array_equal(_vectors_by_text(lib_b)[k], vec)
    assert _index_matches_store(lib_b)

    r1, r2 = lib_b.paper("r1"), lib_b.paper("r2")
    assert r1.tags == ["reading-group", "rl"] and r1.authors == ["Ann Lee"]
    assert r2.doi == lib_a.paper("r2").doi == "10.1000/Deception.2024" and r2.edited == ["doi"]
    pdf_a = next(p for p in lib_a.papers() if p.kind == "pdf")
    pdf_b = lib_b.paper(pdf_a.key)
    assert lib_b.pages(pdf_b.id) == lib_a.pages(pdf_a.id) and len(lib_b.pages(pdf_b.id)) == 2
    assert pdf_b.files == []  # no PDFs in this bundle
    hit = lib_b.search(SearchQuery.build("debate for overseeing superhuman models", k=1)).results[0]
    assert hit.paper.key == pdf_a.key and hit.snippets[0].page in (1, 2)
    assert lib_b.search(SearchQuery.build("欺骗行为", k=1, lang="zh")).results[0].paper.key == "r2"


def test_reimport_changes_nothing(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    import_bundle(lib_b, bundle)
    generation, papers = lib_b.store.generation(), lib_b.papers()
    again = import_bundle(lib_b, bundle)
    assert again.line() == "imported 0, merged 0, skipped 3, failed 0"
    assert all("already here" in d for _, _, d in again.skipped)
    assert lib_b.store.generation() == generation and lib_b.papers() == papers


def test_same_work_is_merged_not_duplicated(lib_a, lib_b, tmp_path, make_pdf):
    # B has r1 under another key (same arXiv id, another version), A's PDF under another
    # file name, and a re-saved variant of nothing else.
    other = {**RECORDS[0], "key": "b-r1", "arxiv_id": "arXiv:2301.00001v2", "title": "RH"}
    lib_b.ingest([_feed(tmp_path / "b.jsonl", [other])])
    shutil.copy(tmp_path / "in" / "debate.pdf", tmp_path / "copy-in-b.pdf")
    lib_b.ingest([tmp_path / "copy-in-b.pdf"])
    variant = make_pdf("variant.pdf", [PDF_LINES[0], PDF_LINES[1] + ["A closing remark."]])
    lib_a.ingest([variant])  # A: a near-identical second file... recorded on the same paper
    assert lib_a.count() == 3

    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle, with_pdfs=True)
    summary = import_bundle(lib_b, bundle)
    assert lib_b.count() == 3  # b-r1, the PDF, and r2 (new)
    assert [k for k, _, _ in summary.imported] == ["r2"]
    merged = {k: d for k, _, d in summary.merged}
    assert "same DOI / arXiv id as" in merged["r1"] and "reading-group" in merged["r1"]
    assert lib_b.paper("b-r1").tags == ["reading-group", "rl"]
    pdf_key = next(p.key for p in lib_a.papers() if p.kind == "pdf")
    # B already had the PDF itself; it gains the variant file only
    assert "already here as" in merged[pdf_key] and "1 PDF" in merged[pdf_key]
    files = lib_b.paper(pdf_key).files
    assert len(files) == 2 and Path(files[1]).parent == lib_b.settings.files_dir
    assert import_bundle(lib_b, bundle).line() == "imported 0, merged 0, skipped 3, failed 0"


def test_near_identical_text_is_merged(lib_b, tmp_path, make_pdf):
    lib_a = _lib(tmp_path / "a2")
    lib_a.ingest([make_pdf("one.pdf", PDF_LINES)])
    lib_b.ingest([make_pdf("two.pdf", [PDF_LINES[0], PDF_LINES[1] + ["A closing remark."]])])
    bundle = tmp_path / "a.kbundle"
    export_bundle(lib_a, bundle)
    summary = import_bundle(lib_b, bundle)
    assert lib_b.count() == 1 and len(summary.skipped) == 1
    assert "near-identical text" in summary.skipped[0][2]
    lib_a.close()


def test_pdfs_round_trip(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    exported = export_bundle(lib_a, bundle, with_pdfs=True)
    assert exported.pdfs == 1
    summary = import_bundle(lib_b, bundle)
    assert len(summary.imported) == 3
    pdf_a = next(p for p in lib_a.papers() if p.kind == "pdf")
    pdf_b = lib_b.paper(pdf_a.key)
    copied = lib_b.settings.files_dir / f"{pdf_a.content_hash}.pdf"
    assert pdf_b.files == [str(copied.resolve())] and pdf_b.source == str(copied.resolve())
    assert sha256_file(copied) == pdf_a.content_hash
    # the copy is a file of the paper: ingesting it is "unchanged"
    assert lib_b.ingest([copied]).skipped == [str(copied)]


def test_only_some_papers(lib_a, lib_b, tmp_path):
    lib_a.create_collection("Deception")
    lib_a.add_to_collection("Deception", "r2")
    r2 = lib_a.paper("r2").id
    assert select_papers(lib_a, [], "Deception") == [r2]
    assert select_papers(lib_a, ["r2", str(r2)], "Deception") == [r2]
    bundle = tmp_path / "one.kbundle"
    export_bundle(lib_a, bundle, paper_ids=[r2])
    assert import_bundle(lib_b, bundle).line() == "imported 1, merged 0, skipped 0, failed 0"
    assert [p.key for p in lib_b.papers()] == ["r2"]
    with pytest.raises(InvalidInput, match="No papers with ids"):
        export_bundle(lib_a, bundle, paper_ids=[999])


@pytest.mark.parametrize(
    "embedder", [HashEmbedder(dim=32, name="other"), HashEmbedder(dim=64, name="hash-v2")]
)
def test_other_model_is_refused(lib_a, tmp_path, embedder):
    if embedder.name == "hash-v2":
        embedder.fingerprint = "hash64-retrained"
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    lib_b = _lib(tmp_path / "b", embedder=embedder)
    with pytest.raises(IndexMismatch) as err:
        import_bundle(lib_b, bundle)
    message = str(err.value)
    assert "'hash-test'" in message and repr(embedder.name) in message and "kb reindex" in message
    assert lib_b.count() == 0
    lib_b.close()


def test_second_encoder_missing_in_bundle_is_embedded_here(lib_a, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    lib_b = _lib(tmp_path / "b", second=HashEmbedder(dim=48, name="second"))
    summary = import_bundle(lib_b, bundle)
    assert len(summary.imported) == 3
    assert any("no second vectors: they were embedded here" in n for n in summary.notes)
    assert _index_matches_store(lib_b) and len(lib_b.encoders()) == 2
    # and the other way: the bundle's extra encoder is ignored by a library without it
    bundle2 = tmp_path / "two.kbundle"
    export_bundle(lib_b, bundle2)
    with zipfile.ZipFile(bundle2) as zf:
        assert len(json.loads(zf.read("manifest.json"))["encoders"]) == 2
    lib_c = _lib(tmp_path / "c")
    summary = import_bundle(lib_c, bundle2)
    assert len(summary.imported) == 3 and any("ignored" in n for n in summary.notes)
    lib_b.close()
    lib_c.close()


def _rewrite(src: Path, dest: Path, change) -> Path:
    """Copy a bundle, passing each (name, bytes) through ``change`` (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            out = change(info.filename, zin.read(info))
            if out is not None:
                zout.writestr(info.filename, out)
    return dest


def test_damaged_bundles_are_refused_cleanly(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    data = bundle.read_bytes()
    truncated = tmp_path / "truncated.kbundle"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.kbundle"
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo("vectors/0.npy")
        at = info.header_offset + 30 + len(info.filename) + 200  # inside the stored data
    flipped.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    not_zip = tmp_path / "notes.kbundle"
    not_zip.write_text("hello")

    def bad_line(name: str, body: bytes) -> bytes:
        return body.replace(b'"key": "r1"', b'"key": 7') if name == "papers.jsonl" else body

    def version_99(name: str, body: bytes) -> bytes:
        if name != "manifest.json":
            return body
        return json.dumps({**json.loads(body), "version": 99}).encode()

    cases = {
        truncated: "truncated",
        flipped: "damaged",
        not_zip: "not a kb bundle",
        tmp_path / "missing.kbundle": "No bundle",
        _rewrite(bundle, tmp_path / "line.kbundle", bad_line): r"papers\.jsonl:\d",
        _rewrite(bundle, tmp_path / "v99.kbundle", version_99): "format version 99",
        _rewrite(
            bundle, tmp_path / "novec.kbundle", lambda n, b: None if n.endswith(".npy") else b
        ): "vectors/0.npy is missing",
    }
    for path, message in cases.items():
        with pytest.raises(InvalidInput, match=message):
            import_bundle(lib_b, path)
    assert lib_b.count() == 0
    assert not list(lib_b.settings.data_dir.glob(".bundle.*"))  # work folders cleaned up


def test_path_traversal_and_links_are_refused(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    evil = _rewrite(bundle, tmp_path / "evil.kbundle", lambda n, b: b)
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr("../../escaped.pdf", b"%PDF-1.4 owned")
    link = _rewrite(bundle, tmp_path / "link.kbundle", lambda n, b: b)
    with zipfile.ZipFile(link, "a") as zf:
        info = zipfile.ZipInfo(f"pdfs/{'a' * 64}.pdf")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    for path, name in ((evil, "../../escaped.pdf"), (link, "pdfs/aaaa")):
        with pytest.raises(InvalidInput, match="refusing") as err:
            import_bundle(lib_b, path)
        assert name in str(err.value)
    assert lib_b.count() == 0 and not (tmp_path / "escaped.pdf").exists()


def test_export_is_atomic(lib_a, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    bundle.write_bytes(b"previous bundle")
    lib_a.store.db.execute("UPDATE chunks SET vector = NULL WHERE ord = 0")  # a damaged store
    with pytest.raises(StoreError, match="no main vector"):
        export_bundle(lib_a, bundle)
    assert bundle.read_bytes() == b"previous bundle"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- collections


def _notes(lib: Library, ref: str) -> dict[str, str]:
    """Paper key -> note, in the collection's order."""
    return {i.paper.key: i.note for i in lib.collection(ref).items}


def _reading_group(lib: Library) -> str:
    """Give ``lib`` (lib_a) a collection of all three papers with notes; the PDF's key."""
    pdf_key = next(p.key for p in lib.papers() if p.kind == "pdf")
    lib.create_collection("Reading group", "周三读书会：对齐与监督")
    lib.add_to_collection("Reading group", "r1", "Read section 3 first")
    lib.add_to_collection("Reading group", "r2", "重点：第二节的欺骗评估方法")
    lib.add_to_collection("Reading group", pdf_key, "Compare with the debate paper")
    lib.create_collection("Deception", "")
    lib.add_to_collection("Deception", "r2", "")
    return pdf_key


def test_collections_round_trip_with_notes(lib_a, lib_b, tmp_path):
    pdf_key = _reading_group(lib_a)
    lib_a.create_collection("Empty for now")
    bundle = tmp_path / "lab.kbundle"
    assert export_bundle(lib_a, bundle).collections == 3
    with zipfile.ZipFile(bundle) as zf:
        carried = {c["name"]: c for c in json.loads(zf.read("collections.json"))}
    group = carried["Reading group"]
    assert group["description"] == "周三读书会：对齐与监督" and group["created_at"]
    assert [(i["key"], i["note"]) for i in group["items"]] == [
        ("r1", "Read section 3 first"),
        ("r2", "重点：第二节的欺骗评估方法"),
        (pdf_key, "Compare with the debate paper"),
    ]
    assert all(i["added_at"] for i in group["items"])

    summary = import_bundle(lib_b, bundle)
    assert summary.collections_line() == "collections: created 3, merged 0, unchanged 0"
    assert summary.to_dict()["collections"]["counts"] == {
        "created": 3, "merged": 0, "unchanged": 0, "failed": 0
    }  # fmt: skip
    assert [c.name for c in lib_b.collections()] == ["Deception", "Empty for now", "Reading group"]
    assert _notes(lib_b, "reading group") == _notes(lib_a, "Reading group")
    assert lib_b.collection("Reading group").description == "周三读书会：对齐与监督"
    assert _notes(lib_b, "Deception") == {"r2": ""}
    assert lib_b.collection("Empty for now").items == []
    assert [m.name for m in lib_b.memberships("r2")] == ["Deception", "Reading group"]

    before = lib_b.collections()
    again = import_bundle(lib_b, bundle)  # re-importing changes nothing
    assert again.collections_line() == "collections: created 0, merged 0, unchanged 3"
    assert lib_b.collections() == before


def test_collection_merges_into_its_namesake_keeping_local_notes(lib_a, lib_b, tmp_path):
    pdf_key = _reading_group(lib_a)
    # B holds r1 under another key (same arXiv id) and A's PDF, in its own READING GROUP
    other = {**RECORDS[0], "key": "b-r1", "arxiv_id": "arXiv:2301.00001v2", "title": "RH"}
    lib_b.ingest([_feed(tmp_path / "b.jsonl", [other])])
    shutil.copy(tmp_path / "in" / "debate.pdf", tmp_path / "copy-in-b.pdf")
    lib_b.ingest([tmp_path / "copy-in-b.pdf"])
    lib_b.create_collection("READING GROUP", "")
    lib_b.add_to_collection("READING GROUP", "b-r1", "我们的笔记：先读附录")
    lib_b.add_to_collection("READING GROUP", pdf_key, "")

    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    summary = import_bundle(lib_b, bundle)
    assert summary.line() == "imported 1, merged 1, skipped 1, failed 0"
    assert summary.collections_line() == "collections: created 1, merged 1, unchanged 0"
    (name, cid, detail), = summary.collections_merged  # fmt: skip
    assert name == "READING GROUP" and "added 1 papers" in detail and "filled 1 notes" in detail
    assert [c.name for c in lib_b.collections()] == ["Deception", "READING GROUP"]
    assert _notes(lib_b, "reading group") == {
        "b-r1": "我们的笔记：先读附录",  # the local note stays
        pdf_key: "Compare with the debate paper",  # an empty local note is filled
        "r2": "重点：第二节的欺骗评估方法",  # a new paper, with its note
    }
    assert lib_b.collection(cid).description == "周三读书会：对齐与监督"  # was empty here

    before = lib_b.collections()
    again = import_bundle(lib_b, bundle)
    assert again.collections_line() == "collections: created 0, merged 0, unchanged 2"
    assert lib_b.collections() == before  # not even updated_at moved


def test_a_selection_carries_only_its_collections(lib_a, lib_b, tmp_path):
    pdf_key = _reading_group(lib_a)
    bundle = tmp_path / "one.kbundle"
    export_bundle(lib_a, bundle, paper_ids=[lib_a.paper("r1").id])
    assert import_bundle(lib_b, bundle).collections_line().startswith("collections: created 1,")
    assert [c.name for c in lib_b.collections()] == ["Reading group"]  # Deception lacks r1
    assert _notes(lib_b, "Reading group") == {"r1": "Read section 3 first"}

    only = tmp_path / "deception.kbundle"
    ids = select_papers(lib_a, [pdf_key], "Deception")
    assert export_bundle(lib_a, only, paper_ids=ids, collection="deception").collections == 1
    with zipfile.ZipFile(only) as zf:
        (carried,) = json.loads(zf.read("collections.json"))
    assert carried["name"] == "Deception" and [i["key"] for i in carried["items"]] == ["r2"]


def test_old_bundle_without_collections_still_imports(lib_a, lib_b, tmp_path):
    _reading_group(lib_a)
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)

    def as_version_1(name: str, body: bytes) -> bytes | None:
        if name == "collections.json":
            return None
        if name == "manifest.json":
            manifest = json.loads(body)
            del manifest["counts"]["collections"]
            return json.dumps({**manifest, "version": 1}).encode()
        return body

    old = _rewrite(bundle, tmp_path / "v1.kbundle", as_version_1)
    summary = import_bundle(lib_b, old)
    assert summary.line() == "imported 3, merged 0, skipped 0, failed 0" and summary.ok
    assert summary.collections_line() == "collections: created 0, merged 0, unchanged 0"
    assert lib_b.collections() == [] and lib_b.count() == 3
    # a version 2 bundle that lost its collections is damaged, not an old one
    lost = _rewrite(
        bundle, tmp_path / "lost.kbundle", lambda n, b: None if n == "collections.json" else b
    )
    with pytest.raises(InvalidInput, match="damaged: it has no collections.json"):
        import_bundle(lib_b, lost)


@pytest.mark.parametrize(
    ("collections", "message"),
    [
        (b"not json", "collections.json is not valid JSON"),
        (b'{"name": "x"}', "not a list of collections"),
        (b'["x"]', "collection 1 is not an object"),
        (b'[{"name": 7}]', "must be strings"),
        (b'[{"name": "ok", "items": "r1"}]', "items must be a list"),
        (b'[{"name": "ok", "colour": "red"}]', "not a valid collection"),
        (b'[{"name": "ok", "items": [{"key": "r1", "rank": 1}]}]', "not a valid collection"),
        (b'[{"name": "   "}]', "1 to 200 characters"),
        (b'[{"name": "2024"}]', "not only digits"),
        (b'[{"name": "ok", "items": [{"key": "nope"}]}]', "does not hold"),
        (b'[{"name": "ok", "items": [{"key": "r1"}, {"key": "r1"}]}]', "a paper twice"),
        (b'[{"name": "Ok"}, {"name": "oK"}]', "names a collection twice"),
        ('[{"name": "ok", "description": "%s"}]' % ("长" * 5001), "over 5000 characters"),
    ],
)
def test_bad_collections_are_refused_before_anything_is_written(
    lib_a, lib_b, tmp_path, collections, message
):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    body = collections if isinstance(collections, bytes) else collections.encode()
    bad = _rewrite(
        bundle, tmp_path / "bad.kbundle", lambda n, b: body if n == "collections.json" else b
    )
    with pytest.raises(InvalidInput, match=message):
        import_bundle(lib_b, bad)
    assert lib_b.count() == 0 and lib_b.collections() == []


def _change_paper(key: str, change):
    """A ``_rewrite`` change that passes the papers.jsonl record of ``key`` through ``change``."""

    def rewrite(name: str, body: bytes) -> bytes:
        if name != "papers.jsonl":
            return body
        papers = [json.loads(line) for line in body.decode().splitlines()]
        for paper in papers:
            if paper["key"] == key:
                change(paper)
        # ASCII JSON: lone surrogates and control characters travel as \u escapes
        return "".join(json.dumps(p) + "\n" for p in papers).encode()

    return rewrite


def test_bad_paper_records_are_refused_before_anything_is_written(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    cases = {  # r1 is the second line: the first paper would be half-imported
        "ord": (lambda p: p["chunks"][0].update(ord=2**63), r"chunks\[0\]\.ord must be a 64-bit"),
        "pages": (lambda p: p["meta"].update(n_pages=-(2**63) - 1), "n_pages must be a 64-bit"),
        "year": (lambda p: p["meta"].update(year=99), "year must be a year from 1000 to 9999"),
        "huge year": (lambda p: p["meta"].update(year=2**70), r"meta\.year must be a year"),
        "surrogate": (lambda p: p["meta"].update(title="Reward \ud800"), "lone surrogate"),
        "chunk": (lambda p: p["chunks"][0].update(text="\udc80"), r"chunks\[0\]\.text is not"),
        "lang": (lambda p: p["meta"].update(lang="english"), "lang must be a language code"),
        "chunk lang": (lambda p: p["chunks"][0].update(lang="EN"), "must be a language code"),
        "edit name": (lambda p: p["edits"].update(colour="red"), r"no field edits\.colour"),
        "edit type": (lambda p: p["edits"].update(year="2024"), r"edits\.year must be an integer"),
        "edit year": (lambda p: p["edits"].update(year=3001), "from 1000 to 3000"),
        "authors": (lambda p: p["edits"].update(authors="Ann Lee"), "authors must be a list"),
    }
    for name, (change, message) in cases.items():
        bad = _rewrite(bundle, tmp_path / f"{name}.kbundle", _change_paper("r1", change))
        with pytest.raises(InvalidInput, match=rf"papers\.jsonl:2\b.*{message}"):
            import_bundle(lib_b, bad)
    assert lib_b.count() == 0 and not list(lib_b.settings.files_dir.glob("*"))


def test_control_characters_are_stripped_from_every_text(lib_a, lib_b, tmp_path):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)

    def dirty(paper: dict) -> None:
        paper["meta"].update(title="Reward\x1b[2J hacking\x00", authors=["Ann\x07 Lee"])
        paper["chunks"][0]["text"] = "Agents\x9b exploit\tmisspecified\r\nreward\x7f."
        paper["tags"].append("\x1b]8;;x\x07safety")

    dirty_bundle = _rewrite(bundle, tmp_path / "dirty.kbundle", _change_paper("r1", dirty))
    summary = import_bundle(lib_b, dirty_bundle)
    assert summary.ok and summary.line() == "imported 3, merged 0, skipped 0, failed 0"
    paper = lib_b.paper("r1")
    assert (paper.title, paper.authors) == ("Reward[2J hacking", ["Ann Lee"])
    assert "]8;;xsafety" in paper.tags
    chunks = lib_b.store.chunks.by_ids(lib_b.store.chunks.ids_of(paper.id)).values()
    assert "Agents exploit\tmisspecified\nreward." in {c.text for c in chunks}


def test_a_stored_lang_that_is_no_code_travels_as_und(lib_a, lib_b, tmp_path):
    with lib_a.store.transaction() as db:  # as a JSONL record with "lang": "English" left it
        db.execute("UPDATE papers SET lang = 'english' WHERE key = 'r1'")
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)
    assert import_bundle(lib_b, bundle).ok and lib_b.paper("r1").lang == "und"


def test_bundle_records_declare_the_fields_kb_stores():
    def names(kind) -> list[str]:
        return [f.name for f in fields(kind)]

    assert names(BundleMeta) == names(PaperMeta) and names(BundlePage) == names(PageReport)
    assert names(BundleChunk) == names(ChunkDraft)
    assert set(BundleEdits.__annotations__) == set(EDITABLE)


# ---------------------------------------------------------------- the commands


def _invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_cli_errors_are_one_line(tmp_path):
    env = {"KB_DATA_DIR": str(tmp_path / "data"), "KB_SECOND_ENCODER": "none"}
    bad = tmp_path / "bad.kbundle"
    bad.write_bytes(b"PK\x03\x04 not really")
    for args, message in (
        (["import-bundle", str(tmp_path / "none.kbundle")], "No bundle at"),
        (["import-bundle", str(bad)], "not a kb bundle or is truncated"),
    ):
        result = _invoke(env, *args)
        assert result.exit_code == 1 and message in result.output
        assert "Traceback" not in result.output


def test_cli_collection_option_and_summary(lib_a, tmp_path, monkeypatch):
    """--collection carries only that collection; the import says what it did with it."""
    _reading_group(lib_a)
    lib_a.close()  # the commands open the stores themselves (with the fake embedder)
    monkeypatch.setattr(
        "kb.library.facade.Library",
        lambda settings: Library(settings, embedder=CountingEmbedder()),
    )
    env_a = {"KB_DATA_DIR": str(tmp_path / "a" / "kb-data"), "KB_SECOND_ENCODER": "none"}
    env_b = {"KB_DATA_DIR": str(tmp_path / "b" / "kb-data"), "KB_SECOND_ENCODER": "none"}
    bundle = tmp_path / "deception.kbundle"
    out = _invoke(env_a, "export-bundle", str(bundle), "--collection", "Deception", "-q")
    assert out.exit_code == 0 and "1 papers" in out.output and "1 collections" in out.output
    first = _invoke(env_b, "import-bundle", str(bundle), "-q")
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[-2:] == [
        "collections: created 1, merged 0, unchanged 0",
        "imported 1, merged 0, skipped 0, failed 0",
    ]
    again = json.loads(_invoke(env_b, "import-bundle", str(bundle), "--json").output)
    assert again["collections"]["counts"] == {
        "created": 0, "merged": 0, "unchanged": 1, "failed": 0
    }  # fmt: skip
    assert again["collections"]["unchanged"][0]["name"] == "Deception"
    shown = json.loads(_invoke(env_b, "collection", "list", "--json").output)
    assert [(c["name"], [i["paper"]["key"] for i in c["items"]]) for c in shown] == [
        ("Deception", ["r2"])
    ]


def test_cli_round_trip_with_the_real_model(tmp_path, e5_dir):
    base = {"KB_MODEL_DIR": str(e5_dir.parent), "KB_SECOND_ENCODER": "none", "KB_WORKERS": "0"}
    env_a = {**base, "KB_DATA_DIR": str(tmp_path / "a")}
    env_b = {**base, "KB_DATA_DIR": str(tmp_path / "b")}
    assert _invoke(env_a, "ingest", "-q", str(_feed(tmp_path / "f.jsonl", RECORDS))).exit_code == 0
    bundle = tmp_path / "lab.kbundle"
    out = _invoke(env_a, "export-bundle", str(bundle), "-q", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["papers"] == 2
    # The language means depend on the model only: share A's instead of embedding them again.
    means = Path(env_a["KB_DATA_DIR"]) / "index" / "language_means.npz"
    (tmp_path / "b" / "index").mkdir(parents=True)
    shutil.copy(means, tmp_path / "b" / "index" / means.name)
    first = _invoke(env_b, "import-bundle", str(bundle), "-q")
    assert first.exit_code == 0 and "imported 2, merged 0, skipped 0, failed 0" in first.output
    again = json.loads(_invoke(env_b, "import-bundle", str(bundle), "--json").output)
    assert again["counts"] == {"imported": 0, "merged": 0, "skipped": 2, "failed": 0}
    found = json.loads(_invoke(env_b, "search", "奖励黑客", "--json", "-k", "1").output)
    assert found["results"][0]["paper"]["key"] == "r1"  # a Chinese query finds A's English paper


# ---------------------------------------------------------------- hostile bundles (issue 13)


def _rezip(src: Path, dest: Path, change, deflate: frozenset[str] = frozenset()) -> Path:
    """As ``_rewrite``, and ``change`` may add members (a dict of name -> bytes); the members
    named in ``deflate`` are compressed."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        members = {info.filename: zin.read(info) for info in zin.infolist()}
        for name, body in change(members).items():
            kind = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            zout.writestr(name, body, kind)
    return dest


def _files_and_leftovers(lib: Library) -> list[str]:
    data = lib.settings.data_dir
    return sorted(
        str(p.relative_to(data)) for p in data.rglob("*")
        if p.parent == lib.settings.files_dir or ".bundle" in p.name or p.suffix == ".tmp"
    )  # fmt: skip


def test_pdfs_are_checked_against_their_hash_and_header_before_anything_is_written(
    lib_a, lib_b, tmp_path
):
    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle, with_pdfs=True)
    html = b"<html><script>alert(1)</script></html>"
    html_hash = hashlib.sha256(html).hexdigest()

    def swapped(members: dict[str, bytes]) -> dict[str, bytes]:
        name = next(n for n in members if n.startswith("pdfs/"))
        body = members[name]
        return {**members, name: body[:100] + bytes([body[100] ^ 1]) + body[101:]}

    def html_as_pdf(members: dict[str, bytes]) -> dict[str, bytes]:
        papers = [json.loads(line) for line in members["papers.jsonl"].splitlines()]
        papers[-1]["pdfs"].append(html_hash)  # the last paper: the others come first
        body = "".join(json.dumps(p) + "\n" for p in papers).encode()
        return {**members, "papers.jsonl": body, f"pdfs/{html_hash}.pdf": html}

    cases = {
        "swapped": (swapped, "does not match its SHA-256"),
        "html": (html_as_pdf, "is not a PDF"),
    }
    for name, (change, message) in cases.items():
        bad = _rezip(bundle, tmp_path / f"{name}.kbundle", change)
        with pytest.raises(InvalidInput, match=message):
            import_bundle(lib_b, bad)
        assert lib_b.count() == 0 and _files_and_leftovers(lib_b) == [], name


def test_a_failure_midway_rolls_back_the_whole_import(lib_a, lib_b, tmp_path, monkeypatch):
    import sqlite3

    from kb.errors import DiskFull, translate

    bundle = tmp_path / "lab.kbundle"
    lib_a.create_collection("Reading group")
    lib_a.add_to_collection("Reading group", "r1", "read first")
    export_bundle(lib_a, bundle, with_pdfs=True)
    stored = Library.store_doc
    calls = []

    def full_on_the_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise sqlite3.OperationalError("database or disk is full")
        return stored(self, *args, **kwargs)

    monkeypatch.setattr(Library, "store_doc", full_on_the_third)
    with pytest.raises(sqlite3.OperationalError) as err:  # the edges say it: a full disk
        import_bundle(lib_b, bundle)
    assert isinstance(translate(err.value), DiskFull)
    assert len(calls) == 3  # two papers were stored, then rolled back with the third
    assert lib_b.count() == 0 and lib_b.collections() == []
    assert _files_and_leftovers(lib_b) == []  # the PDF it wrote is gone; no temp files
    assert _index_matches_store(lib_b) and lib_b.doctor().healthy
    monkeypatch.setattr(Library, "store_doc", stored)
    again = import_bundle(lib_b, bundle)  # nothing half-done stands in the way
    assert again.line() == "imported 3, merged 0, skipped 0, failed 0"
    assert _index_matches_store(lib_b) and lib_b.collection("Reading group").items


def test_zip_bombs_and_packed_vectors_are_refused_in_bounded_memory(lib_a, lib_b, tmp_path):
    import tracemalloc

    bundle = tmp_path / "lab.kbundle"
    export_bundle(lib_a, bundle)

    def long_title(members: dict[str, bytes]) -> dict[str, bytes]:
        papers = [json.loads(line) for line in members["papers.jsonl"].splitlines()]
        papers[0]["meta"]["title"] = "a" * (96 << 20)  # 96 MiB that pack into ~100 KiB
        return {**members, "papers.jsonl": "".join(json.dumps(p) + "\n" for p in papers).encode()}

    bomb = _rezip(bundle, tmp_path / "bomb.kbundle", long_title, frozenset({"papers.jsonl"}))
    packed = _rezip(bundle, tmp_path / "packed.kbundle", dict, frozenset({"vectors/0.npy"}))
    assert bomb.stat().st_size < 2 << 20
    for path, message in ((bomb, "zip bomb"), (packed, "vectors/0.npy is compressed")):
        tracemalloc.start()
        try:
            with pytest.raises(InvalidInput, match=message):
                import_bundle(lib_b, path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 << 20, (path.name, peak)
    assert lib_b.count() == 0 and _files_and_leftovers(lib_b) == []


def test_import_memory_is_bounded_by_one_paper_not_the_bundle(tmp_path, monkeypatch):
    """Vectors are read from the archive one paper at a time, nothing is unpacked: importing
    a bundle of over 11 MiB (9 MiB of vectors) peaks (traced) under 4 MiB, most of it fixed
    (read buffers, the first paper's parsing)."""
    import tracemalloc

    source = _lib(tmp_path / "src", HashEmbedder(dim=2048))
    records = [{"key": f"p{i}", "title": f"Paper {i} on oversight", "abstract":
                " ".join(f"w{i}x{j}" for j in range(2000))} for i in range(60)]  # fmt: skip
    assert source.ingest([_feed(tmp_path / "feed.jsonl", records)]).ok
    bundle = tmp_path / "big.kbundle"
    export_bundle(source, bundle)
    source.close()
    with zipfile.ZipFile(bundle) as zf:
        assert zf.getinfo("vectors/0.npy").file_size > 9 << 20
        assert sum(i.file_size for i in zf.infolist()) > 11 << 20
    # linking translations afterwards reads one mean vector per paper of the library, as
    # after any ingest: not the import's own cost
    monkeypatch.setattr(Library, "link_translations", lambda self: 0)
    lib = _lib(tmp_path / "dst", HashEmbedder(dim=2048))
    lib.load()
    # the running score statistics of a language (dim x dim sums: 32 MiB at this test's
    # 2048 dimensions, 1.2 MiB at multilingual-e5-small's 384) are the library's, made once
    # when a language first comes in (langdetect reads these made-up words as three): a few
    # papers of the same kind first
    first = [dict(r, key=f"first{r['key']}") for r in records[:3]]
    assert lib.ingest([_feed(tmp_path / "first.jsonl", first)]).ok
    tracemalloc.start()
    try:
        assert len(import_bundle(lib, bundle).imported) == 60
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        lib.close()
    assert peak < 4 << 20, peak
