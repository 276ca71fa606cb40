"""The app as ``create_app`` builds it: health, the documented routes, and the guard on upload
bodies (``BodyLimit``) that answers before a byte of an upload is read."""

from __future__ import annotations

from tests.samples import API_RECORDS

KEY = "k" * 20


def test_health_and_docs(make_app_client):
    with make_app_client(records=API_RECORDS) as client:
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["papers"] == 2
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
        expected = {"/api/search", "/api/papers", "/api/papers/{paper_id}", "/healthz",
                    "/api/papers/{paper_id}/related"}  # fmt: skip
        assert expected <= set(paths)


def test_upload_without_key_is_refused_before_the_body_is_read(make_app_client):
    read = []

    def body():
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=a.pdf\r\n\r\n"
        for _ in range(3):
            read.append(1)
            yield b"%PDF-" + b"0" * (1 << 16)
        yield b"\r\n--b--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    with make_app_client(api_keys=KEY, workers=0, upload_max_mb=1) as c:
        for path in ("/api/papers", "/api/ingest-jobs"):
            read.clear()
            r = c.post(path, content=body(), headers=headers)
            assert r.status_code == 401 and "API key" in r.json()["error"]
            assert len(read) < 3  # refused on the headers, not after the upload
