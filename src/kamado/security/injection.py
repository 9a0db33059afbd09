"""The security side of :class:`kamado.core.secret_hooks.SecretHooks`: checks, injection, redaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from kamado.security.credentials import check_no_credentials
from kamado.security.redaction import redactor
from kamado.security.secrets import SecretService, referenced_name

#: SageMaker script-mode plumbing: URIs and file names, never credentials.
_PLUMBING = frozenset({"sagemaker_program", "sagemaker_submit_directory", "sagemaker_region"})


class SecretInjector:
    def __init__(self, secrets: SecretService) -> None:
        self.secrets = secrets

    def check(self, hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> None:
        check_no_credentials(hyperparameters, field="HyperParameters", allow=_PLUMBING)
        plain = {k: v for k, v in environment.items() if referenced_name(v) is None}
        check_no_credentials(plain, field="Environment")
        self.secrets.check_references(environment, field="Environment")

    def check_environment(self, environment: Mapping[str, str], *, field: str) -> None:
        plain = {k: v for k, v in environment.items() if referenced_name(v) is None}
        check_no_credentials(plain, field=field)
        self.secrets.check_references(environment, field=field)

    def resolve(self, environment: Mapping[str, str], *, project: str | None = None) -> dict[str, str]:
        return self.secrets.resolve(environment, project=project)

    def redactor(self, values: Iterable[str]) -> Callable[[str], str]:
        return redactor(values)
