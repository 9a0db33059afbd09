"""Tasks of a root server run as an unprivileged worker user (issue 8, part 5).

Real tasks through the real LocalExecutor and a live server; the machine's root is needed to switch users,
so those tests are skipped (with the reason) elsewhere. What each task can and cannot do is checked from
inside the task itself.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

import kamado
from kamado.api.platform import make_executor
from kamado.compute.local import LocalExecutor
from kamado.compute.taskspec import TaskSpec, TaskState
from kamado.compute.worker_user import RunAs, reach_paths, resolve_worker_user
from kamado.core.errors import InvalidSpec
from kamado.core.settings import Settings
from kamado.testing.executor_contract import PY, all_logs, wait_for
from tests.live_server import LiveServer, write_script

UNKNOWN_USER_FLAG = ["--worker-user", "no-such-kamado-user"]
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching the tasks' user needs a server running as root")

PROBE = textwrap.dedent(
    r"""
    import json, os, sys
    home, state_dir = sys.argv[1], sys.argv[2]

    def attempt(fn):
        try:
            fn()
            return "allowed"
        except OSError as exc:
            return type(exc).__name__

    def write(path):
        with open(path, "w") as f:
            f.write("x")

    report = {
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        "read_token": attempt(lambda: open(os.path.join(home, "admin.token")).read()),
        "read_db": attempt(lambda: open(os.path.join(home, "kamado.db"), "rb").read()),
        "list_root": attempt(lambda: os.listdir("/root")),
        "list_home": attempt(lambda: os.listdir(home)),
        "write_status": attempt(lambda: write(os.path.join(state_dir, "status.json"))),
        "write_spec": attempt(lambda: write(os.path.join(state_dir, "spec.json"))),
        "setuid_root": attempt(lambda: os.setuid(0)),
        "write_workdir": attempt(lambda: write("in-workdir")),
        "write_opt_ml": attempt(lambda: write("/opt/ml/model/model.txt")),
        "import_kamado": attempt(lambda: __import__("kamado")),
    }
    print(json.dumps(report))
    """
)


def _home(tmp_path: Path) -> Path:
    """A KAMADO_HOME as the server leaves it: 0700, a 0600 token and database, the executor's tasks inside."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    for name in ("admin.token", "kamado.db"):
        (home / name).write_text("secret")
        (home / name).chmod(0o600)
    return home


def _report(executor: LocalExecutor, spec: TaskSpec) -> dict[str, object]:
    handle = executor.submit(spec)
    status = wait_for(executor, handle)
    logs = all_logs(executor, handle).decode()
    assert status.state is TaskState.SUCCEEDED, (status.reason, logs)
    report: dict[str, object] = json.loads(logs.strip().splitlines()[-1])
    return report


@root_only
def test_a_root_servers_task_runs_as_a_uid_of_its_own_and_reaches_only_its_own_files(tmp_path: Path) -> None:
    home = _home(tmp_path)
    executor = LocalExecutor(home / "tasks")
    assert executor.run_as is None and executor.uids is not None, "auto on a root server: a uid per task"
    job = home / "jobs" / "j1"
    (job / "model").mkdir(parents=True)
    work = job / "code"
    work.mkdir()
    spec = TaskSpec(
        task_id="worker-user/probe/1",
        command=[PY, "-c", PROBE, str(home), str(executor.state_dir("worker-user/probe/1"))],
        env={},
        workdir=str(work),
        mounts={"/opt/ml": str(job)},
        mount_policy="require",
    )
    report = _report(executor, spec)
    own = executor.task_user(spec.task_id)
    assert own is not None and own.uid in executor.uids.ids and own.uid == own.gid
    assert report["ids"] == [own.uid, own.uid, own.gid, own.gid, []]
    assert report["read_token"] != "allowed" and report["read_db"] != "allowed"
    assert report["list_root"] == "PermissionError", "root's home is listable"
    assert report["list_home"] == "PermissionError", "KAMADO_HOME is listable"
    assert report["write_status"] != "allowed" and report["write_spec"] != "allowed"
    assert report["setuid_root"] == "PermissionError"
    assert report["write_workdir"] == "allowed" and report["write_opt_ml"] == "allowed"
    assert report["import_kamado"] == "allowed"
    # The supervisor's files are still root's and intact; what the task wrote is where the server reads it.
    state_dir = executor.state_dir(spec.task_id)
    for name in ("spec.json", "status.json", "log"):
        assert (state_dir / name).stat().st_uid == 0, name
    assert json.loads((state_dir / "status.json").read_text())["state"] == "Succeeded"
    assert (job / "model" / "model.txt").read_text() == "x"
    assert (job / "model" / "model.txt").stat().st_uid == own.uid, "what the task wrote is its own uid's"
    assert (home / "admin.token").read_text() == "secret"


@root_only
def test_read_only_trees_stay_the_servers_and_other_paths_stay_hidden(tmp_path: Path) -> None:
    home = _home(tmp_path)
    shared = home / "models" / "tree-1"
    shared.mkdir(parents=True)
    (shared / "weights").write_text("w")
    (shared / "weights").chmod(0o600)
    (home / "models" / "tree-2").mkdir()  # another model: not this task's
    work = home / "scratch"
    work.mkdir()
    code = (
        "import os, sys\n"
        "print(open(os.path.join(sys.argv[1], 'weights')).read())\n"
        f"print(os.access({str(home / 'models')!r}, os.R_OK), os.path.exists({str(home / 'models' / 'tree-2')!r}))\n"
        "try:\n    open(os.path.join(sys.argv[1], 'weights'), 'w')\nexcept PermissionError:\n    print('read-only')\n"
    )
    executor = LocalExecutor(home / "tasks")
    spec = TaskSpec(
        task_id="worker-user/readable/1",
        command=[PY, "-c", code, str(shared)],
        env={},
        workdir=str(work),
        writable=[str(work)],
        readable=[str(shared)],
    )
    handle = executor.submit(spec)
    status = wait_for(executor, handle)
    lines = all_logs(executor, handle).decode().splitlines()
    assert status.state is TaskState.SUCCEEDED, (status.reason, lines)
    assert lines == ["w", "False False", "read-only"], "another model is visible, or the shared one writable"
    assert (shared / "weights").stat().st_uid == 0, "a shared read-only tree was handed to the worker"
    own = executor.task_user(spec.task_id)
    assert own is not None and work.stat().st_uid == own.uid


@root_only
def test_worker_user_root_keeps_tasks_as_root(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="kamado.compute"):
        executor = LocalExecutor(tmp_path / "tasks", worker_user="root")
    assert executor.run_as is None
    assert any("tasks run as root" in r.getMessage() for r in caplog.records)
    assert "the server's own user" in (executor.capabilities.task_user or "")
    work = tmp_path / "w"
    work.mkdir()
    handle = executor.submit(
        TaskSpec(
            task_id="worker-user/root/1", command=[PY, "-c", "import os; print(os.getuid())"], env={}, workdir=str(work)
        )
    )
    assert wait_for(executor, handle).state is TaskState.SUCCEEDED
    assert all_logs(executor, handle).decode().strip() == "0"


@root_only
def test_uid_and_gid_may_be_given_as_numbers(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", worker_user="4321:4322")
    assert executor.run_as == RunAs(uid=4321, gid=4322, name="4321")
    work = tmp_path / "w"
    work.mkdir()
    code = "import os; print(os.getuid(), os.getgid()); open('f', 'w').write('x')"
    handle = executor.submit(TaskSpec(task_id="worker-user/num/1", command=[PY, "-c", code], env={}, workdir=str(work)))
    assert wait_for(executor, handle).state is TaskState.SUCCEEDED, all_logs(executor, handle)
    assert all_logs(executor, handle).decode().split() == ["4321", "4322"]
    assert (work / "f").stat().st_uid == 4321


def test_an_unknown_worker_user_is_refused_at_start(tmp_path: Path) -> None:
    settings = Settings.from_env(home=tmp_path, worker_user="no-such-kamado-user")
    with pytest.raises(InvalidSpec, match="'no-such-kamado-user', which does not exist") as exc:
        make_executor(settings)
    assert exc.value.details == [{"field": "worker_user", "message": "no such user: 'no-such-kamado-user'"}]


def test_the_ray_executor_refuses_a_worker_user_it_cannot_switch_to(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    settings = Settings.from_env(home=tmp_path, executor="ray", ray_address="127.0.0.1:1", worker_user="nobody")
    with pytest.raises(InvalidSpec, match="the Ray executor cannot switch users") as exc:
        make_executor(settings)
    assert exc.value.details[0]["field"] == "worker_user"


def test_the_cli_server_reports_an_unknown_worker_user(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "kamado", "server", "--home", str(tmp_path / "h"), "--port", "0", *UNKNOWN_USER_FLAG],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KAMADO_WORKER_USER": ""},
    )
    assert result.returncode != 0
    assert "no-such-kamado-user" in result.stdout + result.stderr
    assert "does not exist" in result.stdout + result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="checks a server that is not root")
def test_a_server_that_is_not_root_runs_tasks_as_itself_and_cannot_switch() -> None:
    assert resolve_worker_user("auto") is None
    with pytest.raises(InvalidSpec, match="cannot switch users"):
        resolve_worker_user("0")


@root_only
def test_a_drop_that_cannot_happen_fails_the_task_and_never_runs_it_as_root(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks")
    # A configuration the kernel refuses (gid -1 is "no change" to setgid's callers): the task must fail.
    executor.run_as = RunAs(uid=2**32 - 1, gid=2**32 - 1, name="broken")
    work = tmp_path / "w"
    work.mkdir()
    marker = work / "ran"
    spec = TaskSpec(
        task_id="worker-user/broken/1", command=[PY, "-c", f"open({str(marker)!r}, 'w')"], env={}, workdir=str(work)
    )
    status = wait_for(executor, executor.submit(spec))
    assert status.state is TaskState.FAILED
    assert status.reason is not None and status.reason.startswith("could not switch to the worker user")
    assert "never runs as root" in status.reason
    assert not marker.exists()


def test_reach_covers_the_interpreter_the_command_and_the_tasks_trees(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /opt/base/bin\n")
    exe = venv / "bin" / "python"
    exe.write_text("")
    script = tmp_path / "train.py"
    script.write_text("")
    spec = TaskSpec(
        task_id="t",
        command=[str(exe), str(script), "--not-a-path"],
        env={},
        workdir=str(tmp_path / "w"),
        mounts={"/opt/ml": str(tmp_path / "job")},
        readable=[str(tmp_path / "model")],
    )
    reach = reach_paths(spec)
    for path in (venv, "/opt/base", exe, script, tmp_path / "w", tmp_path / "job", "/opt/ml", tmp_path / "model"):
        assert str(path) in reach, path
    assert sys.base_prefix in reach and "--not-a-path" not in reach


@root_only
def test_a_training_job_runs_as_the_worker_and_its_model_is_uploaded(live: LiveServer, tmp_path: Path) -> None:
    info = live.client.info()
    ids = live.app.state.platform.executor.uids.ids
    assert info["workerUser"] == f"a uid of its own per task, from {ids.first} ({ids.count} ids; gid = uid)"
    src = tmp_path / "src"
    write_script(
        src,
        "import os\n"
        "print('uid', os.getuid(), flush=True)\n"
        "open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.txt'), 'w').write(str(os.getuid()))\n",
    )
    est = kamado.Estimator(entry_point="train.py", source_dir=src, client=live.client)
    est.fit(logs=False)
    job = est.latest_training_job
    assert job is not None
    desc = job.describe()
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    uid = int(job.logs().split("uid ", 1)[1].split()[0])
    assert uid in ids, "the job ran as a uid of the tasks' range"
    model_dir = live.client.extract_model(desc["ModelArtifacts"]["S3ModelArtifacts"], tmp_path / "model")
    assert (model_dir / "model.txt").read_text() == str(uid), "the server uploaded what the job's uid wrote"
