"""State machines and executions behind the API: validate, persist the desired state, describe, list, stop.

Nothing here runs a state: the execution runner (:mod:`kamado.pipelines.runner`) does. A create stores the
whole state machine or nothing, after the definition passed every check (all errors at once, with paths).
An execution is stored with a snapshot of its state machine's definition, so updating the state machine
never changes an execution that is already running. Execution names are idempotency keys.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound, ResourceInUse
from kamado.core.settings import Settings
from kamado.pipelines.spec import (
    CreateStateMachineRequest,
    StartExecutionRequest,
    StopExecutionRequest,
    UpdateStateMachineRequest,
    parse_definition,
    parse_input,
    validate_sfn_name,
)
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord

SM_KIND = "state-machine"
EXECUTION_KIND = "execution"
EXECUTION_STATES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
TERMINAL = frozenset(EXECUTION_STATES) - {"RUNNING"}

#: Checks a definition's Task resources against what this server can run: ``(definition) -> [(path, why)]``.
ResourceCheck = Callable[[dict[str, Any]], list[tuple[str, str]]]


def execution_key(state_machine: str, name: str) -> str:
    """The store name of an execution: execution names are unique per state machine, as in Step Functions."""
    return f"{state_machine}:{name}"


class PipelineService:
    def __init__(self, store: MetadataStore, settings: Settings, *, check_resources: ResourceCheck | None = None):
        self.store = store
        self.settings = settings
        self.check_resources = check_resources

    # -- ARNs ---------------------------------------------------------------------------------------------
    def _arn(self, kind: str, *parts: str) -> str:
        return f"arn:aws:states:{self.settings.region}:{self.settings.account}:{kind}:{':'.join(parts)}"

    def state_machine_arn(self, name: str) -> str:
        return self._arn("stateMachine", name)

    def execution_arn(self, state_machine: str, name: str) -> str:
        return self._arn("execution", state_machine, name)

    # -- state machines -----------------------------------------------------------------------------------
    def check_definition(self, definition: str | dict[str, Any]) -> dict[str, Any]:
        """The parsed definition, or InvalidSpec listing every problem with its JSON path."""
        from kamado.pipelines.asl.validator import validation_errors  # loads the ASL package on first use

        parsed = parse_definition(definition)
        problems = [(str(e["path"]), str(e["message"])) for e in validation_errors(parsed)]
        if not problems and self.check_resources is not None:
            problems = self.check_resources(parsed)
        if problems:
            shown = "; ".join(f"{path}: {why}" for path, why in problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise InvalidSpec(
                f"Invalid State Machine Definition: {shown}{more}.",
                details=[
                    {"field": f"definition{path if path.startswith('/') else '/' + path}", "message": why}
                    for path, why in problems
                ],
            )
        return parsed

    def create_state_machine(self, req: CreateStateMachineRequest, *, role_enforced: bool = False) -> ResourceRecord:
        """``role_enforced``: the roleArn names a service account whose roles bind the Tasks (decided by the
        security layer at create; a role of AWS's naming nothing here is kept but not enforced)."""
        validate_sfn_name(req.name, field="name")
        definition = self.check_definition(req.definition)
        return self.store.create(
            kind=SM_KIND,
            name=req.name,
            arn=self.state_machine_arn(req.name),
            state="ACTIVE",
            spec={"definition": definition, "roleArn": req.roleArn, "roleEnforced": role_enforced, "type": req.type},
            status={"revision": 1},
            tags=req.tags_dict(),
        )

    def update_state_machine(
        self, name: str, req: UpdateStateMachineRequest, *, role_enforced: bool | None = None
    ) -> ResourceRecord:
        rec = self.get_state_machine(name)
        if req.definition is None and req.roleArn is None:
            raise InvalidSpec(
                "UpdateStateMachine needs a new definition or roleArn.",
                details=[{"field": "definition", "message": "missing"}],
            )
        # The spec keeps what was asked at create; updates live in the status, newest wins (see current()).
        patch: dict[str, Any] = {"revision": int(rec.status.get("revision", 1)) + 1}
        if req.definition is not None:
            patch["definition"] = self.check_definition(req.definition)
        if req.roleArn is not None:
            patch["roleArn"] = req.roleArn
            patch["roleEnforced"] = bool(role_enforced)
        return self.store.update_status(SM_KIND, name, patch, expected_version=rec.version)

    @staticmethod
    def current(rec: ResourceRecord, key: str) -> Any:
        """A state machine's current ``definition``, ``roleArn`` or ``roleEnforced``: the last update's, else the
        create's."""
        return rec.status[key] if key in rec.status else rec.spec.get(key)

    def get_state_machine(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(SM_KIND, name)
        except NotFound:
            raise NotFound(
                f"State machine '{name}' does not exist; create it with `kamado pipelines create`.",
                details={"name": name},
            ) from None

    def describe_state_machine(self, name: str) -> dict[str, Any]:
        rec = self.get_state_machine(name)
        return {
            "stateMachineArn": rec.arn,
            "name": rec.name,
            "status": rec.state,
            "definition": json.dumps(self.current(rec, "definition"), indent=2),
            "roleArn": self.current(rec, "roleArn"),
            "type": rec.spec.get("type", "STANDARD"),
            "creationDate": iso_time(rec.created_at),
            "updateDate": iso_time(rec.updated_at),
            "revisionId": str(rec.status.get("revision", 1)),
            "tags": [{"key": k, "value": v} for k, v in sorted(rec.tags.items())],
        }

    def list_state_machines(self, *, max_results: int = 50, next_token: str | None = None) -> dict[str, Any]:
        page = self.store.list(
            SM_KIND, list_query(sort_by="Name", sort_order="Ascending", max_results=max_results, next_token=next_token)
        )
        return {
            "stateMachines": [
                {
                    "stateMachineArn": r.arn,
                    "name": r.name,
                    "type": r.spec.get("type", "STANDARD"),
                    "creationDate": iso_time(r.created_at),
                }
                for r in page.items
            ],
            "nextToken": page.next_token,
        }

    def delete_state_machine(self, name: str) -> None:
        self.get_state_machine(name)
        running = [r.name for r in self.store.list_in_states(EXECUTION_KIND, ["RUNNING"]) if r.parent == name]
        if running:
            raise ResourceInUse(
                f"State machine '{name}' has {len(running)} running execution(s); stop them first "
                f"(`kamado pipelines stop {name} EXECUTION`).",
                details={"running": [r.split(":", 1)[1] for r in running[:20]]},
            )
        for rec in self._all_executions(name):
            self.store.delete(EXECUTION_KIND, rec.name)
        self.store.delete(SM_KIND, name)

    def _all_executions(self, state_machine: str) -> list[ResourceRecord]:
        out: list[ResourceRecord] = []
        token: str | None = None
        while True:
            page = self.store.list(EXECUTION_KIND, list_query(parent=state_machine, max_results=100, next_token=token))
            out.extend(page.items)
            token = page.next_token
            if not token:
                return out

    # -- executions ---------------------------------------------------------------------------------------
    def start_execution(self, state_machine: str, req: StartExecutionRequest) -> tuple[ResourceRecord, bool]:
        """The execution, and whether this call created it (False: the same name and input ran already)."""
        sm = self.get_state_machine(state_machine)
        name = req.name or str(uuid.uuid4())
        validate_sfn_name(name, field="name")
        value = parse_input(req.input)
        key = execution_key(state_machine, name)
        spec = {
            "stateMachine": state_machine,
            "name": name,
            "input": value,
            "definition": self.current(sm, "definition"),
            "stateMachineRevision": sm.status.get("revision", 1),
            # Its Task states act as this service account when enforced (else unrestricted within the project).
            "roleArn": self.current(sm, "roleArn"),
            "roleEnforced": bool(self.current(sm, "roleEnforced")),
        }
        try:
            rec = self.store.create(
                kind=EXECUTION_KIND,
                name=key,
                arn=self.execution_arn(state_machine, name),
                state="RUNNING",
                spec=spec,
                status={},
                parent=state_machine,
            )
            return rec, True
        except ResourceInUse:
            existing = self.store.get(EXECUTION_KIND, key)
            if existing.state == "RUNNING" and existing.spec.get("input") == value:
                return existing, False  # Step Functions' idempotent StartExecution
            raise ResourceInUse(
                f"Execution '{name}' of state machine '{state_machine}' already exists "
                f"({existing.state}); execution names are unique per state machine: pick another name.",
                details={"code": "ExecutionAlreadyExists", "name": name},
            ) from None

    def get_execution(self, state_machine: str, name: str) -> ResourceRecord:
        try:
            return self.store.get(EXECUTION_KIND, execution_key(state_machine, name))
        except NotFound:
            raise NotFound(
                f"Execution '{name}' of state machine '{state_machine}' does not exist; "
                f"list them with `kamado pipelines list-executions {state_machine}`.",
                details={"stateMachine": state_machine, "name": name},
            ) from None

    def describe_execution(self, state_machine: str, name: str) -> dict[str, Any]:
        return self.describe_record(self.get_execution(state_machine, name))

    def describe_record(self, rec: ResourceRecord) -> dict[str, Any]:
        status = rec.status
        out: dict[str, Any] = {
            "executionArn": rec.arn,
            "stateMachineArn": self.state_machine_arn(rec.spec["stateMachine"]),
            "name": rec.spec["name"],
            "status": rec.state,
            "startDate": iso_time(rec.created_at),
            "input": json.dumps(rec.spec["input"]),
            "inputDetails": {"included": True},
        }
        if rec.state in TERMINAL:
            out["stopDate"] = iso_time(status.get("StopTime", rec.updated_at))
        if "Output" in status:
            out["output"] = json.dumps(status["Output"])
            out["outputDetails"] = {"included": True}
        for key in ("error", "cause"):
            if status.get(key.capitalize()) is not None:
                out[key] = status[key.capitalize()]
        if status.get("StopRequested") and rec.state == "RUNNING":
            out["stopRequested"] = True
        return out

    def list_executions(
        self,
        state_machine: str,
        *,
        status_filter: str | None = None,
        max_results: int = 50,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        self.get_state_machine(state_machine)
        if status_filter is not None and status_filter not in EXECUTION_STATES:
            raise InvalidSpec(
                f"statusFilter must be one of {list(EXECUTION_STATES)}.", details=[{"field": "statusFilter"}]
            )
        page = self.store.list(
            EXECUTION_KIND,
            list_query(
                statuses=EXECUTION_STATES,
                status_equals=status_filter,
                parent=state_machine,
                max_results=max_results,
                next_token=next_token,
            ),
        )
        items = []
        for r in page.items:
            item = {
                "executionArn": r.arn,
                "stateMachineArn": self.state_machine_arn(state_machine),
                "name": r.spec["name"],
                "status": r.state,
                "startDate": iso_time(r.created_at),
            }
            if r.state in TERMINAL:
                item["stopDate"] = iso_time(r.status.get("StopTime", r.updated_at))
            items.append(item)
        return {"executions": items, "nextToken": page.next_token}

    def stop_execution(self, state_machine: str, name: str, req: StopExecutionRequest) -> ResourceRecord:
        """Ask the runner to abort the execution; it records ``ExecutionAborted`` at its next pass."""
        rec = self.get_execution(state_machine, name)
        if rec.state != "RUNNING":
            raise IllegalTransition(
                f"Execution '{name}' is {rec.state} and cannot be stopped; start a new execution instead.",
                details={"name": name, "state": rec.state},
            )
        return self.store.update_status(
            EXECUTION_KIND,
            rec.name,
            {"StopRequested": {"error": req.error, "cause": req.cause}},
        )

    def history(
        self,
        state_machine: str,
        name: str,
        *,
        max_results: int = 1000,
        next_token: str | None = None,
        reverse_order: bool = False,
    ) -> dict[str, Any]:
        rec = self.get_execution(state_machine, name)
        if not 1 <= max_results <= 1000:
            raise InvalidSpec("maxResults must be between 1 and 1000.", details=[{"field": "maxResults"}])
        try:
            after = int(next_token) if next_token else 0
        except ValueError:
            raise InvalidSpec(
                "nextToken is not one this API returned; start again without it.", details=[{"field": "nextToken"}]
            ) from None
        events = self.store.read_history(
            EXECUTION_KIND, rec.name, after_event_id=after, limit=max_results + 1, reverse=reverse_order
        )
        more = len(events) > max_results
        events = events[:max_results]
        return {
            "events": [
                {
                    "id": e.event_id,
                    "previousEventId": e.previous_event_id,
                    "timestamp": iso_time(e.ts),
                    "type": e.type,
                    **({_details_key(e.type): e.details} if e.details else {}),
                }
                for e in events
            ],
            "nextToken": str(events[-1].event_id) if more and events else None,
        }


def _details_key(event_type: str) -> str:
    """Step Functions names each event's details after its type: ``TaskFailed`` → ``taskFailedEventDetails``."""
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[0].lower() + event_type[1:] + "EventDetails"
