"""Service accounts as pipeline roles: who may attach one to a state machine (PassRole), and what a Task
state may do under it.

A state machine whose ``roleArn`` names a service account runs every Task state under that account's
role bindings, in the execution's project: a Task creating a training job needs ``CreateTrainingJob`` on
its name, a Task invoking a function ``InvokeFunction`` on the function. Each decision is audited with the
account as principal. Attaching an account is refused unless the caller holds every right it has (a caller
cannot launder rights through a pipeline, as a token cannot carry more rights than its creator's).

A ``roleArn`` that names no principal here (an AWS role of a definition written for Step Functions) is
accepted, as Step Functions accepts it, and not enforced: its Tasks run as a state machine's without a role.
Whether a role is enforced is decided when the state machine is created or updated; an enforced role whose
account is deleted later fails the Tasks (fail closed).
"""

from __future__ import annotations

import time

from kamado.core.errors import Forbidden, InvalidSpec, NotFound
from kamado.core.roles import ROLE_ARN_HINT, role_principal
from kamado.security.policy import allowed
from kamado.security.records import Principal
from kamado.security.service import Caller, SecurityService

#: How long a role's bindings are reused before they are read again (a revoked binding takes effect within it).
_CACHE_S = 2.0


class RoleAuthorizer:
    def __init__(self, service: SecurityService) -> None:
        self.service = service
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    # -- attaching a role -----------------------------------------------------------------------------------
    def check_pass(self, caller: Caller, role_arn: str | None, *, field: str = "roleArn") -> bool:
        """Raise unless ``caller`` may make a state machine run as the service account ``role_arn`` names.
        True when kamado will enforce the role (it names a service account), False when it will not."""
        if not role_arn:
            return False
        name = role_principal(role_arn)
        if name is None:
            raise InvalidSpec(
                f"{field} {role_arn[:120]!r} is not a role ARN; use {ROLE_ARN_HINT}.",
                details=[{"field": field, "message": "not a role ARN"}],
            )
        try:
            principal = self.service.store.get_principal(name)
        except NotFound:
            # A role of AWS's (a definition written for Step Functions) that names no service account here:
            # accepted as Step Functions would, and not enforced (see docs/security.md).
            return False
        if principal.type != "ServiceAccount":
            raise InvalidSpec(
                f"{field} names '{name}', a {principal.type}; a pipeline runs as a service account, not a user.",
                details=[{"field": field, "message": "not a service account"}],
            )
        beyond = caller.beyond(principal.bindings)
        if beyond:
            raise Forbidden(
                f"'{caller.principal}' cannot attach service account '{name}': it holds {beyond[0].role} on project "
                f"'{beyond[0].project}' (resources '{beyond[0].resource}'), which '{caller.principal}' does not.",
                details={"Action": "PassRole", "field": field},
            )
        return True

    # -- a Task state's call --------------------------------------------------------------------------------
    def check(self, principal: str, action: str, resource: str, *, project: str, via: str) -> str | None:
        found = self._principal(principal)
        if found is None:
            reason = f"service account '{principal}' (the state machine's roleArn) no longer exists"
        elif found.type != "ServiceAccount":
            reason = f"'{principal}' (the state machine's roleArn) is a {found.type}, not a service account"
        elif allowed(found.bindings, action, project, resource):
            self._audit(principal, action, resource, project, via, "Allowed", 200, "")
            return None
        else:
            reason = (
                f"service account '{principal}' (the state machine's roleArn) is not allowed to {action} on "
                f"'{resource}' in project '{project}'"
            )
        self._audit(principal, action, resource, project, via, "Denied", 403, reason)
        return (
            f"AccessDenied: {reason}; give it a role binding that grants it "
            f"(POST /api/v1/principals/{principal}/role-bindings)."
        )

    def _principal(self, name: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < _CACHE_S:
            return hit[1]
        try:
            found: Principal | None = self.service.store.get_principal(name)
        except NotFound:
            found = None
        self._cache[name] = (now, found)
        return found

    def _audit(
        self, principal: str, action: str, resource: str, project: str, via: str, outcome: str, status: int, why: str
    ) -> None:
        self.service.audit(
            principal=principal,
            action=action,
            resource=resource,
            outcome=outcome,
            status=status,
            source_ip="pipeline",
            method="TASK",
            path=via,
            reason=why,
            project=project,
        )
