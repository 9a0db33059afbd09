"""Map runs: one function over many items (Step Functions' Distributed Map, ItemReader to ResultWriter).

Create reads and checks every item (a parse error names the line), stores them as JSON-lines chunks in the
artifact store and the run as a ``map-run`` resource. The runner (:mod:`kamado.functions.runner`) dispatches
calls to the function's warm pool, retries failed calls with backoff, and writes each chunk's outcomes as one JSON-lines
object when the chunk is finished, then records the chunk as done in the run's status. A restarted server
re-runs only chunks not recorded as done, so no item is lost and no result is written twice; ``manifest.json``
lists succeeded and failed items at the end. Stop ends a run as ``Aborted``; redrive re-runs failed items.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound
from kamado.core.names import arn, unique_name
from kamado.functions.items import read_items
from kamado.functions.service import FunctionService
from kamado.functions.spec import StartMapRunRequest
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord

KIND = "map-run"
STATES = ("InProgress", "Succeeded", "Failed", "Aborted")
MAX_ITEMS = 1_000_000


def _chunk_size(batch: int) -> int:
    return batch * max(1, 256 // batch)


class MapRunService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, functions: FunctionService) -> None:
        self.store = store
        self.artifacts = artifacts
        self.functions = functions
        #: The runner's live counters by run name (running, in-chunk successes...), when it runs one.
        self.live: dict[str, dict[str, Any]] = {}

    def create(self, req: StartMapRunRequest) -> ResourceRecord:
        fn = self.functions.get(req.FunctionName)
        items = read_items(self.artifacts, req)
        if len(items) > MAX_ITEMS:
            raise InvalidSpec(f"A map run takes at most {MAX_ITEMS} items; this one has {len(items)}.")
        name = req.MapRunName or unique_name(f"{req.FunctionName}-map")
        if req.ResultPrefix is not None:
            try:
                result_prefix = self.artifacts.key_from_uri(req.ResultPrefix).rstrip("/")
            except InvalidSpec:
                raise InvalidSpec(
                    f"ResultPrefix {req.ResultPrefix!r} must be a URI in the artifact store "
                    f"({self.artifacts.root_uri}).",
                    details=[{"field": "ResultPrefix"}],
                ) from None
        else:
            result_prefix = f"map-runs/{name}/results"
        try:
            self.store.get(KIND, name)
        except NotFound:
            pass
        else:
            from kamado.core.errors import ResourceInUse

            raise ResourceInUse(f"Map run '{name}' already exists; pick another MapRunName.")
        size = _chunk_size(req.BatchSize)
        chunks = (len(items) + size - 1) // size
        for c in range(chunks):
            lines = "".join(json.dumps(it, separators=(",", ":")) + "\n" for it in items[c * size : (c + 1) * size])
            self.artifacts.put_bytes(f"map-runs/{name}/items/{c:05d}.jsonl", lines.encode())
        return self.store.create(
            kind=KIND,
            name=name,
            arn=arn("map-run", name).replace(":sagemaker:", ":states:") + f"/{fn.name}",
            state="InProgress",
            spec=req.model_dump(mode="json", exclude={"Items"}, exclude_none=True),
            status={
                "Total": len(items),
                "ChunkSize": size,
                "Chunks": chunks,
                "Done": {},
                "Retried": 0,
                "ResultPrefix": result_prefix,
                "StartTime": time.time(),
                "StopRequested": False,
                "Redrives": 0,
            },
            parent=fn.name,
            tags=req.Tags,
        )

    def get(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(KIND, name)
        except NotFound:
            raise NotFound(f"Could not find map run '{name}'.", details={"MapRunName": name}) from None

    def describe(self, name: str) -> dict[str, Any]:
        return self.describe_record(self.get(name))

    def describe_record(self, rec: ResourceRecord) -> dict[str, Any]:
        st = rec.status
        done = st.get("Done", {})
        succeeded = sum(v[0] for v in done.values())
        failed = sum(v[1] for v in done.values())
        retried = st.get("Retried", 0)
        running = 0
        eta = None
        live = self.live.get(rec.name) if rec.state == "InProgress" else None
        if live is not None:
            succeeded += live["succeeded"]
            failed += live["failed"]
            retried += live["retried"]
            running = live["running"]
            finished = live["finished"]
            elapsed = time.time() - live["started"]
            remaining = st["Total"] - succeeded - failed
            if finished and elapsed > 0:
                eta = round(remaining / (finished / elapsed), 1)
        total = st.get("Total", 0)
        out = {k: v for k, v in rec.spec.items() if k != "Tags"}
        out.update(
            {
                "MapRunName": rec.name,
                "MapRunArn": rec.arn,
                "Status": rec.state,
                "StartDate": iso_time(st.get("StartTime")),
                "StopDate": iso_time(st.get("StopTime")),
                "ItemCounts": {
                    "Total": total,
                    "Pending": max(0, total - succeeded - failed - running),
                    "Running": running,
                    "Succeeded": succeeded,
                    "Failed": failed,
                    "Retried": retried,
                },
                "EtaSeconds": eta,
                "ResultWriterDetails": {
                    "Prefix": self.artifacts.uri(st["ResultPrefix"]),
                    "Manifest": self.artifacts.uri(st["ResultPrefix"] + "/manifest.json"),
                },
                "Redrives": st.get("Redrives", 0),
                "Error": st.get("Error"),
                "Cause": st.get("Cause"),
            }
        )
        return {k: v for k, v in out.items() if v is not None}

    def list(self, **filters: Any) -> dict[str, Any]:
        page = self.store.list(KIND, list_query(statuses=STATES, **filters))
        out: dict[str, Any] = {"MapRuns": [self.describe_record(r) for r in page.items]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    def stop(self, name: str) -> None:
        rec = self.get(name)
        if rec.state != "InProgress":
            raise IllegalTransition(
                f"Map run '{name}' is {rec.state} and cannot be stopped; redrive it to re-run its failed items.",
                details={"MapRunName": name, "Status": rec.state},
            )
        self.store.update_status(KIND, name, {"StopRequested": True})

    def redrive(self, name: str) -> None:
        """Re-run only the failed (and, for a stopped run, the unfinished) items; successes are kept."""
        rec = self.get(name)
        done = rec.status.get("Done", {})
        if rec.state == "InProgress" or (rec.state == "Succeeded" and not any(v[1] for v in done.values())):
            raise IllegalTransition(
                f"Map run '{name}' is {rec.state} with nothing to redrive; redrive a Failed or Aborted run.",
                details={"MapRunName": name, "Status": rec.state},
            )
        self.store.transition(
            KIND,
            name,
            from_states=[rec.state],
            to_state="InProgress",
            status_patch={
                "Done": {c: v for c, v in done.items() if v[1] == 0},
                "StopRequested": False,
                "Redrives": rec.status.get("Redrives", 0) + 1,
                "StopTime": None,
                "Error": None,
                "Cause": None,
            },
            expected_version=rec.version,
        )
