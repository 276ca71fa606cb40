"""The search route through FastAPI's test client (fake embedder: ranking logic, not the model)."""

from __future__ import annotations

import pytest

from tests.samples import API_RECORDS


@pytest.fixture
def client(make_app_client):
    with make_app_client(records=API_RECORDS) as c:
        yield c


def test_search_shape(client):
    body = client.get("/api/search", params={"q": "jailbreak attacks", "k": 2}).json()
    assert set(body) == {"query", "took_ms", "results"}
    hit = body["results"][0]
    assert set(hit) == {
        "score", "weak", "paper", "snippets", "via", "translations", "relation"
    }  # fmt: skip
    assert set(hit["paper"]) == {"id", "key", "title", "authors", "year", "lang", "doi",
                                 "arxiv_id", "source", "translations"}  # fmt: skip
    assert hit["paper"]["key"] == "a" and hit["paper"]["doi"] == "10.1234/jb"
    assert set(hit["snippets"][0]) == {"text", "page", "lang", "score", "highlights"}
    only_zh = client.get("/api/search", params={"q": "越狱", "lang": "zh"}).json()
    assert [r["paper"]["lang"] for r in only_zh["results"]] == ["zh"]


def test_min_score_leaves_out_weaker_results(client):
    every = client.get("/api/search", params={"q": "jailbreak attacks", "mode": "dense"}).json()
    scores = [r["score"] for r in every["results"]]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    cut = (scores[0] + scores[1]) / 2
    strong = client.get(
        "/api/search", params={"q": "jailbreak attacks", "mode": "dense", "min_score": cut}
    ).json()
    assert [r["score"] for r in strong["results"]] == scores[:1]


@pytest.mark.parametrize(
    "params",
    [{}, {"q": ""}, {"q": "x", "k": 0}, {"q": "x", "k": "many"}, {"q": "x", "lang": "fr"},
     {"q": "x" * 2001}, {"q": "   "}, {"q": "x", "min_score": "high"}],
)  # fmt: skip
def test_bad_search_parameters_are_4xx_json(client, params):
    r = client.get("/api/search", params=params)
    assert 400 <= r.status_code < 500
    assert r.json()["error"]


def test_related_and_like(client):
    pid = client.get("/api/papers", params={"lang": "en"}).json()["papers"][0]["id"]
    related = client.get(f"/api/papers/{pid}/related", params={"k": 1}).json()
    assert [r["paper"]["lang"] for r in related["results"]] == ["zh"]
    like = client.get("/api/search", params={"like": pid, "k": 1}).json()
    assert like["results"] == related["results"]
    assert client.get("/api/papers/999999/related").status_code == 404
    assert client.get("/api/search", params={"mode": "dense"}).status_code == 400
