"""Pipelines act as a service account: a state machine's ``roleArn`` names one, its Task states may only do
what that account's role bindings allow (checked per call, audited under the account), and attaching an
account is refused unless the caller holds every right it has (PassRole). On a real server with tokens
required, running real training jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kamado.sdk.client import Client
from tests.live_server import start_server, write_script
from tests.security.helpers import make_principal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROLE = "arn:aws:iam::000000000000:role/{}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("roles")
    home = tmp / "home"
    server, thread, url, _ = start_server(home, auth="required")
    admin = (home / "admin.token").read_text().strip()
    h = {"Authorization": f"Bearer {admin}"}
    try:
        # The pipeline's role: may create training jobs named nightly-*, nothing else.
        body = {
            "Name": "pipe-runner",
            "Type": "ServiceAccount",
            "RoleBindings": [{"Project": "default", "Role": "editor", "Resource": "nightly-*"}],
        }
        assert httpx.post(f"{url}/api/v1/principals", json=body, headers=h).status_code == 201
        body = {"Name": "all-powerful", "Type": "ServiceAccount", "RoleBindings": [{"Project": "*", "Role": "admin"}]}
        assert httpx.post(f"{url}/api/v1/principals", json=body, headers=h).status_code == 201
        editor = make_principal(url, admin, "ed", "editor")
        with Client(url, token=admin) as c:
            uri = c.upload_directory(write_script(tmp / "src", "print('trained', flush=True)\n"))
        yield {"url": url, "admin": admin, "editor": editor, "uri": uri}
    finally:
        server.should_exit = True
        thread.join(30)


def _call(srv: dict[str, Any], method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{srv['url']}/api/v1{path}", headers=headers, timeout=30, trust_env=False, **kw)


def _machine(srv: dict[str, Any], name: str, role: str | None) -> dict[str, Any]:
    train = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": {
            "TrainingJobName.$": "$.job",
            "HyperParameters": {
                "sagemaker_program": '"train.py"',
                "sagemaker_submit_directory": json.dumps(srv["uri"]),
            },
        },
        "End": True,
    }
    body: dict[str, Any] = {"name": name, "definition": json.dumps({"StartAt": "Train", "States": {"Train": train}})}
    if role is not None:
        body["roleArn"] = role
    return body


def _run(srv: dict[str, Any], machine: str, job: str) -> dict[str, Any]:
    started = _call(
        srv, "POST", f"/state-machines/{machine}/executions", srv["editor"], json={"input": json.dumps({"job": job})}
    )
    assert started.status_code == 201, started.text
    name = started.json()["name"]
    deadline = time.monotonic() + 120
    while (desc := _call(srv, "GET", f"/state-machines/{machine}/executions/{name}", srv["editor"]).json())[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline, desc
        time.sleep(0.2)
    return desc


def test_a_task_state_does_only_what_the_role_allows(srv: dict[str, Any]) -> None:
    made = _call(
        srv, "POST", "/state-machines", srv["editor"], json=_machine(srv, "nightly", ROLE.format("pipe-runner"))
    )
    assert made.status_code == 201, made.text
    assert _call(srv, "GET", "/state-machines/nightly", srv["editor"]).json()["roleArn"] == ROLE.format("pipe-runner")

    ok = _run(srv, "nightly", "nightly-1")
    assert ok["status"] == "SUCCEEDED", ok
    assert _call(srv, "GET", "/training-jobs/nightly-1", srv["admin"]).json()["TrainingJobStatus"] == "Completed"

    denied = _run(srv, "nightly", "adhoc-1")  # outside the role's nightly-* pattern
    assert denied["status"] == "FAILED" and denied["error"] == "SageMaker.AmazonSageMakerException", denied
    assert (
        "AccessDenied" in denied["cause"]
        and "pipe-runner" in denied["cause"]
        and "CreateTrainingJob" in denied["cause"]
    )
    assert _call(srv, "GET", "/training-jobs/adhoc-1", srv["admin"]).status_code == 404, "nothing was created"

    audit = _call(srv, "GET", "/audit?Principal=pipe-runner", srv["admin"]).json()["AuditEvents"]
    seen = {(e["Action"], e["Resource"], e["Outcome"]) for e in audit}
    assert ("CreateTrainingJob", "nightly-1", "Allowed") in seen and ("CreateTrainingJob", "adhoc-1", "Denied") in seen

    # A binding taken away takes effect for the next Task (after the role cache's 2 s).
    unbind = {"Project": "default", "Role": "editor", "Resource": "nightly-*"}
    gone = _call(srv, "DELETE", "/principals/pipe-runner/role-bindings", srv["admin"], params=unbind)
    assert gone.status_code in (200, 204), gone.text
    time.sleep(2.1)
    assert _run(srv, "nightly", "nightly-2")["status"] == "FAILED"
    restore = _call(srv, "POST", "/principals/pipe-runner/role-bindings", srv["admin"], json=unbind)
    assert restore.status_code in (200, 201, 204), restore.text


def test_a_state_machine_without_a_role_is_not_restricted(srv: dict[str, Any]) -> None:
    assert _call(srv, "POST", "/state-machines", srv["editor"], json=_machine(srv, "free", None)).status_code == 201
    assert _run(srv, "free", "anything-1")["status"] == "SUCCEEDED"


def test_an_aws_role_that_names_no_service_account_is_kept_but_not_enforced(srv: dict[str, Any]) -> None:
    """A definition written for Step Functions carries an AWS role: accepted unchanged (boto3 code runs as is)
    and not enforced; a service account created later under that name does not start binding it."""
    aws_role = "arn:aws:iam::123456789012:role/service-role/StepFunctions-nightly-role-1a2b3c"
    made = _call(srv, "POST", "/state-machines", srv["editor"], json=_machine(srv, "from-aws", aws_role))
    assert made.status_code == 201, made.text
    assert _call(srv, "GET", "/state-machines/from-aws", srv["editor"]).json()["roleArn"] == aws_role
    assert _run(srv, "from-aws", "aws-style-1")["status"] == "SUCCEEDED"
    body = {"Name": "StepFunctions-nightly-role-1a2b3c", "Type": "ServiceAccount", "RoleBindings": []}
    assert _call(srv, "POST", "/principals", srv["admin"], json=body).status_code == 201
    assert _run(srv, "from-aws", "aws-style-2")["status"] == "SUCCEEDED", "decided at create, not at run time"


def test_an_enforced_role_whose_account_is_deleted_fails_closed(srv: dict[str, Any]) -> None:
    body = {
        "Name": "short-lived",
        "Type": "ServiceAccount",
        "RoleBindings": [{"Project": "default", "Role": "editor", "Resource": "*"}],
    }
    assert _call(srv, "POST", "/principals", srv["admin"], json=body).status_code == 201
    made = _call(srv, "POST", "/state-machines", srv["admin"], json=_machine(srv, "orphan", ROLE.format("short-lived")))
    assert made.status_code == 201, made.text
    assert _run(srv, "orphan", "orphan-1")["status"] == "SUCCEEDED"
    assert _call(srv, "DELETE", "/principals/short-lived", srv["admin"]).status_code == 204
    time.sleep(2.1)  # the role cache
    failed = _run(srv, "orphan", "orphan-2")
    assert failed["status"] == "FAILED" and "no longer exists" in failed["cause"], failed


def test_attaching_a_role_is_checked(srv: dict[str, Any]) -> None:
    def create(role: str, token: str) -> httpx.Response:
        return _call(srv, "POST", "/state-machines", token, json=_machine(srv, "attach-check", role))

    escalate = create(ROLE.format("all-powerful"), srv["editor"])
    assert escalate.status_code == 403 and "all-powerful" in escalate.text, escalate.text
    malformed = create("arn:aws:s3:::bucket", srv["editor"])
    assert malformed.status_code == 400 and "not a role ARN" in malformed.text
    user = create(ROLE.format("ed"), srv["admin"])
    assert user.status_code == 400 and "service account" in user.text
    assert _call(srv, "GET", "/state-machines/attach-check", srv["admin"]).status_code == 404, "nothing was created"
    # The admin holds every right, so it may attach any account; an update is checked the same way.
    assert create(ROLE.format("all-powerful"), srv["admin"]).status_code == 201
    update = _call(srv, "PUT", "/state-machines/nightly", srv["editor"], json={"roleArn": ROLE.format("all-powerful")})
    assert update.status_code == 403, update.text
