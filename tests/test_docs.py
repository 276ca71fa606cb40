"""The docs tell the truth: every setting, command and HTTP route is in README.md, and every
command has help with an example (as sqlite-utils' and datasette's tests/test_docs.py)."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from click.testing import CliRunner

from kb.cli import cli
from kb.settings import Settings, describe

README = Path(__file__).resolve().parents[1] / "README.md"


def run(env, *args):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_every_setting_has_help_and_is_documented():
    text = README.read_text(encoding="utf-8")
    for f in fields(Settings):
        assert f.metadata["help"]
    for env, _default, _help in describe():
        assert env in text, f"{env} is not documented in README.md"


def test_every_command_has_help_with_example():
    for name, command in cli.commands.items():
        assert "Example:" in (command.help or ""), name
        assert run({}, name, "--help").exit_code == 0


def test_collection_commands_have_help_with_example(settings):
    env = {"KB_DATA_DIR": str(settings.data_dir), "KB_MODEL_DIR": str(settings.model_dir),
           "KB_SECOND_ENCODER": "none"}  # fmt: skip
    for name, command in cli.commands["collection"].commands.items():  # type: ignore[attr-defined]
        assert "Example:" in (command.help or ""), name
        assert run(env, "collection", name, "--help").exit_code == 0


def test_commands_are_documented():
    readme = README.read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"kb {name}" in readme, name


def test_every_route_is_in_the_readme(make_app_client):
    """Each documented operation has a row `METHOD /path` in README's HTTP API table."""
    readme = README.read_text(encoding="utf-8")
    rows = {
        re.sub(r"\{[^}]*\}", "{}", m) for m in re.findall(r"^\| `([A-Z]+ /[^`?]*)", readme, re.M)
    }
    with make_app_client() as client:
        for path, ops in client.get("/openapi.json").json()["paths"].items():
            for method in ops:
                route = f"{method.upper()} {re.sub(r'{[^}]*}', '{}', path)}"
                assert route in rows, f"{route} is missing from README's HTTP API table"
