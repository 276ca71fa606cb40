"""The request guard (``api.guard``): the key before any body, a size cap on every route, a
depth cap on JSON, keyed docs, and the web page's cookie for any key kb accepts.

The memory tests run a real uvicorn server in this process and stream bodies at it; the bound
is the server's peak traced memory (``tracemalloc``), not a time.
"""

from __future__ import annotations

import json
import tracemalloc
from urllib.parse import quote

import pytest

from api.auth import KEY_COOKIE
from tests.live import serve, stream_request
from tests.samples import API_RECORDS

KEY = "k" * 20
B64_KEY = "q+Zr/8Ww2Lm1Xv7e+Tt0kA=="  # what `openssl rand -base64 16` gives: + / =
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json"}
BIG = 48 << 20  # a body far over every limit but an upload's
BOUND = 8 << 20  # what the server may hold at most while refusing it

JSON_WRITES = [
    ("PATCH", "/api/papers/1"),
    ("POST", "/api/collections"),
    ("PATCH", "/api/collections/1"),
    ("PUT", "/api/collections/1/papers/1"),
]


def _peak_while(action) -> tuple[object, int]:
    """(what ``action()`` returned, the peak of traced memory while it ran, in bytes)."""
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("length", [False, True], ids=["chunked", "content-length"])
def test_json_writes_without_a_key_are_refused_before_the_body_is_read(make_app_client, length):
    app = make_app_client(api_keys=KEY, records=API_RECORDS).app
    with serve(app) as port:
        for method, path in JSON_WRITES:

            def send(method=method, path=path):
                return stream_request(port, method, path, headers=JSON, total=BIG, length=length)

            answer, peak = _peak_while(send)
            assert answer.status == 401, (method, path, answer.body)
            assert json.loads(answer.body)["status"] == 401
            assert answer.sent < BIG // 4, (method, path)  # refused on the headers
            assert peak < BOUND, (method, path, peak)


def test_json_bodies_over_1_mib_are_413_in_bounded_memory(make_app_client):
    app = make_app_client(api_keys=KEY, records=API_RECORDS).app
    with serve(app) as port:
        for method, path in JSON_WRITES:

            def send(method=method, path=path):
                headers = {**JSON, **AUTH}
                return stream_request(port, method, path, headers=headers, total=BIG)

            answer, peak = _peak_while(send)
            assert answer.status == 413, (method, path, answer.body)
            assert "1 MiB" in json.loads(answer.body)["error"]
            assert answer.sent < BIG // 4 and peak < BOUND, (method, path, peak)
        declared = stream_request(port, "PATCH", "/api/papers/1", headers={**JSON, **AUTH},
                                  total=BIG, length=True)  # fmt: skip
        assert declared.status == 413 and declared.sent < BIG // 4


def test_bodies_on_read_routes_are_capped_and_keyed(make_app_client):
    app = make_app_client(api_keys=KEY, read_access="key", records=API_RECORDS).app
    with serve(app) as port:
        for path in ("/api/papers", "/api/search?q=x", "/", "/docs"):
            answer, peak = _peak_while(lambda p=path: stream_request(port, "GET", p, total=BIG))
            assert answer.status == 401 and answer.sent < BIG // 4 and peak < BOUND, path
            keyed = stream_request(port, "GET", path, headers=AUTH, total=BIG)
            assert keyed.status == 413 and keyed.sent < BIG // 4, path


def test_deep_json_is_refused_before_it_is_parsed(make_app_client):
    with make_app_client(api_keys=KEY, records=API_RECORDS) as client:
        for depth in (40, 100_000):
            body = "[" * depth + "]" * depth
            r = client.patch("/api/papers/1", content=body, headers={**JSON, **AUTH})
            assert r.status_code == 400 and "nests" in r.json()["error"], depth
        shallow = client.patch("/api/papers/1", json={"tags_add": ["x"]}, headers=AUTH)
        assert shallow.status_code == 200


def test_docs_and_schema_need_the_key_when_reads_do(make_app_client):
    with make_app_client(api_keys=KEY, read_access="key") as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            r = client.get(path)
            assert r.status_code == 401 and r.json()["status"] == 401, path
            assert client.get(path, headers=AUTH).status_code == 200, path
        assert client.get("/healthz").status_code == 200
    with make_app_client(api_keys=KEY) as client:  # open reads: the docs stay open
        assert client.get("/openapi.json").status_code == 200


def test_the_page_cookie_works_for_base64_keys(make_app_client):
    with make_app_client(api_keys=B64_KEY, read_access="key", records=API_RECORDS) as client:
        assert client.get("/api/papers").status_code == 401
        client.cookies.set(KEY_COOKIE, quote(B64_KEY, safe=""))  # as kb.js encodeURIComponent
        assert client.get("/api/papers").status_code == 200
        assert client.get("/").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.patch("/api/papers/1", json={"tags_add": ["x"]}).status_code == 401
