"""What runs on the Ray nodes for the Ray executor: one runner actor per task, one keeper actor per node.

Imported only inside Ray processes (the bridge and the actors' workers), never by the control plane, so
the server does not import ``ray``. Every node needs the same kamado, Python and Ray as the bridge.

A task's files live on the node that runs it, in ``<node_root>/<node id>/<task dir>/``, in exactly the
layout of the local executor (``spec.json``, ``shim.json``, ``log``, ``cancel.json``, ``status.json``):
the supervisor is the same ``shim.py``, so env, limits, timeouts, TERM-grace-KILL and the exit reasons
are the local executor's, byte for byte.

- :class:`TaskRunner` reserves the task's CPUs, GPUs and memory (a Ray actor holds its resources for its
  lifetime), starts the shim and waits for it. When the shim has recorded the status, the runner makes
  sure its node has a keeper and exits, which hands the resources back to Ray at once, whether or not the
  control plane is there to notice.
- :class:`NodeKeeper` (zero resources, one per node) serves the status and log of tasks that ended on its
  node until the control plane cleans them up, and turns a task whose runner died into a recorded
  ``Lost`` after killing whatever the task left running.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import ray

from kamado.compute import shim as _shim
from kamado.compute.local import SHIM_PATH
from kamado.compute.task_state import kill_orphaned_group, recorded_status, supervisor_alive

#: Runs the shim with SIGKILL as its parent-death signal: if the runner's worker dies (killed, OOM, node
#: shutdown), its shim dies with it and cannot go on running a task whose resources Ray has taken back.
#: The keeper then kills the orphaned task and records it lost. Python resets nothing across exec, so the
#: signals a Ray worker may ignore are reset here first.
_WRAPPER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.executable, [sys.executable, '-I', '-S', *sys.argv[2:]])\n"
)
_SHIM_STARTUP_WAIT_S = 5.0
KEEPER_PREFIX = "kamado-keeper:"
_KEEPER_CLASS: Any = None


def node_dir(node_root: str, node_id: str) -> str:
    return os.path.join(node_root, node_id)


def keeper_name(node_root: str, node_id: str) -> str:
    """One keeper per node *and* node root: executors with different roots may share a cluster (two servers,
    or tests), and a keeper serves one root's files; found by a name without its root, it would answer for
    the other root's tasks with "no such task" and turn them Lost."""
    return f"{KEEPER_PREFIX}{node_id}:{hashlib.sha256(node_root.encode()).hexdigest()[:12]}"


def keeper(node_root: str, node_id: str) -> Any:
    """The keeper of ``node_id`` for ``node_root`` (created on first use, pinned to that node, zero resources)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    global _KEEPER_CLASS
    if _KEEPER_CLASS is None:
        _KEEPER_CLASS = ray.remote(NodeKeeper)
    return _KEEPER_CLASS.options(
        name=keeper_name(node_root, node_id),
        namespace=ray.get_runtime_context().namespace,
        get_if_exists=True,
        lifetime="detached",
        num_cpus=0,
        max_concurrency=16,
        max_restarts=-1,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
    ).remote(node_root)


def task_status(state_dir: str, node_id: str) -> dict[str, Any]:
    """What the files of one task say: the shim's final status, else Running (with pid) or Pending."""
    status = _shim.read_json(os.path.join(state_dir, "status.json"))
    if isinstance(status, dict):
        return {**status, "node_id": node_id}
    info = _shim.read_json(os.path.join(state_dir, "shim.json")) or {}
    if info.get("child_pid"):
        return {"state": "Running", "pid": info["child_pid"], "started_at": info.get("started_at"), "node_id": node_id}
    return {"state": "Pending", "node_id": node_id}


def read_log(state_dir: str, offset: int, max_bytes: int) -> bytes | None:
    """Log bytes from ``offset``; None when the task's directory is gone (cleaned up or never here)."""
    if not os.path.isdir(state_dir):
        return None
    try:
        with open(os.path.join(state_dir, "log"), "rb") as f:
            f.seek(max(0, offset))
            return f.read(max(0, max_bytes))
    except FileNotFoundError:
        return b""


class TaskRunner:
    """Runs one task on the node Ray placed it on, holding the task's resources until the command ends.

    A threaded actor: ``status``, ``read_logs`` and ``cancel`` are answered while ``finish`` waits.
    """

    def __init__(self, task_id: str, dir_name: str, spec: dict[str, Any], node_root: str) -> None:
        ctx = ray.get_runtime_context()
        self.task_id = task_id
        self.node_id = ctx.get_node_id()
        self.node_root = node_root
        self.state_dir = os.path.join(node_dir(node_root, self.node_id), dir_name)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ended = threading.Event()
        if not os.path.exists(os.path.join(self.state_dir, "spec.json")):
            _shim.write_json_atomic(os.path.join(self.state_dir, "spec.json"), self._with_gpus(spec))
        # The supervising thread also spawns the shim: the parent-death signal follows the spawning thread.
        threading.Thread(target=self._supervise, name="kamado-shim-wait", daemon=True).start()
        # Exit on our own once the task ends, so the resources come back even with no control plane.
        ctx.current_actor.finish.remote()

    def _with_gpus(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The task's own GPUs (the ones Ray gave this actor) in its environment, as the local executor does."""
        env = dict(spec.get("env") or {})
        gpus = int((spec.get("resources") or {}).get("gpus") or 0)
        if gpus > 0:
            devices = ",".join(str(i) for i in ray.get_gpu_ids())
            env.update(CUDA_VISIBLE_DEVICES=devices, NVIDIA_VISIBLE_DEVICES=devices)
        elif "CUDA_VISIBLE_DEVICES" not in env and _node_has_gpus(self.node_id):
            env.update(CUDA_VISIBLE_DEVICES="", NVIDIA_VISIBLE_DEVICES="void")
        return {**spec, "env": env}

    def _supervise(self) -> None:
        try:
            if os.path.exists(os.path.join(self.state_dir, "status.json")):
                return  # a duplicate runner of a task that already ended here: never run it twice
            spec = _shim.read_json(os.path.join(self.state_dir, "spec.json")) or {}
            workdir = spec.get("workdir")
            if isinstance(workdir, str) and os.path.isabs(workdir):
                # A fresh node has no workdir yet; if this fails, the shim reports why.
                os.makedirs(workdir, exist_ok=True)
            with self.lock:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _WRAPPER, str(os.getpid()), SHIM_PATH, self.state_dir],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                    start_new_session=True,
                    cwd="/",
                    env={},
                )
            self.proc.wait()
            if not os.path.exists(os.path.join(self.state_dir, "status.json")):
                # The shim could not even record a failure (e.g. it could not start): say so, never "lost".
                _record(
                    self.state_dir, self.task_id, "Failed", f"the task's supervisor exited with {self.proc.returncode}"
                )
        except BaseException as exc:  # the task must end recorded, not with a silent runner
            _record(self.state_dir, self.task_id, "Failed", f"kamado runner error: {type(exc).__name__}: {exc}")
        finally:
            self.ended.set()

    def finish(self) -> None:
        """Wait for the task, make sure this node's keeper can serve its files, then exit (freeing resources)."""
        self.ended.wait()
        with contextlib.suppress(Exception):  # if this fails, the control plane creates the keeper on demand
            ray.get(keeper(self.node_root, self.node_id).ping.remote(), timeout=60)
        ray.actor.exit_actor()

    def wait_end(self) -> str:
        self.ended.wait()
        return self.task_id

    def status(self) -> dict[str, Any]:
        return {**task_status(self.state_dir, self.node_id), "runner_pid": os.getpid()}

    def read_logs(self, offset: int, max_bytes: int) -> bytes | None:
        return read_log(self.state_dir, offset, max_bytes)

    def cancel(self, grace_s: float | None) -> None:
        """The local executor's protocol: cancel.json (carries the grace) first, then SIGTERM to the shim."""
        if os.path.exists(os.path.join(self.state_dir, "status.json")):
            return
        with self.lock:
            _shim.write_json_atomic(
                os.path.join(self.state_dir, "cancel.json"), {"grace_s": grace_s, "requested_at": time.time()}
            )
            proc = self.proc
        if proc is None:
            return  # the shim sees cancel.json when it starts and never starts the command
        deadline = time.monotonic() + _SHIM_STARTUP_WAIT_S
        shim_json = os.path.join(self.state_dir, "shim.json")
        while not os.path.exists(shim_json) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            shim_info = _shim.read_json(shim_json) or {}
            # The wrapper exec'd the shim in place, so the shim's pid is the one we started.
            if shim_info.get("pid") in (None, proc.pid):
                os.kill(proc.pid, signal.SIGTERM)


class NodeKeeper:
    """Serves the files of tasks that ran on this node, and records the ones whose runner died as lost."""

    def __init__(self, node_root: str) -> None:
        self.node_id = ray.get_runtime_context().get_node_id()
        self.root = node_dir(node_root, self.node_id)
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def ping(self) -> str:
        return self.node_id

    def _dir(self, dir_name: str) -> str:
        return os.path.join(self.root, dir_name)

    def status(self, dir_name: str) -> dict[str, Any] | None:
        state_dir = self._dir(dir_name)
        return task_status(state_dir, self.node_id) if os.path.isdir(state_dir) else None

    def read_logs(self, dir_name: str, offset: int, max_bytes: int) -> bytes | None:
        return read_log(self._dir(dir_name), offset, max_bytes)

    def reap_lost(self, dir_name: str, task_id: str, reason: str) -> dict[str, Any]:
        """The runner is dead: kill what its task left running, and make ``Lost`` the recorded verdict
        (unless the shim recorded a real outcome first; that one wins)."""
        state_dir = self._dir(dir_name)
        if not os.path.isdir(state_dir):
            return {"state": "Lost", "reason": reason, "node_id": self.node_id}
        shim_info = _shim.read_json(os.path.join(state_dir, "shim.json")) or {}
        if (
            shim_info.get("pid")
            and supervisor_alive(shim_info)
            and not os.path.exists(os.path.join(state_dir, "status.json"))
        ):
            os.kill(int(shim_info["pid"]), signal.SIGKILL)  # its runner is gone; it must not go on
            deadline = time.monotonic() + 5
            while supervisor_alive(shim_info) and time.monotonic() < deadline:
                time.sleep(0.01)
        killed = kill_orphaned_group(shim_info)
        if killed:
            reason += f"; killed {killed} leftover process(es) of its process group {shim_info['child_pid']}"
        _record(state_dir, task_id, "Lost", reason, shim_info=shim_info, killed=killed)
        return task_status(state_dir, self.node_id)

    def forget(self, dir_name: str) -> None:
        shutil.rmtree(self._dir(dir_name), ignore_errors=True)


def _record(
    state_dir: str,
    task_id: str,
    state: str,
    reason: str,
    *,
    shim_info: dict[str, Any] | None = None,
    killed: int = 0,
) -> None:
    """Write status.json in the shim's schema, never over one already there (link() fails if it exists)."""
    status = recorded_status(task_id, state, reason, shim_info or {}, killed)
    tmp = os.path.join(state_dir, f"status.json.rec.{os.getpid()}.{threading.get_ident()}")
    try:
        _shim.write_json_atomic(tmp, status)
        os.link(tmp, os.path.join(state_dir, "status.json"))
    except FileExistsError:
        pass
    except OSError:
        return
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _node_has_gpus(node_id: str) -> bool:
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            return float((node.get("Resources") or {}).get("GPU", 0)) > 0
    return False
