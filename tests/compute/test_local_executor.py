"""LocalExecutor: the shared executor contract, plus what only a local, shim-supervised executor promises."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kamado.compute import shim
from kamado.compute.local import SHIM_PATH, LocalExecutor
from kamado.compute.taskspec import Limits, TaskHandle, TaskSpec, TaskState
from kamado.core.errors import InvalidSpec, ResourceInUse, ServiceUnavailable
from kamado.testing.executor_contract import PY, ExecutorContract, all_logs, pid_gone, wait_for, wait_path

STATUS_KEYS = {
    "schema", "task_id", "state", "exit_code", "signal", "reason", "oom", "started_at", "ended_at", "pid",
    "cpu_seconds", "peak_memory_mb", "shim_pid", "sent_sigkill", "leftover_processes_killed",
}  # fmt: skip


def _stop_everything(executor: LocalExecutor) -> None:
    """Teardown: no test leaves a task (or its supervisor) running behind it."""
    handles = executor.list_tasks()
    for handle in handles:
        executor.cancel(handle, grace_s=0)
    for handle in handles:
        wait_for(executor, handle, timeout=15)


@pytest.fixture
def local_executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(tmp_path / "executor-root")
    yield executor
    _stop_everything(executor)


def _spec(tmp_path: Path, command: list[str], **kw: object) -> TaskSpec:
    return TestLocalExecutorContract().make_spec(tmp_path, command, **kw)


class TestLocalExecutorContract(ExecutorContract):
    @pytest.fixture
    def executor(self, local_executor: LocalExecutor) -> LocalExecutor:
        return local_executor

    def reopen(self, executor: LocalExecutor) -> LocalExecutor:  # type: ignore[override]
        return LocalExecutor(executor.root)

    def kill_supervisor(self, executor: LocalExecutor, handle: TaskHandle) -> None:  # type: ignore[override]
        os.kill(int(handle.data["pid"]), signal.SIGKILL)


# ------------------------------------------------------------------------------------- the supervisor


def test_status_json_schema_and_shim_record(local_executor: LocalExecutor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, [PY, "-c", "x = bytearray(50 * 1024 * 1024); sum(range(10**6))"])
    handle = local_executor.submit(spec)
    status = wait_for(local_executor, handle)
    state_dir = local_executor.state_dir(spec.task_id)
    recorded = json.loads((state_dir / "status.json").read_text())
    assert set(recorded) == STATUS_KEYS
    assert recorded["state"] == "Succeeded" and recorded["task_id"] == spec.task_id
    assert recorded["pid"] == status.pid and recorded["shim_pid"] == handle.data["pid"]
    assert status.cpu_seconds is not None and status.cpu_seconds > 0
    assert status.peak_memory_mb is not None and status.peak_memory_mb >= 50
    shim_info = json.loads((state_dir / "shim.json").read_text())
    assert shim_info["pid"] == handle.data["pid"] and shim_info["start_time"] == handle.data["start_time"]
    assert shim_info["child_pid"] == status.pid
    assert not list(state_dir.glob("*.tmp.*")), "atomic writes left temporary files behind"


def test_task_survives_the_control_plane_being_killed(tmp_path: Path) -> None:
    """T1 in miniature: the process that submitted dies by SIGKILL; the task finishes and is re-attached."""
    root = tmp_path / "root"
    spec = _spec(tmp_path, [PY, "-c", "import time; time.sleep(0.5); open('done', 'w').write('ok')"])
    server = textwrap.dedent(
        f"""
        import json, os, signal, sys
        from kamado.compute.local import LocalExecutor
        from kamado.compute.taskspec import TaskSpec
        handle = LocalExecutor({str(root)!r}).submit(TaskSpec.from_json(json.loads(sys.argv[1])))
        print(json.dumps(handle.data), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", server, json.dumps(spec.to_json())], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    data = json.loads(proc.stdout)
    executor = LocalExecutor(root)
    handle = executor.attach(spec.task_id, data)
    status = wait_for(executor, handle)
    assert status.state is TaskState.SUCCEEDED
    assert (Path(spec.workdir) / "done").read_text() == "ok"


def test_orphan_that_left_the_process_group_is_killed(local_executor: LocalExecutor, tmp_path: Path) -> None:
    """``setsid`` escapes the process group; the shim, as child subreaper, still adopts and kills it."""
    spec = _spec(tmp_path, ["/bin/sh", "-c", "setsid sleep 300 & echo $! > bg.pid; exit 0"])
    handle = local_executor.submit(spec)
    status = wait_for(local_executor, handle)
    assert status.state is TaskState.SUCCEEDED
    escaped = int((Path(spec.workdir) / "bg.pid").read_text())
    assert pid_gone(escaped)
    recorded = json.loads((local_executor.state_dir(spec.task_id) / "status.json").read_text())
    assert recorded["leftover_processes_killed"] >= 1


def test_cancel_right_after_submit_is_stopped_not_lost(local_executor: LocalExecutor, tmp_path: Path) -> None:
    """Cancel may race the shim's start-up; the shim must never die unrecorded because of it."""
    for i in range(5):
        spec = _spec(tmp_path, [PY, "-c", "import time; time.sleep(30)"], task_id=f"race/{i}")
        handle = local_executor.submit(spec)
        local_executor.cancel(handle, grace_s=0.5)
        status = wait_for(local_executor, handle)
        assert status.state is TaskState.STOPPED, status


def test_pid_reuse_is_not_mistaken_for_a_live_task(local_executor: LocalExecutor, tmp_path: Path) -> None:
    """A recorded pid that now belongs to another process (here: this test) means the task is lost, and
    that process is not killed."""
    task_id = "reused/1"
    state_dir = local_executor.state_dir(task_id)
    state_dir.mkdir()
    spec = _spec(tmp_path, [PY, "-c", "pass"], task_id=task_id)
    (state_dir / "spec.json").write_text(json.dumps(spec.to_json()))
    me = shim.proc_stat(os.getpid())
    assert me is not None
    wrong_start = me[3] - 1
    launch = {"pid": os.getpid(), "start_time": wrong_start, "boot_id": shim.boot_id()}
    (state_dir / "launch.json").write_text(json.dumps(launch))
    info = {**launch, "child_pid": os.getpid(), "child_start_time": wrong_start}
    (state_dir / "shim.json").write_text(json.dumps(info))
    handle = local_executor.attach(task_id, {})
    status = local_executor.poll(handle)
    assert status.state is TaskState.LOST
    assert status.reason and "ExecutorLost" in status.reason
    assert local_executor.poll(handle) == status
    assert set(json.loads((state_dir / "status.json").read_text())) == STATUS_KEYS


def test_unusable_python_is_service_unavailable_and_retryable(tmp_path: Path) -> None:
    spec = _spec(tmp_path, [PY, "-c", "print('ok')"])
    broken = LocalExecutor(tmp_path / "root", python=str(tmp_path / "no-python"))
    with pytest.raises(ServiceUnavailable, match="python"):
        broken.submit(spec)
    fixed = LocalExecutor(tmp_path / "root")
    handle = fixed.submit(spec)
    assert wait_for(fixed, handle).state is TaskState.SUCCEEDED


def test_submit_after_a_crash_mid_submit_starts_the_task(local_executor: LocalExecutor, tmp_path: Path) -> None:
    """The submitter died after claiming the task directory but before starting the shim: a retry runs it."""
    spec = _spec(tmp_path, [PY, "-c", "open('ran', 'a').write('x')"])
    state_dir = local_executor.state_dir(spec.task_id)
    state_dir.mkdir()
    assert local_executor.poll(local_executor.attach(spec.task_id, {})).state is TaskState.PENDING
    handle = local_executor.submit(spec)
    assert wait_for(local_executor, handle).state is TaskState.SUCCEEDED
    assert (Path(spec.workdir) / "ran").read_text() == "x"


def test_a_claim_never_started_becomes_lost(local_executor: LocalExecutor, tmp_path: Path) -> None:
    spec = _spec(tmp_path, [PY, "-c", "pass"])
    state_dir = local_executor.state_dir(spec.task_id)
    state_dir.mkdir()
    old = time.time() - 3600
    os.utime(state_dir, (old, old))
    status = local_executor.poll(local_executor.attach(spec.task_id, {}))
    assert status.state is TaskState.LOST
    assert status.reason and "never started" in status.reason


def test_rlimits_are_applied(local_executor: LocalExecutor, tmp_path: Path) -> None:
    code = (
        "import resource as r\n"
        "names = ('RLIMIT_AS', 'RLIMIT_NPROC', 'RLIMIT_FSIZE', 'RLIMIT_CORE')\n"
        "print(*(r.getrlimit(getattr(r, n))[1] for n in names))"
    )
    limits = Limits(memory_mb=512, max_processes=64, max_file_size_mb=5)
    handle = local_executor.submit(_spec(tmp_path, [PY, "-c", code], limits=limits))
    assert wait_for(local_executor, handle).state is TaskState.SUCCEEDED
    as_, nproc, fsize, core = map(int, all_logs(local_executor, handle).split())
    assert (as_, nproc, fsize, core) == (512 * 1024 * 1024, 64, 5 * 1024 * 1024, 0)


def test_unlimited_spec_only_disables_core_dumps(local_executor: LocalExecutor, tmp_path: Path) -> None:
    code = "import resource as r\nprint(r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_CORE)[0])"
    handle = local_executor.submit(_spec(tmp_path, [PY, "-c", code]))
    assert wait_for(local_executor, handle).state is TaskState.SUCCEEDED
    assert all_logs(local_executor, handle).split() == [str(resource.RLIM_INFINITY).encode(), b"0"]


def test_file_size_limit_is_reported(local_executor: LocalExecutor, tmp_path: Path) -> None:
    code = "open('big', 'wb').write(b'x' * 3 * 1024 * 1024)"
    handle = local_executor.submit(_spec(tmp_path, [PY, "-c", code], limits=Limits(max_file_size_mb=1)))
    status = wait_for(local_executor, handle)
    assert status.state is TaskState.FAILED
    assert status.reason and "file-size limit" in status.reason
    assert (tmp_path / "work" / "big").stat().st_size <= 1024 * 1024


def test_sigkill_under_a_memory_limit_is_reported_as_oom(local_executor: LocalExecutor, tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    handle = local_executor.submit(_spec(tmp_path, [PY, "-c", code], limits=Limits(memory_mb=400)))
    status = wait_for(local_executor, handle)
    assert status.state is TaskState.FAILED and status.signal == signal.SIGKILL
    assert status.oom and status.reason and "out of memory" in status.reason


def test_killed_by_a_signal_names_it(local_executor: LocalExecutor, tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    status = wait_for(local_executor, local_executor.submit(_spec(tmp_path, [PY, "-c", code])))
    assert status.state is TaskState.FAILED and status.signal == signal.SIGSEGV
    assert status.reason == "killed by signal SIGSEGV" and not status.oom


def test_cleanup_refuses_a_running_task(local_executor: LocalExecutor, tmp_path: Path) -> None:
    handle = local_executor.submit(_spec(tmp_path, [PY, "-c", "import time; time.sleep(30)"]))
    with pytest.raises(ResourceInUse, match="cancel it"):
        local_executor.cleanup(handle)
    local_executor.cancel(handle, grace_s=0)
    assert wait_for(local_executor, handle).state is TaskState.STOPPED
    local_executor.cleanup(handle)
    assert not local_executor.state_dir(handle.task_id).exists()
    assert local_executor.poll(handle).state is TaskState.LOST


def test_finished_supervisors_are_reaped(local_executor: LocalExecutor, tmp_path: Path) -> None:
    handles = [local_executor.submit(_spec(tmp_path, [PY, "-c", "pass"], task_id=f"reap/{i}")) for i in range(3)]
    for handle in handles:
        wait_for(local_executor, handle)
    shim_pids = {int(h.data["pid"]) for h in handles}
    deadline = time.monotonic() + 5
    while True:
        zombies = {pid for pid in shim_pids if shim.proc_stat(pid) is not None}
        if not zombies or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not zombies, f"supervisors {zombies} were not reaped"


# ------------------------------------------------------------------------------------- submit, ids


def test_task_ids_cannot_escape_the_root(local_executor: LocalExecutor, tmp_path: Path) -> None:
    for task_id in ("../../etc", "..", ".", "a/../../b", "x" * 400, "training-job/my-job/1"):
        state_dir = local_executor.state_dir(task_id)
        assert state_dir.parent == local_executor.root, task_id
        assert len(state_dir.name) <= 255
    assert local_executor.state_dir("a/b") != local_executor.state_dir("a%2Fb")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"command": []}, "command"),
        ({"workdir": "/definitely/not/here"}, "workdir"),
        ({"workdir": "relative/dir"}, "workdir"),
        ({"mount_policy": "sometimes"}, "mount_policy"),
        ({"mounts": {"opt/ml": "/tmp"}}, "mounts['opt/ml']"),
        ({"limits": Limits(memory_mb=0)}, "limits.memory_mb"),
        ({"limits": Limits(stop_grace_s=-1)}, "limits.stop_grace_s"),
        ({"env": {"A=B": "x"}}, "env"),
    ],
)
def test_invalid_specs_are_refused_at_submit(
    local_executor: LocalExecutor, tmp_path: Path, change: dict[str, object], field: str
) -> None:
    spec = dataclasses.replace(_spec(tmp_path, [PY, "-c", "pass"]), **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec) as info:
        local_executor.submit(spec)
    assert field in [d["field"] for d in info.value.details or []]  # type: ignore[index]
    assert not local_executor.state_dir(spec.task_id).exists()


def test_list_tasks_finds_what_a_crashed_server_submitted(local_executor: LocalExecutor, tmp_path: Path) -> None:
    ids = {f"listed/{i}" for i in range(3)}
    for task_id in ids:
        local_executor.submit(_spec(tmp_path, [PY, "-c", "pass"], task_id=task_id))
    found = LocalExecutor(local_executor.root).list_tasks()
    assert {h.task_id for h in found} == ids
    assert all(isinstance(h.data["pid"], int) for h in found)


def test_capacity_detects_the_machine_or_takes_overrides(tmp_path: Path) -> None:
    detected = LocalExecutor(tmp_path / "a").capacity()
    assert detected.cpus == len(os.sched_getaffinity(0))
    assert detected.memory_mb is not None and detected.memory_mb > 256
    limited = LocalExecutor(tmp_path / "b", max_cpus=1.5, max_memory_mb=2048, max_gpus=0).capacity()
    assert (limited.cpus, limited.memory_mb, limited.gpus) == (1.5, 2048, 0)


def test_the_shim_imports_nothing_but_the_standard_library() -> None:
    probe = (
        "import runpy, sys\nsys.argv = ['shim']\nbefore = set(sys.modules)\n"
        f"runpy.run_path({SHIM_PATH!r}, run_name='not_main')\n"
        "extra = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(m for m in extra if m not in sys.stdlib_module_names and not m.startswith('_')))"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------- private /opt/ml


@pytest.fixture
def opt_ml_cleanup() -> Iterator[None]:
    """The shim creates a missing mount target on the host; leave the host as the test found it."""
    existed = Path("/opt/ml").exists()
    yield
    if not existed:
        with contextlib.suppress(OSError):  # not empty: something else uses it now
            Path("/opt/ml").rmdir()


def _require_mount_namespaces(executor: LocalExecutor) -> None:
    if not executor.capabilities.mount_namespaces:
        pytest.skip(
            "the kernel refuses private mount namespaces here (not root and unprivileged user namespaces "
            "disabled), so tasks cannot get their own /opt/ml"
        )


@pytest.mark.usefixtures("opt_ml_cleanup")
def test_concurrent_tasks_each_see_their_own_opt_ml(local_executor: LocalExecutor, tmp_path: Path) -> None:
    _require_mount_namespaces(local_executor)
    code = textwrap.dedent(
        """
        import os, pathlib, sys, time
        me = sys.argv[1]
        pathlib.Path('/opt/ml/model/x').write_text(me)
        pathlib.Path('ready').touch()
        while not os.path.exists('go'): time.sleep(0.01)
        print(me, sorted(os.listdir('/opt/ml/model')), pathlib.Path('/opt/ml/model/x').read_text())
        """
    )
    host_before = sorted(os.listdir("/opt/ml")) if os.path.isdir("/opt/ml") else []
    handles, job_dirs = {}, {}
    for name in ("a", "b"):
        job_dir = tmp_path / f"job-{name}"
        (job_dir / "model").mkdir(parents=True)
        work = tmp_path / f"work-{name}"
        work.mkdir()
        spec = TaskSpec(
            task_id=f"mount/{name}",
            command=[PY, "-c", code, name],
            env={},
            workdir=str(work),
            mounts={"/opt/ml": str(job_dir)},
            mount_policy="require",
        )
        handles[name], job_dirs[name] = local_executor.submit(spec), job_dir
    for name in handles:  # both are running at once before either reads back
        wait_path(tmp_path / f"work-{name}" / "ready")
    for name in handles:
        (tmp_path / f"work-{name}" / "go").touch()
    for name, handle in handles.items():
        status = wait_for(local_executor, handle)
        assert status.state is TaskState.SUCCEEDED, all_logs(local_executor, handle)
        assert all_logs(local_executor, handle).decode().split() == [name, "['x']", name]
        assert (job_dirs[name] / "model" / "x").read_text() == name
    assert (sorted(os.listdir("/opt/ml")) if os.path.isdir("/opt/ml") else []) == host_before


def test_mount_failure_under_auto_warns_and_runs(local_executor: LocalExecutor, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-job-dir"
    target = tmp_path / "mnt" / "ml"
    spec = _spec(tmp_path, [PY, "-c", "print('ran')"], mounts={str(target): str(missing)})
    handle = local_executor.submit(spec)
    assert wait_for(local_executor, handle).state is TaskState.SUCCEEDED
    first, second = all_logs(local_executor, handle).decode().splitlines()
    assert first.startswith(f"kamado: private {target} unavailable (")
    assert "SM_* variables still work" in first and "kernel.unprivileged_userns_clone=1" in first
    assert second == "ran"


def test_mount_failure_under_require_fails_with_reason(local_executor: LocalExecutor, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-job-dir"
    spec = _spec(
        tmp_path,
        [PY, "-c", "print('ran')"],
        mounts={str(tmp_path / "mnt"): str(missing)},
        mount_policy="require",
    )
    handle = local_executor.submit(spec)
    status = wait_for(local_executor, handle)
    assert status.state is TaskState.FAILED and status.exit_code == shim.SETUP_FAILED_EXIT
    assert status.reason and "mount_policy is 'require'" in status.reason and str(missing) in status.reason
    assert b"ran" not in all_logs(local_executor, handle)


def test_mounts_do_not_leak_to_the_host(local_executor: LocalExecutor, tmp_path: Path) -> None:
    _require_mount_namespaces(local_executor)
    source, target = tmp_path / "src", tmp_path / "target"
    source.mkdir()
    (source / "inside").write_text("1")
    spec = _spec(tmp_path, [PY, "-c", f"print(open({str(target / 'inside')!r}).read())"],
                 mounts={str(target): str(source)}, mount_policy="require")  # fmt: skip
    handle = local_executor.submit(spec)
    assert wait_for(local_executor, handle).state is TaskState.SUCCEEDED
    assert all_logs(local_executor, handle) == b"1\n"
    assert target.is_dir() and not list(target.iterdir())
    assert str(target) not in Path("/proc/self/mountinfo").read_text()


def test_concurrent_submits_of_different_tasks(local_executor: LocalExecutor, tmp_path: Path) -> None:
    results: list[TaskState] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        handle = local_executor.submit(_spec(tmp_path, [PY, "-c", f"print({i})"], task_id=f"many/{i}"))
        status = wait_for(local_executor, handle)
        with lock:
            results.append(status.state)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [TaskState.SUCCEEDED] * 8


def test_state_files_are_private(local_executor: LocalExecutor, tmp_path: Path) -> None:
    """spec.json holds the task's secrets and the log may print them: neither is readable by others."""
    spec = _spec(tmp_path, [PY, "-c", "print('x')"], env={"API_KEY": "secret"})
    wait_for(local_executor, local_executor.submit(spec))
    state_dir = local_executor.state_dir(spec.task_id)
    assert state_dir.stat().st_mode & 0o777 == 0o700
    for name in ("spec.json", "log", "status.json", "shim.json", "launch.json"):
        assert (state_dir / name).stat().st_mode & 0o077 == 0, name


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the shim as an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="kamado-nobody-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_unprivileged_shim_mounts_via_a_user_namespace_or_warns(nobody_dir: Path) -> None:
    """The non-root path: CLONE_NEWUSER|CLONE_NEWNS where the kernel allows it, the warning otherwise."""
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    system_python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if system_python is None:
        pytest.skip("needs a python3 that an unprivileged user may execute")
    state_dir, work, job, target = (nobody_dir / n for n in ("state", "work", "job", "mnt"))
    for d in (state_dir, work, job / "model", target):
        d.mkdir(parents=True)
    code = "import os; open('/proc/self/cwd/../mnt/model/x', 'w').write('mine'); print(os.getuid())"
    spec = TaskSpec(
        task_id="nobody/1",
        command=[system_python, "-c", code],
        env={},
        workdir=str(work),
        mounts={str(target): str(job)},
    )
    (state_dir / "spec.json").write_text(json.dumps(spec.to_json()))
    subprocess.run(["chown", "-R", "65534:65534", str(nobody_dir)], check=True)
    shim_cmd = [*as_nobody, system_python, "-I", "-S", SHIM_PATH]
    probe = subprocess.run([*shim_cmd, "--probe-mounts"], capture_output=True)
    subprocess.run([*shim_cmd, str(state_dir)], check=True, timeout=60)
    status = json.loads((state_dir / "status.json").read_text())
    log = (state_dir / "log").read_text()
    assert status["state"] == "Succeeded", (status["reason"], log)
    assert log.splitlines()[-1] == "65534"
    if probe.returncode == 0:
        assert "kamado: private" not in log
        assert (job / "model" / "x").read_text() == "mine"
        assert not (target / "model").exists()
    else:
        assert log.startswith(f"kamado: private {target} unavailable (")


def test_importing_the_executor_leaves_the_signal_mask_alone() -> None:
    """The shim blocks signals when it runs; importing it for its helpers must not do that to the server."""
    probe = (
        "import signal\nbefore = signal.pthread_sigmask(signal.SIG_BLOCK, [])\n"
        "import kamado.compute.local\nprint(before == signal.pthread_sigmask(signal.SIG_BLOCK, []))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
