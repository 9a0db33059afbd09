"""The Ray driver of the Ray executor, in its own process: ``python -m kamado.compute.ray_bridge ADDRESS NS``.

Why a separate process instead of ``ray.init`` in the server: a Ray driver is process-global state that
cannot safely be re-initialised, its calls block while the cluster's head (GCS) is down, and after about a
minute without the GCS Ray ends the driver's whole process. None of that may happen to the control plane.
So the server talks to this bridge over a pipe (one JSON object per line, requests answered in any order,
several at once) and treats a bridge that does not answer in time as an unreachable cluster: it kills it
and starts a fresh one at the next call. The bridge exits when its stdin closes (the server went away);
the task actors are detached and keep running.

Protocol: request ``{"id", "op", "args"}``; reply ``{"id", "ok": true, "result"}`` or
``{"id", "ok": false, "kind", "error"}``; unsolicited ``{"event": "ended", "task_id"}`` when a task this
bridge submitted ends. Bytes travel base64-encoded.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import platform
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

#: How long one call to an actor may take inside the bridge (the client's own timeout is longer).
ACTOR_CALL_TIMEOUT_S = 5.0
TASK_PREFIX = "kamado-task:"
PENDING_STATES = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "RESTARTING")


def pin_to_driver_node(nodes: dict[str, dict[str, Any]], driver_node: str) -> bool:
    """Whether a task the server reaches at 127.0.0.1 must be kept on the server's node: only when some alive
    node has another address (on a single host - a laptop, the tests' loopback cluster - any node will do)."""
    here = (nodes.get(driver_node) or {}).get("NodeManagerAddress")
    return any(n.get("NodeManagerAddress") != here for n in nodes.values())


class Bridge:
    def __init__(self, out: TextIO) -> None:
        import ray

        self.ray = ray
        self.out = out
        self.out_lock = threading.Lock()
        self.watch_lock = threading.Lock()
        self.watched: dict[Any, str] = {}  # ObjectRef of runner.wait_end -> task id
        self.gang_lock = threading.Lock()  # one placement group per gang name, even for concurrent submits
        self.runner_cls: Any = ray.remote(_runner_class())
        threading.Thread(target=self._watch_ends, name="kamado-ray-ends", daemon=True).start()

    # ----------------------------------------------------------------------------------- plumbing

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message)
        with self.out_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def handle(self, request: dict[str, Any]) -> None:
        rid = request.get("id")
        try:
            result = getattr(self, "op_" + str(request.get("op")))(**(request.get("args") or {}))
            self.send({"id": rid, "ok": True, "result": result})
        except Exception as exc:
            self.send({"id": rid, "ok": False, "kind": type(exc).__name__, "error": str(exc)[:2000]})

    def _watch_ends(self) -> None:
        ray = self.ray
        while True:
            with self.watch_lock:
                refs = list(self.watched)
            if not refs:
                threading.Event().wait(0.2)
                continue
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0.2)
            for ref in ready:
                with self.watch_lock:
                    task_id = self.watched.pop(ref, None)
                if task_id is not None:
                    self.send({"event": "ended", "task_id": task_id})

    def _table(self, actor_id: str) -> dict[str, Any]:
        info = self.ray._private.state.actors(actor_id)
        return info if isinstance(info, dict) else {}

    def _alive_nodes(self) -> dict[str, dict[str, Any]]:
        return {n["NodeID"]: n for n in self.ray.nodes() if n.get("Alive")}

    def _call(self, ref: Any) -> Any:
        return self.ray.get(ref, timeout=ACTOR_CALL_TIMEOUT_S)

    def _keeper(self, node_root: str, node_id: str) -> Any:
        from kamado.compute.ray_node import keeper

        return keeper(node_root, node_id)

    # ----------------------------------------------------------------------------------- operations

    def op_hello(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        try:
            from ray._common.usage.usage_lib import get_cluster_metadata

            worker: Any = self.ray._private.worker.global_worker
            meta = get_cluster_metadata(worker.gcs_client) or {}
        except Exception:  # an older or newer Ray without it: versions were checked by ray.init anyway
            meta = {}
        return {
            "ray_version": self.ray.__version__,
            "python_version": platform.python_version(),
            "cluster_ray_version": meta.get("ray_version"),
            "cluster_python_version": meta.get("python_version"),
            "nodes": len(self._alive_nodes()),
        }

    def op_capacity(self) -> dict[str, Any]:
        total = self.ray.cluster_resources()
        available = self.ray.available_resources()
        largest: dict[str, float] = {"CPU": 0.0, "GPU": 0.0, "memory": 0.0}
        for node in self._alive_nodes().values():
            res = node.get("Resources") or {}
            for key in largest:
                largest[key] = max(largest[key], float(res.get(key, 0.0)))
        return {
            "total": {k: float(total.get(k, 0.0)) for k in ("CPU", "GPU", "memory")},
            "largest_node": largest,
            "nodes": [
                {k: float((n.get("Resources") or {}).get(k, 0.0)) for k in ("CPU", "GPU", "memory")}
                for n in self._alive_nodes().values()
            ],
            "available": {k: float(available.get(k, 0.0)) for k in ("CPU", "GPU", "memory")},
        }

    def op_nodes(self) -> list[dict[str, Any]]:
        return [
            {
                "node_id": n["NodeID"],
                "alive": bool(n.get("Alive")),
                "head": "node:__internal_head__" in (n.get("Resources") or {}),
            }
            for n in self.ray.nodes()
        ]

    def op_find(self, name: str) -> str | None:
        """The id of the task actor called ``name`` (alive or dead), for a submit that crashed mid-way."""
        try:
            return str(self.ray.get_actor(name)._actor_id.hex())
        except ValueError:
            pass
        namespace = self.ray.get_runtime_context().namespace
        for actor_id, info in (self.ray._private.state.actors() or {}).items():
            if info.get("Name") == name and info.get("RayNamespace", namespace) == namespace:
                return str(actor_id)
        return None

    def op_gang(self, name: str, bundles: list[dict[str, float]], strategy: str) -> dict[str, Any]:
        """Find or create the detached placement group ``name``: every bundle is reserved at once or none is,
        so no member of a gang starts while another waits for room."""
        from ray.util import get_placement_group, placement_group

        with self.gang_lock:
            try:
                pg = get_placement_group(name)
            except ValueError:
                pg = placement_group(bundles, strategy=strategy, name=name, lifetime="detached")
        return {"id": pg.id.hex(), "bundles": [dict(b) for b in pg.bundle_specs]}

    def op_remove_gang(self, name: str) -> bool:
        """Remove the placement group ``name`` (and so its reservation); False when there is none."""
        from ray.util import get_placement_group, remove_placement_group

        with self.gang_lock:
            try:
                pg = get_placement_group(name)
            except ValueError:
                return False
            remove_placement_group(pg)
        return True

    def op_gang_state(self, name: str) -> str | None:
        """The placement group's state (``PENDING``, ``CREATED``, ``REMOVED``...), None when there is none."""
        from ray.util import get_placement_group
        from ray.util.placement_group import placement_group_table

        try:
            pg = get_placement_group(name)
        except ValueError:
            return None
        return str(placement_group_table(pg).get("state"))

    def op_submit(
        self,
        task_id: str,
        dir_name: str,
        spec: dict[str, Any],
        node_root: str,
        resources: dict[str, Any],
        gang: str | None = None,
        placement: str = "any",
    ) -> str:
        options: dict[str, Any] = {
            "name": TASK_PREFIX + dir_name,
            "get_if_exists": True,
            "lifetime": "detached",
            "max_restarts": 0,
            "max_concurrency": 8,
            "num_cpus": float(resources.get("cpus") or 0.0),
            "num_gpus": int(resources.get("gpus") or 0),
        }
        if resources.get("memory_mb"):
            options["memory"] = int(resources["memory_mb"]) * 1024 * 1024
        if gang is not None:
            from ray.util import get_placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            # Any bundle (all are alike): the actor waits, unstarted, until the whole group is reserved.
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=get_placement_group(gang), placement_group_bundle_index=-1
            )
        elif placement == "control-plane-host":
            node_id = self.ray.get_runtime_context().get_node_id()  # the node this driver, the server, is on
            if pin_to_driver_node(self._alive_nodes(), node_id):
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
        runner = self.runner_cls.options(**options).remote(task_id, dir_name, spec, node_root)
        with self.watch_lock:
            self.watched[runner.wait_end.remote()] = task_id
        return str(runner._actor_id.hex())

    def op_poll(self, task_id: str, dir_name: str, actor_id: str, node_root: str) -> dict[str, Any]:
        info = self._table(actor_id)
        if not info:
            return {"state": "Lost", "reason": "the Ray cluster has no record of the task's actor (was it restarted?)"}
        state = info.get("State")
        if state in PENDING_STATES:
            return {"state": "Pending"}
        if state == "ALIVE":
            try:
                return dict(self._call(self.ray.get_actor(TASK_PREFIX + dir_name).status.remote()))
            except self.ray.exceptions.GetTimeoutError:
                return {"state": "Running", "reason": "the task's runner did not answer in time"}
            except (ValueError, self.ray.exceptions.RayActorError):
                info = self._table(actor_id)  # it exited (or died) since: fall through to the keeper
        node_id = str((info.get("Address") or {}).get("NodeID") or "")
        why = _death_text(info.get("DeathCause"))
        if node_id not in self._alive_nodes():
            where = f"Ray node {node_id[:12]}" if node_id else "its Ray node"
            return {"state": "Lost", "reason": f"{where} left the cluster while the task ran (ExecutorLost): {why}"}
        keeper = self._keeper(node_root, node_id)
        status = self._call(keeper.status.remote(dir_name))
        if status and status.get("state") not in ("Pending", "Running"):
            return dict(status)
        reason = f"the task's Ray actor died without recording an exit status (ExecutorLost): {why}"
        return dict(self._call(keeper.reap_lost.remote(dir_name, task_id, reason)))

    def op_read_logs(self, dir_name: str, actor_id: str, node_root: str, offset: int, max_bytes: int) -> str | None:
        info = self._table(actor_id)
        data: bytes | None = None
        if info.get("State") == "ALIVE":
            try:
                data = self._call(self.ray.get_actor(TASK_PREFIX + dir_name).read_logs.remote(offset, max_bytes))
                return base64.b64encode(data).decode() if data is not None else None
            except (ValueError, self.ray.exceptions.RayActorError):
                info = self._table(actor_id)
        node_id = str((info.get("Address") or {}).get("NodeID") or "")
        if not node_id or node_id not in self._alive_nodes():
            return None
        data = self._call(self._keeper(node_root, node_id).read_logs.remote(dir_name, offset, max_bytes))
        return base64.b64encode(data).decode() if data is not None else None

    def op_cancel(self, dir_name: str, actor_id: str, grace_s: float | None) -> str:
        """ "pending": the actor never started and was removed; "signalled"; "ended": nothing to do."""
        state = self._table(actor_id).get("State")
        if state in PENDING_STATES:
            try:
                self.ray.kill(self.ray.get_actor(TASK_PREFIX + dir_name), no_restart=True)
            except ValueError:
                return "ended"
            return "pending"
        if state != "ALIVE":
            return "ended"
        try:
            self._call(self.ray.get_actor(TASK_PREFIX + dir_name).cancel.remote(grace_s))
        except (ValueError, self.ray.exceptions.RayActorError):
            return "ended"
        return "signalled"

    def op_cleanup(self, dir_name: str, actor_id: str, node_root: str) -> None:
        node_id = str((self._table(actor_id).get("Address") or {}).get("NodeID") or "")
        if node_id and node_id in self._alive_nodes():
            self._call(self._keeper(node_root, node_id).forget.remote(dir_name))

    def op_describe(self, dir_name: str, actor_id: str) -> dict[str, Any]:
        info = self._table(actor_id)
        out: dict[str, Any] = {
            "actor_state": info.get("State"),
            "node_id": (info.get("Address") or {}).get("NodeID"),
            "death": _death_text(info.get("DeathCause")),
        }
        if info.get("State") == "ALIVE":
            try:
                out.update(self._call(self.ray.get_actor(TASK_PREFIX + dir_name).status.remote()))
            except Exception as exc:
                out["error"] = str(exc)[:500]
        return out


def _runner_class() -> type:
    from kamado.compute.ray_node import TaskRunner

    return TaskRunner


def _death_text(cause: Any) -> str:
    """The human part of Ray's ActorDeathCause (a protobuf message): its ``error_message`` fields."""
    if cause is None:
        return "no cause recorded"
    found: list[str] = []

    def walk(message: Any) -> None:
        for field, value in getattr(message, "ListFields", list)():
            if field.name == "error_message" and isinstance(value, str):
                found.append(value)
            elif hasattr(value, "ListFields"):
                walk(value)

    walk(cause)
    return " ".join(" ".join(found).split())[:500] or "no cause recorded"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: python -m kamado.compute.ray_bridge ADDRESS NAMESPACE\n")
        return 2
    # The protocol owns the real stdout; whatever Ray prints goes to stderr (the bridge's log file).
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import ray

    try:
        ray.init(
            address=argv[1],
            namespace=argv[2],
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
        )
    except Exception as exc:
        out.write(json.dumps({"event": "failed", "error": " ".join(str(exc).split())[:2000]}) + "\n")
        out.flush()
        return 1
    bridge = Bridge(out)
    bridge.send({"event": "ready", **bridge.op_hello()})
    pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kamado-ray-op")
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        pool.submit(bridge.handle, request)
    # stdin closed: the server went away. Detached task actors keep running; a new server re-attaches.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
