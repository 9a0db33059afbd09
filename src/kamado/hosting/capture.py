"""Data capture: sampled request/response pairs written as SageMaker's capture JSON lines.

The request path only appends a reference to the bodies it already holds to an in-memory buffer; encoding
(base64 for binary content types), JSON serialisation and the write all happen in a background flush, every
second and once more at shutdown, in a thread, so a slow disk never shows up as invocation latency. The buffer
is bounded in bytes: when it is full a sample is dropped and counted (``capture_dropped`` in the router's
stats) rather than letting memory grow without bound.

Files land in the artifact store under ``<destination_prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<uuid>.jsonl``,
one file per variant and hour per flush, the same layout SageMaker uses in S3 (so the same readers work).
Only invocations the model answered with 2xx are captured: there is no model output to record otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kamado.hosting.routing import CaptureRoute

log = logging.getLogger("kamado.router.capture")

DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
FLUSH_INTERVAL_S = 1.0


def sampled(route: CaptureRoute) -> bool:
    pct = route.sampling_percentage
    return pct >= 100.0 or (pct > 0.0 and random.random() * 100.0 < pct)


@dataclass(slots=True)
class CaptureEvent:
    endpoint: str
    variant: str
    route: CaptureRoute
    request_body: bytes
    request_content_type: str
    response_body: bytes
    response_content_type: str
    inference_id: str | None
    at: float  # unix time the request arrived


def _encoding(content_type: str, route: CaptureRoute) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    if base in route.csv_content_types:
        return "CSV"
    if base in route.json_content_types:
        return "JSON"
    return "BASE64"


def _payload(mode: str, content_type: str, body: bytes, route: CaptureRoute) -> dict[str, Any]:
    encoding = _encoding(content_type, route)
    data: str | None = None
    if encoding != "BASE64":
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"  # text content types with undecodable bytes: keep the bytes exactly
    if data is None:
        data = base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_line(event: CaptureEvent) -> bytes:
    """One SageMaker capture record (``eventVersion`` "0") as a JSON line."""
    capture: dict[str, Any] = {}
    if event.route.capture_input:
        capture["endpointInput"] = _payload("INPUT", event.request_content_type, event.request_body, event.route)
    if event.route.capture_output:
        capture["endpointOutput"] = _payload("OUTPUT", event.response_content_type, event.response_body, event.route)
    meta = {
        "eventId": str(uuid.uuid4()),
        "inferenceTime": datetime.fromtimestamp(event.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if event.inference_id:
        meta["inferenceId"] = event.inference_id
    record = {"captureData": capture, "eventMetadata": meta, "eventVersion": "0"}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def capture_directory(event: CaptureEvent) -> str:
    """``<destination_prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh``: the prefix of the event's file key."""
    hour = datetime.fromtimestamp(event.at, UTC).strftime("%Y/%m/%d/%H")
    prefix = event.route.destination_prefix.strip("/")
    return f"{prefix}/{event.endpoint}/{event.variant}/{hour}"


class CaptureWriter:
    """Buffers capture events and writes them from a background task. Use from one event loop only.

    ``on_drop(endpoint, variant)`` is called for every sample that was dropped (buffer full, invalid key,
    write error), so the router can count it in its stats.
    """

    def __init__(
        self,
        artifacts_root: Path,
        *,
        on_drop: Callable[[str, str], None],
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        self._root = artifacts_root
        self._on_drop = on_drop
        self._max_bytes = max_buffered_bytes
        self._buffer: list[CaptureEvent] = []
        self._buffered_bytes = 0
        self._store: Any = None
        self._task: asyncio.Task[None] | None = None

    def offer(self, event: CaptureEvent) -> None:
        size = len(event.request_body) + len(event.response_body)
        if self._buffered_bytes + size > self._max_bytes:
            self._on_drop(event.endpoint, event.variant)
            return
        self._buffer.append(event)
        self._buffered_bytes += size

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kamado-capture-flush")

    async def close(self) -> None:
        """Stop the periodic flush and write whatever is still buffered."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception:  # keep capturing: one bad flush must not stop the loop
                log.exception("data capture flush failed")

    async def flush(self) -> None:
        if not self._buffer:
            return
        events, self._buffer, self._buffered_bytes = self._buffer, [], 0
        dropped = await asyncio.to_thread(self._write, events)
        for endpoint, variant in dropped:
            self._on_drop(endpoint, variant)

    def _write(self, events: list[CaptureEvent]) -> list[tuple[str, str]]:
        """Runs in a worker thread; returns (endpoint, variant) of every event that could not be written."""
        from kamado.artifacts.keys import validate_key
        from kamado.artifacts.local import LocalArtifactStore  # imported here: fsspec is slow to import

        if self._store is None:
            self._store = LocalArtifactStore(self._root)
        by_dir: dict[str, list[CaptureEvent]] = {}
        for event in events:
            by_dir.setdefault(capture_directory(event), []).append(event)
        dropped: list[tuple[str, str]] = []
        for directory, group in by_dir.items():
            try:
                key = validate_key(f"{directory}/{uuid.uuid4().hex}.jsonl", field="capture destination")
                self._store.put_bytes(key, b"".join(capture_line(e) for e in group))
            except Exception as exc:
                log.warning("dropping %d captured invocation(s) for %s: %s", len(group), directory, exc)
                dropped.extend((e.endpoint, e.variant) for e in group)
        return dropped
