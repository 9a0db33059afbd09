"""Roles and the IAM-like policy evaluation underneath them.

A principal holds role bindings ``(project, role, resource pattern)``. Each role is a policy: a list of
allowed action patterns minus actions only an admin may take. A call is allowed when any binding covers
the call's project, its resource name (fnmatch pattern) and its action. Everything else is denied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from kamado.core.projects import DEFAULT_PROJECT

__all__ = ["ADMIN_ONLY", "DEFAULT_PROJECT", "RANK", "ROLES", "Binding", "allowed", "covered"]

#: Actions no role but admin holds, whatever its patterns say (identity, audit and key management).
ADMIN_ONLY = frozenset(
    {
        "CreatePrincipal",
        "ListPrincipals",
        "DescribePrincipal",
        "DeletePrincipal",
        "PutRoleBinding",
        "DeleteRoleBinding",
        "CreateProject",
        "ListAuditEvents",
        "RotateMasterKey",
        "UnmappedRoute",
    }
)

_VIEWER = ("Describe*", "List*", "Get*")
ROLES: dict[str, tuple[str, ...]] = {
    "viewer": _VIEWER,
    "editor": (
        *_VIEWER,
        "Create*",
        "Update*",
        "Delete*",
        "Stop*",
        "Start*",
        "Redrive*",
        "Replay*",
        "Invoke*",
        "Put*",
        "Upload*",
        "RotateSecret",
    ),
    "admin": ("*",),
    #: Call endpoints and functions, nothing else (for applications that only consume models).
    "invoker": ("Invoke*", "GetRuntimeUrl", "GetCallerIdentity"),
}
#: Strength order, used to refuse handing out more than one holds.
RANK = {"invoker": 0, "viewer": 1, "editor": 2, "admin": 3}


@dataclass(frozen=True)
class Binding:
    project: str
    role: str
    resource: str = "*"

    def allows(self, action: str, project: str, resource: str) -> bool:
        if self.project not in ("*", project):
            return False
        if not fnmatchcase(resource, self.resource) and self.resource != "*":
            return False
        if self.role != "admin" and action in ADMIN_ONLY:
            return False
        return any(fnmatchcase(action, p) for p in ROLES.get(self.role, ()))

    def covers(self, other: Binding) -> bool:
        """True when holding ``self`` gives at least every right ``other`` gives."""
        if self.project != "*" and self.project != other.project:
            return False
        if self.resource != "*" and self.resource != other.resource:
            return False
        if self.role == other.role or self.role == "admin":
            return True
        # editor's patterns include every viewer and invoker action; viewer's include no invoker action.
        return self.role == "editor" and other.role in ("viewer", "invoker")


def allowed(bindings: Iterable[Binding], action: str, project: str, resource: str) -> bool:
    return any(b.allows(action, project, resource) for b in bindings)


def covered(holder: Iterable[Binding], wanted: Iterable[Binding]) -> list[Binding]:
    """The bindings in ``wanted`` that ``holder`` does not cover (empty: no escalation)."""
    mine = list(holder)
    return [w for w in wanted if not any(m.covers(w) for m in mine)]
