"""Per-project resources on a real server with tokens required (``auth=required``).

A request names its project with ``X-Kamado-Project`` (absent: ``default``); roles bound on one project
grant nothing on another; work started in a project (tuning trials, a pipeline's jobs) stays in it; the
router checks an invoker against the invoked endpoint's project.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.core.projects import current_project, project_scope
from kamado.hosting.router_auth import RouterAuth, RouterAuthConfig, write_config
from kamado.sdk.client import Client
from kamado.sdk.pipelines import StateMachine
from kamado.security.policy import Binding
from kamado.security.service import SecurityService
from kamado.store.sql import SqlStore
from tests.live_server import start_server, write_script
from tests.security.helpers import make_principal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

NAP = "import sys, time\nprint('score=0.5', flush=True)\ntime.sleep(float(sys.argv[sys.argv.index('--nap') + 1]))\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("projects")
    home = tmp / "home"
    server, thread, url, _ = start_server(home, auth="required")
    admin = (home / "admin.token").read_text().strip()
    try:
        tokens = {
            "editor-a": make_principal(url, admin, "editor-a", "editor", "a"),
            "viewer-a": make_principal(url, admin, "viewer-a", "viewer", "a"),
            "editor-b": make_principal(url, admin, "editor-b", "editor", "b"),
        }
        with Client(url, token=admin, project="a") as c:
            uri = c.upload_directory(write_script(tmp / "src", NAP))
        yield {"url": url, "admin": admin, "tokens": tokens, "uri": uri, "home": home}
    finally:
        server.should_exit = True
        thread.join(30)


def _call(
    srv: dict[str, Any], method: str, path: str, who: str, project: str | None = None, **kw: Any
) -> httpx.Response:
    token = srv["admin"] if who == "admin" else srv["tokens"][who]
    headers = {"Authorization": f"Bearer {token}"}
    if project is not None:
        headers["X-Kamado-Project"] = project
    return httpx.request(method, f"{srv['url']}/api/v1{path}", headers=headers, timeout=30, trust_env=False, **kw)


def _job(srv: dict[str, Any], name: str, nap: float = 30) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(srv["uri"]),
            "nap": str(nap),
        },
        "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}]},
    }


def _names(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [s["TrainingJobName"] for s in resp.json()["TrainingJobSummaries"]]


def test_an_editor_on_a_works_in_a_and_nowhere_else(srv: dict[str, Any]) -> None:
    created = _call(srv, "POST", "/training-jobs", "editor-a", "a", json=_job(srv, "job-in-a"))
    assert created.status_code == 201, created.text
    listed = _call(srv, "GET", "/training-jobs", "editor-a", "a")
    assert _names(listed) == ["job-in-a"]
    assert listed.json()["TrainingJobSummaries"][0]["Project"] == "a"
    described = _call(srv, "GET", "/training-jobs/job-in-a", "editor-a", "a")
    assert described.status_code == 200 and described.json()["Project"] == "a"

    # No header means the default project, where editor-a holds nothing: 403, audited, nothing created.
    refused = _call(srv, "POST", "/training-jobs", "editor-a", None, json=_job(srv, "job-in-default"))
    assert refused.status_code == 403, refused.text
    assert "project 'default'" in refused.json()["message"]
    events = _call(srv, "GET", "/audit?Principal=editor-a&Outcome=Denied", "admin").json()["AuditEvents"]
    assert [(e["Action"], e["Project"]) for e in events][:1] == [("CreateTrainingJob", "default")]
    assert _call(srv, "GET", "/audit?Principal=editor-a&Project=a", "admin").json()["AuditEvents"][0]["Project"] == "a"
    assert _call(srv, "GET", "/training-jobs/job-in-default", "admin", "a").status_code == 404
    assert _call(srv, "GET", "/training-jobs/job-in-default", "admin").status_code == 404

    # The default project shows nothing of a's: not in the list, and describing or stopping it there is 404.
    # (These routes are sync: the 404 also proves the request's project reaches the threadpool.)
    assert "job-in-a" not in _names(_call(srv, "GET", "/training-jobs", "admin"))
    hidden = _call(srv, "GET", "/training-jobs/job-in-a", "admin")
    missing = _call(srv, "GET", "/training-jobs/no-such-job", "admin")
    assert hidden.status_code == 404 and hidden.json()["code"] == missing.json()["code"] == "ResourceNotFound"
    assert hidden.json()["message"].replace("job-in-a", "N") == missing.json()["message"].replace("no-such-job", "N")
    assert _call(srv, "GET", "/training-jobs/job-in-a/logs", "admin").status_code == 404
    assert _call(srv, "POST", "/training-jobs/job-in-a/stop", "admin").status_code == 404
    assert _call(srv, "GET", "/training-jobs/job-in-a", "editor-b", "b").status_code == 404
    assert _call(srv, "GET", "/training-jobs/job-in-a", "editor-b", "a").status_code == 403

    stopped = _call(srv, "POST", "/training-jobs/job-in-a/stop", "editor-a", "a")
    assert stopped.status_code == 200, stopped.text
    status = _call(srv, "GET", "/training-jobs/job-in-a", "editor-a", "a").json()["TrainingJobStatus"]
    assert status in ("Stopping", "Stopped")


def test_a_viewer_on_a_reads_but_cannot_create_and_an_admin_sees_each_project(srv: dict[str, Any]) -> None:
    _call(srv, "POST", "/training-jobs", "editor-b", "b", json=_job(srv, "job-in-b", nap=0))
    assert _call(srv, "GET", "/training-jobs", "viewer-a", "a").status_code == 200
    denied = _call(srv, "POST", "/training-jobs", "viewer-a", "a", json=_job(srv, "viewer-job"))
    assert denied.status_code == 403
    assert _call(srv, "GET", "/training-jobs/viewer-job", "admin", "a").status_code == 404
    assert "job-in-b" not in _names(_call(srv, "GET", "/training-jobs", "viewer-a", "a"))
    assert "job-in-b" in _names(_call(srv, "GET", "/training-jobs", "admin", "b"))
    assert "job-in-b" not in _names(_call(srv, "GET", "/training-jobs", "admin", "a"))


def test_names_are_unique_per_server_and_the_header_is_checked(srv: dict[str, Any]) -> None:
    assert _call(srv, "POST", "/training-jobs", "editor-b", "b", json=_job(srv, "dup", nap=0)).status_code == 201
    again = _call(srv, "POST", "/training-jobs", "admin", "a", json=_job(srv, "dup", nap=0))
    assert again.status_code == 409 and again.json()["code"] == "ResourceInUse"
    unknown = _call(srv, "GET", "/training-jobs", "admin", "nope")
    assert unknown.status_code == 404
    assert "X-Kamado-Project" in unknown.json()["message"] and "projects create" in unknown.json()["message"]
    bad = _call(srv, "GET", "/training-jobs", "admin", "../etc")
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "X-Kamado-Project"


def test_the_sdk_sends_its_project(srv: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(srv["url"], token=srv["tokens"]["editor-b"], project="b") as c:
        assert c.describe_training_job("job-in-b")["Project"] == "b"
    monkeypatch.setenv("KAMADO_PROJECT", "b")
    with Client(srv["url"], token=srv["tokens"]["editor-b"]) as c:
        assert c.project == "b" and c.describe_training_job("job-in-b")["TrainingJobName"] == "job-in-b"


def test_tuning_trials_and_pipeline_jobs_stay_in_their_project(srv: dict[str, Any]) -> None:
    tuning = {
        "HyperParameterTuningJobName": "tune-a",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "xx", "MinValue": "0", "MaxValue": "1"}]},
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}]},
            "StaticHyperParameters": _job(srv, "x", nap=0)["HyperParameters"],
        },
    }
    assert _call(srv, "POST", "/tuning-jobs", "editor-a", "a", json=tuning).status_code == 201
    with Client(srv["url"], token=srv["tokens"]["editor-a"], project="a") as c:
        definition = {
            "StartAt": "Train",
            "States": {
                "Train": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                    "Parameters": _job(srv, "piped-job", nap=0),
                    "ResultSelector": {"status.$": "$.TrainingJobStatus"},
                    "End": True,
                }
            },
        }
        machine = StateMachine.create("flow-a", definition, client=c)
        assert machine.start({}).wait(timeout_s=120) == {"status": "Completed"}
        assert machine.describe()["project"] == "a"
    piped = _call(srv, "GET", "/training-jobs/piped-job", "admin", "a")
    assert piped.status_code == 200 and piped.json()["Project"] == "a"
    assert _call(srv, "GET", "/training-jobs/piped-job", "admin").status_code == 404

    deadline = time.monotonic() + 120
    while len(trials := _names(_call(srv, "GET", "/training-jobs?TuningJobName=tune-a", "admin", "a"))) < 2:
        assert time.monotonic() < deadline, trials
        time.sleep(0.2)
    assert _names(_call(srv, "GET", "/training-jobs?TuningJobName=tune-a", "admin")) == []
    for trial in trials:
        assert _call(srv, "GET", f"/training-jobs/{trial}", "viewer-a", "a").json()["Project"] == "a"


SECRET_DIGEST = (
    "import hashlib, os\nprint('digest', hashlib.sha256(os.environ['PW'].encode()).hexdigest()[:16], flush=True)\n"
)


def test_secrets_belong_to_a_project_and_only_its_workloads_use_them(srv: dict[str, Any], tmp_path: Path) -> None:
    # The same name in two projects is two secrets; each project's editor manages only its own.
    for who, project, value in (("editor-a", "a", "value-of-a-0123"), ("editor-b", "b", "value-of-b-4567")):
        made = _call(srv, "POST", "/secrets", who, project, json={"Name": "pw", "Value": value})
        assert made.status_code == 201 and made.json()["Project"] == project, made.text
    assert (
        _call(srv, "POST", "/secrets", "editor-b", "b", json={"Name": "only-b", "Value": "x" * 12}).status_code == 201
    )
    assert _call(srv, "GET", "/secrets/only-b", "editor-a", "a").status_code == 404, "a cannot see b's secret"
    assert _call(srv, "GET", "/secrets/only-b", "editor-b", "a").status_code == 403, "b's editor has no role on a"
    assert _call(srv, "POST", "/secrets", "viewer-a", "a", json={"Name": "v", "Value": "x" * 12}).status_code == 403
    listed = _call(srv, "GET", "/secrets", "editor-a", "a").json()["Secrets"]
    assert [(x["Name"], x["Project"]) for x in listed] == [("pw", "a")]
    assert "pw" not in [x["Name"] for x in _call(srv, "GET", "/secrets", "admin").json()["Secrets"]]

    # A workload can only reference its own project's secrets: b's name is unknown in a.
    with Client(srv["url"], token=srv["admin"], project="a") as c:
        uri = c.upload_directory(write_script(tmp_path / "digest", SECRET_DIGEST))
    job = {
        **_job(srv, "uses-b-secret"),
        "Environment": {"PW": "{{resolve:secretsmanager:only-b}}"},
    }
    refused = _call(srv, "POST", "/training-jobs", "editor-a", "a", json=job)
    assert refused.status_code == 400 and "only-b" in refused.text and "project 'a'" in refused.text, refused.text

    # And a job of a receives a's value, not b's (its log shows a digest of what it got).
    job = {
        **_job(srv, "uses-a-secret"),
        "Environment": {"PW": "{{resolve:secretsmanager:pw}}"},
    }
    job["HyperParameters"]["sagemaker_submit_directory"] = json.dumps(uri)
    assert _call(srv, "POST", "/training-jobs", "editor-a", "a", json=job).status_code in (200, 201)
    deadline = time.monotonic() + 60
    while (desc := _call(srv, "GET", "/training-jobs/uses-a-secret", "editor-a", "a").json())[
        "TrainingJobStatus"
    ] not in ("Completed", "Failed"):
        assert time.monotonic() < deadline, desc
        time.sleep(0.2)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    events = _call(srv, "GET", "/training-jobs/uses-a-secret/logs?limit=100", "editor-a", "a").json()["Events"]
    logs = "".join(e["Message"] for e in events)
    assert f"digest {hashlib.sha256(b'value-of-a-0123').hexdigest()[:16]}" in logs, logs
    assert _call(srv, "GET", "/projects", "viewer-a", "a").status_code == 200


def test_the_router_checks_invokers_against_the_endpoints_project(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'k.db'}"
    store = SqlStore(db_url)
    security = SecurityService(store)
    security.bootstrap(tmp_path)
    for project in ("a", "b"):
        security.store.create_project(project)
    tokens = {}
    for name, project in (("invoker-a", "a"), ("invoker-b", "b")):
        security.store.create_principal(name, "ServiceAccount", None, [Binding(project, "invoker", "*")])
        tokens[name] = security._mint(name, None, "", None)[0]
    with project_scope("a"):
        store.create(kind="endpoint", name="ep-a", arn="arn:ep-a", state="InService", spec={}, status={})
    config = tmp_path / "router-auth.json"
    write_config(config, RouterAuthConfig(required=True, database_url=db_url))
    auth = RouterAuth(config)

    def scope(token: str) -> dict[str, Any]:
        return {"headers": [(b"authorization", f"Bearer {token}".encode())], "client": ("127.0.0.1", 1)}

    try:
        assert current_project.get() is None
        refused = asyncio.run(auth.check(scope(tokens["invoker-b"]), "ep-a"))
        assert refused is not None and refused.status == 403 and "project 'a'" in refused.message
        assert asyncio.run(auth.check(scope(tokens["invoker-a"]), "ep-a")) is None
        denied = security.store.list_audit(principal="invoker-b", outcome="Denied")
        assert [(e.action, e.project) for e in denied] == [("InvokeEndpoint", "a")]
    finally:
        auth.close()
        store.close()
