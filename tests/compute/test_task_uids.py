"""Each task of a root server runs as a uid of its own (issue 8, part 5): tasks cannot signal, trace or read one
another, a uid is held until its task is cleaned up (across a server restart too), then handed out again.

Real tasks through the real LocalExecutor; what one task may do to another is tried from inside the task.
Switching users needs root, so those tests are skipped (with the reason) elsewhere. Each test uses a range
of its own, apart from the default one other servers on this machine may be using.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from kamado.compute.local import LocalExecutor
from kamado.compute.task_uids import DEFAULT_COUNT, DEFAULT_FIRST, UidRange, parse_uid_range
from kamado.compute.taskspec import TaskHandle, TaskSpec, TaskState
from kamado.core.errors import InvalidSpec, LimitExceeded
from kamado.testing.executor_contract import PY, all_logs, wait_for
from tests.compute.test_worker_user import root_only

SECRET = "per-task-uid-canary-7d1f"
#: Sleeps after writing its pid where the test can read it (its own workdir).
SLEEPER = "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
#: Tries, as another task, everything a neighbour must not be able to do to the task whose pid is argv[1].
PROBE = textwrap.dedent(
    r"""
    import ctypes, json, os, signal, sys
    pid = int(sys.argv[1])

    def attempt(fn):
        try:
            fn()
            return "allowed"
        except OSError as exc:
            return type(exc).__name__

    def ptrace_attach():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    print(json.dumps({
        "uid": [os.getuid(), os.getgid()],
        "environ": attempt(lambda: open(f"/proc/{pid}/environ", "rb").read()),
        "kill": attempt(lambda: os.kill(pid, signal.SIGKILL)),
        "signal0": attempt(lambda: os.kill(pid, 0)),
        "ptrace": attempt(ptrace_attach),
    }))
    """
)


def _range(offset: int, count: int) -> str:
    return f"{DEFAULT_FIRST + DEFAULT_COUNT + offset}:{count}"


def _spec(tmp_path: Path, task_id: str, command: list[str], **env: str) -> TaskSpec:
    work = tmp_path / task_id.replace("/", "-")
    work.mkdir()
    return TaskSpec(task_id=task_id, command=command, env=env, workdir=str(work))


def _pid_of(spec: TaskSpec, timeout_s: float = 20.0) -> int:
    path = Path(spec.workdir) / "pid"
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the sleeper did not start"
        time.sleep(0.02)
    return int(path.read_text())


def _proc_uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def _stop(executor: LocalExecutor, handle: TaskHandle) -> None:
    executor.cancel(handle, 0.0)
    assert wait_for(executor, handle).state.is_terminal()
    executor.cleanup(handle)


@root_only
def test_two_running_tasks_have_their_own_uids_and_cannot_reach_each_other(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", worker_uids=_range(0, 16))
    assert executor.uids is not None and executor.run_as is None
    victim = _spec(tmp_path, "uids/victim/1", [PY, "-c", SLEEPER], SECRET=SECRET)
    victim_handle = executor.submit(victim)
    try:
        pid = _pid_of(victim)
        victim_user = executor.task_user(victim.task_id)
        assert victim_user is not None and victim_user.uid in executor.uids.ids
        assert _proc_uids(pid) == [victim_user.uid] * 4

        prober = _spec(tmp_path, "uids/prober/1", [PY, "-c", PROBE, str(pid)])
        handle = executor.submit(prober)
        status = wait_for(executor, handle)
        logs = all_logs(executor, handle).decode()
        assert status.state is TaskState.SUCCEEDED, (status.reason, logs)
        report = json.loads(logs.strip().splitlines()[-1])
        prober_user = executor.task_user(prober.task_id)
        assert prober_user is not None and prober_user.uid in executor.uids.ids
        assert prober_user.uid != victim_user.uid, "two running tasks share a uid"
        assert report["uid"] == [prober_user.uid, prober_user.gid] and prober_user.gid == prober_user.uid
        assert report["environ"] == "PermissionError", "one task read another's environment (its secrets)"
        assert report["kill"] == "PermissionError" and report["signal0"] == "PermissionError"
        assert report["ptrace"] == "PermissionError"
        assert executor.poll(victim_handle).state is TaskState.RUNNING, "the other task was killed"
        assert SECRET not in logs
    finally:
        _stop(executor, victim_handle)


@root_only
def test_a_uid_is_held_until_its_task_is_cleaned_up_and_then_given_again(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", worker_uids=_range(100, 2))
    assert executor.uids is not None
    code = [PY, "-c", "import os; open('owner', 'w').write(str(os.getuid()))"]
    first, second, third = (_spec(tmp_path, f"uids/held/{n}", code) for n in (1, 2, 3))
    handles = {}
    for spec in (first, second):
        handles[spec.task_id] = executor.submit(spec)
        assert wait_for(executor, handles[spec.task_id]).state is TaskState.SUCCEEDED
    uid_1, uid_2 = (int((Path(s.workdir) / "owner").read_text()) for s in (first, second))
    assert uid_1 != uid_2, "an ended task's uid was handed out before it was cleaned up"
    assert (Path(first.workdir) / "owner").stat().st_uid == uid_1, "the task's files are its uid's"

    with pytest.raises(LimitExceeded, match="KAMADO_WORKER_UIDS"):
        executor.submit(third)  # both ids held by ended tasks not yet cleaned up
    assert not executor.state_dir(third.task_id).exists(), "a refused submit must leave nothing to retry over"

    executor.cleanup(handles[first.task_id])  # root removes what the task's uid wrote in its state dir
    assert not executor.state_dir(first.task_id).exists()
    handle = executor.submit(third)
    assert wait_for(executor, handle).state is TaskState.SUCCEEDED
    assert int((Path(third.workdir) / "owner").read_text()) == uid_1, "the cleaned-up task's uid is given again"
    assert executor.task_user(third.task_id) == executor.uids.of(executor.state_dir(third.task_id))


@root_only
def test_a_restarted_server_keeps_a_running_tasks_uid_and_gives_new_tasks_others(tmp_path: Path) -> None:
    root, ids = tmp_path / "tasks", _range(200, 4)
    before = LocalExecutor(root, worker_uids=ids)
    sleeper = _spec(tmp_path, "uids/restart/1", [PY, "-c", SLEEPER])
    data = before.submit(sleeper).data
    pid = _pid_of(sleeper)
    held = before.task_user(sleeper.task_id)
    assert held is not None
    del before

    after = LocalExecutor(root, worker_uids=ids)  # a new server on the same executor root
    handle = after.attach(sleeper.task_id, data)
    try:
        assert after.poll(handle).state is TaskState.RUNNING
        assert after.task_user(sleeper.task_id) == held and _proc_uids(pid)[0] == held.uid
        newcomer = _spec(tmp_path, "uids/restart/2", [PY, "-c", "import os; print(os.getuid())"])
        new_handle = after.submit(newcomer)
        assert wait_for(after, new_handle).state is TaskState.SUCCEEDED
        assert int(all_logs(after, new_handle).decode().split()[-1]) not in (held.uid, 0)
    finally:
        _stop(after, handle)


@root_only
def test_an_explicit_worker_user_keeps_one_user_for_every_task(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", worker_user="4321:4322")
    assert executor.uids is None
    assert executor.task_user("any/task") == executor.run_as
    assert executor.capabilities.task_user == "4321 (uid 4321, gid 4322)"


@root_only
def test_the_per_task_mode_is_what_info_and_doctor_show(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", worker_uids=_range(300, 8))
    first = DEFAULT_FIRST + DEFAULT_COUNT + 300
    assert executor.capabilities.task_user == f"a uid of its own per task, from {first} (8 ids; gid = uid)"


def test_the_uid_range_setting_is_checked() -> None:
    assert parse_uid_range(None) == UidRange(DEFAULT_FIRST, DEFAULT_COUNT) == parse_uid_range(" ")
    assert parse_uid_range("3000000:10") == UidRange(3_000_000, 10)
    for bad in ("2100000000", "100:10", "2147483000:1000", "x:1", "3000000:0"):
        with pytest.raises(InvalidSpec, match="KAMADO_WORKER_UIDS") as exc:
            parse_uid_range(bad)
        assert exc.value.details[0]["field"] == "KAMADO_WORKER_UIDS"
