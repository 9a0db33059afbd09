"""T9: Schemathesis over the OpenAPI document, against a real server on loopback.

One kamado server (uvicorn on a socket, ``auth=required``) serves the whole module; Schemathesis loads
``/api/v1/openapi.json`` from it and sends every operation positive and negative data (its coverage phase,
then Hypothesis-generated cases) with the local admin's token, then runs the stateful phase over the links
the document declares (create -> describe / delete -> describe). Checks:

- ``not_a_server_error``: no 5xx, whatever the input;
- ``response_schema_conformance``: bodies match the documented schemas; error bodies are checked against
  the ``Problem`` schema (``default`` response). Most success responses are declared as free-form objects,
  so for those this only checks "a JSON object" (see docs/security.md, T9);
- ``negative_data_rejection``: data that violates the schema gets a 4xx;
- ``ignored_auth``: each operation, called without the token and with a made-up one, is refused (401);
- ``use_after_free`` / ``ensure_resource_availability`` (stateful phase): a deleted resource is gone, a
  created one is there.

Bounded for ``make test`` (about ``EXAMPLES`` cases per operation and phase); ``KAMADO_SOAK=1`` runs at least
100 per operation. Nothing is excluded: operations that would start work (training, processing, transform
jobs, endpoints, functions) only start it for a valid spec, which random data almost never is; whatever they
do start is stopped when the server is torn down, and the teardown fails the test if a process is left.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    ensure_resource_availability,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    use_after_free,
)

from kamado.api.app import create_app
from kamado.core.settings import Settings
from kamado.testing.hosting import stop_hosting_processes
from tests.live_server import start_server

SOAK = os.environ.get("KAMADO_SOAK") == "1"
EXAMPLES = 100 if SOAK else 12
STATEFUL_EXAMPLES = 100 if SOAK else 15
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    use_after_free,
    ensure_resource_availability,
]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not SOAK,  # the same cases on every `make test`; the soak run explores new ones
    database=None,
    print_blob=True,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3000 if SOAK else 290),
    # jsonata-python raises the interpreter's recursion limit the first time the server evaluates JSONata;
    # Hypothesis warns when that happens during a test (it is the server's doing, not the test's).
    pytest.mark.filterwarnings("ignore:The recursion limit will not be reset"),
]


def _processes_under(home: Path) -> list[str]:
    """Command lines of live processes that mention ``home`` (model servers, routers, job workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(home) in cmd and state != "Z" and int(proc.name) != os.getpid():
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


@pytest.fixture(scope="module")
def kamado(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("t9") / "home"
    server, thread, url, app = start_server(home, auth="required")
    # ignored_auth probes every operation with a missing and a made-up token; the per-address limiter would
    # turn those 401s into 429s after 20 (tests/security/test_units.py covers the limiter itself).
    app.state.security.limiter.max_failures = 10**9
    token = (home / "admin.token").read_text().strip()
    try:
        yield {"url": url, "token": token, "home": home}
    finally:
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)
        deadline = time.monotonic() + 15
        while _processes_under(home) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not thread.is_alive(), "the kamado server did not stop"
        assert _processes_under(home) == [], "processes left running after the server stopped"


def _config(token: str, examples: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            **({"headers": {"Authorization": f"Bearer {token}"}} if token else {}),
            # The token is sent by the test, always; a generated (or removed) Authorization header would be
            # overridden by it, and a case that "removed" it would be judged as if it had.
            "generation": {"mode": "all", "max-examples": examples, "with-security-parameters": False},
            "checks": {"enabled": False, **{check.__name__: {"enabled": True} for check in CHECKS}},
            "request-timeout": 30,
            # TRACE, PATCH, ... on every path are answered 405 by the router before kamado code runs; they
            # cost a third of the coverage cases and test Starlette, so only the soak run sends them.
            **({} if SOAK else {"phases": {"coverage": {"unexpected-methods": []}}}),
        }
    )


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app that starts nothing (Schemathesis needs it at collection time;
    ``test_the_document_declares_auth_errors_and_links`` checks the live server serves the same one)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings.from_env(
            home=home, database_url=f"sqlite:///{home / 'k.db'}", artifacts_url=str(home / "artifacts")
        )
        app = create_app(settings, run_reconcilers=False)
        try:
            return app.openapi()
        finally:
            app.state.platform.close()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config("", EXAMPLES))


@schema.parametrize()
@SETTINGS
def test_every_operation_survives_generated_input(case: schemathesis.Case, kamado: dict[str, Any]) -> None:
    case.call_and_validate(
        base_url=kamado["url"],
        headers={"Authorization": f"Bearer {kamado['token']}"},
        checks=CHECKS,
        timeout=30,
    )


def test_stateful_links_create_read_delete(kamado: dict[str, Any]) -> None:
    loaded = schemathesis.openapi.from_url(
        f"{kamado['url']}/api/v1/openapi.json",
        config=_config(kamado["token"], STATEFUL_EXAMPLES),
        headers={"Authorization": f"Bearer {kamado['token']}"},
    )
    loaded.as_state_machine().run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=not SOAK,
            database=None,
            stateful_step_count=8,
        )
    )


def test_the_document_declares_auth_errors_and_links(kamado: dict[str, Any]) -> None:
    """What makes the checks above mean something: without a security scheme ``ignored_auth`` checks
    nothing, without links the stateful checks have nothing to follow."""
    import httpx

    doc = httpx.get(
        f"{kamado['url']}/api/v1/openapi.json", headers={"Authorization": f"Bearer {kamado['token']}"}
    ).json()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    create = doc["paths"]["/api/v1/models"]["post"]["responses"]
    assert "422" not in create and create["400"]["content"]["application/problem+json"]
    assert create["201"]["links"]["describe_model_api_v1_models__name__get"]["parameters"] == {
        "name": "$request.body#/ModelName"
    }
    assert doc == DOCUMENT  # what the parametrized test was generated from
    operations = sum(1 for item in doc["paths"].values() for m in item if m in ("get", "post", "put", "delete"))
    assert operations >= 90


def test_ignored_auth_would_catch_a_route_that_does_not_check_tokens(kamado: dict[str, Any]) -> None:
    """The check is live, not vacuous: declare the public ``/healthz`` as needing a token and it fails."""
    doc = copy.deepcopy(DOCUMENT)
    del doc["paths"]["/healthz"]["get"]["security"]
    case = schemathesis.openapi.from_dict(doc, config=_config("", 1))["/healthz"]["GET"].Case()
    try:
        case.call_and_validate(
            base_url=kamado["url"], headers={"Authorization": f"Bearer {kamado['token']}"}, checks=[ignored_auth]
        )
    except FailureGroup as group:
        assert [type(e).__name__ for e in group.exceptions] == ["IgnoredAuth"]
        assert "GET /healthz" in str(group.exceptions[0])
    else:
        pytest.fail("ignored_auth did not notice a route that answers without a token")
