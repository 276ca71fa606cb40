"""Bibliography exports through the HTTP API: a collection, a search's papers, the library
(fake embedder)."""

from __future__ import annotations

import pytest
import rispy
from pybtex.database import parse_string

from tests.samples import COLLECTION_RECORDS

KEY = "k" * 20


@pytest.fixture
def client(make_app_client, library):
    with make_app_client(library, records=COLLECTION_RECORDS, api_keys=KEY) as c:
        yield c


@pytest.fixture
def lib(client):
    return client.library


def test_api_export_formats_and_downloads(client, lib):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "b", "读第3节")
    whole = client.get("/api/export")
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("application/x-bibtex")
    assert whole.headers["content-disposition"] == 'attachment; filename="kb-library.bib"'
    assert len(parse_string(whole.text, "bibtex").entries) == 3
    ris = client.get("/api/export", params={"format": "ris", "collection": c.id})
    assert ris.headers["content-type"].startswith("application/x-research-info-systems")
    assert ris.headers["content-disposition"].endswith('filename="kb-reading-group.ris"')
    assert [(r["title"], r["notes"]) for r in rispy.loads(ris.text)] == [
        ("越狱攻击与大模型安全", ["读第3节"])
    ]
    csl = client.get("/api/export", params={"format": "csl-json", "q": "jailbreak", "k": 1})
    assert csl.headers["content-type"].startswith("application/vnd.citationstyles.csl+json")
    assert csl.headers["content-disposition"].endswith('filename="kb-search.json"')
    assert len(csl.json()) == 1 and csl.json()[0]["title"]
    zh = lib.create_collection("对齐")
    named = client.get("/api/export", params={"collection": zh.id})
    assert named.headers["content-disposition"].endswith(f'filename="kb-collection-{zh.id}.bib"')
    assert named.text == ""  # empty collection, empty file
    for params in ({"format": "docx"}, {"collection": c.id, "q": "x"}, {"collection": 99},
                   {"q": " "}, {"q": "x", "k": 0}):  # fmt: skip
        r = client.get("/api/export", params=params)
        assert 400 <= r.status_code < 500 and r.json()["error"], params
