"""Fuzz the HTTP API against its own OpenAPI schema (schemathesis): no 5xx, and every response
matches the documented status codes and shapes. A key is configured, so writes run too."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api import create_app

KEY = "f" * 24
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def fuzz_app(make_app_client, tmp_path, make_pdf):
    root = tmp_path / "imports"
    root.mkdir()
    make_pdf("seed.pdf", [["Seeded paper on model evaluations", "Dangerous capability tests."]])
    rows = [{"key": "a", "title": "Jailbreak attacks", "abstract": "Misuse.", "year": 2024},
            {"key": "b", "title": "越狱攻击与大模型安全", "abstract": "滥用风险。"}]  # fmt: skip
    client = make_app_client(
        records=rows,
        ingest=[tmp_path / "seed.pdf"],
        api_keys=KEY,
        workers=0,
        upload_max_mb=1,
        import_roots=str(root),
    )
    with client:  # check the app starts; schemathesis runs the lifespan per call
        pass
    return client.app


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation (building the app touches no disk)."""
    from kb.settings import Settings

    spec = create_app(Settings(second_encoder="none")).openapi()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


# schemathesis' own pytest integration (schema.parametrize with from_fixture) reads a private
# attribute pytest 9 no longer has (schemathesis 4.32.5, pytest 9.2.0); hypothesis drives each
# operation's strategy directly instead.
@pytest.mark.parametrize(("method", "path"), _operations())
def test_api_conforms_to_its_schema(fuzz_app, method, path):
    operation = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)[path][method]
    headers = {"Authorization": f"Bearer {KEY}"}

    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)  # valid, and invalid, inputs
    cases = st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes))

    @given(case=cases)
    @settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
