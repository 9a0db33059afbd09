"""The seam through which a training job receives secrets, without ``training`` importing ``security``.

The API layer plugs an implementation in (``kamado.security.injection.SecretInjector``); without one,
jobs run exactly as before and an Environment value is passed through as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol


class SecretHooks(Protocol):
    def check(self, hyperparameters: Mapping[str, str], environment: Mapping[str, str]) -> None:
        """Raise InvalidSpec for credentials in plain text or references to missing secrets."""

    def resolve(self, environment: Mapping[str, str]) -> dict[str, str]:
        """{variable: plaintext} for each Environment entry that references a secret."""

    def redactor(self, values: Iterable[str]) -> Callable[[str], str]:
        """A function that masks each of ``values`` in a text."""
