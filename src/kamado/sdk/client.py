"""``kamado.Client``: the SDK's HTTP layer. Imports no server code.

The transport is injectable (``httpx.MockTransport`` or ``httpx.ASGITransport``-style) so tests can run
the SDK against the app in process as well as over a real socket.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from kamado.core.errors import (
    Forbidden,
    InvalidSpec,
    KamadoError,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    error_from_problem,
)
from kamado.core.invocation import (
    CUSTOM_ATTRIBUTES_HEADER,
    ERROR_TYPE_HEADER,
    INFERENCE_ID_HEADER,
    INVOKED_VARIANT_HEADER,
    TARGET_VARIANT_HEADER,
    invocations_path,
)
from kamado.core.projects import PROJECT_HEADER
from kamado.sdk.errors import EndpointFailed, ModelError
from kamado.sdk.security import SecurityMethods, discover_token

#: Endpoint statuses a wait ends on with an error: nothing more will happen without the user acting.
_ENDPOINT_BROKEN = ("Failed", "UpdateRollbackFailed")


@dataclass(frozen=True)
class InvokeResult:
    """What InvokeEndpoint answered: the model's raw body and the headers a caller may need."""

    body: bytes
    content_type: str
    invoked_variant: str | None = None
    custom_attributes: str | None = None


class Client(SecurityMethods):
    def __init__(
        self,
        url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        autostart: bool = True,
        token: str | None = None,
        project: str | None = None,
    ) -> None:
        """``project``: the project every call acts in (``X-Kamado-Project``); default ``KAMADO_PROJECT``."""
        if url is None:
            url = os.environ.get("KAMADO_URL")
        autostarted = url is None and transport is None
        if url is None and transport is None:
            if not autostart:
                raise KamadoError("No kamado server: set KAMADO_URL or start one with `kamado server`.")
            from kamado.sdk.local_server import ensure_local_server

            url = ensure_local_server()
        # With only a transport (an app in process) the URL is nominal: a loopback name the server answers to.
        self.url = (url or "http://127.0.0.1").rstrip("/")
        token = token or discover_token(self.url, autostarted=autostarted)
        self.project: str | None = project or os.environ.get("KAMADO_PROJECT") or None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if self.project:
            headers[PROJECT_HEADER] = self.project
        self._http = httpx.Client(base_url=self.url, transport=transport, timeout=timeout, headers=headers or None)
        self._runtime_url: str | None = None
        self._runtime_http: httpx.Client | None = None

    def close(self) -> None:
        self._http.close()
        if self._runtime_http is not None:
            self._runtime_http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise KamadoError(f"Cannot reach the kamado server at {self.url}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"message": resp.text[:500]}
            raise error_from_problem(resp.status_code, body)
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.content

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/info")

    def list_projects(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/projects")["Projects"]

    # -- training jobs --------------------------------------------------------------------------------
    def create_training_job(self, request: dict[str, Any]) -> dict[str, str]:
        return self._request("POST", "/api/v1/training-jobs", json=request)

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/training-jobs/{name}")

    def list_training_jobs(self, **params: Any) -> dict[str, Any]:
        return self._list("/api/v1/training-jobs", params)

    def iter_training_jobs(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._iter_pages(self.list_training_jobs, "TrainingJobSummaries", params)

    def stop_training_job(self, name: str) -> None:
        self._request("POST", f"/api/v1/training-jobs/{name}/stop")

    def rerun_training_job(self, name: str, new_name: str | None = None) -> dict[str, str]:
        body = {"TrainingJobName": new_name} if new_name else None
        return self._request("POST", f"/api/v1/training-jobs/{name}/rerun", json=body)

    def training_job_metrics(
        self, name: str, metric: str | None = None, *, max_points: int | None = None
    ) -> list[dict[str, Any]]:
        """Metric points in the order recorded. ``max_points`` (2 to 10,000) thins each metric on the server
        to at most that many points that keep the curve's shape; each point then carries its ``Index``."""
        params: dict[str, Any] = {"MetricName": metric} if metric else {}
        if max_points is not None:
            params["MaxPoints"] = max_points
        return self._request("GET", f"/api/v1/training-jobs/{name}/metrics", params=params or None)["Metrics"]

    def training_job_logs(
        self, name: str, *, after: int = 0, wait: float = 0, limit: int = 1000, secondary: str | None = None
    ) -> dict[str, Any]:
        """One page of log events after ``after``; ``wait`` long-polls (see the logs route)."""
        return self._request(
            "GET",
            f"/api/v1/training-jobs/{name}/logs",
            params={
                "after": after,
                "wait": wait,
                "limit": limit,
                **({"secondary": secondary} if secondary is not None else {}),
            },
            timeout=wait + 30,
        )

    def stream_training_job_logs(self, name: str, *, follow: bool = True) -> Iterator[str]:
        """Yield the whole log so far, page by page; with ``follow`` keep going until the job ends."""
        after = 0
        while True:
            page = self.training_job_logs(name, after=after, wait=10 if follow else 0)
            for ev in page["Events"]:
                yield ev["Message"]
            advanced = page["NextSeq"] != after
            after = page["NextSeq"]
            if page["Complete"] or (not follow and not advanced):
                return

    def wait_for_training_job(
        self,
        name: str,
        *,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
        on_log: Callable[[str], None] | None = None,
        on_status: Callable[[str, str], None] | None = None,
    ) -> dict[str, Any]:
        """Wait for the job to end. ``on_log`` gets log text as it arrives and ``on_status`` each new
        (SecondaryStatus, message), both pushed by the server's long-poll rather than polled."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if on_log is not None or on_status is not None:
            after, seen = 0, None
            while True:
                page = self.training_job_logs(name, after=after, wait=10, secondary=seen or "")
                if page.get("SecondaryStatus") != seen:
                    seen = page.get("SecondaryStatus")
                    if on_status is not None and seen:
                        on_status(seen, page.get("StatusMessage") or "")
                if on_log is not None:
                    for ev in page["Events"]:
                        on_log(ev["Message"])
                after = page["NextSeq"]
                if page["Complete"]:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
        return _poll(
            lambda: self.describe_training_job(name),
            lambda d: d["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"),
            f"Training job {name!r}",
            "TrainingJobStatus",
            poll_s=poll_s,
            timeout_s=timeout_s,
            deadline=deadline,
        )

    # -- tuning jobs ----------------------------------------------------------------------------------
    def create_tuning_job(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateHyperParameterTuningJob; returns ``{HyperParameterTuningJobArn, HyperParameterTuningJobName}``."""
        return self._request("POST", "/api/v1/tuning-jobs", json=request)

    def describe_tuning_job(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/tuning-jobs/{name}")

    def list_tuning_jobs(self, **params: Any) -> dict[str, Any]:
        """One page: ``StatusEquals``, ``NameContains``, ``MaxResults``, ``NextToken``."""
        return self._list("/api/v1/tuning-jobs", params)

    def iter_tuning_jobs(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._iter_pages(self.list_tuning_jobs, "HyperParameterTuningJobSummaries", params)

    def stop_tuning_job(self, name: str) -> None:
        self._request("POST", f"/api/v1/tuning-jobs/{name}/stop")

    def list_training_jobs_for_tuning_job(self, name: str) -> dict[str, Any]:
        """Every trial of the tuning job, in trial order: ``{"TrainingJobSummaries": [...]}``."""
        return self._request("GET", f"/api/v1/tuning-jobs/{name}/training-jobs")

    def wait_for_tuning_job(
        self,
        name: str,
        *,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the tuning job ends and return its description. ``on_progress`` gets the description
        first and then each time its status, counters or best training job change."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seen: tuple[Any, ...] | None = None
        while True:
            desc = self.describe_tuning_job(name)
            status = desc["HyperParameterTuningJobStatus"]
            key = (
                status,
                repr(desc.get("TrainingJobStatusCounters")),
                repr(desc.get("ObjectiveStatusCounters")),
                repr(desc.get("BestTrainingJob")),
            )
            if on_progress is not None and key != seen:
                on_progress(desc)
            seen = key
            if status in ("Completed", "Failed", "Stopped"):
                return desc
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Tuning job {name!r} still {status} after {timeout_s} s")
            time.sleep(poll_s)

    # -- processing jobs ------------------------------------------------------------------------------
    def create_processing_job(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateProcessingJob in SageMaker's shape; returns ``{ProcessingJobArn, ProcessingJobName}``."""
        return self._request("POST", "/api/v1/processing-jobs", json=request)

    def describe_processing_job(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/processing-jobs/{name}")

    def list_processing_jobs(self, **params: Any) -> dict[str, Any]:
        return self._list("/api/v1/processing-jobs", params)

    def iter_processing_jobs(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._iter_pages(self.list_processing_jobs, "ProcessingJobSummaries", params)

    def stop_processing_job(self, name: str) -> None:
        self._request("POST", f"/api/v1/processing-jobs/{name}/stop")

    def processing_job_logs(self, name: str, *, after: int = 0, limit: int = 1000) -> dict[str, Any]:
        """One page of every instance's log events after ``after`` (each event names its ``Host``)."""
        return self._request("GET", f"/api/v1/processing-jobs/{name}/logs", params={"after": after, "limit": limit})

    def wait_for_processing_job(
        self,
        name: str,
        *,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
        on_log: Callable[[str, str], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until the job is Completed, Failed or Stopped and return its description; ``on_log`` gets
        (host, text) for every log event as it arrives."""
        after = 0

        def drain() -> None:
            nonlocal after
            while on_log is not None:
                page = self.processing_job_logs(name, after=after)
                for ev in page["Events"]:
                    on_log(ev["Host"], ev["Message"])
                if page["NextSeq"] == after:
                    return
                after = page["NextSeq"]

        def describe() -> dict[str, Any]:
            drain()
            return self.describe_processing_job(name)

        desc = _poll(
            describe,
            lambda d: d["ProcessingJobStatus"] in ("Completed", "Failed", "Stopped"),
            f"Processing job {name!r}",
            "ProcessingJobStatus",
            poll_s=poll_s,
            timeout_s=timeout_s,
        )
        drain()  # what the instances wrote last
        return desc

    # -- artifacts ------------------------------------------------------------------------------------
    def upload_directory(self, path: str | os.PathLike[str]) -> str:
        """Upload a local directory content-addressed; returns its URI. Unchanged content is not re-sent."""
        from kamado.artifacts.trees import pack_dir

        local = Path(path)
        if not local.is_dir():
            raise InvalidSpec(
                f"{str(local)!r} is not a directory; pass a directory of files to upload.",
                details=[{"field": "path", "message": "not a directory"}],
            )
        with tempfile.TemporaryDirectory(prefix="kamado-upload-") as tmp:
            archive = Path(tmp) / "tree.tar.gz"
            manifest = pack_dir(local, archive)
            try:
                return str(self._request("GET", f"/api/v1/trees/{manifest.digest}")["Uri"])
            except KamadoError as exc:
                if exc.code not in ("ResourceNotFound", "NotFound"):
                    raise
            with open(archive, "rb") as f:
                resp = self._request(
                    "PUT",
                    f"/api/v1/trees/{manifest.digest}",
                    content=f,
                    headers={"Content-Type": "application/gzip"},
                )
            return str(resp["Uri"])

    def upload_file(self, path: str | os.PathLike[str]) -> str:
        """Upload one file (as a one-file tree); returns the URI of the tree holding it."""
        local = Path(path)
        with tempfile.TemporaryDirectory(prefix="kamado-file-") as tmp:
            target = Path(tmp) / local.name
            target.write_bytes(local.read_bytes())
            return self.upload_directory(tmp)

    def download_artifact(self, uri: str, dest: str | os.PathLike[str]) -> Path:
        out = Path(dest)
        out.parent.mkdir(parents=True, exist_ok=True)
        with self._http.stream("GET", "/api/v1/artifacts/content", params={"uri": uri}) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise error_from_problem(resp.status_code, resp.json())
            with open(out, "wb") as f:
                for chunk in resp.iter_bytes():
                    f.write(chunk)
        return out

    def extract_model(self, uri: str, dest: str | os.PathLike[str]) -> Path:
        """Download a model.tar.gz and extract it safely into ``dest``."""
        with tempfile.TemporaryDirectory() as tmp:
            archive = self.download_artifact(uri, Path(tmp) / "model.tar.gz")
            data = archive.read_bytes()
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(out, filter="data")
        return out

    # -- hosting: models ------------------------------------------------------------------------------
    def create_model(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateModel; returns ``{ModelArn}``."""
        return self._request("POST", "/api/v1/models", json=request)

    def describe_model(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/models/{name}")

    def list_models(self, **params: Any) -> dict[str, Any]:
        """One page: ``NameContains``, ``SortBy``, ``SortOrder``, ``MaxResults``, ``NextToken``."""
        return self._list("/api/v1/models", params)

    def iter_models(self, **params: Any) -> Iterator[dict[str, Any]]:
        yield from self._iter_pages(self.list_models, "Models", params)

    def delete_model(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/models/{name}")

    # -- hosting: endpoint configs --------------------------------------------------------------------
    def create_endpoint_config(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateEndpointConfig; returns ``{EndpointConfigArn}``."""
        return self._request("POST", "/api/v1/endpoint-configs", json=request)

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/endpoint-configs/{name}")

    def list_endpoint_configs(self, **params: Any) -> dict[str, Any]:
        return self._list("/api/v1/endpoint-configs", params)

    def delete_endpoint_config(self, name: str) -> None:
        """Refused with ``ResourceInUse`` while an endpoint (even a Deleting one) still uses the config."""
        self._request("DELETE", f"/api/v1/endpoint-configs/{name}")

    # -- hosting: endpoints ---------------------------------------------------------------------------
    def create_endpoint(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateEndpoint; returns ``{EndpointArn}`` at once, with the endpoint Creating."""
        return self._request("POST", "/api/v1/endpoints", json=request)

    def describe_endpoint(self, name: str, *, metrics_window_s: float | None = None) -> dict[str, Any]:
        """DescribeEndpoint. ``metrics_window_s`` is the trailing window of each variant's ``Metrics``;
        0 leaves them out, which spares the router a statistics query (the waits below poll with 0)."""
        params = {"MetricsWindowSeconds": metrics_window_s} if metrics_window_s is not None else None
        return self._request("GET", f"/api/v1/endpoints/{name}", params=params)

    def list_endpoints(self, **params: Any) -> dict[str, Any]:
        """One page: ``StatusEquals``, ``NameContains``, ``SortBy``, ``SortOrder``, ``MaxResults``, ``NextToken``."""
        return self._list("/api/v1/endpoints", params)

    def iter_endpoints(self, **params: Any) -> Iterator[dict[str, Any]]:
        yield from self._iter_pages(self.list_endpoints, "Endpoints", params)

    def update_endpoint(
        self,
        name: str,
        endpoint_config_name: str,
        *,
        deployment_config: dict[str, Any] | None = None,
        retain_all_variant_properties: bool = False,
        **extra: Any,
    ) -> dict[str, str]:
        """UpdateEndpoint: blue/green to ``endpoint_config_name``. The endpoint is Updating when this returns.
        ``extra`` takes the request's other fields by their API names (``RetainDeploymentConfig``, ...)."""
        body: dict[str, Any] = {"EndpointConfigName": endpoint_config_name, **extra}
        if deployment_config is not None:
            body["DeploymentConfig"] = deployment_config
        if retain_all_variant_properties:
            body["RetainAllVariantProperties"] = True
        return self._request("POST", f"/api/v1/endpoints/{name}/update", json=body)

    def update_endpoint_weights_and_capacities(self, name: str, desired: list[dict[str, Any]]) -> dict[str, str]:
        """``desired``: ``[{VariantName, DesiredWeight?, DesiredInstanceCount?}]``, SageMaker's shape."""
        return self._request(
            "POST", f"/api/v1/endpoints/{name}/weights-and-capacities", json={"DesiredWeightsAndCapacities": desired}
        )

    def delete_endpoint(self, name: str) -> None:
        """Starts the deletion (Deleting); the endpoint is gone once its instances have drained."""
        self._request("DELETE", f"/api/v1/endpoints/{name}")

    def put_scaling_policy(self, name: str, variant: str, policy: dict[str, Any]) -> None:
        """Target tracking on invocations per instance per minute: ``{MinCapacity, MaxCapacity, TargetValue, ...}``."""
        self._request("PUT", f"/api/v1/endpoints/{name}/variants/{variant}/scaling-policy", json=policy)

    def delete_scaling_policy(self, name: str, variant: str) -> None:
        self._request("DELETE", f"/api/v1/endpoints/{name}/variants/{variant}/scaling-policy")

    def endpoint_logs(self, name: str, instance_id: str | None = None) -> str:
        """The recent output of the endpoint's model servers, one section per instance."""
        params = {"InstanceId": instance_id} if instance_id else None
        data = self._request("GET", f"/api/v1/endpoints/{name}/logs", params=params)
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def wait_for_endpoint(
        self,
        name: str,
        timeout: float | None = 600.0,
        poll: float = 0.2,
        on_status: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until the endpoint is InService and return its description. ``on_status`` gets each new
        status with the description. A rolled-back update also ends InService, with ``FailureReason`` set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = None
        while True:
            desc = self.describe_endpoint(name, metrics_window_s=0)
            status = desc["EndpointStatus"]
            if status != seen and on_status is not None:
                on_status(status, desc)
            seen = status
            if status == "InService":
                return desc
            if status in _ENDPOINT_BROKEN:
                raise EndpointFailed(
                    f"Endpoint '{name}' is {status}: {desc.get('FailureReason') or 'no reason recorded'}. "
                    f"`kamado endpoints logs {name}` shows its model servers' output.",
                    details={"EndpointName": name, "EndpointStatus": status},
                )
            if status == "Deleting":
                raise EndpointFailed(
                    f"Endpoint '{name}' is being deleted; it will not come into service.",
                    details={"EndpointName": name, "EndpointStatus": status},
                )
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Endpoint {name!r} still {status} after {timeout} s")
            time.sleep(poll)

    def wait_for_endpoint_deleted(self, name: str, timeout: float | None = 120.0, poll: float = 0.2) -> None:
        """Wait until DescribeEndpoint says the endpoint no longer exists (its instances have stopped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                status = self.describe_endpoint(name, metrics_window_s=0)["EndpointStatus"]
            except NotFound:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Endpoint {name!r} still {status} after {timeout} s")
            time.sleep(poll)

    # -- transform jobs -------------------------------------------------------------------------------
    def create_transform_job(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateTransformJob in SageMaker's shape; returns ``{TransformJobArn}``."""
        return self._request("POST", "/api/v1/transform-jobs", json=request)

    def describe_transform_job(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/transform-jobs/{name}")

    def list_transform_jobs(self, **params: Any) -> dict[str, Any]:
        return self._list("/api/v1/transform-jobs", params)

    def iter_transform_jobs(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._iter_pages(self.list_transform_jobs, "TransformJobSummaries", params)

    def stop_transform_job(self, name: str) -> None:
        self._request("POST", f"/api/v1/transform-jobs/{name}/stop")

    def wait_for_transform_job(
        self,
        name: str,
        *,
        poll_s: float = 0.25,
        timeout_s: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Wait until the job is Completed, Failed or Stopped and return its description; ``on_progress``
        gets each description while it runs."""
        return _poll(
            lambda: self.describe_transform_job(name),
            lambda d: d["TransformJobStatus"] in ("Completed", "Failed", "Stopped"),
            f"Transform job {name!r}",
            "TransformJobStatus",
            poll_s=poll_s,
            timeout_s=timeout_s,
            on_each=on_progress,
        )

    # -- hosting: invocations (the router, not the control plane) ------------------------------------
    def runtime_url(self, *, refresh: bool = False) -> str:
        """The router's base URL. Cached: the router is a separate process at a stable address, and asking
        the control plane on every invocation would put it back on the data path."""
        if self._runtime_url is None or refresh:
            url = str(self._request("GET", "/api/v1/runtime")["Url"]).rstrip("/")
            if url != self._runtime_url and self._runtime_http is not None:
                self._runtime_http.close()
                self._runtime_http = None
            self._runtime_url = url
        return self._runtime_url

    def _router_http(self, url: str) -> httpx.Client:
        # Always a socket client, even when the control plane is reached through an injected transport:
        # the router is another process. Proxies from the environment are skipped for loopback routers.
        if self._runtime_http is None:
            loopback = urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
            # The router checks the same token as the control plane (InvokeEndpoint, docs/security.md).
            auth = self._http.headers.get("Authorization")
            self._runtime_http = httpx.Client(trust_env=not loopback, headers={"Authorization": auth} if auth else None)
        return self._runtime_http

    def invoke_endpoint(
        self,
        name: str,
        body: bytes,
        content_type: str = "application/json",
        accept: str | None = None,
        target_variant: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
        timeout: float = 70.0,
    ) -> InvokeResult:
        """InvokeEndpoint through the router. Errors come back typed: ``ModelError`` (the model failed, 424),
        ``NotFound`` (no such endpoint), ``InvalidSpec`` (no such variant, bad request), ``PayloadTooLarge``,
        ``ServiceUnavailable`` (no instance could take it; ``details['RetryAfter']`` says when to retry)."""
        headers = {"Content-Type": content_type}
        optional = {
            "Accept": accept,
            TARGET_VARIANT_HEADER: target_variant,
            CUSTOM_ATTRIBUTES_HEADER: custom_attributes,
            INFERENCE_ID_HEADER: inference_id,
        }
        headers.update({k: v for k, v in optional.items() if v})
        path = invocations_path(name)
        for attempt in (1, 2):
            url = self.runtime_url(refresh=attempt == 2)
            try:
                resp = self._router_http(url).post(url + path, content=body, headers=headers, timeout=timeout)
                break
            except httpx.ConnectError as exc:
                # Nothing was sent: the router may have restarted elsewhere; ask once where it is now.
                if attempt == 2:
                    raise KamadoError(f"Cannot reach kamado's router at {url}: {exc}") from exc
            except httpx.TimeoutException as exc:
                raise KamadoError(
                    f"Endpoint '{name}' did not answer within {timeout} s; the model may be slow or stuck "
                    f"(`kamado endpoints logs {name}`), or pass a larger timeout."
                ) from exc
            except httpx.TransportError as exc:
                raise KamadoError(f"Invoking endpoint '{name}' at {url} failed: {exc}") from exc
        if resp.status_code >= 400:
            raise _runtime_error(name, resp)
        return InvokeResult(
            body=resp.content,
            content_type=resp.headers.get("content-type", ""),
            invoked_variant=resp.headers.get(INVOKED_VARIANT_HEADER),
            custom_attributes=resp.headers.get(CUSTOM_ATTRIBUTES_HEADER),
        )

    # -- functions and map runs --------------------------------------------------------------------------
    def create_function(self, request: dict[str, Any]) -> dict[str, str]:
        return self._request("POST", "/api/v1/functions", json=request)

    def get_function(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/functions/{name}")

    def list_functions(self, **params: Any) -> dict[str, Any]:
        return self._request("GET", "/api/v1/functions", params={k: v for k, v in params.items() if v is not None})

    def delete_function(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/functions/{name}")

    def invoke_function(self, name: str, payload: Any = None) -> dict[str, Any]:
        """RequestResponse, as Lambda answers it: ``Payload`` (the result or the error), ``FunctionError``
        (``"Unhandled"`` when the handler failed, else absent) and ``RequestId``."""
        try:
            resp = self._http.post(
                f"/api/v1/functions/{name}/invocations",
                content=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.TransportError as exc:
            raise KamadoError(f"Cannot reach the kamado server at {self.url}: {exc}") from exc
        if resp.status_code >= 400:
            raise error_from_problem(resp.status_code, resp.json())
        out: dict[str, Any] = {
            "StatusCode": resp.status_code,
            "Payload": resp.json(),
            "RequestId": resp.headers.get("X-Kamado-Request-Id"),
        }
        if resp.headers.get("X-Kamado-Function-Error"):
            out["FunctionError"] = resp.headers["X-Kamado-Function-Error"]
        return out

    def invoke_function_async(self, name: str, payload: Any = None) -> str:
        """InvocationType Event: queued, retried twice with backoff, then kept as a dead letter. The request id."""
        resp = self._http.post(
            f"/api/v1/functions/{name}/invocations",
            content=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "X-Kamado-Invocation-Type": "Event"},
        )
        if resp.status_code >= 400:
            raise error_from_problem(resp.status_code, resp.json())
        return str(resp.headers["X-Kamado-Request-Id"])

    def list_dead_letters(self, name: str) -> list[dict[str, Any]]:
        return list(self._iter_pages(lambda **p: self._dead_letters(name, **p), "DeadLetters", {}))

    def _dead_letters(self, name: str, **params: Any) -> dict[str, Any]:
        return self._list(f"/api/v1/functions/{name}/dead-letters", params)

    def replay_dead_letter(self, name: str, request_id: str) -> None:
        self._request("POST", f"/api/v1/functions/{name}/dead-letters/{request_id}/replay")

    def start_map_run(self, request: dict[str, Any]) -> dict[str, str]:
        return self._request("POST", "/api/v1/map-runs", json=request)

    def describe_map_run(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/map-runs/{name}")

    def list_map_runs(self, **params: Any) -> dict[str, Any]:
        return self._list("/api/v1/map-runs", params)

    def stop_map_run(self, name: str) -> None:
        self._request("POST", f"/api/v1/map-runs/{name}/stop")

    def redrive_map_run(self, name: str) -> None:
        self._request("POST", f"/api/v1/map-runs/{name}/redrive")

    def wait_for_map_run(self, name: str, *, poll_s: float = 0.5, timeout_s: float | None = None) -> dict[str, Any]:
        return _poll(
            lambda: self.describe_map_run(name),
            lambda d: d["Status"] != "InProgress",
            f"Map run {name!r}",
            "Status",
            poll_s=poll_s,
            timeout_s=timeout_s,
        )

    def _list(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of a List* call; parameters left as None are not sent."""
        result: dict[str, Any] = self._request("GET", path, params={k: v for k, v in params.items() if v is not None})
        return result

    @staticmethod
    def _iter_pages(
        list_fn: Callable[..., dict[str, Any]], key: str, params: dict[str, Any], *, token_field: str = "NextToken"
    ) -> Iterator[dict[str, Any]]:
        """Every item of a List* call, page after page (Step Functions' APIs spell the token ``nextToken``)."""
        token = None
        while True:
            page = list_fn(**params, **{token_field: token})
            yield from page[key]
            token = page.get(token_field)
            if not token:
                return


def _poll(
    describe: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    what: str,
    status_key: str,
    *,
    poll_s: float,
    timeout_s: float | None,
    on_each: Callable[[dict[str, Any]], None] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Describe until ``done``; TimeoutError naming the last status once ``timeout_s`` (None: no limit) has
    passed, counted from now or from an earlier monotonic ``deadline`` the caller already started."""
    if deadline is None and timeout_s is not None:
        deadline = time.monotonic() + timeout_s
    while True:
        desc = describe()
        if done(desc):
            return desc
        if on_each is not None:
            on_each(desc)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{what} still {desc.get(status_key)} after {timeout_s} s")
        time.sleep(poll_s)


def _runtime_error(endpoint: str, resp: httpx.Response) -> KamadoError:
    """The typed error for a router error answer, read as botocore reads it (``x-amzn-ErrorType``, JSON body)."""
    kind = resp.headers.get(ERROR_TYPE_HEADER, "").split(":", 1)[0]
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    status = resp.status_code
    message = str(data.get("Message") or data.get("message") or resp.text[:500] or f"HTTP {status}")
    if kind == "ModelError" or status == 424:
        original = data.get("OriginalStatusCode")
        original_message = str(data.get("OriginalMessage") or "")
        variant = resp.headers.get(INVOKED_VARIANT_HEADER)
        where = f"Endpoint '{endpoint}'" + (f" (variant {variant})" if variant else "")
        code = int(original) if isinstance(original, int | str) and str(original).isdigit() else None
        said = f"the model answered {code}: {original_message or message}" if code else message
        return ModelError(
            f"{where}: {said}. Its log: `kamado endpoints logs {endpoint}`.",
            original_status_code=code,
            original_message=original_message,
            details=data,
        )
    if status == 413 or kind == "PayloadTooLarge":
        return PayloadTooLarge(message, details=data)
    if status == 503 or kind in ("ServiceUnavailable", "ModelNotReadyException"):
        return ServiceUnavailable(message, details={**data, "RetryAfter": resp.headers.get("retry-after")})
    if status == 401:
        return Unauthorized(message, details=data)
    if status == 403:
        return Forbidden(message, details=data)
    if status == 429 or kind == "ThrottlingException":
        return LimitExceeded(message, details=data)
    error_code = str(data.get("ErrorCode") or "")
    if error_code == "NO_SUCH_ENDPOINT" or status == 404 or (not error_code and "not found" in message.lower()):
        return NotFound(message, details=data)
    if 400 <= status < 500:
        return InvalidSpec(message, details=data)
    return KamadoError(f"Invoking endpoint '{endpoint}' failed with HTTP {status}: {message}", details=data)
