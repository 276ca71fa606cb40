"""The collection and export commands of the CLI (``kb collection ...``, ``kb export``) on a
store of three records, with the fake embedder in place of the model."""

from __future__ import annotations

import json

import pytest
import rispy
from click.testing import CliRunner
from pybtex.database import parse_string

from kb.cli import cli
from tests.fakes import HashEmbedder
from tests.samples import COLLECTION_RECORDS, write_feed


@pytest.fixture
def lib(library, tmp_path):
    assert library.ingest([write_feed(tmp_path / "feed.jsonl", COLLECTION_RECORDS)]).ok
    return library


@pytest.fixture
def kb(lib, settings, monkeypatch):
    """Run `kb ...` on the fixture's store, with the fake embedder in place of the model."""
    monkeypatch.setattr("kb.library.core.load_embedder", lambda s: HashEmbedder())
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_MODEL_DIR": str(settings.model_dir),
           "KB_SECOND_ENCODER": "none"}  # fmt: skip

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


def test_cli_collection_commands(kb, lib):
    made = kb("collection", "create", "Reading group", "--description", "Fri", "--json")
    assert made.exit_code == 0, made.output
    cid = json.loads(made.output)["id"]
    assert kb("collection", "create", "reading group").exit_code == 1
    assert kb("collection", "add", "Reading group", "a", "--note", "Read §4").exit_code == 0
    assert kb("collection", "add", str(cid), "b").exit_code == 0
    assert kb("collection", "note", "Reading group", "b", "对齐税在第2节").exit_code == 0
    shown = json.loads(kb("collection", "show", "reading group", "--json").output)
    assert [(i["paper"]["key"], i["note"]) for i in shown["items"]] == [
        ("a", "Read §4"),
        ("b", "对齐税在第2节"),
    ]
    text = kb("collection", "show", str(cid)).output
    assert "Reading group" in text and "note: 对齐税在第2节" in text and "越狱攻击" in text
    assert "Reading group  (2 papers)" in kb("collection", "list").output
    assert kb("collection", "remove", str(cid), "a").exit_code == 0
    edited = kb("collection", "edit", str(cid), "--name", "RG", "--json")
    assert json.loads(edited.output)["name"] == "RG"
    nothing = kb("collection", "edit", "RG")
    assert nothing.exit_code == 1 and "Nothing to change" in nothing.output
    missing = kb("collection", "show", "nope")
    assert missing.exit_code == 1 and "No collection named 'nope'" in missing.output
    assert "Traceback" not in missing.output
    assert "deleted collection" in kb("collection", "delete", "RG").output
    assert json.loads(kb("collection", "list", "--json").output) == []
    assert lib.count() == 3


def test_cli_export(kb, lib, tmp_path):
    c = lib.create_collection("Reading group")
    lib.add_to_collection(c.id, "b", "读第3节")
    whole = kb("export")
    assert whole.exit_code == 0 and len(parse_string(whole.stdout, "bibtex").entries) == 3
    out = tmp_path / "sub" / "rg.ris"
    done = kb("export", "--collection", "Reading group", "--format", "ris", "-o", str(out))
    assert done.exit_code == 0 and "exported 1 papers" in done.output
    assert out.read_bytes().decode("utf-8").count("\r\n") > 3
    assert rispy.loads(out.read_text(encoding="utf-8"))[0]["notes"] == ["读第3节"]
    assert [p.name for p in out.parent.iterdir()] == ["rg.ris"]  # no temp file left
    found = kb("export", "--query", "越狱攻击", "-k", "1", "--format", "csl-json")
    assert found.exit_code == 0, found.output
    assert [i["title"] for i in json.loads(found.stdout)] == ["越狱攻击与大模型安全"]
    assert kb("export", "--collection", "x", "--query", "y").exit_code == 2
    assert kb("export", "-k", "3").exit_code == 2
    assert kb("export", "--format", "docx").exit_code == 2
    assert kb("export", "--collection", "nope").exit_code == 1
