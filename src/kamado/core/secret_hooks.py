"""The seam through which workloads receive secrets, without capabilities importing ``security``.

The API layer plugs a :class:`SecretHooks` implementation in (``kamado.security.injection.SecretInjector``);
without one, resources run exactly as before and a ``{{resolve:...}}`` value is passed through as written.

:class:`ResourceSecrets` is what a reconciler holds: it resolves a resource's references when its task is
submitted (so the stored task spec keeps the references, never the values) and masks those values in
everything the resource writes back (logs, failure reasons, exit messages), also after a server restart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from kamado.core.errors import KamadoError

log = logging.getLogger("kamado.secrets")

#: An Environment value that is exactly a reference: CloudFormation's dynamic-reference syntax.
REFERENCE = re.compile(r"^\{\{resolve:(?:secretsmanager|ssm-secure):([^}]{1,128})\}\}$")

#: What a resource's text becomes when its secrets cannot be loaded to mask them: withheld, never leaked.
WITHHELD = "[kamado: text withheld: the resource's secrets could not be loaded to redact it]\n"


def referenced_name(value: str) -> str | None:
    """The secret an Environment value refers to, or None when it is a plain value."""
    m = REFERENCE.match(value)
    return m.group(1) if m else None


class SecretHooks(Protocol):
    def check(self, hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> None:
        """Raise InvalidSpec for credentials in plain text or references to secrets missing from the current
        project (a workload can only use its own project's secrets)."""

    def check_environment(self, environment: Mapping[str, str], *, field: str) -> None:
        """As ``check`` for an environment alone, with errors naming ``field`` (e.g. ``Environment.Variables``)."""

    def resolve(self, environment: Mapping[str, str], *, project: str | None = None) -> dict[str, str]:
        """{variable: plaintext} for each entry that references a secret of ``project`` (the workload's; None:
        the current work's project, else ``default``)."""

    def redactor(self, values: Iterable[str]) -> Callable[[str], str]:
        """A function that masks each of ``values`` in a text."""


class SecretResolutionError(KamadoError):
    """A referenced secret could not be read when the workload started (deleted since create, key lost)."""


class ResourceSecrets:
    """Secret injection and redaction for the resources of one reconciler.

    ``environment_of(name)`` returns a resource's declared environment (with its references); it is used
    to rebuild the redactor after a restart, when nothing is cached.
    """

    def __init__(
        self,
        environment_of: Callable[[str], Mapping[str, str]],
        project_of: Callable[[str], str | None] = lambda name: None,
    ) -> None:
        self.hooks: SecretHooks | None = None
        self._environment_of = environment_of
        self._project_of = project_of
        self._redactors: dict[str, Callable[[str], str]] = {}

    def inject(self, name: str, environment: Mapping[str, str]) -> dict[str, str]:
        """``environment`` with each reference replaced by its value, for the executor only."""
        if self.hooks is None:
            return dict(environment)
        try:
            resolved = self.hooks.resolve(environment, project=self._project_of(name))
        except KamadoError as exc:
            raise SecretResolutionError(f"a secret in Environment could not be read: {exc.message}") from exc
        self._redactors[name] = self.hooks.redactor(resolved.values())
        return {**environment, **resolved}

    def redact(self, name: str, text: str) -> str:
        """``text`` with every secret value resource ``name`` received masked."""
        if self.hooks is None or not text:
            return text
        redact = self._redactors.get(name)
        if redact is None:
            try:
                environment = self._environment_of(name)
                redact = self.hooks.redactor(self.hooks.resolve(environment, project=self._project_of(name)).values())
            except Exception:
                log.exception("could not load the secrets of %s for redaction; withholding its text", name)
                return WITHHELD
            self._redactors[name] = redact
        return redact(text)

    def forget(self, name: str) -> None:
        self._redactors.pop(name, None)


def redact_json(value: object, redact: Callable[[str], str]) -> object:
    """``value`` (JSON-shaped: dicts, lists, strings, numbers) with ``redact`` applied to every string,
    keys included: a function's result or error is as visible as its log."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: redact_json(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v, redact) for v in value]
    return value
