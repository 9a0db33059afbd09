"""Shared helpers for the security tests: every route of the app, principals with tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.routing import Mount

MISSING = "zz-missing"


def all_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route, walking included routers and mounts."""
    out: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if type(r).__name__ == "_IncludedRouter":
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif isinstance(r, Mount):
                out.append(("GET", prefix + r.path + "/{path:path}"))
            elif hasattr(r, "routes") and not hasattr(r, "methods"):
                walk(r.routes, prefix + getattr(r, "path", ""))
            else:
                out.extend((m, prefix + r.path) for m in sorted(getattr(r, "methods", None) or ()) if m != "HEAD")

    walk(app.routes, "")
    return sorted(set(out))


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", MISSING, template)


def make_principal(url: str, admin: str, name: str, role: str, project: str = "default", **token: Any) -> str:
    """Create ``name`` with one role binding and return a fresh token for it."""
    h = {"Authorization": f"Bearer {admin}"}
    if project != "default":
        httpx.post(f"{url}/api/v1/projects", json={"Name": project}, headers=h)
    r = httpx.post(
        f"{url}/api/v1/principals",
        json={"Name": name, "RoleBindings": [{"Project": project, "Role": role}]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = httpx.post(f"{url}/api/v1/tokens", json={"Principal": name, **token}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["Token"])
