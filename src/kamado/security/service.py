"""Who is calling and what they may do: token authentication, authorization, token minting, audit.

This is the policy decision point; :mod:`kamado.api.auth` is the enforcement point that calls it for
every request. Decisions never depend on headers a client can forge (``X-Forwarded-For``, ...), A10.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamado.core.errors import Forbidden, InvalidSpec, NotFound
from kamado.security import tokens
from kamado.security.crypto import write_private
from kamado.security.policy import DEFAULT_PROJECT, ROLES, Binding, allowed, covered
from kamado.security.records import TokenRecord
from kamado.security.store import SecurityStore
from kamado.store.base import MetadataStore

log = logging.getLogger("kamado.security")

LOCAL_ADMIN = "local-admin"
TOKEN_FILE = "admin.token"
PRINCIPAL_TYPES = ("User", "ServiceAccount")
MAX_TOKEN_LIFETIME_S = 10 * 365 * 86400
LOCAL_ADMIN_CACHE_S = 1.0


@dataclass(frozen=True)
class Caller:
    """An authenticated principal with its bindings as they were when the request arrived."""

    principal: str
    bindings: tuple[Binding, ...]
    #: None for the anonymous loopback caller acting as the local admin (auth "auto" on loopback).
    token_id: str | None
    #: What the token is limited to (a scoped token); None: all of the principal's bindings.
    scope: tuple[Binding, ...] | None = None

    def may(self, action: str, resource: str = "*", project: str = DEFAULT_PROJECT) -> bool:
        """Allowed by the principal's bindings and, for a scoped token, by its scope too."""
        return allowed(self.bindings, action, project, resource) and (
            self.scope is None or allowed(self.scope, action, project, resource)
        )

    def beyond(self, wanted: Iterable[Binding]) -> list[Binding]:
        """The bindings of ``wanted`` this caller does not hold (through its principal and its token's scope):
        what it may not hand to a token, a principal or a pipeline's role. Empty: no escalation."""
        wanted = list(wanted)
        out = covered(self.bindings, wanted)
        if self.scope is not None:
            out += [w for w in covered(self.scope, wanted) if w not in out]
        return out


def check_binding(project: str, role: str, resource: str) -> Binding:
    if role not in ROLES:
        raise InvalidSpec(
            f"Unknown role {role!r}; use one of {sorted(ROLES)}.", details=[{"field": "Role", "message": "unknown"}]
        )
    if not project or len(project) > 64:
        raise InvalidSpec("Project must be 1-64 characters ('*' for every project).", details=[{"field": "Project"}])
    if not resource or len(resource) > 128:
        raise InvalidSpec(
            "Resource must be a 1-128 character name pattern such as '*' or 'prod-*'.", details=[{"field": "Resource"}]
        )
    return Binding(project=project, role=role, resource=resource)


class SecurityService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = SecurityStore(store)
        self._local_admin: tuple[float, Caller] | None = None

    # -- bootstrap ------------------------------------------------------------------------------------
    def bootstrap(self, home: Path) -> Path:
        """Make sure the default project, the local admin and its token file exist; returns the file."""
        self.store.ensure_project(DEFAULT_PROJECT)
        try:
            self.store.get_principal(LOCAL_ADMIN)
        except NotFound:
            try:
                self.store.create_principal(LOCAL_ADMIN, "User", None, [Binding("*", "admin", "*")])
            except Exception:
                self.store.get_principal(LOCAL_ADMIN)  # created by a racing server: fine if it exists now
        path = home / TOKEN_FILE
        if path.exists() and self.authenticate(path.read_text().strip()) is not None:
            path.chmod(0o600)
            return path
        plaintext, _ = self._mint(LOCAL_ADMIN, None, "local admin token (KAMADO_HOME)", None)
        home.mkdir(parents=True, exist_ok=True)
        write_private(path, plaintext + "\n")
        return path

    # -- authentication -------------------------------------------------------------------------------
    def authenticate(self, token: str) -> Caller | None:
        """The caller a token stands for, or None for any invalid, unknown, expired or revoked token."""
        parsed = tokens.parse(token)
        if parsed is None:
            tokens.matches("x" * 43, None, None)  # same work as an unknown id
            return None
        token_id, secret = parsed
        rec = self.store.find_token(token_id)
        ok = tokens.matches(secret, rec.salt if rec else None, rec.hash if rec else None)
        if not ok or rec is None or not rec.usable(time.time()):
            return None
        try:
            principal = self.store.get_principal(rec.principal)
        except NotFound:
            return None
        return Caller(principal=principal.name, bindings=principal.bindings, token_id=token_id, scope=rec.scope)

    def cached_local_admin(self) -> Caller | None:
        """The local admin if it was loaded within the last second, without touching the database."""
        hit = self._local_admin
        return hit[1] if hit is not None and time.monotonic() - hit[0] <= LOCAL_ADMIN_CACHE_S else None

    def local_admin(self) -> Caller:
        """The anonymous loopback caller; cached for a second (it is asked for on every such request)."""
        now = time.monotonic()
        if self._local_admin is None or now - self._local_admin[0] > LOCAL_ADMIN_CACHE_S:
            principal = self.store.get_principal(LOCAL_ADMIN)
            self._local_admin = (now, Caller(principal=principal.name, bindings=principal.bindings, token_id=None))
        return self._local_admin[1]

    # -- tokens ---------------------------------------------------------------------------------------
    def _mint(
        self,
        principal: str,
        created_by: str | None,
        description: str,
        expires_in_s: float | None,
        scope: tuple[Binding, ...] | None = None,
    ) -> tuple[str, TokenRecord]:
        new = tokens.mint()
        now = time.time()
        rec = TokenRecord(
            token_id=new.token_id,
            principal=principal,
            salt=new.salt,
            hash=new.hash,
            description=description,
            created_at=now,
            created_by=created_by,
            expires_at=now + expires_in_s if expires_in_s else None,
            revoked_at=None,
            scope=scope,
        )
        self.store.add_token(rec)
        return new.plaintext, rec

    def create_token(
        self,
        caller: Caller,
        principal: str | None,
        *,
        description: str = "",
        expires_in_s: float | None = None,
        scope: list[Binding] | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token for ``principal`` (default: the caller), limited to ``scope`` when given (each binding
        within the principal's). A token never carries more rights than the caller holds: minting for
        someone else needs admin rights covering what the token will carry, and a scoped token mints only
        tokens within its own scope (by default, the same scope)."""
        target = principal or caller.principal
        if expires_in_s is not None and not 1 <= expires_in_s <= MAX_TOKEN_LIFETIME_S:
            raise InvalidSpec(
                f"ExpiresInSeconds must be between 1 and {MAX_TOKEN_LIFETIME_S}.",
                details=[{"field": "ExpiresInSeconds", "message": "out of range"}],
            )
        if len(description) > 256:
            raise InvalidSpec("Description is longer than 256 characters.", details=[{"field": "Description"}])
        holder = self.store.get_principal(target)
        if scope is not None:
            if not scope or len(scope) > 50:
                raise InvalidSpec(
                    "RoleBindings of a token must list 1-50 bindings (leave it out for all of the principal's).",
                    details=[{"field": "RoleBindings", "message": "1-50 bindings"}],
                )
            outside = covered(holder.bindings, scope)
            if outside:
                raise InvalidSpec(
                    f"A token's RoleBindings must lie within its principal's: '{target}' holds no {outside[0].role} "
                    f"on project '{outside[0].project}' for resources '{outside[0].resource}'.",
                    details=[{"field": "RoleBindings", "message": "outside the principal's role bindings"}],
                )
        elif target == caller.principal and caller.scope is not None:
            scope = list(caller.scope)  # a scoped token's own new token stays as narrow as it is
        if target == caller.principal and caller.scope is not None:
            beyond_scope = covered(caller.scope, scope or [])
            if beyond_scope:
                raise Forbidden(
                    f"This token is limited to a scope that does not include {beyond_scope[0].role} on project "
                    f"'{beyond_scope[0].project}'; a token cannot mint a token with more rights than its own.",
                    details=[{"field": "RoleBindings", "message": "would escalate privileges"}],
                )
        if target != caller.principal:
            if not caller.may("CreatePrincipal", target):
                raise Forbidden(
                    f"'{caller.principal}' may only create tokens for itself; ask an admin to mint a token for "
                    f"'{target}'.",
                    details=[{"field": "Principal", "message": "not the caller"}],
                )
            beyond = caller.beyond(scope if scope is not None else holder.bindings)
            if beyond:
                raise Forbidden(
                    f"'{target}' holds rights '{caller.principal}' does not ({beyond[0].role} on project "
                    f"'{beyond[0].project}'); a token cannot carry more rights than its creator's.",
                    details=[{"field": "Principal", "message": "would escalate privileges"}],
                )
        if holder.name == LOCAL_ADMIN and caller.principal != LOCAL_ADMIN:
            raise Forbidden("Only the local admin may mint local-admin tokens.", details=[{"field": "Principal"}])
        return self._mint(target, caller.principal, description, expires_in_s, None if scope is None else tuple(scope))

    def revoke_token(self, caller: Caller, token_id: str) -> None:
        rec = self.store.find_token(token_id)
        if rec is None or (rec.principal != caller.principal and not caller.may("DeletePrincipal", rec.principal)):
            # 404 rather than 403: callers learn nothing about other principals' token ids.
            raise NotFound(f"Could not find token '{token_id}'.", details={"TokenId": token_id})
        self.store.revoke_token(token_id)

    def list_tokens(self, caller: Caller) -> list[dict[str, Any]]:
        everyone = caller.may("ListPrincipals")
        return [r.public() for r in self.store.list_tokens(None if everyone else caller.principal)]

    # -- principals -----------------------------------------------------------------------------------
    def create_principal(self, caller: Caller, name: str, type_: str, bindings: list[Binding]) -> None:
        if type_ not in PRINCIPAL_TYPES:
            raise InvalidSpec(
                f"Type must be one of {list(PRINCIPAL_TYPES)}.", details=[{"field": "Type", "message": "unknown"}]
            )
        self._no_escalation(caller, bindings)
        for b in bindings:
            self._project_exists(b.project)
        self.store.create_principal(name, type_, caller.principal, bindings)

    def put_binding(self, caller: Caller, principal: str, binding: Binding) -> None:
        if principal == caller.principal:
            raise Forbidden(
                "A principal cannot change its own roles; ask another admin.", details=[{"field": "Principal"}]
            )
        self._no_escalation(caller, [binding])
        self._project_exists(binding.project)
        self.store.put_binding(principal, binding)

    def delete_binding(self, caller: Caller, principal: str, binding: Binding) -> None:
        if principal == caller.principal:
            raise Forbidden(
                "A principal cannot change its own roles; ask another admin.", details=[{"field": "Principal"}]
            )
        self.store.delete_binding(principal, binding)

    def delete_principal(self, caller: Caller, name: str) -> None:
        if name in (caller.principal, LOCAL_ADMIN):
            raise Forbidden(f"Principal '{name}' cannot be deleted by this caller.", details=[{"field": "Name"}])
        self.store.delete_principal(name)

    def _project_exists(self, project: str) -> None:
        if project != "*" and not self.store.project_exists(project):
            raise InvalidSpec(
                f"Project '{project}' does not exist; create it first (POST /api/v1/projects).",
                details=[{"field": "Project", "message": "no such project"}],
            )

    @staticmethod
    def _no_escalation(caller: Caller, wanted: list[Binding]) -> None:
        beyond = caller.beyond(wanted)
        if beyond:
            raise Forbidden(
                f"'{caller.principal}' cannot grant {beyond[0].role} on project '{beyond[0].project}': it does not "
                "hold that itself.",
                details=[{"field": "Role", "message": "would escalate privileges"}],
            )

    # -- audit ----------------------------------------------------------------------------------------
    def audit(
        self,
        *,
        principal: str | None,
        action: str,
        resource: str,
        outcome: str,
        status: int,
        source_ip: str,
        method: str,
        path: str,
        reason: str = "",
        project: str = DEFAULT_PROJECT,
    ) -> None:
        """Record one decision. Never given a request body, a header or a token: only names."""
        try:
            self.store.append_audit(
                ts=time.time(),
                principal=principal,
                action=action[:64],
                resource=resource[:256],
                project=project[:64],
                outcome=outcome,
                status=status,
                source_ip=source_ip[:64],
                method=method[:16],
                path=path[:1024],
                reason=reason[:500],
            )
        except Exception:
            log.exception("writing an audit event failed (%s %s by %s)", action, outcome, principal)
