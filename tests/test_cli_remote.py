"""`kb search` through a running server: the models are loaded there, so the CLI does not."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from api.app import create_app
from kb.cli import cli
from kb.cli.remote import SERVER_FILE, announce, server_url
from kb.library.facade import Library
from kb.settings import Settings
from tests.conftest import said
from tests.fakes import HashEmbedder
from tests.live import serve
from tests.samples import write_feed

RECORDS = [
    {"key": "r1", "title": "Reward hacking in coding agents", "abstract": "Reward hacking.",
     "lang": "en", "year": 2024, "authors": ["Ann Lee"]},
    {"key": "r2", "title": "越狱攻击与防御", "abstract": "大模型越狱攻击。", "lang": "zh",
     "year": 2023, "authors": ["王芳"]},
]  # fmt: skip


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"KB_DATA_DIR": str(settings.data_dir), "KB_MODEL_DIR": str(settings.model_dir),
            "KB_SECOND_ENCODER": "none", **extra}  # fmt: skip


def test_search_related_and_export_ask_the_running_server(settings, tmp_path):
    lib = Library(settings, embedder=HashEmbedder())
    assert not lib.ingest([write_feed(tmp_path / "feed.jsonl", RECORDS)]).failed
    with serve(create_app(settings, library=lib)) as port, announce(settings, "0.0.0.0", port):
        assert server_url(settings) == f"http://127.0.0.1:{port}"
        runner = CliRunner()
        found = runner.invoke(cli, ["search", "reward hacking", "--json", "-k", "2"],
                              env=_env(settings))  # fmt: skip
        assert found.exit_code == 0, found.output
        body = json.loads(found.stdout)
        assert body["results"][0]["paper"]["key"] == "r1"
        text = runner.invoke(cli, ["search", "越狱", "-k", "1"], env=_env(settings))
        assert text.exit_code == 0, text.output
        # answered by the server: no model was loaded here
        assert "(1 results in" in text.stdout and "loading models" not in text.output
        first = str(body["results"][0]["paper"]["id"])
        related = runner.invoke(cli, ["related", first, "--json"], env=_env(settings))
        assert related.exit_code == 0, related.output
        assert first not in [str(h["paper"]["id"]) for h in json.loads(related.stdout)["results"]]
        ris = runner.invoke(cli, ["export", "--query", "reward hacking", "-k", "1", "--format",
                                  "ris"], env=_env(settings))  # fmt: skip
        assert ris.exit_code == 0, ris.output
        assert "Reward hacking in coding agents" in ris.stdout
        bad = runner.invoke(cli, ["search", "x", "--year-from", "2025", "--year-to", "2020"],
                            env=_env(settings))  # fmt: skip
        assert bad.exit_code == 1 and len(said(bad.output)) == 1  # refused before asking
    assert not (settings.data_dir / SERVER_FILE).exists()  # withdrawn when the server stops
    lib.close()


def test_no_server_no_asking(settings, tmp_path):
    assert server_url(settings) is None
    settings.data_dir.mkdir(parents=True)
    stale = {"url": "http://127.0.0.1:9", "pid": 2**22 + 12345}  # no such process
    (settings.data_dir / SERVER_FILE).write_text(json.dumps(stale), encoding="utf-8")
    assert server_url(settings) is None
    alive = {"url": "http://127.0.0.1:9", "pid": os.getpid()}
    (settings.data_dir / SERVER_FILE).write_text(json.dumps(alive), encoding="utf-8")
    assert server_url(settings) == "http://127.0.0.1:9"
    assert server_url(settings.replace(url="none")) is None
    assert server_url(settings.replace(url="http://10.0.0.2:8000/")) == "http://10.0.0.2:8000"
    # a server that does not answer: the CLI says so and searches here
    result = CliRunner().invoke(cli, ["search", "x"], env=_env(settings))
    assert "no answer from the kb server at http://127.0.0.1:9" in result.stderr
    assert result.exit_code == 0 and "loading models…" in result.stderr
    Path(settings.data_dir / SERVER_FILE).unlink()


def test_a_stopped_server_withdraws_its_address(settings):
    """SIGTERM (a service manager stopping `kb serve`) ends the block and removes the record."""
    import signal

    import pytest

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit), announce(settings, "127.0.0.1", 8000) as path:
        assert json.loads(path.read_text(encoding="utf-8"))["pid"] == os.getpid()
        os.kill(os.getpid(), signal.SIGTERM)
    assert not path.exists()
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
