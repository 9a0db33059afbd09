"""The local executor: one supervisor process (``shim.py``) per task, state in a directory per task.

The executor itself holds no state that matters: everything about a task lives in ``root/<task dir>/``
(spec, the shim's pid and start time, the log, the final status), so a new executor on the same root -
after a crash of the control plane - sees exactly what the old one saw. That is what lets reconcilers
re-acquire running jobs after a restart instead of starting them twice (RELIABILITY.md, T1).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kamado.compute import shim as _shim
from kamado.compute.executor import ExecutorCapabilities
from kamado.compute.gpus import GpuAllocator, detect_gpu_ids
from kamado.compute.task_state import (
    DirectoryExecutor,
    kill_orphaned_group,
    read_status,
    recorded_status,
    supervisor_alive,
    to_status,
    validate,
)
from kamado.compute.task_uids import TaskUids, per_task_uids
from kamado.compute.taskspec import Resources, TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.compute.worker_user import (
    AUTO,
    RunAs,
    describe_task_user,
    hand_over,
    make_private_home,
    make_private_tmp,
    needs_private_home,
    reach_paths,
    resolve_worker_user,
    shm_size_mb,
)
from kamado.core.errors import NotFound, ServiceUnavailable

SHIM_PATH = str(Path(_shim.__file__).resolve())
LOST_REASON = "the task's supervisor process ended without recording an exit status (ExecutorLost)"
#: How long a state directory may exist without a started supervisor before the task counts as lost
#: (the submitter crashed between claiming the task and starting it).
NEVER_STARTED_AFTER_S = 30.0
_SHIM_STARTUP_WAIT_S = 5.0
_MOUNT_PROBE: dict[str, bool] = {}
_MOUNT_PROBE_LOCK = threading.Lock()


class LocalExecutor(DirectoryExecutor):
    """Runs each task as a subprocess of its own supervisor on this machine.

    Thread-safe: no in-memory state is shared between calls except the reaper of spawned supervisors.
    ``submit`` is idempotent by task id across threads *and* processes (the claim is an ``mkdir`` plus
    an ``flock`` held while the supervisor is started). A task whose state directory is gone is
    ``NotFound`` for ``read_logs`` and ``Lost`` for ``poll``.
    """

    name = "local"

    def __init__(
        self,
        root: Path | str,
        *,
        python: str = sys.executable,
        max_cpus: float | None = None,
        max_memory_mb: int | None = None,
        max_gpus: int | None = None,
        gpu_ids: Sequence[str] | None = None,
        worker_user: str = AUTO,
        worker_uids: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.python = python
        self.max_cpus = max_cpus
        self.max_memory_mb = max_memory_mb
        self.max_gpus = max_gpus
        ids = list(gpu_ids) if gpu_ids is not None else detect_gpu_ids()
        # Tasks that ask for GPUs get their own via CUDA_VISIBLE_DEVICES (see compute/gpus.py).
        self.gpus = GpuAllocator(self.root, ids if max_gpus is None else ids[:max_gpus])
        self._end_listeners: list[Callable[[str], None]] = []
        #: Who tasks run as when not this process's user: one user for all of them (``run_as``, an explicit
        #: ``worker_user``) or, under ``auto`` on a root server, a uid of its own per task (``uids``).
        #: See worker_user.py and task_uids.py.
        self.run_as: RunAs | None = resolve_worker_user(worker_user)
        self.uids: TaskUids | None = None
        if self.run_as is not None and (worker_user or AUTO).strip() == AUTO:
            if not self._probe("--probe-mounts"):
                # Root without CAP_SYS_ADMIN (a default container): the shim cannot hide what the worker could
                # not reach, so every task would fail. Say so once, at start, rather than fail every job.
                logging.getLogger("kamado.compute").warning(
                    "tasks run as root: this root server may not create mount namespaces, which running them "
                    "unprivileged needs (grant CAP_SYS_ADMIN, or set KAMADO_WORKER_USER=root to silence this)",
                )
                self.run_as = None
            else:
                self.uids = per_task_uids(self.root, worker_uids)
                if self.uids is not None:
                    self.run_as = None

    # ------------------------------------------------------------------------------------- contract

    @property
    def capabilities(self) -> ExecutorCapabilities:
        return ExecutorCapabilities(
            mount_namespaces=self._probe("--probe-mounts"),
            memory_limits=True,
            survives_restart=True,
            network_isolation=self._probe("--probe-network"),
            task_user=self.uids.ids.describe() if self.uids and not self.run_as else describe_task_user(self.run_as),
        )

    def capacity(self) -> Resources:
        cpus = self.max_cpus if self.max_cpus is not None else _usable_cpus()
        memory = self.max_memory_mb if self.max_memory_mb is not None else _physical_memory_mb()
        return Resources(cpus=cpus, memory_mb=memory, gpus=len(self.gpus.ids))

    def submit(self, spec: TaskSpec) -> TaskHandle:
        validate(spec)

        def start(state_dir: Path) -> dict[str, Any]:
            task = self._with_gpus(spec, state_dir)
            run_as = self._user_for(task, state_dir)
            if run_as is None:
                shim_spec = task.to_json()
            else:
                task, reach, private_tmp = self._prepare_files(task, state_dir, run_as)
                shim_spec = {
                    **task.to_json(),
                    "run_as": run_as.to_json(),
                    "reach": reach,
                    "private_tmp": private_tmp,
                    "shm_mb": shm_size_mb(task),
                }
            _shim.write_json_atomic(str(state_dir / "spec.json"), shim_spec)
            return self._spawn(state_dir)

        state_dir, launch = self._submit_once(spec, start)
        return self._handle(spec.task_id, state_dir, launch)

    def _with_gpus(self, spec: TaskSpec, state_dir: Path) -> TaskSpec:
        """The spec with its own GPUs in ``CUDA_VISIBLE_DEVICES``. On a machine with GPUs, a task that asked for
        none gets an empty list, so it cannot use (and slow down) another task's device."""
        if spec.resources.gpus <= 0:
            if not self.gpus.ids or "CUDA_VISIBLE_DEVICES" in spec.env:
                return spec
            return replace(spec, env={**spec.env, "CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"})
        try:
            ids = self.gpus.assign(state_dir, spec.resources.gpus, task_id=spec.task_id)
        except Exception:
            shutil.rmtree(state_dir, ignore_errors=True)  # as if never submitted: a later submit tries again
            raise
        devices = ",".join(ids)
        return replace(spec, env={**spec.env, "CUDA_VISIBLE_DEVICES": devices, "NVIDIA_VISIBLE_DEVICES": devices})

    def _user_for(self, spec: TaskSpec, state_dir: Path) -> RunAs | None:
        """The user the task runs as: the one worker user, its own uid (allocated now), or None (ours)."""
        if self.run_as is not None or self.uids is None:
            return self.run_as
        try:
            return self.uids.assign(state_dir, task_id=spec.task_id)
        except Exception:
            shutil.rmtree(state_dir, ignore_errors=True)  # as if never submitted: a later submit tries again
            raise

    def task_user(self, task_id: str) -> RunAs | None:
        """Who the task runs (or ran) as until it is cleaned up: its own uid, the one worker user, or None
        (the server's own user, or a task this executor does not know)."""
        if self.run_as is not None or self.uids is None:
            return self.run_as
        return self.uids.of(self._state_dir(task_id))

    def _prepare_files(self, spec: TaskSpec, state_dir: Path, run_as: RunAs) -> tuple[TaskSpec, list[str], str]:
        """Hand the task's writable trees to its user, give it a HOME it can write where it has none and a /tmp
        of its own, and list what it must reach (worker_user.py). Returns the spec to run (with that HOME), the
        paths, and the directory the shim binds over /tmp."""
        try:
            hand_over(spec, run_as)
            home = make_private_home(state_dir, run_as) if needs_private_home(spec) else None
            private_tmp = make_private_tmp(state_dir, run_as)
        except OSError as exc:
            shutil.rmtree(state_dir, ignore_errors=True)  # as if never submitted: a later submit tries again
            raise ServiceUnavailable(
                f"Could not give task '{spec.task_id}' its files as the worker user {run_as.describe()}: "
                f"{exc}. Check that the server can change owners there, or set KAMADO_WORKER_USER."
            ) from exc
        if home is None:
            return spec, reach_paths(spec), private_tmp
        return replace(spec, env={**spec.env, "HOME": home}), sorted({*reach_paths(spec), home}), private_tmp

    def poll(self, handle: TaskHandle) -> TaskStatus:
        state_dir = self._dir_of(handle)
        _REAPER.reap_now()
        status = read_status(state_dir)
        if status is not None:
            return status
        if not state_dir.is_dir():
            return TaskStatus(state=TaskState.LOST, reason=f"{LOST_REASON}: its state directory is gone")
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None:
            return self._poll_unlaunched(state_dir)
        if supervisor_alive(launch):
            shim_info = _shim.read_json(str(state_dir / "shim.json")) or {}
            if shim_info.get("child_pid"):
                return TaskStatus(
                    state=TaskState.RUNNING,
                    started_at=shim_info.get("started_at"),
                    pid=shim_info["child_pid"],
                )
            return TaskStatus(state=TaskState.PENDING)
        # The supervisor may have recorded the status between our first read and the liveness check.
        status = read_status(state_dir)
        if status is not None:
            return status
        return self._record_lost(state_dir)

    def read_logs(self, handle: TaskHandle, offset: int, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        state_dir = self._dir_of(handle)
        if not state_dir.is_dir():
            raise NotFound(
                f"Task '{handle.task_id}' has no logs on this executor: it was cleaned up or never submitted."
            )
        offset = max(0, offset)
        try:
            with open(state_dir / "log", "rb") as f:
                f.seek(offset)
                data = f.read(max(0, max_bytes))
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)

    def cancel(self, handle: TaskHandle, grace_s: float | None = None) -> None:
        state_dir = self._dir_of(handle)
        if not state_dir.is_dir() or (state_dir / "status.json").exists():
            return
        # Written before the signal: the shim reads the grace from it, and a shim that has not started the
        # command yet sees it and never starts it.
        _shim.write_json_atomic(str(state_dir / "cancel.json"), {"grace_s": grace_s, "requested_at": time.time()})
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None:
            return
        # The shim blocks SIGTERM before it writes shim.json; signalling earlier would kill it unrecorded.
        deadline = time.monotonic() + _SHIM_STARTUP_WAIT_S
        while not (state_dir / "shim.json").exists() and supervisor_alive(launch) and time.monotonic() < deadline:
            time.sleep(0.002)
        if supervisor_alive(launch):
            try:
                os.kill(int(launch["pid"]), signal.SIGTERM)
            except ProcessLookupError:
                return

    def attach(self, task_id: str, data: dict[str, object]) -> TaskHandle:
        # The directory is derived from the task id, never taken from ``data``: stored data from an older
        # root (or a tampered record) must not point the executor at an arbitrary directory.
        state_dir = self._state_dir(task_id)
        launch = _shim.read_json(str(state_dir / "launch.json"))
        if launch is None and isinstance(data.get("pid"), int):
            launch = {k: data.get(k) for k in ("pid", "start_time", "boot_id")}
        return self._handle(task_id, state_dir, launch)

    def cleanup(self, handle: TaskHandle) -> None:
        state_dir = self._dir_of(handle)
        if not state_dir.is_dir():
            return
        self._require_ended(handle)
        shutil.rmtree(state_dir, ignore_errors=True)

    def on_task_end(self, callback: Callable[[str], None]) -> None:
        self._end_listeners.append(callback)

    def _tell_when_ended(self, proc: subprocess.Popen[bytes], spec: Any) -> None:
        """Block on the supervisor (it records the status before it exits), then tell the listeners."""
        proc.wait()
        task_id = spec.get("task_id", "") if isinstance(spec, dict) else ""
        for callback in list(self._end_listeners):
            try:
                callback(task_id)
            except Exception:  # a listener's bug must not kill the notifier
                logging.getLogger("kamado.compute").exception("task-end listener failed")

    # ------------------------------------------------------------------------------------- extras

    def list_tasks(self) -> list[TaskHandle]:
        """Every task this root knows, so a restarted control plane can find tasks its store lacks
        (submitted just before a crash, before the store recorded the handle) and cancel or adopt them."""
        handles = []
        for entry in sorted(self.root.iterdir()):
            spec = _shim.read_json(str(entry / "spec.json")) if entry.is_dir() else None
            if isinstance(spec, dict) and isinstance(spec.get("task_id"), str):
                launch = _shim.read_json(str(entry / "launch.json"))
                handles.append(self._handle(spec["task_id"], entry, launch))
        return handles

    def state_dir(self, task_id: str) -> Path:
        """Where the task's files live (``log``, ``status.json``...); for diagnostics and tests."""
        return self._state_dir(task_id)

    # ------------------------------------------------------------------------------------- internals

    def _handle(self, task_id: str, state_dir: Path, launch: dict[str, Any] | None) -> TaskHandle:
        data: dict[str, Any] = {"state_dir": str(state_dir)}
        if launch:
            data.update(pid=launch.get("pid"), start_time=launch.get("start_time"), boot_id=launch.get("boot_id"))
        return TaskHandle(task_id=task_id, executor=self.name, data=data)

    def _spawn(self, state_dir: Path) -> dict[str, Any]:
        # Own session (survives the server, gets no terminal signals), no pipes to us, no inherited fds, and
        # an empty environment so the server's secrets never reach /proc/<shim>/environ. No preexec_fn: the
        # server is multi-threaded.
        try:
            proc = subprocess.Popen(
                [self.python, "-I", "-S", SHIM_PATH, str(state_dir)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
                cwd="/",
                env={},
            )
        except OSError as exc:
            raise ServiceUnavailable(
                f"Could not start the supervisor of task '{state_dir.name}' with {self.python!r}: {exc}. "
                "Check the executor's python setting; submitting again retries."
            ) from exc
        st = _shim.proc_stat(proc.pid)  # the shim is our unreaped child, so its /proc entry is still there
        _REAPER.add(proc)
        if self._end_listeners:
            threading.Thread(
                target=self._tell_when_ended,
                args=(proc, _shim.read_json(str(state_dir / "spec.json"))),
                name="kamado-task-end",
                daemon=True,
            ).start()
        return {"pid": proc.pid, "start_time": st[3] if st else None, "boot_id": _shim.boot_id()}

    def _poll_unlaunched(self, state_dir: Path) -> TaskStatus:
        # Age from the directory's last change by the submitter, read before we add the lock file to it.
        age = time.time() - state_dir.stat().st_mtime
        fd = os.open(state_dir / ".submit.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return TaskStatus(state=TaskState.PENDING)  # a submit is starting it right now
            if (state_dir / "launch.json").exists():
                return TaskStatus(state=TaskState.PENDING)  # started since our first look; next poll sees it
            if age < NEVER_STARTED_AFTER_S:
                return TaskStatus(state=TaskState.PENDING)
            reason = "the task was accepted but its supervisor was never started (ExecutorLost)"
            return self._record_lost(state_dir, reason=reason)
        finally:
            os.close(fd)

    def _record_lost(self, state_dir: Path, reason: str = LOST_REASON) -> TaskStatus:
        """Report the task lost, kill what its dead supervisor left running, and make the verdict stick."""
        shim_info = _shim.read_json(str(state_dir / "shim.json")) or {}
        killed = kill_orphaned_group(shim_info)
        if killed:
            reason += f"; killed {killed} leftover process(es) of its process group {shim_info['child_pid']}"
        spec = _shim.read_json(str(state_dir / "spec.json")) or {}
        status = recorded_status(spec.get("task_id"), TaskState.LOST.value, reason, shim_info, killed)
        # Never overwrite a status the supervisor wrote: link() fails if status.json exists.
        tmp = state_dir / f"status.json.lost.{os.getpid()}.{threading.get_ident()}"
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(status))
        try:
            os.link(tmp, state_dir / "status.json")
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return read_status(state_dir) or to_status(status)

    def _probe(self, flag: str) -> bool:
        """Whether the shim may create the namespace ``flag`` probes for; asked once per interpreter."""
        key = f"{self.python} {flag}"
        with _MOUNT_PROBE_LOCK:
            if key not in _MOUNT_PROBE:
                try:
                    probe = subprocess.run(
                        [self.python, "-I", "-S", SHIM_PATH, flag],
                        stdin=subprocess.DEVNULL,
                        capture_output=True,
                        timeout=30,
                        env={},
                    )
                    _MOUNT_PROBE[key] = probe.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    _MOUNT_PROBE[key] = False
            return _MOUNT_PROBE[key]


# ----------------------------------------------------------------------------------------- helpers


class _Reaper:
    """Reaps finished supervisors so they do not linger as zombies while the server runs.

    Module-level on purpose: a supervisor outlives the executor object that spawned it, and a ``Popen``
    collected while its process runs would warn; the registry keeps it until its process has ended.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._thread: threading.Thread | None = None

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs[proc.pid] = proc
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kamado-shim-reaper", daemon=True)
                self._thread.start()

    def reap_now(self) -> bool:
        """Reap what has ended; True while any supervisor is still running."""
        with self._lock:
            for pid, proc in list(self._procs.items()):
                if proc.poll() is not None:
                    del self._procs[pid]
            return bool(self._procs)

    def _run(self) -> None:
        while self.reap_now():
            time.sleep(0.2)


_REAPER = _Reaper()


def _usable_cpus() -> float:
    """CPUs this process may run on (affinity, as ``taskset``/containers set it), not all the host has."""
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)


def _physical_memory_mb() -> int:
    """Physical memory, or the memory limit of our cgroup where that is lower (a container's limit)."""
    total = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    limit = _cgroup_memory_limit()
    if limit is not None and 0 < limit < total:
        total = limit
    return total // (1024 * 1024)


def _cgroup_memory_limit() -> int | None:
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2
            candidate = f"/sys/fs/cgroup{path}/memory.max"
        elif "memory" in controllers.split(","):  # cgroup v1
            candidate = f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
        else:
            continue
        try:
            with open(candidate) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None
