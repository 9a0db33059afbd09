"""Which action each HTTP route performs, named like SageMaker's API (``CreateTrainingJob``, ...).

The table is the single place that says what a route needs; the auth middleware refuses a route it
cannot find here to everyone but an admin (fail closed), and a test walks every route of the app and
fails when one is missing, so a new route cannot ship without a decision about who may call it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kamado.security.policy import ADMIN_ONLY

#: Routes anyone may call, with or without a token (A8: the explicit public allowlist).
PUBLIC = "Public"
#: Any authenticated principal may call these; the route itself limits them to the caller's own objects.
SELF_SERVICE = frozenset({"GetCallerIdentity", "CreateToken", "ListTokens", "RevokeToken"})

_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    # The web console's page and static assets hold no data; the console then calls the API with a token.
    ("GET", "/"): PUBLIC,
    ("GET", "/console/{path:path}"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): "GetApiSchema",
    ("GET", "/api/v1/docs"): "GetApiSchema",
    ("GET", "/docs/oauth2-redirect"): "GetApiSchema",
    ("GET", "/api/v1/info"): "GetServerInfo",
    ("GET", "/api/v1/runtime"): "GetRuntimeUrl",
    # training
    ("POST", "/api/v1/training-jobs"): "CreateTrainingJob",
    ("GET", "/api/v1/training-jobs"): "ListTrainingJobs",
    ("GET", "/api/v1/training-jobs/{name}"): "DescribeTrainingJob",
    ("POST", "/api/v1/training-jobs/{name}/stop"): "StopTrainingJob",
    ("POST", "/api/v1/training-jobs/{name}/rerun"): "CreateTrainingJob",
    ("GET", "/api/v1/training-jobs/{name}/logs"): "GetTrainingJobLogs",
    ("GET", "/api/v1/training-jobs/{name}/metrics"): "GetTrainingJobMetrics",
    # tuning
    ("POST", "/api/v1/tuning-jobs"): "CreateHyperParameterTuningJob",
    ("GET", "/api/v1/tuning-jobs"): "ListHyperParameterTuningJobs",
    ("GET", "/api/v1/tuning-jobs/{name}"): "DescribeHyperParameterTuningJob",
    ("POST", "/api/v1/tuning-jobs/{name}/stop"): "StopHyperParameterTuningJob",
    ("GET", "/api/v1/tuning-jobs/{name}/training-jobs"): "ListTrainingJobsForHyperParameterTuningJob",
    # artifacts
    ("GET", "/api/v1/trees/{digest}"): "DescribeUpload",
    ("PUT", "/api/v1/trees/{digest}"): "UploadArtifacts",
    ("GET", "/api/v1/artifacts/content"): "GetArtifact",
    # hosting
    ("POST", "/api/v1/models"): "CreateModel",
    ("GET", "/api/v1/models"): "ListModels",
    ("GET", "/api/v1/models/{name}"): "DescribeModel",
    ("DELETE", "/api/v1/models/{name}"): "DeleteModel",
    ("POST", "/api/v1/endpoint-configs"): "CreateEndpointConfig",
    ("GET", "/api/v1/endpoint-configs"): "ListEndpointConfigs",
    ("GET", "/api/v1/endpoint-configs/{name}"): "DescribeEndpointConfig",
    ("DELETE", "/api/v1/endpoint-configs/{name}"): "DeleteEndpointConfig",
    ("POST", "/api/v1/endpoints"): "CreateEndpoint",
    ("GET", "/api/v1/endpoints"): "ListEndpoints",
    ("GET", "/api/v1/endpoints/{name}"): "DescribeEndpoint",
    ("DELETE", "/api/v1/endpoints/{name}"): "DeleteEndpoint",
    ("POST", "/api/v1/endpoints/{name}/update"): "UpdateEndpoint",
    ("POST", "/api/v1/endpoints/{name}/weights-and-capacities"): "UpdateEndpointWeightsAndCapacities",
    ("PUT", "/api/v1/endpoints/{name}/variants/{variant}/scaling-policy"): "PutScalingPolicy",
    ("DELETE", "/api/v1/endpoints/{name}/variants/{variant}/scaling-policy"): "DeleteScalingPolicy",
    ("GET", "/api/v1/endpoints/{name}/logs"): "GetEndpointLogs",
    # batch
    ("POST", "/api/v1/transform-jobs"): "CreateTransformJob",
    ("GET", "/api/v1/transform-jobs"): "ListTransformJobs",
    ("GET", "/api/v1/transform-jobs/{name}"): "DescribeTransformJob",
    ("POST", "/api/v1/transform-jobs/{name}/stop"): "StopTransformJob",
    ("POST", "/api/v1/processing-jobs"): "CreateProcessingJob",
    ("GET", "/api/v1/processing-jobs"): "ListProcessingJobs",
    ("GET", "/api/v1/processing-jobs/{name}"): "DescribeProcessingJob",
    ("POST", "/api/v1/processing-jobs/{name}/stop"): "StopProcessingJob",
    ("GET", "/api/v1/processing-jobs/{name}/logs"): "GetProcessingJobLogs",
    # functions
    ("POST", "/api/v1/functions"): "CreateFunction",
    ("GET", "/api/v1/functions"): "ListFunctions",
    ("GET", "/api/v1/functions/{name}"): "GetFunction",
    ("DELETE", "/api/v1/functions/{name}"): "DeleteFunction",
    ("POST", "/api/v1/functions/{name}/invocations"): "InvokeFunction",
    ("GET", "/api/v1/functions/{name}/dead-letters"): "ListDeadLetters",
    ("POST", "/api/v1/functions/{name}/dead-letters/{request_id}/replay"): "ReplayDeadLetter",
    ("POST", "/api/v1/map-runs"): "StartMapRun",
    ("GET", "/api/v1/map-runs"): "ListMapRuns",
    ("GET", "/api/v1/map-runs/{name}"): "DescribeMapRun",
    ("POST", "/api/v1/map-runs/{name}/stop"): "StopMapRun",
    ("POST", "/api/v1/map-runs/{name}/redrive"): "RedriveMapRun",
    # pipelines (Step Functions)
    ("POST", "/api/v1/state-machines"): "CreateStateMachine",
    ("GET", "/api/v1/state-machines"): "ListStateMachines",
    ("GET", "/api/v1/state-machines/{name}"): "DescribeStateMachine",
    ("PUT", "/api/v1/state-machines/{name}"): "UpdateStateMachine",
    ("DELETE", "/api/v1/state-machines/{name}"): "DeleteStateMachine",
    ("POST", "/api/v1/state-machines/{name}/executions"): "StartExecution",
    ("GET", "/api/v1/state-machines/{name}/executions"): "ListExecutions",
    ("GET", "/api/v1/state-machines/{name}/executions/{execution}"): "DescribeExecution",
    ("POST", "/api/v1/state-machines/{name}/executions/{execution}/stop"): "StopExecution",
    ("GET", "/api/v1/state-machines/{name}/executions/{execution}/history"): "GetExecutionHistory",
    # schedules and triggers (EventBridge)
    ("POST", "/api/v1/schedules"): "CreateSchedule",
    ("GET", "/api/v1/schedules"): "ListSchedules",
    ("GET", "/api/v1/schedules/{name}"): "GetSchedule",
    ("POST", "/api/v1/schedules/{name}/state"): "UpdateScheduleState",
    ("DELETE", "/api/v1/schedules/{name}"): "DeleteSchedule",
    ("POST", "/api/v1/triggers"): "CreateTrigger",
    ("GET", "/api/v1/triggers"): "ListTriggers",
    ("GET", "/api/v1/triggers/{name}"): "DescribeTrigger",
    ("POST", "/api/v1/triggers/{name}/state"): "UpdateTriggerState",
    ("DELETE", "/api/v1/triggers/{name}"): "DeleteTrigger",
    # security
    ("GET", "/api/v1/whoami"): "GetCallerIdentity",
    ("POST", "/api/v1/tokens"): "CreateToken",
    ("GET", "/api/v1/tokens"): "ListTokens",
    ("DELETE", "/api/v1/tokens/{token_id}"): "RevokeToken",
    ("POST", "/api/v1/principals"): "CreatePrincipal",
    ("GET", "/api/v1/principals"): "ListPrincipals",
    ("GET", "/api/v1/principals/{name}"): "DescribePrincipal",
    ("DELETE", "/api/v1/principals/{name}"): "DeletePrincipal",
    ("POST", "/api/v1/principals/{name}/role-bindings"): "PutRoleBinding",
    ("DELETE", "/api/v1/principals/{name}/role-bindings"): "DeleteRoleBinding",
    ("POST", "/api/v1/projects"): "CreateProject",
    ("GET", "/api/v1/projects"): "ListProjects",
    ("GET", "/api/v1/audit"): "ListAuditEvents",
    ("POST", "/api/v1/secrets"): "CreateSecret",
    ("GET", "/api/v1/secrets"): "ListSecrets",
    ("GET", "/api/v1/secrets/{name:path}"): "DescribeSecret",
    ("PUT", "/api/v1/secrets/{name:path}"): "RotateSecret",
    ("DELETE", "/api/v1/secrets/{name:path}"): "DeleteSecret",
    ("POST", "/api/v1/master-key/rotate"): "RotateMasterKey",
}

#: Actions on server-wide objects (principals, role bindings, projects, the audit log, the master key), which
#: belong to no project: they are authorised against the ``default`` project whatever project a request
#: names, so a role on another project never reaches them. They are exactly the admin-only actions. Secrets
#: are not among them: each belongs to a project, and only that project's workloads can reference it.
SERVER_WIDE = ADMIN_ONLY

#: Action of a route that is not in the table: only an admin (``*``) holds it.
UNMAPPED = "UnmappedRoute"

#: The data plane's one action, checked by the router (kamado.hosting.router_auth), not by the control plane.
INVOKE_ENDPOINT = "InvokeEndpoint"
#: Routes of the router (its own process and address; see docs/security.md). Kept apart from ``_ROUTES`` so
#: that :func:`action_for` never maps a control-plane path to a data-plane action.
ROUTER_ROUTES: dict[tuple[str, str], str] = {("POST", "/endpoints/{name}/invocations"): INVOKE_ENDPOINT}


@dataclass(frozen=True)
class RouteAction:
    action: str
    #: The resource the call names (a path's ``{name}``-like parameter), or "*" for collection routes.
    resource: str
    template: str


def _compile(template: str) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{"):
            out += "(.+)" if part.endswith(":path}") else "([^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}$")


_COMPILED = [(method, _compile(path), path, action) for (method, path), action in _ROUTES.items()]


def route_table() -> dict[tuple[str, str], str]:
    """A copy of the (method, path template) -> action table, the router's route included (for tests and
    the docs)."""
    return {**_ROUTES, **ROUTER_ROUTES}


def action_for(method: str, path: str) -> RouteAction | None:
    """The action a request performs, or None when no route in the table matches it."""
    method = "GET" if method == "HEAD" else method
    for m, pattern, template, action in _COMPILED:
        if m == method and (match := pattern.match(path)):
            groups = match.groups()
            return RouteAction(action=action, resource=groups[0] if groups else "*", template=template)
    return None
