"""The `kb` command end to end with the real bundled model: exit codes, output, JSON shape."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from kb.store import sha256_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def kb_env(tmp_path_factory, e5_dir):
    data = tmp_path_factory.mktemp("cli") / "kb-data"
    return {"KB_DATA_DIR": str(data), "KB_MODEL_DIR": str(e5_dir.parent)}


def run(env, *args):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def ingested(kb_env):
    result = run(kb_env, "ingest", "-q", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    return kb_env


def test_ingest_examples_and_skip_on_second_run(ingested):
    assert "ingested 0, skipped 8, failed 0" in run(ingested, "ingest", "-q", str(EXAMPLES)).output
    stats = json.loads(run(ingested, "stats", "--json").output)
    assert stats["papers"] == 8 and stats["papers_by_lang"] == {"en": 4, "zh": 4}
    table = run(ingested, "stats").output.splitlines()  # a table, not Python reprs
    assert "papers by lang  en 4 · zh 4" in table and not any("{" in line for line in table)


def test_english_query_finds_chinese_paper(ingested):
    out = run(ingested, "search", "shutdown avoidance of power-seeking agents", "--json", "-k", "3")
    body = json.loads(out.output)
    top = body["results"][0]
    assert top["paper"]["lang"] == "zh" and "关机回避" in top["paper"]["title"]
    assert top["snippets"][0]["page"] in (1, 2) and top["paper"]["source"].endswith(".pdf")
    assert top["paper"]["key"] == sha256_file(Path(top["paper"]["source"]))


def test_chinese_query_finds_english_paper(ingested):
    body = json.loads(run(ingested, "search", "用辩论让非专家监督更强的模型", "--json").output)
    assert "Debate" in body["results"][0]["paper"]["title"]
    assert body["results"][0]["paper"]["lang"] == "en"


def test_text_output_and_lang_filter(ingested):
    result = run(ingested, "search", "reward hacking", "--lang", "zh", "-k", "2")
    out = result.stdout
    assert "[zh]" in out and "[en]" not in out and "p." in out
    # loading the models is said on stderr (the search's own time is on stdout)
    assert "loading models…" in result.stderr and "models loaded in" in result.stderr
    assert re.search(r"\(2 results in \d+ ms\)", out) and "loading" not in out


def test_show_list_remove(ingested, tmp_path):
    listing = json.loads(run(ingested, "list", "--json").output)
    assert len(listing) == 8
    first = listing[0]
    shown = json.loads(run(ingested, "show", str(first["id"]), "--json").output)
    assert shown["key"] == first["key"] and shown["n_pages"] == 2
    assert run(ingested, "show", "999999").exit_code == 1


def test_corrupt_file_among_good_ones_exits_1(kb_env, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(EXAMPLES / "en_scalable_oversight.pdf", folder / "good.pdf")
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 truncated")
    env = dict(kb_env, KB_DATA_DIR=str(tmp_path / "data"))
    result = run(env, "ingest", str(folder))
    assert result.exit_code == 1
    assert "bad.pdf" in result.output and "ingested 1, skipped 0, failed 1" in result.output
    assert json.loads(run(env, "stats", "--json").output)["papers"] == 1


def test_a_library_over_the_memory_budget_is_one_clear_line(ingested):
    result = run(dict(ingested, KB_MEMORY_MB="1", KB_URL="none"), "search", "reward hacking")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "over KB_MEMORY_MB=1" in result.output and "Raise KB_MEMORY_MB" in result.output


@pytest.mark.parametrize(
    "args",
    [["search"], ["search", "x", "-k", "0"], ["search", "x", "--lang", "fr"], ["nope"],
     ["ingest"], ["list", "--limit", "0"]],
)  # fmt: skip
def test_usage_errors_exit_2(kb_env, args):
    assert run(kb_env, *args).exit_code == 2


def test_bad_setting_is_a_usage_error(kb_env):
    result = run(dict(kb_env, KB_SEARCH_K="lots"), "stats")
    assert result.exit_code == 2 and "KB_SEARCH_K" in result.output


def test_edit_then_show(ingested):
    first = json.loads(run(ingested, "list", "--json").output)[0]
    result = run(
        ingested, "edit", str(first["id"]), "--authors", "张三; Jane Doe", "--year", "2023"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(run(ingested, "show", str(first["id"]), "--json").output)
    assert shown["authors"] == ["张三", "Jane Doe"] and shown["year"] == 2023
    assert shown["edited"] == ["authors", "year"]
    nothing = run(ingested, "edit", str(first["id"]))
    assert nothing.exit_code == 1 and "Nothing to change" in nothing.output
    assert run(ingested, "edit", "999999", "--year", "2020").exit_code == 1


def test_doctor_reports_healthy_then_repairs_a_lost_index(ingested, tmp_path):
    healthy = run(ingested, "doctor")
    assert healthy.exit_code == 0 and "healthy" in healthy.output, healthy.output
    index = Path(ingested["KB_DATA_DIR"]) / "index" / "vectors.faiss"
    index.unlink()
    broken = run(ingested, "doctor", "--json")
    assert broken.exit_code == 1 and not json.loads(broken.output)["healthy"]
    assert run(ingested, "doctor", "--repair").exit_code == 0
    assert index.exists() and run(ingested, "doctor").exit_code == 0


def test_ocr_without_tesseract_says_so_in_one_line_and_goes_on(kb_env, tmp_path):
    env = dict(kb_env, KB_DATA_DIR=str(tmp_path / "data"), PATH="/usr/bin:/bin")
    pdf = EXAMPLES / "en_scalable_oversight.pdf"
    result = run(env, "ingest", "--ocr", str(pdf))
    assert result.exit_code == 0, result.output
    if shutil.which("tesseract", path=env["PATH"]) is None:
        assert "--ocr: tesseract is not installed" in result.output
    assert "ingested 1" in result.output
