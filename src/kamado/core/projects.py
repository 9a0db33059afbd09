"""The project a piece of work acts in, carried in a context variable.

Resources live in projects (``default`` unless a request names another with ``X-Kamado-Project``). The
API's auth middleware sets :data:`current_project` for a request; the metadata store reads it, so every
read and write a route makes is confined to that project without each capability passing a project
around. Reconcilers and other background loops run with no project set and see every project; where they
create resources on someone's behalf (a tuning job's trials, a pipeline's jobs) they run that work inside
:func:`project_scope` of the owner's project.

A context variable rather than a parameter because it follows the work: asyncio tasks and Starlette's
threadpool (sync routes) copy the context, while plain ``threading.Thread`` workers start with none,
which is what a long-lived background worker should have.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from kamado.core.errors import InvalidSpec
from kamado.core.names import NAME_HINT, NAME_PATTERN

#: Where a resource lives when nobody names a project (and where every resource created before 0.x lived).
DEFAULT_PROJECT = "default"
#: The request header that names the project of a call.
PROJECT_HEADER = "X-Kamado-Project"

#: The project of the work in progress; None: no project (background work, sees everything).
current_project: ContextVar[str | None] = ContextVar("kamado_current_project", default=None)


@contextmanager
def project_scope(name: str | None) -> Iterator[None]:
    """Run the block in project ``name`` (None: no project, i.e. unscoped), restoring the previous one."""
    token = current_project.set(name)
    try:
        yield
    finally:
        current_project.reset(token)


def check_project_name(value: str) -> str:
    """``value`` if it is a well-formed project name, else InvalidSpec naming the header and the fix."""
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidSpec(
            f"{PROJECT_HEADER} {value[:80]!r} is not a valid project name: {NAME_HINT}.",
            details=[{"field": PROJECT_HEADER, "message": NAME_HINT}],
        )
    return value
