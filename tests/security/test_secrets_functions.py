"""T12 for functions: a secret referenced from ``Environment.Variables`` reaches the handler, and its value
never comes back in a result, an error, a stack trace, a map run's results, describe output or any file
under KAMADO_HOME; credentials in plain text and missing secrets are refused at create."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from kamado.core.errors import InvalidSpec, NotFound
from kamado.sdk.functions import Function
from tests.live_server import LiveServer
from tests.security.test_secrets_canary import _files_containing

HANDLERS = """
import os

def reveal(event, context):
    print("the key is", os.environ["API_KEY"], flush=True)
    return {"key": os.environ["API_KEY"], "same": os.environ["API_KEY"] == event.get("expect"), "n": event.get("n")}

def fail(event, context):
    raise PermissionError("rejected " + os.environ["API_KEY"])
"""


def _code(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLERS)
    return code


def test_function_gets_the_secret_and_never_returns_it(live: LiveServer, tmp_path: Path) -> None:
    canary = secrets.token_hex(32)
    ref = live.client.create_secret("fn/api-key", canary)["Reference"]
    code = _code(tmp_path)
    env = {"API_KEY": ref}
    fn = Function.create("reveal", code, "app.reveal", environment=env, client=live.client)
    out = live.client.invoke_function("reveal", {"expect": canary})
    assert out["Payload"]["same"] is True, "the handler received the value"
    assert out["Payload"]["key"] == "***", "a result holding the value is masked"
    Function.create("fail", code, "app.fail", environment=env, client=live.client)
    err = live.client.invoke_function("fail", {})
    assert err["FunctionError"] == "Unhandled" and err["Payload"]["errorMessage"] == "rejected ***"
    assert canary not in repr(err)
    run = fn.map([{"n": i} for i in range(20)], max_concurrency=2)
    run.wait(timeout_s=60)
    rows = list(run.results())
    assert len(rows) == 20 and {r["Output"]["key"] for r in rows} == {"***"}
    desc = live.client.get_function("reveal")
    assert desc["Environment"]["Variables"] == env, "describe shows the reference"
    assert canary not in repr(desc) + repr(rows) + repr(run.manifest())
    # While a worker lives, its executor's own files (0700, the server's user) hold what it was given and
    # printed, as a running job's do; they go with the worker. After that nothing holds the value.
    for name in ("reveal", "fail"):
        live.client.delete_function(name)
    deadline = time.monotonic() + 20
    while (leaks := _files_containing(live.home, canary.encode())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leaks == []


def test_plain_credentials_and_missing_secrets_are_refused_at_create(live: LiveServer, tmp_path: Path) -> None:
    code = _code(tmp_path)
    with pytest.raises(InvalidSpec, match=r"Environment\.Variables\.DB_PASSWORD") as plain:
        Function.create("p", code, "app.reveal", environment={"DB_PASSWORD": "x9!Qz2#Lm4$Rt7&Kw1"}, client=live.client)
    assert "x9!Qz2#Lm4$Rt7&Kw1" not in str(plain.value)
    with pytest.raises(InvalidSpec, match="no-such"):
        Function.create(
            "m", code, "app.reveal", environment={"K": "{{resolve:ssm-secure:no-such}}"}, client=live.client
        )
    for name in ("p", "m"):
        with pytest.raises(NotFound):
            live.client.get_function(name)
