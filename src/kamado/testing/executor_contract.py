"""The executor contract: every ``Executor`` backend must pass these tests.

Subclass :class:`ExecutorContract` in a test module and provide:

- an ``executor`` pytest fixture yielding a fresh executor (and stopping what it still runs afterwards);
- ``reopen(executor)``: a *new* executor instance over the same durable state, as after a control-plane
  restart;
- optionally ``kill_supervisor(executor, handle)``: kill whatever supervises the task (the shim, the Ray
  actor...) without letting it record a status; the default skips the test that needs it;
- optionally override ``make_spec`` (the default builds a spec with a unique task id and a fresh workdir).

The tests run user commands with ``sys.executable`` and ``/bin/sh`` and check the task's processes through
``/proc`` and ``os.kill``: they assume the tasks run on this host, in this pid namespace (set
``same_host = False`` to skip those checks for a remote executor).

Why a shared suite: reconcilers only ever see the ``Executor`` interface, so every promise they rely on -
idempotent submit, re-attach after restart, ``Lost`` rather than silence, no orphans, the env and limits
a spec names - must hold for each backend, not just the one the reconcilers were tested with.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from kamado.compute.executor import Executor
from kamado.compute.taskspec import Limits, TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.core.errors import NotFound

PY = sys.executable
#: Environment variable planted in the test process to prove tasks do not inherit it.
CANARY = "KAMADO_CONTRACT_CANARY_SECRET"
DEFAULT_ENV_KEYS = {"PATH", "HOME", "LANG"}


def wait_for(executor: Executor, handle: TaskHandle, timeout: float = 30.0) -> TaskStatus:
    """Poll until the task is terminal; fail (not hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = executor.poll(handle)
        if status.state.is_terminal():
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"task {handle.task_id} still {status.state} after {timeout} s")
        time.sleep(0.02)


def wait_path(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def pid_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie awaiting its reaper)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in (b"Z", b"X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def all_logs(executor: Executor, handle: TaskHandle) -> bytes:
    out, offset = b"", 0
    while True:
        data, offset = executor.read_logs(handle, offset)
        if not data:
            return out
        out += data


class ExecutorContract:
    same_host = True

    # ---------------------------------------------------------------------------- subclass hooks

    @pytest.fixture
    def executor(self) -> Executor:
        raise NotImplementedError("subclasses provide the executor fixture")

    def reopen(self, executor: Executor) -> Executor:
        raise NotImplementedError("subclasses return a new executor over the same durable state")

    def kill_supervisor(self, executor: Executor, handle: TaskHandle) -> None:
        pytest.skip(f"{type(executor).__name__} has no per-task supervisor to kill")

    def make_spec(self, tmp_path: Path, command: list[str], **kw: Any) -> TaskSpec:
        workdir = tmp_path / "work"
        workdir.mkdir(exist_ok=True)
        kw.setdefault("task_id", f"contract/{uuid.uuid4().hex[:12]}/1")
        kw.setdefault("env", {"PATH": "/usr/local/bin:/usr/bin:/bin"})
        kw.setdefault("workdir", str(workdir))
        return TaskSpec(command=command, **kw)

    def _require_same_host(self) -> None:
        if not self.same_host:
            pytest.skip("the executor runs tasks on another host; process checks do not apply")

    # ---------------------------------------------------------------------------- outcomes

    def test_success_exit_code_and_logs(self, executor: Executor, tmp_path: Path) -> None:
        code = "import sys; print('hello out'); print('hello err', file=sys.stderr)"
        handle = executor.submit(self.make_spec(tmp_path, [PY, "-c", code]))
        status = wait_for(executor, handle)
        assert status.state is TaskState.SUCCEEDED, status
        assert status.exit_code == 0 and status.signal is None and not status.oom
        assert status.started_at is not None and status.ended_at is not None
        assert status.started_at <= status.ended_at
        logs = all_logs(executor, handle)
        assert b"hello out" in logs and b"hello err" in logs

    def test_failure_reports_exit_code_and_reason(self, executor: Executor, tmp_path: Path) -> None:
        handle = executor.submit(self.make_spec(tmp_path, [PY, "-c", "import sys; sys.exit(3)"]))
        status = wait_for(executor, handle)
        assert status.state is TaskState.FAILED
        assert status.exit_code == 3
        assert status.reason and "3" in status.reason

    def test_missing_program_fails_with_reason(self, executor: Executor, tmp_path: Path) -> None:
        program = "kamado-no-such-program-42"
        handle = executor.submit(self.make_spec(tmp_path, [program, "--flag"]))
        status = wait_for(executor, handle)
        assert status.state is TaskState.FAILED
        assert status.reason and program in status.reason

    # ---------------------------------------------------------------------------- logs

    def test_logs_readable_after_exit_and_by_offset(self, executor: Executor, tmp_path: Path) -> None:
        code = "for i in range(5): print(f'line-{i}')"
        handle = executor.submit(self.make_spec(tmp_path, [PY, "-c", code]))
        wait_for(executor, handle)
        full = all_logs(executor, handle)
        assert full == b"".join(f"line-{i}\n".encode() for i in range(5))
        head, offset = executor.read_logs(handle, 0, max_bytes=7)
        assert head == full[:7] and offset == 7
        rest, end = executor.read_logs(handle, offset)
        assert head + rest == full and end == len(full)
        assert executor.read_logs(handle, end) == (b"", end)

    def test_logs_stream_while_running(self, executor: Executor, tmp_path: Path) -> None:
        code = (
            "import os, time\nprint('first', flush=True)\n"
            "while not os.path.exists('go'): time.sleep(0.01)\nprint('second')"
        )
        spec = self.make_spec(tmp_path, [PY, "-c", code])
        handle = executor.submit(spec)
        deadline = time.monotonic() + 30
        seen = b""
        while b"first" not in seen:
            assert time.monotonic() < deadline, "first line never appeared"
            seen += executor.read_logs(handle, len(seen))[0]
            time.sleep(0.01)
        assert executor.poll(handle).state is TaskState.RUNNING
        assert b"second" not in seen
        (Path(spec.workdir) / "go").touch()
        assert wait_for(executor, handle).state is TaskState.SUCCEEDED
        assert all_logs(executor, handle) == b"first\nsecond\n"

    # ---------------------------------------------------------------------------- cancel and limits

    def test_cancel_delivers_sigterm_to_a_trapping_task(self, executor: Executor, tmp_path: Path) -> None:
        code = (
            "import pathlib, signal, sys, time\n"
            "def on_term(*_):\n    pathlib.Path('got-term').write_text('yes'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, on_term)\n"
            "pathlib.Path('ready').touch()\ntime.sleep(60)\n"
        )
        spec = self.make_spec(tmp_path, [PY, "-c", code], limits=Limits(stop_grace_s=10))
        handle = executor.submit(spec)
        wait_path(Path(spec.workdir) / "ready")
        started = time.monotonic()
        executor.cancel(handle)
        status = wait_for(executor, handle)
        assert status.state is TaskState.STOPPED
        assert (Path(spec.workdir) / "got-term").read_text() == "yes"
        assert status.signal != signal.SIGKILL
        assert time.monotonic() - started < 10, "the task exited at once; the executor must not wait the grace"

    def test_cancel_escalates_to_sigkill_after_grace(self, executor: Executor, tmp_path: Path) -> None:
        code = (
            "import pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "pathlib.Path('ready').touch()\ntime.sleep(60)\n"
        )
        spec = self.make_spec(tmp_path, [PY, "-c", code], limits=Limits(stop_grace_s=30))
        handle = executor.submit(spec)
        wait_path(Path(spec.workdir) / "ready")
        started = time.monotonic()
        executor.cancel(handle, grace_s=0.5)  # overrides the spec's 30 s
        status = wait_for(executor, handle)
        elapsed = time.monotonic() - started
        assert status.state is TaskState.STOPPED
        assert status.signal == signal.SIGKILL
        assert 0.4 <= elapsed < 15

    def test_cancel_after_exit_is_a_no_op(self, executor: Executor, tmp_path: Path) -> None:
        handle = executor.submit(self.make_spec(tmp_path, [PY, "-c", "pass"]))
        before = wait_for(executor, handle)
        executor.cancel(handle)
        executor.cancel(handle)
        assert executor.poll(handle) == before
        assert before.state is TaskState.SUCCEEDED

    def test_timeout_is_timed_out(self, executor: Executor, tmp_path: Path) -> None:
        limits = Limits(max_runtime_s=0.5, stop_grace_s=0.5)
        started = time.monotonic()
        handle = executor.submit(self.make_spec(tmp_path, [PY, "-c", "import time; time.sleep(60)"], limits=limits))
        status = wait_for(executor, handle)
        assert status.state is TaskState.TIMED_OUT
        assert status.reason and "runtime" in status.reason
        assert time.monotonic() - started < 15

    def test_memory_limit_is_enforced(self, executor: Executor, tmp_path: Path) -> None:
        if not executor.capabilities.memory_limits:
            pytest.skip(f"{type(executor).__name__} does not enforce memory limits")
        code = "b = b'x' * (2 * 1024**3); print('allocated', len(b))"
        spec = self.make_spec(tmp_path, [PY, "-c", code], limits=Limits(memory_mb=300))
        handle = executor.submit(spec)
        status = wait_for(executor, handle, timeout=60)
        logs = all_logs(executor, handle)
        assert status.state is TaskState.FAILED
        assert b"allocated" not in logs
        assert status.oom or "MemoryError" in (status.reason or "") or b"MemoryError" in logs

    def test_env_is_exactly_the_spec(self, executor: Executor, tmp_path: Path, monkeypatch: Any) -> None:
        monkeypatch.setenv(CANARY, "s3cr3t-canary-value")
        dump = (
            "import json\nraw = open('/proc/self/environ', 'rb').read().split(b'\\0')\n"
            "env = dict(kv.decode().split('=', 1) for kv in raw if kv)\n"
            "open('env.json', 'w').write(json.dumps(env))\n"
        )
        # 1) Only the named variables, plus the documented PATH/HOME/LANG defaults when absent.
        spec = self.make_spec(tmp_path, [PY, "-c", dump], env={"FOO": "bar", "SM_MODEL_DIR": "/opt/ml/model"})
        assert wait_for(executor, executor.submit(spec)).state is TaskState.SUCCEEDED
        seen = _read_json(Path(spec.workdir) / "env.json")
        assert CANARY not in seen
        assert seen["FOO"] == "bar" and seen["SM_MODEL_DIR"] == "/opt/ml/model"
        assert set(seen) - {"FOO", "SM_MODEL_DIR"} <= DEFAULT_ENV_KEYS
        # 2) A spec that names the defaults itself gets exactly its own values, nothing added.
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C", "ONLY": "1"}
        spec = self.make_spec(tmp_path, [PY, "-c", dump], env=env)
        assert wait_for(executor, executor.submit(spec)).state is TaskState.SUCCEEDED
        assert _read_json(Path(spec.workdir) / "env.json") == env

    def test_runs_in_the_workdir(self, executor: Executor, tmp_path: Path) -> None:
        spec = self.make_spec(tmp_path, [PY, "-c", "import os; print(os.getcwd())"])
        handle = executor.submit(spec)
        assert wait_for(executor, handle).state is TaskState.SUCCEEDED
        assert all_logs(executor, handle).strip() == os.path.realpath(spec.workdir).encode()

    def test_network_none_leaves_only_loopback(self, executor: Executor, tmp_path: Path) -> None:
        if not executor.capabilities.network_isolation:
            pytest.skip("the executor does not offer network isolation (it refuses network='none' jobs at create)")
        import socket

        outside = socket.create_server(("127.0.0.1", 0))  # the host's loopback: not the task's
        port = outside.getsockname()[1]
        code = (
            "import socket\n"
            "inside = socket.create_server(('127.0.0.1', 0)); print('own loopback works')\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('REACHED THE HOST')\n"
            "except OSError as exc:\n    print('host unreachable:', type(exc).__name__)\n"
        )
        try:
            isolated = executor.submit(self.make_spec(tmp_path, [PY, "-c", code], network="none"))
            assert wait_for(executor, isolated).state is TaskState.SUCCEEDED
            out = all_logs(executor, isolated).decode()
            assert "own loopback works" in out and "host unreachable" in out and "REACHED" not in out, out
            shared = executor.submit(self.make_spec(tmp_path, [PY, "-c", code]))
            assert wait_for(executor, shared).state is TaskState.SUCCEEDED
            assert "REACHED THE HOST" in all_logs(executor, shared).decode(), "without isolation the host is there"
        finally:
            outside.close()

    # ---------------------------------------------------------------------------- idempotency, restart

    def test_submit_is_idempotent_by_task_id(self, executor: Executor, tmp_path: Path) -> None:
        code = "import time\nopen('count', 'a').write('run\\n')\ntime.sleep(0.5)"
        spec = self.make_spec(tmp_path, [PY, "-c", code])
        handles: list[TaskHandle] = []
        lock = threading.Lock()

        def submit() -> None:
            h = executor.submit(spec)
            with lock:
                handles.append(h)

        threads = [threading.Thread(target=submit) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        handles.append(executor.submit(spec))
        assert {h.task_id for h in handles} == {spec.task_id}
        assert wait_for(executor, handles[0]).state is TaskState.SUCCEEDED
        assert executor.submit(spec).task_id == spec.task_id  # after the end, still the same task
        assert (Path(spec.workdir) / "count").read_text() == "run\n"

    def test_attach_after_restart_sees_running_task_and_result(self, executor: Executor, tmp_path: Path) -> None:
        code = (
            "import os, pathlib, time\npathlib.Path('ready').touch()\n"
            "while not os.path.exists('go'): time.sleep(0.01)\nprint('finished')"
        )
        spec = self.make_spec(tmp_path, [PY, "-c", code])
        handle = executor.submit(spec)
        wait_path(Path(spec.workdir) / "ready")
        data = _json_round_trip(handle.data)  # handles are stored as JSON by the control plane

        restarted = self.reopen(executor)
        again = restarted.attach(handle.task_id, data)
        running = restarted.poll(again)
        assert running.state is TaskState.RUNNING
        if self.same_host:
            assert running.pid is not None and not pid_gone(running.pid, timeout=0)
        (Path(spec.workdir) / "go").touch()
        status = wait_for(restarted, again)
        assert status.state is TaskState.SUCCEEDED
        assert all_logs(restarted, again) == b"finished\n"
        restarted.submit(spec)  # resubmitting through the new instance does not run it again
        assert wait_for(restarted, again) == status

    def test_supervisor_killed_is_lost_with_reason(self, executor: Executor, tmp_path: Path) -> None:
        # Written to a temporary name and renamed, so the file is never seen empty.
        code = (
            "import os, time\nopen('pid.tmp', 'w').write(str(os.getpid()))\n"
            "os.rename('pid.tmp', 'pid')\ntime.sleep(300)"
        )
        spec = self.make_spec(tmp_path, [PY, "-c", code])
        handle = executor.submit(spec)
        wait_path(Path(spec.workdir) / "pid")
        task_pid = int((Path(spec.workdir) / "pid").read_text())
        self.kill_supervisor(executor, handle)
        status = wait_for(executor, handle)
        assert status.state is TaskState.LOST
        assert status.reason
        if self.same_host:
            assert pid_gone(task_pid), "the task's process outlived its supervisor and was not cleaned up"
        assert executor.poll(handle) == status  # the verdict sticks

    def test_no_orphans_after_the_task_ends(self, executor: Executor, tmp_path: Path) -> None:
        self._require_same_host()
        spec = self.make_spec(tmp_path, ["/bin/sh", "-c", "sleep 300 & echo $! > bg.pid; exit 0"])
        status = wait_for(executor, executor.submit(spec))
        assert status.state is TaskState.SUCCEEDED
        background = int((Path(spec.workdir) / "bg.pid").read_text())
        assert pid_gone(background), f"background process {background} survived its task"

    def test_cleanup_forgets_an_ended_task(self, executor: Executor, tmp_path: Path) -> None:
        handle = executor.submit(self.make_spec(tmp_path, [PY, "-c", "print('x')"]))
        wait_for(executor, handle)
        executor.cleanup(handle)
        executor.cleanup(handle)  # idempotent
        with pytest.raises(NotFound):
            executor.read_logs(handle, 0)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _json_round_trip(data: dict[str, Any]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded
