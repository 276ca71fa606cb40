"""The web page's two languages: the message catalogues, and how the page picks one (cookie,
Accept-Language, the toggle)."""

from __future__ import annotations

import re
from pathlib import Path

from api.web.i18n import EN, ZH, pick_lang
from tests.samples import WEB_RECORDS

API = Path(__file__).resolve().parents[1] / "api"


def test_ui_language_from_cookie_or_accept_language(make_app_client, library):
    with make_app_client(library, records=WEB_RECORDS) as client:
        zh = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
        assert '<html lang="zh-CN">' in zh.text and ZH["search.button"] in zh.text
        assert ZH["nav.switch"] in zh.text
        en = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
        assert '<html lang="en">' in en.text
        toggled = client.get("/ui-lang/zh", params={"next": "/?q=x"}, follow_redirects=False)
        assert toggled.status_code == 303 and toggled.headers["location"] == "/?q=x"
        assert "kb_lang=zh" in toggled.headers["set-cookie"]
        client.cookies.set("kb_lang", "zh")
        assert '<html lang="zh-CN">' in client.get("/upload").text
        assert ZH["upload.title"] in client.get("/upload", headers={"Accept-Language": "en"}).text
        evil = client.get("/ui-lang/en", params={"next": "//evil.example"}, follow_redirects=False)
        assert evil.headers["location"] == "/"
        assert client.get("/ui-lang/fr").status_code == 400


def test_pick_lang():
    assert pick_lang(None, None) == "en"
    assert pick_lang(None, "zh-TW") == "zh"
    assert pick_lang(None, "fr, en;q=0.5, zh;q=0.7") == "zh"
    assert pick_lang("en", "zh") == "en" and pick_lang("xx", "zh") == "zh"
    assert pick_lang(None, "zh;q=abc, en;q=0.1") == "en"


def test_catalogues_cover_every_string():
    """Both languages have every message; every key the pages and kb.js use exists."""
    from api.web.i18n import JS_KEYS

    assert set(EN) == set(ZH)
    used = set()
    for path in (API / "templates").glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_.]+)'", path.read_text(encoding="utf-8")))
    prefixes = {k for k in used if k.endswith((".", "_"))}  # completed in the template
    assert used and used - prefixes <= set(EN), used - prefixes - set(EN)
    assert all(any(k.startswith(p) for k in EN) for p in prefixes)
    js = (API / "static" / "kb.js").read_text(encoding="utf-8")
    for key in re.findall(r'msg\("([a-z0-9_.]+)"', js):
        if key.endswith("_"):  # a prefix completed at run time (upload.status_ + status)
            assert any(k.startswith(key) for k in JS_KEYS), key
        else:
            assert key in JS_KEYS, key
