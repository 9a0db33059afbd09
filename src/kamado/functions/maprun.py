"""Map runs: one function over many items (Step Functions' Distributed Map, ItemReader to ResultWriter).

Create reads and checks every item (a parse error names the line), stores them as one JSON-lines object in
the artifact store (split into chunks by line number) and the run as a ``map-run`` resource. The runner
(:mod:`kamado.functions.runner`) dispatches calls to the function's warm pool, retries failed calls with
backoff, and writes each chunk's outcomes as one JSON-lines object when the chunk is finished, then records
the chunk as done in the run's status. A restarted server re-runs only chunks not recorded as done, so no
item is lost and no result is written twice; ``manifest.json``
lists succeeded and failed items at the end. Stop ends a run as ``Aborted``; redrive re-runs failed items.
Runs chain: ``ItemSource: {"MapRun": name}`` takes a Succeeded run's outputs, in item order, as the items.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound
from kamado.core.names import arn, unique_name
from kamado.functions.items import encode_items, item_lines
from kamado.functions.service import FunctionService
from kamado.functions.spec import StartMapRunRequest
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord

KIND = "map-run"
STATES = ("InProgress", "Succeeded", "Failed", "Aborted")
MAX_ITEMS = 1_000_000


#: Items per chunk, the unit of result files and of progress that survives a crash: about a sixteenth of the
#: run, within these bounds (each chunk costs a durable write; a crash re-runs the chunks in flight).
MIN_CHUNK, MAX_CHUNK = 256, 4096


def _chunk_size(batch: int, total: int) -> int:
    base = min(MAX_CHUNK, max(MIN_CHUNK, total // 16))
    return batch * max(1, base // batch)


def items_key(run: str) -> str:
    return f"map-runs/{run}/items.jsonl"


class MapRunService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, functions: FunctionService) -> None:
        self.store = store
        self.artifacts = artifacts
        self.functions = functions
        #: The runner's live counters by run name (running, in-chunk successes...), when it runs one.
        self.live: dict[str, dict[str, Any]] = {}

    def create(self, req: StartMapRunRequest) -> ResourceRecord:
        fn = self.functions.get(req.FunctionName)
        source_run = req.ItemSource.MapRun if req.ItemSource is not None else None
        if source_run is not None:
            lines = encode_items(self.chained_items(source_run))
        else:
            lines = item_lines(self.artifacts, req)
        if len(lines) > MAX_ITEMS:
            raise InvalidSpec(f"A map run takes at most {MAX_ITEMS} items; this one has {len(lines)}.")
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
        size = _chunk_size(req.BatchSize, len(lines))
        chunks = (len(lines) + size - 1) // size
        # One object for all the items (one durable write, not one per chunk); chunk c is lines [c*size, ...).
        self.artifacts.put_bytes(items_key(name), ("\n".join(lines) + "\n").encode())
        return self.store.create(
            kind=KIND,
            name=name,
            arn=arn("map-run", name).replace(":sagemaker:", ":states:") + f"/{fn.name}",
            state="InProgress",
            spec=req.model_dump(mode="json", exclude={"Items"}, exclude_none=True),
            status={
                "Total": len(lines),
                "ChunkSize": size,
                "ItemsLayout": "single",
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

    def chained_items(self, run_name: str) -> list[Any]:
        """The items of a run chained from ``run_name``: that run's succeeded outputs, in item order.

        Only a Succeeded run is a stable source (an InProgress one is still writing; a Failed or Aborted one
        should be redriven first, so the next stage does not silently run on a partial set).
        """
        field = [{"field": "ItemSource.MapRun", "message": run_name}]
        try:
            rec = self.store.get(KIND, run_name)
        except NotFound:
            raise NotFound(
                f"ItemSource.MapRun: could not find map run '{run_name}' to take items from; name an existing run.",
                details={"field": "ItemSource.MapRun", "MapRunName": run_name},
            ) from None
        if rec.state != "Succeeded":
            hint = "wait for it to end" if rec.state == "InProgress" else "redrive it until it succeeds"
            raise InvalidSpec(
                f"ItemSource.MapRun: map run '{run_name}' is {rec.state}; only a Succeeded run's results can be "
                f"the items of another run ({hint}).",
                details=field,
            )
        st = rec.status
        outputs: list[tuple[int, Any]] = []
        for chunk in range(st["Chunks"]):
            key = f"{st['ResultPrefix']}/results-{chunk:05d}.jsonl"
            if not self.artifacts.exists(key):
                continue
            for line in self.artifacts.get_bytes(key).decode().splitlines():
                row = json.loads(line)
                if row.get("Status") == "SUCCEEDED":
                    outputs.append((row["Index"], row.get("Output")))
        if not outputs:
            raise InvalidSpec(
                f"ItemSource.MapRun: map run '{run_name}' has no succeeded results to take as items.",
                details=field,
            )
        outputs.sort(key=lambda pair: pair[0])
        return [out for _, out in outputs]

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
        if live is not None:  # the runner's counts include the done chunks and are never behind the store's
            succeeded = live["succeeded"]
            failed = live["failed"]
            retried = live["retried"]
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
