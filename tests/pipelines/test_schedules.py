"""Schedules and triggers: expressions, missed fires after downtime (once, never N times), new objects
firing once each, and both carrying on across a server restart."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kamado.artifacts.factory import open_artifact_store
from kamado.core.errors import InvalidSpec, NotFound
from kamado.core.settings import Settings
from kamado.pipelines.schedule_expr import parse_schedule
from kamado.pipelines.scheduler import Scheduler
from kamado.pipelines.schedules import CreateScheduleRequest, CreateTriggerRequest, ScheduleService, fire_name
from kamado.pipelines.service import EXECUTION_KIND, PipelineService
from kamado.pipelines.spec import CreateStateMachineRequest
from kamado.sdk.client import Client
from kamado.store.sql import SqlStore
from tests.live_server import start_server

ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_rate_cron_and_at_expressions() -> None:
    rate = parse_schedule("rate(7 days)")
    start = _utc(2026, 11, 1, 12)
    assert rate.next_after(_utc(2026, 11, 3), anchor=start) == _utc(2026, 11, 8, 12)
    assert parse_schedule("rate(1 minute)").next_after(start, anchor=start) == _utc(2026, 11, 1, 12, 1)
    # Monday 03:00 in Berlin: 02:00 UTC in winter, 01:00 UTC in summer.
    weekly = parse_schedule("cron(0 3 ? * MON *)", "Europe/Berlin")
    assert weekly.next_after(_utc(2026, 11, 22)) == _utc(2026, 11, 23, 2)
    assert weekly.next_after(_utc(2026, 6, 1, 2)) == _utc(2026, 6, 8, 1)
    # EventBridge counts days of the week from 1 = Sunday.
    sunday = parse_schedule("cron(30 6 ? * 1 *)")
    assert sunday.next_after(_utc(2026, 11, 23)) == _utc(2026, 11, 29, 6, 30)
    assert parse_schedule("cron(0 0 1 * ? 2027)").next_after(_utc(2026, 11, 23)) == _utc(2027, 1, 1)
    assert parse_schedule("cron(0 0 1 * ? 2025)").next_after(_utc(2026, 11, 23)) is None
    once = parse_schedule("at(2026-12-01T03:00:00)", "UTC")
    assert once.next_after(_utc(2026, 11, 23)) == _utc(2026, 12, 1, 3)
    assert once.next_after(_utc(2026, 12, 2)) is None


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("every day", "unknown form"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(5 weeks)", "unknown form"),
        ("cron(0 3 * * MON *)", "exactly one of"),
        ("cron(0 3 * *)", "6 fields"),
        ("cron(0 25 ? * MON *)", "out of range"),
        ("cron(0 3 ? * 9 *)", r"1 \(Sunday\) to 7"),
    ],
)
def test_bad_expressions_say_why(expression: str, why: str) -> None:
    with pytest.raises(InvalidSpec, match=why) as info:
        parse_schedule(expression)
    assert info.value.details[0]["field"] == "ScheduleExpression"


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidSpec, match="IANA"):
        parse_schedule("rate(1 hour)", "Mars/Olympus")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts(tmp_path: Path) -> Any:
    settings = Settings.from_env(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'k.db'}")
    store = SqlStore(settings.database_url)
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    pipelines = PipelineService(store, settings)
    pipelines.create_state_machine(CreateStateMachineRequest(name="echo", definition=ECHO))
    service = ScheduleService(store, artifacts, pipelines)
    yield store, artifacts, pipelines, service
    store.close()


def _executions(store: SqlStore) -> list[str]:
    return sorted(r.spec["name"] for r in store.list_in_states(EXECUTION_KIND, ["RUNNING"]))


def test_missed_fires_run_once_never_n_times(parts: Any) -> None:
    store, _, _, service = parts
    t0 = _utc(2026, 11, 23, 10).timestamp()
    clock = Clock(t0 + 30)
    scheduler = Scheduler(service, clock=clock)
    req = CreateScheduleRequest.model_validate(
        {"Name": "minutely", "ScheduleExpression": "rate(1 minute)", "Target": {"StateMachine": "echo"}}
    )
    service.create_schedule(req, now=t0)
    scheduler.tick()
    assert _executions(store) == [], "nothing is due before the first minute"
    clock.now = t0 + 61
    scheduler.tick()
    scheduler.tick()
    assert _executions(store) == [fire_name("minutely", _utc(2026, 11, 23, 10, 1))]
    # Down for an hour: 59 fires were missed; the latest runs once.
    clock.now = t0 + 3600 + 5
    scheduler.tick()
    scheduler.tick()
    fired = _executions(store)
    assert fired == sorted(
        [fire_name("minutely", _utc(2026, 11, 23, 10, 1)), fire_name("minutely", _utc(2026, 11, 23, 11))]
    )
    execution = store.get(EXECUTION_KIND, f"echo:{fired[1]}")
    assert execution.spec["input"]["detail-type"] == "Scheduled Event"
    assert execution.spec["input"]["time"] == "2026-11-23T11:00:00Z"
    desc = service.describe_schedule("minutely")
    assert desc["Fires"] == 2 and desc["LastExecution"] == fire_name("minutely", _utc(2026, 11, 23, 11))


def test_a_crash_between_start_and_record_does_not_start_twice(parts: Any) -> None:
    store, _, _, service = parts
    t0 = _utc(2026, 11, 23, 10).timestamp()
    clock = Clock(t0 + 61)
    scheduler = Scheduler(service, clock=clock)
    service.create_schedule(
        CreateScheduleRequest.model_validate(
            {"Name": "s", "ScheduleExpression": "rate(1 minute)", "Target": {"StateMachine": "echo", "Input": "{}"}}
        ),
        now=t0,
    )
    rec = store.get("schedule", "s")
    when, count = scheduler.due(rec, clock.now)
    assert count == 1 and when is not None
    assert scheduler._start("echo", fire_name("s", when), "{}") is None  # started, then the server "died"
    assert scheduler.fire_schedule(store.get("schedule", "s")) == fire_name("s", when)  # after the restart
    assert _executions(store) == [fire_name("s", when)]
    assert store.get("schedule", "s").status["Fires"] == 1


def test_skip_policy_skips_late_fires_and_disabled_schedules_owe_nothing(parts: Any) -> None:
    store, _, _, service = parts
    t0 = _utc(2026, 11, 23, 10).timestamp()
    clock = Clock(t0 + 7200)
    scheduler = Scheduler(service, clock=clock)
    service.create_schedule(
        CreateScheduleRequest.model_validate(
            {
                "Name": "skippy",
                "ScheduleExpression": "cron(0 * ? * * *)",
                "MissedRunPolicy": "SKIP",
                "Target": {"StateMachine": "echo"},
            }
        ),
        now=t0 - 1,
    )
    clock.now = t0 + 7200 + 600  # ten minutes after 12:00: late
    scheduler.tick()
    assert _executions(store) == []
    assert store.get("schedule", "skippy").status["Skipped"] == 3
    clock.now = _utc(2026, 11, 23, 13, 0, 20).timestamp()  # on time
    scheduler.tick()
    assert _executions(store) == [fire_name("skippy", _utc(2026, 11, 23, 13))]


def test_create_checks(parts: Any) -> None:
    _, _, _, service = parts
    with pytest.raises(NotFound, match="absent"):
        service.create_schedule(
            CreateScheduleRequest.model_validate(
                {"Name": "x", "ScheduleExpression": "rate(1 hour)", "Target": {"StateMachine": "absent"}}
            )
        )
    with pytest.raises(InvalidSpec, match=r"Target\.Input"):
        service.create_schedule(
            CreateScheduleRequest.model_validate(
                {"Name": "x", "ScheduleExpression": "rate(1 hour)", "Target": {"StateMachine": "echo", "Input": "{"}}
            )
        )
    with pytest.raises(InvalidSpec, match="not valid"):
        service.create_schedule(
            CreateScheduleRequest.model_validate(
                {"Name": "bad name", "ScheduleExpression": "rate(1 hour)", "Target": {"StateMachine": "echo"}}
            )
        )
    with pytest.raises(InvalidSpec, match="inside the artifact store"):
        service.create_trigger(
            CreateTriggerRequest.model_validate(
                {"Name": "t", "Prefix": "file:///etc", "Target": {"StateMachine": "echo"}}
            )
        )


def _wait_executions(client: Client, machine: str, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        page = client._request("GET", f"/api/v1/state-machines/{machine}/executions")
        if len(page["executions"]) >= n:
            return list(page["executions"])
        assert time.monotonic() < deadline, f"only {len(page['executions'])} of {n} executions started"
        time.sleep(0.1)


def test_triggers_fire_once_per_new_object_and_carry_on_after_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server, thread, url, _ = start_server(home)
    try:
        with Client(url) as c:
            c._request("POST", "/api/v1/state-machines", json={"name": "ingest", "definition": ECHO})
            root = c._request("GET", "/api/v1/info")["artifactStore"].rstrip("/")
            artifacts = open_artifact_store(root)
            artifacts.put_bytes("landing/old.csv", b"a,b\n")  # there before the trigger: does not fire
            c._request(
                "POST",
                "/api/v1/triggers",
                json={
                    "Name": "landing",
                    "Prefix": f"{root}/landing",
                    "Target": {"StateMachine": "ingest"},
                    "PollIntervalSeconds": 1,
                },
            )
            artifacts.put_bytes("landing/day1.csv", b"1,2\n")
            first = _wait_executions(c, "ingest", 1)
            time.sleep(2.5)  # two more polls: the same object does not fire again
            assert len(c._request("GET", "/api/v1/state-machines/ingest/executions")["executions"]) == 1
            desc = c._request("GET", f"/api/v1/state-machines/ingest/executions/{first[0]['name']}")
            event = json.loads(desc["input"])
            assert event["detail-type"] == "Object Created"
            assert event["detail"]["object"]["key"] == "landing/day1.csv"
            assert event["detail"]["object"]["uri"].endswith("landing/day1.csv")
            assert json.loads(desc["output"]) == event, "the Pass state hands the event through"
    finally:
        server.should_exit = True
        thread.join(30)
    # The server is down while a new object lands; the restarted one fires it.
    artifacts.put_bytes("landing/day2.csv", b"3,4\n")
    server, thread, url, _ = start_server(home)
    try:
        with Client(url) as c:
            keys = sorted(
                json.loads(c._request("GET", f"/api/v1/state-machines/ingest/executions/{e['name']}")["input"])[
                    "detail"
                ]["object"]["key"]
                for e in _wait_executions(c, "ingest", 2)
            )
            assert keys == ["landing/day1.csv", "landing/day2.csv"]
            trigger = c._request("GET", "/api/v1/triggers/landing")
            assert trigger["Fires"] == 2 and trigger["ObjectsSeen"] == 3
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_fire_missed_while_the_server_was_down_runs_once_after_the_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server, thread, url, _ = start_server(home)
    when = datetime.fromtimestamp(int(time.time()) + 3, UTC)
    try:
        with Client(url) as c:
            c._request("POST", "/api/v1/state-machines", json={"name": "nightly", "definition": ECHO})
            c._request(
                "POST",
                "/api/v1/schedules",
                json={
                    "Name": "soon",
                    "ScheduleExpression": f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
                    "Target": {"StateMachine": "nightly", "Input": '{"run": "nightly"}'},
                },
            )
            assert c._request("GET", "/api/v1/schedules/soon")["NextFireTime"] == when.isoformat()
    finally:
        server.should_exit = True
        thread.join(30)
    while time.time() < when.timestamp() + 1:  # the fire time passes while no server runs
        time.sleep(0.2)
    server, thread, url, _ = start_server(home)
    try:
        with Client(url) as c:
            runs = _wait_executions(c, "nightly", 1)
            time.sleep(1.5)  # more scheduler passes: still one
            runs = c._request("GET", "/api/v1/state-machines/nightly/executions")["executions"]
            assert [r["name"] for r in runs] == [fire_name("soon", when)]
            schedule = c._request("GET", "/api/v1/schedules/soon")
            assert schedule["Fires"] == 1 and schedule["NextFireTime"] is None
    finally:
        server.should_exit = True
        thread.join(30)
