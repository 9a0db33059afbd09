"""SDK methods for tokens, principals, secrets and the audit log (mixed into :class:`kamado.Client`).

Also where the client finds its API token: ``token=``, else ``KAMADO_TOKEN``, else the local admin token
file in ``KAMADO_HOME`` -- the last only for that home's own server, so a token never travels to another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from kamado.core.settings import kamado_home

TOKEN_FILE = "admin.token"


def discover_token(url: str, *, autostarted: bool) -> str | None:
    env = os.environ.get("KAMADO_TOKEN")
    if env:
        return env.strip()
    home = kamado_home()
    try:
        info = json.loads((home / "server.json").read_text())
    except (OSError, ValueError):
        info = {}
    own_server = autostarted or str(info.get("url", "")).rstrip("/") == url.rstrip("/")
    path = home / TOKEN_FILE
    if own_server and path.exists():
        return path.read_text().strip() or None
    return None


class SecurityMethods:
    """Needs ``_request`` from the client it is mixed into."""

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:  # pragma: no cover - provided by Client
        raise NotImplementedError

    # -- identity and tokens --------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/whoami")

    def create_token(
        self,
        *,
        principal: str | None = None,
        expires_in_s: int | None = None,
        description: str = "",
        role_bindings: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """A new token; its value (``Token``) is in this answer only. ``role_bindings`` limits it to those
        bindings (``{"Project", "Role", "Resource"}``, each within the principal's)."""
        body: dict[str, Any] = {"Description": description}
        if principal:
            body["Principal"] = principal
        if expires_in_s:
            body["ExpiresInSeconds"] = expires_in_s
        if role_bindings is not None:
            body["RoleBindings"] = role_bindings
        return self._request("POST", "/api/v1/tokens", json=body)

    def list_tokens(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/tokens")["Tokens"]

    def revoke_token(self, token_id: str) -> None:
        self._request("DELETE", f"/api/v1/tokens/{token_id}")

    # -- principals and projects ----------------------------------------------------------------------
    def create_principal(
        self, name: str, *, type: str = "User", role_bindings: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        body = {"Name": name, "Type": type, "RoleBindings": role_bindings or []}
        return self._request("POST", "/api/v1/principals", json=body)

    def list_principals(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/principals")["Principals"]

    def delete_principal(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/principals/{name}")

    def put_role_binding(self, principal: str, role: str, *, project: str = "default", resource: str = "*") -> None:
        body = {"Project": project, "Role": role, "Resource": resource}
        self._request("POST", f"/api/v1/principals/{principal}/role-bindings", json=body)

    def create_project(self, name: str, description: str = "") -> None:
        self._request("POST", "/api/v1/projects", json={"Name": name, "Description": description})

    # -- audit ----------------------------------------------------------------------------------------
    def list_audit_events(self, **params: Any) -> dict[str, Any]:
        """One page, newest first; filters: Principal, Action, Outcome, StartTime, EndTime, MaxResults."""
        query = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", "/api/v1/audit", params=query)

    def iter_audit_events(self, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.list_audit_events(**params, NextToken=token)
            yield from page["AuditEvents"]
            token = page.get("NextToken")
            if not token:
                return

    # -- secrets --------------------------------------------------------------------------------------
    def create_secret(self, name: str, value: str, *, description: str = "") -> dict[str, Any]:
        return self._request("POST", "/api/v1/secrets", json={"Name": name, "Value": value, "Description": description})

    def rotate_secret(self, name: str, value: str) -> dict[str, Any]:
        return self._request("PUT", f"/api/v1/secrets/{name}", json={"Value": value})

    def describe_secret(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/secrets/{name}")

    def list_secrets(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/secrets")["Secrets"]

    def delete_secret(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/secrets/{name}")

    def rotate_master_key(self) -> dict[str, Any]:
        return self._request("POST", "/api/v1/master-key/rotate")
