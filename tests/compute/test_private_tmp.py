"""Every task of a root server has a /tmp and a /dev/shm of its own (issue 8, part 5).

Real tasks through the real LocalExecutor, each checking from inside what it can see; switching users needs
root, so these are skipped (with the reason) elsewhere. The tests' own directories are under /tmp (pytest's
``tmp_path``), so every task here also shows that what it needs under /tmp stays reachable.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamado.compute.local import LocalExecutor
from kamado.compute.taskspec import Limits, Resources, TaskSpec, TaskState
from kamado.compute.worker_user import MIN_SHM_MB, shm_size_mb
from kamado.testing.executor_contract import PY, all_logs, wait_for
from tests.live_server import task_visible_dir

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching the tasks' user needs a server running as root")

#: Writes its own marker to /tmp and /dev/shm, waits until the other task has written its own (so both are
#: there at once), then reports what it reads back and whether the host's files are visible.
WRITE_AND_LOOK = textwrap.dedent(
    r"""
    import json, os, sys, time
    me, other, meet, name, host_name = sys.argv[1:6]
    for d in ("/tmp", "/dev/shm"):
        with open(os.path.join(d, name), "w") as f:
            f.write(me)
    open(os.path.join(meet, me), "w").close()
    deadline = time.monotonic() + 60
    while other and not os.path.exists(os.path.join(meet, other)):
        if time.monotonic() > deadline:
            sys.exit("the other task never wrote its marker")
        time.sleep(0.02)
    report = {
        d: {
            "mine": open(os.path.join(d, name)).read(),
            "host_file": os.path.exists(os.path.join(d, host_name)),
            "mode": oct(os.stat(d).st_mode & 0o7777),
        }
        for d in ("/tmp", "/dev/shm")
    }
    report["cwd_writable"] = os.access(".", os.W_OK)
    print(json.dumps(report))
    """
)


@pytest.fixture
def host_files() -> Iterator[str]:
    """A file the host (the test) leaves in /tmp and /dev/shm, readable by all, as tasks used to find them."""
    name = f"kamado-host-{uuid.uuid4().hex}"
    paths = [Path("/tmp") / name, Path("/dev/shm") / name]
    for path in paths:
        path.write_text("the host's")
        path.chmod(0o644)
    yield name
    for path in paths:
        path.unlink(missing_ok=True)


def _executor(tmp_path: Path) -> LocalExecutor:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    executor = LocalExecutor(home / "tasks")
    assert executor.uids is not None, "auto on a root server: a uid per task"
    return executor


def _spec(task_id: str, workdir: Path, args: list[str], **fields: object) -> TaskSpec:
    workdir.mkdir(parents=True, exist_ok=True)
    return TaskSpec(task_id=task_id, command=[PY, "-c", WRITE_AND_LOOK, *args], env={}, workdir=str(workdir), **fields)  # type: ignore[arg-type]


def _last_json(executor: LocalExecutor, handle: object) -> dict[str, dict[str, object]]:
    logs = all_logs(executor, handle).decode()  # type: ignore[arg-type]
    result: dict[str, dict[str, object]] = json.loads(logs.strip().splitlines()[-1])
    return result


@root_only
def test_two_tasks_at_once_each_see_only_their_own_tmp_and_shm(tmp_path: Path, host_files: str) -> None:
    executor = _executor(tmp_path)
    meet = task_visible_dir("kamado-private-tmp-")
    name = f"kamado-mine-{uuid.uuid4().hex}"
    specs = [
        _spec(f"private-tmp/pair/{me}", tmp_path / me, [me, other, str(meet), name, host_files])
        for me, other in (("a", "b"), ("b", "a"))
    ]
    handles = [executor.submit(spec) for spec in specs]
    for spec, handle in zip(specs, handles, strict=True):
        status = wait_for(executor, handle, timeout=90)
        assert status.state is TaskState.SUCCEEDED, (status.reason, all_logs(executor, handle))
        report = _last_json(executor, handle)
        me = spec.task_id.rsplit("/", 1)[1]
        for d in ("/tmp", "/dev/shm"):
            assert report[d]["mine"] == me, f"{spec.task_id} read another task's {d}/{name}"
            assert report[d]["host_file"] is False, f"{spec.task_id} sees the host's {d}"
            assert report[d]["mode"] == "0o1777", d
    for d in ("/tmp", "/dev/shm"):
        assert not (Path(d) / name).exists(), f"a task's file reached the host's {d}"
        assert (Path(d) / host_files).read_text() == "the host's"


@root_only
def test_a_tasks_tmp_is_on_disk_in_its_state_dir_gone_at_cleanup_and_not_seen_by_the_next(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    name = f"kamado-left-{uuid.uuid4().hex}"
    first = _spec("private-tmp/seq/1", tmp_path / "w1", ["first", "", str(task_visible_dir()), name, "none"])
    handle = executor.submit(first)
    assert wait_for(executor, handle).state is TaskState.SUCCEEDED, all_logs(executor, handle)
    own = executor.task_user(first.task_id)
    left = executor.state_dir(first.task_id) / "tmp" / name
    assert left.read_text() == "first" and own is not None and left.stat().st_uid == own.uid
    executor.cleanup(handle)
    assert not executor.state_dir(first.task_id).exists() and not left.exists()

    probe = f"import os, sys; print(os.path.exists('/tmp/{name}') or os.path.exists('/dev/shm/{name}'))"
    second = TaskSpec(task_id="private-tmp/seq/2", command=[PY, "-c", probe], env={}, workdir=str(tmp_path / "w1"))
    handle = executor.submit(second)
    assert wait_for(executor, handle).state is TaskState.SUCCEEDED, all_logs(executor, handle)
    assert all_logs(executor, handle).decode().split() == ["False"], "the next task found what the last left"


@root_only
def test_a_task_whose_workdir_is_directly_under_tmp_still_runs_there(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    workdir = Path(tempfile.mkdtemp(prefix="kamado-workdir-"))  # /tmp/kamado-workdir-..., outside pytest's 0700
    try:
        (workdir / "input.txt").write_text("data")
        code = "import os; print(open('input.txt').read(), os.getcwd()); open('out.txt', 'w').write('done')"
        spec = TaskSpec(task_id="private-tmp/wd/1", command=[PY, "-c", code], env={}, workdir=str(workdir))
        handle = executor.submit(spec)
        status = wait_for(executor, handle)
        assert status.state is TaskState.SUCCEEDED, (status.reason, all_logs(executor, handle))
        assert all_logs(executor, handle).decode().split() == ["data", str(workdir)]
        assert (workdir / "out.txt").read_text() == "done", "what the task wrote is in the host's directory"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SHARED_MEMORY = textwrap.dedent(
    r"""
    import os, multiprocessing
    from multiprocessing import shared_memory

    def child(name):
        shm = shared_memory.SharedMemory(name=name)
        shm.buf[:5] = b"pong!"
        shm.close()

    if __name__ == "__main__":
        shm = shared_memory.SharedMemory(create=True, size=1 << 20)
        shm.buf[:5] = b"ping!"
        proc = multiprocessing.get_context("spawn").Process(target=child, args=(shm.name,))
        proc.start()
        proc.join()
        print(bytes(shm.buf[:5]).decode(), os.path.exists("/dev/shm/" + shm.name.lstrip("/")))
        shm.close()
        shm.unlink()
        st = os.statvfs("/dev/shm")
        print(st.f_blocks * st.f_frsize // (1024 * 1024))
    """
)


@root_only
def test_shared_memory_works_in_the_tasks_own_dev_shm_capped_from_its_memory(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    work = tmp_path / "shm"
    work.mkdir()
    (work / "main.py").write_text(SHARED_MEMORY)
    spec = TaskSpec(
        task_id="private-tmp/shm/1",
        command=[PY, "main.py"],
        env={},
        workdir=str(work),
        resources=Resources(memory_mb=600),
    )
    handle = executor.submit(spec)
    status = wait_for(executor, handle, timeout=60)
    logs = all_logs(executor, handle).decode()
    assert status.state is TaskState.SUCCEEDED, (status.reason, logs)
    assert logs.split() == ["pong!", "True", "300"], "shared memory between processes, /dev/shm half the memory"


def test_dev_shm_is_half_the_tasks_memory_at_least_docker_s_default() -> None:
    def spec(**fields: object) -> TaskSpec:
        return TaskSpec(task_id="t/1", command=["true"], env={}, workdir="/", **fields)  # type: ignore[arg-type]

    assert shm_size_mb(spec()) is None, "no memory limit: the kernel's default, as the host's /dev/shm"
    assert shm_size_mb(spec(resources=Resources(memory_mb=8192))) == 4096
    assert shm_size_mb(spec(resources=Resources(memory_mb=8192), limits=Limits(memory_mb=2048))) == 1024
    assert shm_size_mb(spec(limits=Limits(memory_mb=32))) == MIN_SHM_MB


def test_a_server_that_is_not_root_gives_its_tasks_the_hosts_tmp(tmp_path: Path) -> None:
    """Only a task that switches uid gets a private /tmp: under KAMADO_WORKER_USER=root nothing changes."""
    executor = LocalExecutor(tmp_path / "tasks", worker_user="root" if os.geteuid() == 0 else "auto")
    name = f"kamado-shared-{uuid.uuid4().hex}"
    host = Path("/tmp") / name
    host.write_text("shared")
    try:
        code = f"print(open('/tmp/{name}').read())"
        spec = TaskSpec(task_id="private-tmp/host/1", command=[PY, "-c", code], env={}, workdir=str(tmp_path))
        handle = executor.submit(spec)
        assert wait_for(executor, handle).state is TaskState.SUCCEEDED, all_logs(executor, handle)
        assert all_logs(executor, handle).decode().split() == ["shared"]
        assert "private_tmp" not in json.loads((executor.state_dir(spec.task_id) / "spec.json").read_text())
    finally:
        host.unlink(missing_ok=True)
