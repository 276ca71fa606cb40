"""The interactive API docs (/docs, /redoc) served by the app itself, offline."""

from __future__ import annotations

import re


def test_api_docs_work_offline(make_app_client):
    """/docs and /redoc load their scripts and styles from the app, never from a CDN."""
    with make_app_client() as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            refs = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
            assert refs, page
            assert not [r for r in refs if r.startswith(("http:", "https:", "//"))], (page, refs)
            for ref in refs:
                if ref.startswith("/") and not ref.startswith("/openapi"):
                    assert client.get(ref).status_code == 200, ref
