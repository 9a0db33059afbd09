"""``kamado.StateMachine`` and ``Execution``: Step Functions-style pipelines from the SDK.

A state machine is created from an Amazon States Language definition (a dict, JSON text or a ``.json``
file) or from a Python pipeline compiled to one; ``start`` runs it durably on the server and ``wait``
follows it to the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kamado.sdk.client import Client, _poll
from kamado.sdk.errors import ExecutionFailed

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


def _definition(definition: dict[str, Any] | str | os.PathLike[str]) -> dict[str, Any] | str:
    if isinstance(definition, dict):
        return definition
    text = str(definition)
    if isinstance(definition, os.PathLike) or (not text.lstrip().startswith("{") and Path(text).is_file()):
        return Path(text).read_text()
    return text


def _lister(client: Client, path: str) -> Callable[..., dict[str, Any]]:
    """One page of ``path`` per call, with the page's parameters as keywords (for ``Client._iter_pages``)."""
    return lambda **params: client._list(path, params)


class StateMachine:
    """A state machine on the server: ``StateMachine.create("nightly", definition).start({"day": 1}).wait()``."""

    def __init__(self, name: str, *, client: Client | None = None) -> None:
        self.name = name
        self.client = client or Client()

    @property
    def _path(self) -> str:
        return f"/api/v1/state-machines/{quote(self.name, safe='')}"

    @classmethod
    def create(
        cls,
        name: str,
        definition: dict[str, Any] | str | os.PathLike[str],
        *,
        role_arn: str | None = None,
        tags: dict[str, str] | None = None,
        client: Client | None = None,
    ) -> StateMachine:
        client = client or Client()
        body: dict[str, Any] = {"name": name, "definition": _definition(definition)}
        if role_arn:
            body["roleArn"] = role_arn
        if tags:
            body["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        client._request("POST", "/api/v1/state-machines", json=body)
        return cls(name, client=client)

    @classmethod
    def list(cls, *, client: Client | None = None) -> Iterator[dict[str, Any]]:
        client = client or Client()
        pages = _lister(client, "/api/v1/state-machines")
        yield from client._iter_pages(pages, "stateMachines", {"maxResults": 100}, token_field="nextToken")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = self.client._request("GET", self._path)
        return out

    @property
    def definition(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.describe()["definition"])
        return parsed

    def update(self, definition: dict[str, Any] | str | os.PathLike[str]) -> None:
        self.client._request("PUT", self._path, json={"definition": _definition(definition)})

    def delete(self) -> None:
        self.client._request("DELETE", self._path)

    def start(self, input: Any = None, *, name: str | None = None) -> Execution:
        """Start an execution; a ``name`` that ran already with the same input returns that execution."""
        body: dict[str, Any] = {"input": json.dumps({} if input is None else input)}
        if name:
            body["name"] = name
        out = self.client._request("POST", f"{self._path}/executions", json=body)
        return Execution(self.name, out["name"], client=self.client)

    def executions(self, *, status: str | None = None) -> Iterator[Execution]:
        params = {"statusFilter": status, "maxResults": 100}
        for item in self.client._iter_pages(
            _lister(self.client, f"{self._path}/executions"), "executions", params, token_field="nextToken"
        ):
            yield Execution(self.name, item["name"], client=self.client)


class Execution:
    """One run of a state machine."""

    def __init__(self, state_machine: str, name: str, *, client: Client | None = None) -> None:
        self.state_machine = state_machine
        self.name = name
        self.client = client or Client()

    def __repr__(self) -> str:
        return f"Execution({self.state_machine!r}, {self.name!r})"

    @property
    def _path(self) -> str:
        sm, ex = quote(self.state_machine, safe=""), quote(self.name, safe="")
        return f"/api/v1/state-machines/{sm}/executions/{ex}"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = self.client._request("GET", self._path)
        return out

    @property
    def status(self) -> str:
        return str(self.describe()["status"])

    def wait(self, *, timeout_s: float | None = None, poll_s: float = 0.2, raise_on_failure: bool = True) -> Any:
        """The execution's output once it SUCCEEDED; :class:`ExecutionFailed` otherwise (if asked)."""
        desc = _poll(
            self.describe,
            lambda d: d["status"] in TERMINAL,
            f"Execution '{self.name}'",
            "status",
            poll_s=poll_s,
            timeout_s=timeout_s,
        )
        if desc["status"] != "SUCCEEDED":
            if raise_on_failure:
                raise ExecutionFailed(
                    f"Execution '{self.name}' of '{self.state_machine}' ended {desc['status']}: "
                    f"{desc.get('error')}: {desc.get('cause')}",
                    description=desc,
                )
            return None
        return json.loads(desc["output"]) if "output" in desc else None

    def history(self, *, reverse: bool = False) -> list[dict[str, Any]]:
        params = {"maxResults": 1000, "reverseOrder": reverse or None}
        return list(
            self.client._iter_pages(
                _lister(self.client, f"{self._path}/history"), "events", params, token_field="nextToken"
            )
        )

    def stop(self, *, error: str | None = None, cause: str | None = None) -> None:
        body = {k: v for k, v in {"error": error, "cause": cause}.items() if v is not None}
        self.client._request("POST", f"{self._path}/stop", json=body)


class Schedule:
    """Start a state machine on a clock: ``Schedule.create("weekly", "cron(0 3 ? * MON *)", "retrain")``."""

    def __init__(self, name: str, *, client: Client | None = None) -> None:
        self.name = name
        self.client = client or Client()

    @classmethod
    def create(
        cls,
        name: str,
        expression: str,
        state_machine: str,
        *,
        input: Any = None,
        timezone: str = "UTC",
        missed_run_policy: str = "RUN_ONCE",
        enabled: bool = True,
        client: Client | None = None,
    ) -> Schedule:
        """``input`` is the execution's input; left out, it is EventBridge's "Scheduled Event"."""
        client = client or Client()
        target: dict[str, Any] = {"StateMachine": state_machine}
        if input is not None:
            target["Input"] = json.dumps(input)
        client._request(
            "POST",
            "/api/v1/schedules",
            json={
                "Name": name,
                "ScheduleExpression": expression,
                "ScheduleExpressionTimezone": timezone,
                "MissedRunPolicy": missed_run_policy,
                "State": "ENABLED" if enabled else "DISABLED",
                "Target": target,
            },
        )
        return cls(name, client=client)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = self.client._request("GET", f"/api/v1/schedules/{quote(self.name, safe='')}")
        return out

    def enable(self, enabled: bool = True) -> None:
        self.client._request(
            "POST",
            f"/api/v1/schedules/{quote(self.name, safe='')}/state",
            json={"State": "ENABLED" if enabled else "DISABLED"},
        )

    def delete(self) -> None:
        self.client._request("DELETE", f"/api/v1/schedules/{quote(self.name, safe='')}")


class Trigger:
    """Start a state machine for each new object under an artifact prefix."""

    def __init__(self, name: str, *, client: Client | None = None) -> None:
        self.name = name
        self.client = client or Client()

    @classmethod
    def create(
        cls, name: str, prefix: str, state_machine: str, *, poll_interval_s: float = 5.0, client: Client | None = None
    ) -> Trigger:
        client = client or Client()
        client._request(
            "POST",
            "/api/v1/triggers",
            json={
                "Name": name,
                "Prefix": prefix,
                "Target": {"StateMachine": state_machine},
                "PollIntervalSeconds": poll_interval_s,
            },
        )
        return cls(name, client=client)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = self.client._request("GET", f"/api/v1/triggers/{quote(self.name, safe='')}")
        return out

    def delete(self) -> None:
        self.client._request("DELETE", f"/api/v1/triggers/{quote(self.name, safe='')}")
