"""``kamado.Client``: the SDK's HTTP layer. Imports no server code.

The transport is injectable (``httpx.MockTransport`` or ``httpx.ASGITransport``-style) so tests can run
the SDK against the app in process as well as over a real socket.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from kamado.core.errors import InvalidSpec, KamadoError, error_from_problem


class Client:
    def __init__(
        self,
        url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        autostart: bool = True,
    ) -> None:
        if url is None:
            url = os.environ.get("KAMADO_URL")
        if url is None and transport is None:
            if not autostart:
                raise KamadoError("No kamado server: set KAMADO_URL or start one with `kamado server`.")
            from kamado.sdk.local_server import ensure_local_server

            url = ensure_local_server()
        self.url = (url or "http://kamado.local").rstrip("/")
        self._http = httpx.Client(base_url=self.url, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

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

    # -- training jobs --------------------------------------------------------------------------------
    def create_training_job(self, request: dict[str, Any]) -> dict[str, str]:
        return self._request("POST", "/api/v1/training-jobs", json=request)

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/training-jobs/{name}")

    def list_training_jobs(self, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", "/api/v1/training-jobs", params=clean)

    def iter_training_jobs(self, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.list_training_jobs(**params, NextToken=token)
            yield from page["TrainingJobSummaries"]
            token = page.get("NextToken")
            if not token:
                return

    def stop_training_job(self, name: str) -> None:
        self._request("POST", f"/api/v1/training-jobs/{name}/stop")

    def rerun_training_job(self, name: str, new_name: str | None = None) -> dict[str, str]:
        body = {"TrainingJobName": new_name} if new_name else None
        return self._request("POST", f"/api/v1/training-jobs/{name}/rerun", json=body)

    def training_job_metrics(self, name: str, metric: str | None = None) -> list[dict[str, Any]]:
        params = {"MetricName": metric} if metric else None
        return self._request("GET", f"/api/v1/training-jobs/{name}/metrics", params=params)["Metrics"]

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
        while True:
            desc = self.describe_training_job(name)
            if desc["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                return desc
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Training job {name!r} still {desc['TrainingJobStatus']} after {timeout_s} s")
            time.sleep(poll_s)

    # -- tuning jobs ----------------------------------------------------------------------------------
    def create_tuning_job(self, request: dict[str, Any]) -> dict[str, str]:
        """CreateHyperParameterTuningJob; returns ``{HyperParameterTuningJobArn, HyperParameterTuningJobName}``."""
        return self._request("POST", "/api/v1/tuning-jobs", json=request)

    def describe_tuning_job(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/tuning-jobs/{name}")

    def list_tuning_jobs(self, **params: Any) -> dict[str, Any]:
        """One page: ``StatusEquals``, ``NameContains``, ``MaxResults``, ``NextToken``."""
        clean = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", "/api/v1/tuning-jobs", params=clean)

    def iter_tuning_jobs(self, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.list_tuning_jobs(**params, NextToken=token)
            yield from page["HyperParameterTuningJobSummaries"]
            token = page.get("NextToken")
            if not token:
                return

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
