"""Frozen records the security store hands out (no SQLAlchemy row ever leaves the store module)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kamado.security.policy import Binding


@dataclass(frozen=True)
class Principal:
    name: str
    type: str
    created_at: float
    created_by: str | None = None
    bindings: tuple[Binding, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    principal: str
    salt: str
    hash: str
    description: str
    created_at: float
    created_by: str | None
    expires_at: float | None
    revoked_at: float | None
    #: The role bindings the token is limited to (each within its principal's); None: all of the principal's.
    scope: tuple[Binding, ...] | None = None

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def public(self) -> dict[str, object]:
        """What the API shows about a token: never the hash, the salt or the value."""
        return {
            "TokenId": self.token_id,
            "Principal": self.principal,
            "Description": self.description,
            "CreatedBy": self.created_by,
            "CreationTime": self.created_at,
            "ExpirationTime": self.expires_at,
            "RevocationTime": self.revoked_at,
            "Scope": None
            if self.scope is None
            else [{"Project": b.project, "Role": b.role, "Resource": b.resource} for b in self.scope],
        }


@dataclass(frozen=True)
class AuditEvent:
    id: int
    ts: float
    principal: str | None
    action: str
    resource: str
    project: str
    outcome: str
    status: int
    source_ip: str
    method: str
    path: str
    reason: str


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: int
    key_id: str
    ciphertext: str
    description: str
    created_by: str | None
    created_at: float
    project: str = "default"
