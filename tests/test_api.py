"""The HTTP API through FastAPI's test client (fake embedder: ranking logic, not the model)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app


@pytest.fixture
def client(library, settings, tmp_path):
    feed = tmp_path / "feed.jsonl"
    records = [
        {"key": "a", "title": "Jailbreak attacks on aligned chatbots", "abstract": "Misuse.",
         "year": 2024, "doi": "10.1234/jb"},
        {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "滥用风险。", "year": 2023},
    ]  # fmt: skip
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    library.ingest([feed])
    with TestClient(create_app(settings, library=library)) as c:
        yield c


def test_health_and_docs(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["papers"] == 2
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    expected = {"/api/search", "/api/papers", "/api/papers/{paper_id}", "/healthz",
                "/api/papers/{paper_id}/related"}  # fmt: skip
    assert expected <= set(paths)


def test_search_shape(client):
    body = client.get("/api/search", params={"q": "jailbreak attacks", "k": 2}).json()
    assert set(body) == {"query", "took_ms", "results"}
    hit = body["results"][0]
    assert set(hit) == {"score", "paper", "snippets", "via", "translations", "relation"}
    assert set(hit["paper"]) == {"id", "key", "title", "authors", "year", "lang", "doi",
                                 "arxiv_id", "source", "translations"}  # fmt: skip
    assert hit["paper"]["key"] == "a" and hit["paper"]["doi"] == "10.1234/jb"
    assert set(hit["snippets"][0]) == {"text", "page", "lang", "score", "highlights"}
    only_zh = client.get("/api/search", params={"q": "越狱", "lang": "zh"}).json()
    assert [r["paper"]["lang"] for r in only_zh["results"]] == ["zh"]


@pytest.mark.parametrize(
    "params",
    [{}, {"q": ""}, {"q": "x", "k": 0}, {"q": "x", "k": "many"}, {"q": "x", "lang": "fr"},
     {"q": "x" * 2001}, {"q": "   "}],
)  # fmt: skip
def test_bad_search_parameters_are_4xx_json(client, params):
    r = client.get("/api/search", params=params)
    assert 400 <= r.status_code < 500
    assert r.json()["error"]


def test_papers_list_detail_and_404(client):
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


def test_related_and_like(client):
    pid = client.get("/api/papers", params={"lang": "en"}).json()["papers"][0]["id"]
    related = client.get(f"/api/papers/{pid}/related", params={"k": 1}).json()
    assert [r["paper"]["lang"] for r in related["results"]] == ["zh"]
    like = client.get("/api/search", params={"like": pid, "k": 1}).json()
    assert like["results"] == related["results"]
    assert client.get("/api/papers/999999/related").status_code == 404
    assert client.get("/api/search", params={"mode": "dense"}).status_code == 400


def test_every_route_is_in_the_readme(client):
    """Each documented operation has a row `METHOD /path` in README's HTTP API table."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {
        re.sub(r"\{[^}]*\}", "{}", m) for m in re.findall(r"^\| `([A-Z]+ /[^`?]*)", readme, re.M)
    }
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        for method in ops:
            route = f"{method.upper()} {re.sub(r'{[^}]*}', '{}', path)}"
            assert route in rows, f"{route} is missing from README's HTTP API table"


def test_api_docs_work_offline(client):
    """/docs and /redoc load their scripts and styles from the app, never from a CDN."""
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        refs = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert refs, page
        assert not [r for r in refs if r.startswith(("http:", "https:", "//"))], (page, refs)
        for ref in refs:
            if ref.startswith("/") and not ref.startswith("/openapi"):
                assert client.get(ref).status_code == 200, ref
