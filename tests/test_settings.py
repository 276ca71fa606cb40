from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import ConfigError
from kb.settings import Settings


def test_defaults_env_then_overrides():
    s = Settings.from_env({"KB_DATA_DIR": "/tmp/x", "KB_SEARCH_K": " 7 ", "KB_MODEL": "m"})
    assert s.data_dir == Path("/tmp/x") and s.search_k == 7 and s.model == "m"
    s2 = s.replace(search_k=3, model=None)
    assert s2.search_k == 3 and s2.model == "m"
    assert Settings.from_env({}).port == 8000


def test_bad_int_names_the_key():
    with pytest.raises(ConfigError, match="KB_BATCH_SIZE has value 'many'. Not a valid int."):
        Settings.from_env({"KB_BATCH_SIZE": "many"})


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"KB_SEARCH_K": "0"}, "KB_SEARCH_K must be at least 1"),
        ({"KB_CHUNK_OVERLAP": "500"}, "KB_CHUNK_OVERLAP"),
        ({"KB_PORT": "70000"}, "KB_PORT"),
        ({"KB_MODEL": "  "}, "KB_MODEL is empty"),
        ({"KB_DATA_DIR": ""}, "KB_DATA_DIR is empty"),
    ],
)
def test_invalid_values_are_refused(env, match):
    with pytest.raises(ConfigError, match=match):
        Settings.from_env(env)


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="Unknown setting"):
        Settings().replace(nope=1)


def test_kb_config_never_prints_api_keys():
    from click.testing import CliRunner

    from kb.cli import cli

    key = "secret-key-" + "z" * 16
    env = {"KB_API_KEYS": f"{key},other-key-{'y' * 12}", "KB_SECOND_ENCODER": "none"}
    out = CliRunner().invoke(cli, ["config"], env=env).output
    assert key not in out and "2 key(s) set, not shown" in out
    as_json = CliRunner().invoke(cli, ["config", "--json"], env=env).output
    assert key not in as_json


def test_api_settings_are_checked():
    with pytest.raises(ConfigError, match="KB_READ_ACCESS=key needs"):
        Settings(read_access="key").validated()
    with pytest.raises(ConfigError, match="at least 16"):
        Settings(api_keys="short").validated()
    s = Settings(api_keys="k" * 16 + ", " + "j" * 16, cors_origins="https://a.org, *")
    assert s.validated().keys == ("k" * 16, "j" * 16) and s.cors_list == ("https://a.org", "*")
