"""``kamado.Function`` and ``kamado.map``: Python functions and fan-out map runs from the SDK."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

from kamado.core.errors import KamadoError
from kamado.sdk.client import Client

#: Inline item lists above this size travel as an uploaded JSON-lines file instead (the API takes 1 MiB).
INLINE_LIMIT = 512 * 1024
#: A map run's name (the server's resource-name rule): a string like this that is no file names a run.
_RUN_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


#: What ``map`` takes as items (see :func:`map`).
Items: TypeAlias = "Iterable[Any] | str | os.PathLike[str] | dict[str, Any] | MapRun"


class FunctionError(KamadoError):
    """The handler raised; ``error`` holds errorType, errorMessage and stackTrace."""

    code = "FunctionError"

    def __init__(self, message: str, *, error: dict[str, Any]) -> None:
        super().__init__(message, details=error)
        self.error = error


class Function:
    """A registered function: ``Function.create("fn", "src/", "app.handler")`` then ``fn(event)``."""

    def __init__(self, name: str, *, client: Client | None = None) -> None:
        self.name = name
        self.client = client or Client()

    @classmethod
    def create(
        cls,
        name: str,
        source_dir: str | os.PathLike[str],
        handler: str,
        *,
        memory_mb: int = 512,
        timeout_s: float = 30.0,
        environment: dict[str, str] | None = None,
        reserved_concurrency: int | None = None,
        client: Client | None = None,
    ) -> Function:
        client = client or Client()
        request: dict[str, Any] = {
            "FunctionName": name,
            "Handler": handler,
            "Code": {"Uri": client.upload_directory(source_dir)},
            "MemorySize": memory_mb,
            "Timeout": timeout_s,
            "Environment": {"Variables": environment or {}},
        }
        if reserved_concurrency is not None:
            request["ReservedConcurrentExecutions"] = reserved_concurrency
        client.create_function(request)
        return cls(name, client=client)

    def invoke(self, event: Any = None) -> Any:
        """Run once and return the result; raises :class:`FunctionError` when the handler failed."""
        out = self.client.invoke_function(self.name, event)
        if out.get("FunctionError"):
            err = out["Payload"]
            raise FunctionError(f"Function '{self.name}': {err.get('errorType')}: {err.get('errorMessage')}", error=err)
        return out["Payload"]

    __call__ = invoke

    def invoke_async(self, event: Any = None) -> str:
        return self.client.invoke_function_async(self.name, event)

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.client.list_dead_letters(self.name)

    def map(self, items: Items, **kwargs: Any) -> MapRun:
        """Run this function over ``items`` (anything :func:`map` takes, a previous :class:`MapRun` included)."""
        return map(self.name, items, client=self.client, **kwargs)


class MapRun:
    """A started map run: ``progress()``, ``wait()``, ``results()``, ``stop()``, ``redrive()``, and ``map()`` to
    chain the next stage over its outputs."""

    def __init__(self, name: str, *, client: Client) -> None:
        self.name = name
        self.client = client

    def describe(self) -> dict[str, Any]:
        return self.client.describe_map_run(self.name)

    def progress(self) -> dict[str, Any]:
        """Item counts (Total, Pending, Running, Succeeded, Failed, Retried), Status and EtaSeconds."""
        desc = self.describe()
        return {**desc["ItemCounts"], "Status": desc["Status"], "EtaSeconds": desc.get("EtaSeconds")}

    def wait(self, *, poll_s: float = 0.5, timeout_s: float | None = None) -> dict[str, Any]:
        return self.client.wait_for_map_run(self.name, poll_s=poll_s, timeout_s=timeout_s)

    def stop(self) -> None:
        self.client.stop_map_run(self.name)

    def redrive(self) -> None:
        self.client.redrive_map_run(self.name)

    def manifest(self) -> dict[str, Any]:
        uri = self.describe()["ResultWriterDetails"]["Manifest"]
        with tempfile.TemporaryDirectory(prefix="kamado-map-") as tmp:
            return dict(json.loads(self.client.download_artifact(uri, Path(tmp) / "m.json").read_text()))

    def map(self, function_name: str, **kwargs: Any) -> MapRun:
        """Chain the next stage: run ``function_name`` over this run's succeeded outputs, in item order. This run
        must have Succeeded (``wait()`` first); the server refuses a run still in progress or failed."""
        return map(function_name, self, client=self.client, **kwargs)

    def outputs(self) -> list[Any]:
        """The succeeded items' outputs in item order: what a chained run gets as its items."""
        rows = [r for r in self.results() if r["Status"] == "SUCCEEDED"]
        return [r["Output"] for r in sorted(rows, key=lambda r: r["Index"])]

    def results(self) -> Iterator[dict[str, Any]]:
        """Every item's outcome line ({Index, Status, Output | Error, Cause, Attempts}), chunk by chunk."""
        files = self.manifest()["ResultFiles"]
        with tempfile.TemporaryDirectory(prefix="kamado-map-") as tmp:
            for n, uri in enumerate(files):
                path = self.client.download_artifact(uri, Path(tmp) / f"{n}.jsonl")
                for line in path.read_text().splitlines():
                    yield json.loads(line)


def _source(items: Items, client: Client) -> dict[str, Any]:
    """Items inline when small, else uploaded as JSON lines; a local path is uploaded as it is; a MapRun (or
    the name of one, when no such file exists) is chained from on the server."""
    if isinstance(items, MapRun):
        return {"ItemSource": {"MapRun": items.name}}
    if isinstance(items, str | os.PathLike):
        path = Path(items)
        if not path.is_file() and isinstance(items, str) and _RUN_NAME.fullmatch(items):
            return {"ItemSource": {"MapRun": items}}
        if not path.is_file():
            raise KamadoError(f"Item file {str(path)!r} does not exist.")
        fmt = {".json": "json", ".csv": "csv"}.get(path.suffix.lower(), "jsonl")
        return {"ItemSource": {"Uri": f"{client.upload_file(path)}/{path.name}", "Format": fmt}}
    listed = list(items)
    body = json.dumps(listed)
    if len(body) <= INLINE_LIMIT:
        return {"Items": listed}
    with tempfile.TemporaryDirectory(prefix="kamado-items-") as tmp:
        path = Path(tmp) / "items.jsonl"
        path.write_text("".join(json.dumps(it) + "\n" for it in listed))
        return {"ItemSource": {"Uri": f"{client.upload_file(path)}/items.jsonl", "Format": "jsonl"}}


def map(
    function_name: str,
    items: Items,
    *,
    max_concurrency: int = 0,
    batch_size: int = 1,
    tolerated_failure_percentage: float = 0.0,
    max_attempts: int = 3,
    name: str | None = None,
    result_prefix: str | None = None,
    client: Client | None = None,
) -> MapRun:
    """Run ``function_name`` over every item; returns the run at once. ``items`` is a list, a .json/.jsonl/.csv
    file, an artifact source ``{"Uri": ..., "Format": "prefix"}``, or a previous stage to chain from: a
    Succeeded :class:`MapRun`, its name, or ``{"MapRun": name}`` (its succeeded outputs, in item order)."""
    client = client or Client()
    request: dict[str, Any] = {
        "FunctionName": function_name,
        "MaxConcurrency": max_concurrency,
        "BatchSize": batch_size,
        "ToleratedFailurePercentage": tolerated_failure_percentage,
        "MaxAttempts": max_attempts,
    }
    if isinstance(items, dict):
        request["ItemSource"] = items
    else:
        request.update(_source(items, client))
    if name:
        request["MapRunName"] = name
    if result_prefix:
        request["ResultPrefix"] = result_prefix
    started = client.start_map_run(request)
    return MapRun(started["MapRunName"], client=client)
