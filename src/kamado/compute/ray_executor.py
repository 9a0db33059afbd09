"""The Ray executor: each task runs on a node of an existing Ray cluster, under the same shim as locally.

How a task runs (details in ``ray_node.py``): ``submit`` creates one *detached, named* Ray actor per task
(``kamado-task:<task dir>`` in namespace ``kamado``) that reserves the task's CPUs, GPUs and memory. On
whichever node Ray places it, the actor starts ``shim.py`` on the task's command - so the environment is
exactly the spec's, limits, timeouts, TERM-grace-KILL and the exit/signal/OOM reasons are those of the
local executor - and waits for it.

Why the actor exits when the task ends: a Ray actor holds its resources for its whole life, so an actor
that stayed around to serve the log would keep the task's CPUs and GPUs from the next task for as long as
nobody cleaned it up (and forever while the control plane is down). Instead the task's files stay on the
node's disk, the actor makes sure the node's *keeper* (one zero-resource actor per node) can serve them,
and exits: the resources are back the moment the command ends. The control plane keeps its own small
record per task under ``root`` (the spec, the actor id, and once seen, the final status and a copy of the
log), so a verdict sticks and logs stay readable even after the node is gone.

The server itself never imports ``ray``: it talks to a bridge process (``ray_bridge.py``) that is the Ray
driver, so a dead head node makes calls fail in bounded time instead of hanging or ending the server.

Restarts: the actor is detached and named, and its id is recorded under ``root``, so a new server on the
same root re-attaches (``attach``) and a task whose actor is gone with no recorded status is ``Lost`` with
Ray's reason. If the cluster cannot be reached at all for ``lost_after_s``, running tasks are reported
``Lost`` too (a dead head node takes its cluster's tasks with it).

What a remote node needs: the same kamado, Python and Ray versions as the server (the actors import
kamado); the task's ``workdir`` path is created on the node if missing, but the files the control plane
lays out there (e.g. a training job's ``/opt/ml`` tree, staged inputs) must reach the node through a
shared filesystem at the same path.

Gangs: the tasks of one multi-instance job (``TaskSpec.gang``) are scheduled into one placement group
that Ray reserves whole or not at all, so they start together (see ``ray_gang.py``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kamado.compute import ray_gang as _gang
from kamado.compute import shim as _shim
from kamado.compute.executor import ExecutorCapabilities
from kamado.compute.local import NEVER_STARTED_AFTER_S
from kamado.compute.ray_client import BridgeClient, b64, probe
from kamado.compute.task_state import DirectoryExecutor, read_status, to_status, validate
from kamado.compute.taskspec import Resources, TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.core.errors import InvalidSpec, NotFound, ServiceUnavailable

log = logging.getLogger("kamado.compute.ray")
NAMESPACE = "kamado"
TASK_PREFIX = "kamado-task:"
_LOG_COPY_CHUNK = 4 << 20
_CAPACITY_TTL_S = 5.0


class RayExecutor(DirectoryExecutor):
    """Runs tasks on an existing Ray cluster (``address`` = the head's GCS ``host:port``).

    Thread-safe. ``submit`` is idempotent by task id across threads and processes sharing ``root`` (an
    ``flock`` per task, as in the local executor) and across restarts (the actor is found by name or id).
    ``read_logs`` raises ``NotFound`` for a task cleaned up or never submitted.
    """

    name = "ray"

    def __init__(
        self,
        address: str,
        root: Path | str,
        *,
        node_root: str = "/tmp/kamado-ray",
        python: str = sys.executable,
        call_timeout_s: float = 30.0,
        lost_after_s: float = 60.0,
        client: BridgeClient | None = None,
    ) -> None:
        self.address = address
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.node_root = node_root
        self.lost_after_s = lost_after_s
        #: Several executors in one process (tests) may share one bridge; a server has one executor.
        self.client = client or BridgeClient(
            address, NAMESPACE, log_path=self.root / "ray-bridge.log", python=python, call_timeout_s=call_timeout_s
        )
        self._unreachable_since: float | None = None
        self._capacity: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------- contract

    @property
    def capabilities(self) -> ExecutorCapabilities:
        # Mount namespaces depend on each node's kernel and are not probed there: declared unavailable.
        return ExecutorCapabilities(mount_namespaces=False, memory_limits=True, survives_restart=True)

    def capacity(self) -> Resources:
        total = self._cluster_capacity()["total"]
        memory = int(total["memory"] // (1024 * 1024)) or None
        return Resources(cpus=float(total["CPU"]), memory_mb=memory, gpus=int(total["GPU"]))

    def submit(self, spec: TaskSpec) -> TaskHandle:
        self._validate(spec)
        state_dir, launch = self._submit_once(spec, lambda state_dir: self._launch(spec, state_dir))
        return self._handle(spec.task_id, state_dir, launch)

    def poll(self, handle: TaskHandle) -> TaskStatus:
        state_dir = self._dir_of(handle)
        recorded = read_status(state_dir)
        if recorded is not None:
            return recorded
        if not state_dir.is_dir():
            return TaskStatus(state=TaskState.LOST, reason="the task's state directory is gone (ExecutorLost)")
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None:
            if time.time() - state_dir.stat().st_mtime < NEVER_STARTED_AFTER_S:
                return TaskStatus(state=TaskState.PENDING)
            return self._record(state_dir, {"state": "Lost", "reason": "the task was accepted but never sent to Ray"})
        try:
            result = self._call(
                "poll",
                task_id=handle.task_id,
                dir_name=state_dir.name,
                actor_id=launch["actor_id"],
                node_root=self.node_root,
            )
        except ServiceUnavailable as exc:
            return self._unreachable(state_dir, str(exc))
        if TaskState(result["state"]).is_terminal():
            return self._record(state_dir, result, launch=launch)
        return to_status(result)

    def read_logs(self, handle: TaskHandle, offset: int, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        state_dir = self._dir_of(handle)
        if not state_dir.is_dir():
            raise NotFound(
                f"Task '{handle.task_id}' has no logs on this executor: it was cleaned up or never submitted."
            )
        offset = max(0, offset)
        if (state_dir / "log.complete").exists():
            with open(state_dir / "log", "rb") as f:
                f.seek(offset)
                data = f.read(max(0, max_bytes))
            return data, offset + len(data)
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None:
            return b"", offset
        try:
            remote = self._remote_log(state_dir, launch, offset, max_bytes)
        except ServiceUnavailable:
            remote = None  # the cluster does not answer: nothing new for now, as for a task not started
        if remote is None:
            return b"", offset
        return remote, offset + len(remote)

    def cancel(self, handle: TaskHandle, grace_s: float | None = None) -> None:
        state_dir = self._dir_of(handle)
        if not state_dir.is_dir() or (state_dir / "status.json").exists():
            return
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None:
            return
        outcome = self._call("cancel", dir_name=state_dir.name, actor_id=launch["actor_id"], grace_s=grace_s)
        if outcome == "pending":
            self._record(state_dir, {"state": "Stopped", "reason": "cancelled before the command started"})

    def attach(self, task_id: str, data: dict[str, object]) -> TaskHandle:
        # As in the local executor, the record is found from the task id, never from ``data``.
        state_dir = self._state_dir(task_id)
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None and isinstance(data.get("actor_id"), str) and state_dir.is_dir():
            launch = {"actor_id": data["actor_id"]}
        return self._handle(task_id, state_dir, launch)

    def cleanup(self, handle: TaskHandle) -> None:
        state_dir = self._dir_of(handle)
        if not state_dir.is_dir():
            return
        self._require_ended(handle)
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is not None:
            try:
                self._call("cleanup", dir_name=state_dir.name, actor_id=launch["actor_id"], node_root=self.node_root)
            except ServiceUnavailable as exc:  # the node's copy goes with the node; ours goes now
                log.warning("could not delete the files of %s on its Ray node: %s", handle.task_id, exc)
        shutil.rmtree(state_dir, ignore_errors=True)
        gang = (launch or {}).get("gang")
        if gang:
            group = _gang.leave(self.root, gang, state_dir.name)
            if group is not None:
                self._remove_group(group)

    def on_task_end(self, callback: Callable[[str], None]) -> None:
        self.client.on_task_end(callback)

    # ------------------------------------------------------------------------------------- extras

    def describe(self, handle: TaskHandle) -> dict[str, Any]:
        """Where the task runs on Ray (actor state, node id, the runner's pid): for diagnostics and tests."""
        state_dir = self._dir_of(handle)
        launch = _shim.read_json(str(state_dir / "launch.json")) or {}
        if "actor_id" not in launch:
            return {}
        info = dict(self._call("describe", dir_name=state_dir.name, actor_id=launch["actor_id"]))
        if launch.get("placement_group"):
            info["placement_group_state"] = self._call("gang_state", name=launch["placement_group"])
        return info

    def hello(self) -> dict[str, Any]:
        """Connect (if not yet) and return the client's and the cluster's Ray and Python versions."""
        self._call("capacity")
        return dict(self.client.hello)

    def close(self) -> None:
        """Stop the bridge process. Tasks keep running; a new executor re-attaches to them."""
        self.client.close()

    # ------------------------------------------------------------------------------------- internals

    def _call(self, op: str, **args: Any) -> Any:
        result = self.client.call(op, **args)
        self._unreachable_since = None
        return result

    def _validate(self, spec: TaskSpec) -> None:
        # The workdir must exist on the node that runs the task, not here: the runner creates it there.
        validate(replace(spec, workdir=os.sep))
        if not os.path.isabs(spec.workdir):
            raise InvalidSpec(
                f"Task '{spec.task_id}' has an invalid spec (workdir); fix it and submit again.",
                details=[{"field": "workdir", "message": f"{spec.workdir!r} must be an absolute path"}],
            )
        largest = self._cluster_capacity()["largest_node"]
        res = spec.resources
        asked = {"CPU": res.cpus, "GPU": float(res.gpus), "memory": float(res.memory_mb or 0) * 1024 * 1024}
        too_big = [key for key, value in asked.items() if value > largest[key]]
        if too_big:
            what = ", ".join(
                f"{_HUMAN[k]} {_show(k, asked[k])} (largest node: {_show(k, largest[k])})" for k in too_big
            )
            raise InvalidSpec(
                f"Task '{spec.task_id}' asks for more than any node of the Ray cluster at {self.address} has: "
                f"{what}. Ask for less, or add a bigger node to the cluster.",
                details=[
                    {"field": f"resources.{_FIELD[k]}", "message": f"at most {_show(k, largest[k])}"} for k in too_big
                ],
            )
        if _gang.is_gang(spec):
            self._validate_gang(spec)

    def _validate_gang(self, spec: TaskSpec) -> None:
        """A gang the whole cluster could never hold at once would wait forever: refused with the numbers."""
        capacity = self._cluster_capacity()
        bundle = _gang.bundle_of(spec)
        fits = _gang.how_many_fit(bundle, capacity.get("nodes") or [])
        if fits >= spec.gang_size:
            return
        each = ", ".join(f"{_HUMAN[k]} {_show(k, v)}" for k, v in bundle.items())
        total = ", ".join(f"{_HUMAN[k]} {_show(k, capacity['total'][k])}" for k in bundle)
        raise InvalidSpec(
            f"Task '{spec.task_id}' belongs to gang '{spec.gang}' of {spec.gang_size} instances ({each} each) that "
            f"must run at once, but the Ray cluster at {self.address} can hold at most {fits} of them "
            f"({len(capacity.get('nodes') or [])} nodes, {total} in all). Use at most {fits} instances or "
            "smaller ones, or add nodes to the cluster.",
            details=[{"field": "gang_size", "message": f"at most {fits} of this size"}],
        )

    def _cluster_capacity(self) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._capacity
        if cached is not None and now - cached[0] < _CAPACITY_TTL_S:
            return cached[1]
        value = dict(self._call("capacity"))
        self._capacity = (now, value)
        return value

    def _launch(self, spec: TaskSpec, state_dir: Path) -> dict[str, Any]:
        name = TASK_PREFIX + state_dir.name
        actor_id = None
        if (state_dir / "spec.json").exists():
            # A submit that crashed between creating the actor and recording it: adopt that actor if any.
            actor_id = self._call("find", name=name)
        else:
            _shim.write_json_atomic(str(state_dir / "spec.json"), spec.to_json())
        gang: dict[str, Any] = {}
        if _gang.is_gang(spec):
            book = _gang.join(self.root, spec, state_dir.name)
            self._call(
                "gang", name=book["group"], bundles=[book["bundle"]] * int(book["size"]), strategy=_gang.STRATEGY
            )
            gang = {"gang": spec.gang, "placement_group": book["group"]}
        if actor_id is None:
            actor_id = self._call(
                "submit",
                gang=gang.get("placement_group"),
                placement=spec.placement,
                task_id=spec.task_id,
                dir_name=state_dir.name,
                spec=spec.to_json(),
                node_root=self.node_root,
                resources={
                    "cpus": spec.resources.cpus,
                    "gpus": spec.resources.gpus,
                    "memory_mb": spec.resources.memory_mb,
                },
            )
        launch = {
            "actor_id": actor_id,
            "actor_name": name,
            "address": self.address,
            "submitted_at": time.time(),
            **gang,
        }
        return launch  # recorded as launch.json by the submit claim

    def _remote_log(self, state_dir: Path, launch: dict[str, Any], offset: int, max_bytes: int) -> bytes | None:
        return b64(
            self._call(
                "read_logs",
                dir_name=state_dir.name,
                actor_id=launch["actor_id"],
                node_root=self.node_root,
                offset=offset,
                max_bytes=max_bytes,
            )
        )

    def _record(self, state_dir: Path, result: dict[str, Any], launch: dict[str, Any] | None = None) -> TaskStatus:
        """Make a terminal verdict stick: copy the log here first (best effort), then write status.json."""
        if launch is not None and not (state_dir / "log.complete").exists():
            self._copy_log(state_dir, launch)
        status = {k: result.get(k) for k in _STATUS_KEYS}
        tmp = state_dir / f"status.json.{os.getpid()}.{threading.get_ident()}"
        _shim.write_json_atomic(str(tmp), status)
        try:
            os.link(tmp, state_dir / "status.json")
        except FileExistsError:
            pass  # another thread or process recorded the verdict first; theirs stands
        finally:
            tmp.unlink(missing_ok=True)
        self._release_gang_if_over(state_dir)
        return read_status(state_dir) or to_status(status)

    def _release_gang_if_over(self, state_dir: Path) -> None:
        """The gang's group holds its reservation after its actors exit: give it back once all have ended."""
        gang = (_shim.read_json(str(state_dir / "launch.json")) or {}).get("gang")
        if gang and _gang.all_ended(self.root, gang):
            book = _gang.book(self.root, gang)
            if book is not None:
                self._remove_group(str(book["group"]))

    def _remove_group(self, group: str) -> None:
        try:
            self._call("remove_gang", name=group)
        except ServiceUnavailable as exc:  # retried when the gang's last member is cleaned up
            log.warning("could not remove the Ray placement group %s: %s", group, exc)

    def _copy_log(self, state_dir: Path, launch: dict[str, Any]) -> None:
        tmp = state_dir / f"log.{os.getpid()}.{threading.get_ident()}"
        try:
            with open(tmp, "wb") as f:
                offset = 0
                while True:
                    data = self._remote_log(state_dir, launch, offset, _LOG_COPY_CHUNK)
                    if not data:
                        break
                    f.write(data)
                    offset += len(data)
            os.replace(tmp, state_dir / "log")
            (state_dir / "log.complete").touch()
        except (ServiceUnavailable, OSError) as exc:
            log.warning("could not copy the log of %s from its Ray node: %s", state_dir.name, exc)
        finally:
            tmp.unlink(missing_ok=True)

    def _unreachable(self, state_dir: Path, why: str) -> TaskStatus:
        """The cluster does not answer: say so while it may come back, then call the task lost."""
        now = time.monotonic()
        with self._lock:
            if self._unreachable_since is None:
                self._unreachable_since = now
            since = self._unreachable_since
        if now - since >= self.lost_after_s:
            reason = f"the Ray cluster has been unreachable for {now - since:.0f} s (ExecutorLost): {why}"
            return self._record(state_dir, {"state": "Lost", "reason": reason})
        return TaskStatus(state=TaskState.RUNNING, reason=f"the Ray cluster does not answer: {why}")

    def _handle(self, task_id: str, state_dir: Path, launch: dict[str, Any] | None) -> TaskHandle:
        data: dict[str, Any] = {"state_dir": str(state_dir), "task_id": task_id}
        if launch:
            data.update(actor_id=launch.get("actor_id"), address=launch.get("address", self.address))
        return TaskHandle(task_id=task_id, executor=self.name, data=data)


_STATUS_KEYS = (
    "state", "exit_code", "signal", "reason", "oom", "started_at", "ended_at", "pid", "cpu_seconds", "peak_memory_mb",
)  # fmt: skip
_HUMAN = {"CPU": "CPUs", "GPU": "GPUs", "memory": "memory"}
_FIELD = {"CPU": "cpus", "GPU": "gpus", "memory": "memory_mb"}


def _show(key: str, value: float) -> str:
    return f"{value / (1024 * 1024):.0f} MB" if key == "memory" else f"{value:g}"


def check_reachable(address: str) -> str | None:
    """None when a Ray cluster seems to listen at ``address``; else why not. Cheap (one TCP connect)."""
    return probe(address)
