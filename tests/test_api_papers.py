"""Papers through the HTTP API: list filters, detail, PDF, upload, edit, delete (fake embedder)."""

from __future__ import annotations

import pytest

from kb.library.facade import Library
from tests.fakes import HashEmbedder
from tests.samples import API_RECORDS, write_feed

KEY = "k" * 20
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def keyed(settings):
    return settings.replace(api_keys=KEY, workers=0, upload_max_mb=1)


@pytest.fixture
def lib(keyed):
    library = Library(keyed, embedder=HashEmbedder())
    yield library
    library.close()


@pytest.fixture
def client(make_app_client, lib):
    with make_app_client(lib) as c:
        yield c


@pytest.fixture
def pdf_bytes(make_pdf):
    def build(name: str, title: str, body: str) -> bytes:
        lines = [title, "", *[f"{body} paragraph {i} about model evaluation." for i in range(30)]]
        return make_pdf(name, [lines], title=title, author="Ada Lovelace").read_bytes()

    return build


def _records(lib, tmp_path):
    rows = [
        {"key": "a", "title": "Jailbreak attacks on chatbots", "abstract": "Misuse.",
         "year": 2021, "authors": ["Alice Smith", "Bob Jones"]},
        {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "滥用风险。", "year": 2023,
         "authors": ["王伟"]},
        {"key": "c", "title": "Reward hacking in RL", "abstract": "Specification gaming.",
         "year": 2024, "authors": ["Carol White"]},
    ]  # fmt: skip
    lib.ingest([write_feed(tmp_path / "feed.jsonl", rows)])
    return {p.key: p.id for p in lib.papers(limit=10)}


def test_papers_list_detail_and_404(make_app_client):
    with make_app_client(records=API_RECORDS) as client:
        listing = client.get("/api/papers", params={"limit": 1}).json()
        assert listing["total"] == 2 and len(listing["papers"]) == 1
        assert client.get("/api/papers", params={"lang": "zh"}).json()["total"] == 1
        pid = listing["papers"][0]["id"]
        detail = client.get(f"/api/papers/{pid}").json()
        assert detail["id"] == pid and detail["n_chunks"] >= 1
        missing = client.get("/api/papers/999999")
        assert missing.status_code == 404 and "999999" in missing.json()["error"]
        assert client.get("/api/papers/abc").status_code == 422
        assert client.get("/api/papers", params={"limit": 0}).status_code == 422


def test_list_filters_sort_and_total(client, lib, tmp_path):
    ids = _records(lib, tmp_path)
    lib.tag(ids["c"], ["rl"])

    def keys(**params):
        body = client.get("/api/papers", params=params).json()
        return body["total"], [p["key"] for p in body["papers"]]

    assert keys() == (3, ["c", "b", "a"])  # newest first by default
    assert keys(sort="title")[1] == ["a", "c", "b"]
    assert keys(sort="year")[1] == ["c", "b", "a"]
    assert keys(year_from=2022, year_to=2023) == (1, ["b"])
    assert keys(tag="rl") == (1, ["c"])
    assert keys(author="smith") == (1, ["a"])
    assert keys(q="王") == (1, ["b"])
    assert keys(q="REWARD") == (1, ["c"])
    assert keys(lang="zh") == (1, ["b"])
    assert keys(limit=1, offset=1) == (3, ["b"])
    assert keys(q="nothing like it") == (0, [])
    assert client.get("/api/papers", params={"sort": "size"}).status_code == 422
    assert client.get("/api/papers/99999999999999999999").status_code == 422
    assert client.get("/api/papers/9223372036854775807").status_code == 404


def test_upload_then_duplicate_then_pdf(client, lib, pdf_bytes, keyed):
    data = pdf_bytes("u.pdf", "Evaluating dangerous capabilities", "Capability")
    files = {"file": ("my paper.pdf", data, "application/pdf")}
    r = client.post("/api/papers", files=files, headers=AUTH)
    assert r.status_code == 201, r.text
    paper = r.json()
    assert paper["title"] == "Evaluating dangerous capabilities" and paper["n_chunks"] >= 1
    kept = list(keyed.files_dir.glob("*.pdf"))
    assert len(kept) == 1 and kept[0].read_bytes() == data
    assert not list(keyed.files_dir.glob(".*"))  # no temp files left behind

    again = client.post("/api/papers", files=files, headers=AUTH)
    assert again.status_code == 200 and again.json()["id"] == paper["id"]
    assert client.get("/api/papers").json()["total"] == 1

    pdf = client.get(f"/api/papers/{paper['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content == data
    assert pdf.headers["content-type"] == "application/pdf"
    disposition = pdf.headers["content-disposition"]
    assert (
        disposition.startswith("inline;") and "Evaluating_dangerous_capabilities.pdf" in disposition
    )


def test_upload_refusals(client, keyed, pdf_bytes):
    def post(content: bytes, headers=AUTH, name="x.pdf"):
        return client.post("/api/papers", files={"file": (name, content)}, headers=headers)

    not_pdf = post(b"<html>hello</html>", name="page.pdf")
    assert not_pdf.status_code == 415 and "page.pdf" in not_pdf.json()["error"]
    assert post(b"").status_code == 400
    big = post(b"%PDF-1.4\n" + b"0" * (2 << 20))  # over the 1 MiB limit: refused on Content-Length
    assert big.status_code == 413 and "KB_UPLOAD_MAX_MB" in big.json()["error"]
    broken = post(b"%PDF-1.4\nthis is not really a pdf\n%%EOF\n", name="broken.pdf")
    assert broken.status_code == 422 and "broken.pdf" in broken.json()["error"]
    assert not list(keyed.files_dir.glob("*"))  # refused or failed uploads are not kept
    assert post(b"%PDF-1.4", headers={}).status_code == 401
    wrong = post(b"%PDF-1.4", headers={"Authorization": "Bearer " + "x" * 20})
    assert wrong.status_code == 401 and "x" * 20 not in wrong.text
    assert client.post("/api/papers", headers=AUTH).status_code == 422  # no file field


def test_upload_size_counted_while_streaming(make_app_client, keyed, lib):
    """A body without Content-Length (chunked) is counted as it arrives."""
    from kb.errors import TooLarge
    from kb.store.uploads import save_upload

    class Stream:
        def __init__(self):
            self.left = 3

        def read(self, n: int) -> bytes:
            self.left -= 1
            return (b"%PDF-" + b"0" * ((1 << 20) - 5)) if self.left >= 0 else b""

    with pytest.raises(TooLarge):
        save_upload(Stream(), keyed.files_dir, max_bytes=2 << 20, name="big.pdf")
    assert not list(keyed.files_dir.glob("*"))

    with make_app_client(lib) as c:

        def body():
            yield b"--b\r\nContent-Disposition: form-data; name=file; filename=a.pdf\r\n\r\n"
            for _ in range(3):
                yield b"%PDF-" + b"0" * (1 << 20)
            yield b"\r\n--b--\r\n"

        headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
        r = c.post("/api/papers", content=body(), headers=headers)
        assert r.status_code == 413 and r.json()["status"] == 413


def test_pdf_missing_cases(client, lib, tmp_path, pdf_bytes):
    ids = _records(lib, tmp_path)
    record = client.get(f"/api/papers/{ids['a']}/pdf")
    assert record.status_code == 404 and "record" in record.json()["error"]
    pdf = tmp_path / "gone.pdf"
    pdf.write_bytes(pdf_bytes("g.pdf", "A paper whose file goes away", "Vanishing"))
    lib.ingest([pdf])
    pid = next(p.id for p in lib.papers(limit=10) if p.kind == "pdf")
    pdf.unlink()
    gone = client.get(f"/api/papers/{pid}/pdf")
    assert gone.status_code == 404 and "gone from disk" in gone.json()["error"]
    assert client.get("/api/papers/424242/pdf").status_code == 404


def test_edit_metadata_and_tags(client, lib, tmp_path):
    pid = _records(lib, tmp_path)["a"]
    body = {"title": "Jailbreaks, revisited", "authors": ["A. Smith"], "year": 2022,
            "doi": "10.1/x", "tags_add": ["safety", "llm"]}  # fmt: skip
    r = client.patch(f"/api/papers/{pid}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    paper = r.json()
    assert (paper["title"], paper["authors"], paper["year"], paper["doi"]) == (
        "Jailbreaks, revisited", ["A. Smith"], 2022, "10.1/x")  # fmt: skip
    assert paper["tags"] == ["llm", "safety"] and "title" in paper["edited"]
    r = client.patch(f"/api/papers/{pid}", json={"doi": None, "tags_remove": ["llm"]}, headers=AUTH)
    assert r.json()["doi"] is None and r.json()["tags"] == ["safety"]
    hits = client.get("/api/search", params={"q": "jailbreaks revisited", "mode": "keyword"})
    assert hits.json()["results"][0]["paper"]["id"] == pid  # the new title is searchable

    def patch(payload, headers=AUTH, target=pid):
        return client.patch(f"/api/papers/{target}", json=payload, headers=headers)

    assert patch({}).status_code == 400
    assert patch({"year": 99}).status_code == 422
    assert patch({"colour": "red"}).status_code == 422
    assert patch({"title": ""}).status_code == 422
    assert patch({"tags_add": ["   "]}).status_code == 422
    assert patch({"lang": "zh-CN"}).json()["lang"] == "zh"  # a scan's language, by hand
    assert patch({"lang": "klingon"}).status_code == 400
    assert patch({"title": "x"}, headers={}).status_code == 401
    assert patch({"title": "x"}, target=424242).status_code == 404
    assert client.get(f"/api/papers/{pid}").json()["title"] == "Jailbreaks, revisited"


def test_delete_removes_paper_and_its_upload(client, lib, keyed, pdf_bytes):
    data = pdf_bytes("d.pdf", "A paper to delete", "Deletion")
    pid = client.post("/api/papers", files={"file": ("d.pdf", data)}, headers=AUTH).json()["id"]
    assert len(list(keyed.files_dir.glob("*.pdf"))) == 1
    assert client.delete(f"/api/papers/{pid}").status_code == 401
    r = client.delete(f"/api/papers/{pid}", headers=AUTH)
    assert r.status_code == 204
    assert client.get(f"/api/papers/{pid}").status_code == 404
    assert not list(keyed.files_dir.glob("*.pdf"))
    assert client.delete(f"/api/papers/{pid}", headers=AUTH).status_code == 404


def test_delete_keeps_users_own_file(client, lib, tmp_path, pdf_bytes):
    own = tmp_path / "mine.pdf"
    own.write_bytes(pdf_bytes("m.pdf", "The user's own file", "Ownership"))
    lib.ingest([own])
    pid = lib.papers()[0].id
    assert client.delete(f"/api/papers/{pid}", headers=AUTH).status_code == 204
    assert own.exists()


def test_read_only_kb_refuses_writes(make_app_client, library):
    with make_app_client(library) as c:
        r = c.delete("/api/papers/1", headers=AUTH)
        assert r.status_code == 403 and "KB_API_KEYS" in r.json()["error"]
