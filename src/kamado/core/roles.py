"""Pipelines act as a service account: a state machine's ``roleArn`` names one, as a Step Functions state
machine names the IAM role its Task states call AWS with.

Capabilities that do work on someone's behalf in the background (the pipeline runner) only know this
protocol; the security package implements it (checks the role's role bindings and audits the decision), so
the capability never imports ``kamado.security``.
"""

from __future__ import annotations

import re
from typing import Protocol

#: ``arn:aws:iam::<account>:role/[<path>/]<name>`` (as boto3 users write it) or the same under ``arn:kamado``.
ROLE_ARN = re.compile(r"^arn:(?:aws|kamado):iam::[^:]*:role/(?:[^:]*/)?([A-Za-z0-9+=,.@_-]{1,64})$")
ROLE_ARN_HINT = (
    "arn:aws:iam::<account>:role/<service-account> (or arn:kamado:iam::local:role/<service-account>), naming a "
    "service account created with `kamado principals create NAME --service-account`"
)


def role_principal(role_arn: str | None) -> str | None:
    """The service account a role ARN names, or None (no role, or not of the role ARN form)."""
    if not role_arn:
        return None
    match = ROLE_ARN.fullmatch(role_arn)
    return match.group(1) if match else None


class TaskAuthorizer(Protocol):
    def check(self, principal: str, action: str, resource: str, *, project: str, via: str) -> str | None:
        """None when ``principal`` may take ``action`` on ``resource`` in ``project``; else why not (a
        message naming the principal and the action). ``via`` names the work, for the audit log."""
