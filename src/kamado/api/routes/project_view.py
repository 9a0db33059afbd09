"""``Project`` in describe and list outputs.

The store confines every read a request makes to the request's project (kamado.core.projects), so each
record a route returns lives in that project: the routes add it to their output here rather than every
capability's record-to-JSON function learning about projects.
"""

from __future__ import annotations

from typing import Any

from kamado.core.projects import DEFAULT_PROJECT, current_project


def request_project() -> str:
    """The project the current request acts in."""
    return current_project.get() or DEFAULT_PROJECT


def with_project(doc: dict[str, Any], field: str = "Project") -> dict[str, Any]:
    """A describe output with the resource's project (``field``: ``project`` for Step Functions' camelCase)."""
    return {**doc, field: request_project()}


def with_projects(page: dict[str, Any], key: str, field: str = "Project") -> dict[str, Any]:
    """A list output whose items under ``key`` each carry their project."""
    project = request_project()
    return {**page, key: [{**item, field: project} for item in page.get(key, [])]}
