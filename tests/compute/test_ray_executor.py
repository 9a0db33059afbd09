"""RayExecutor: the shared executor contract on a real two-node Ray cluster, plus what only Ray promises.

The cluster (head + one worker node, 2 CPUs each, on loopback) is the session's shared one
(``tests/ray_fixtures.py``), started once with the ``ray`` CLI. Tests share one bridge process (one Ray
driver) for speed; ``reopen`` starts a fresh one, as a restarted server would.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray executor needs ray: pip install 'kamado[ray]'")

from kamado.compute.ray_client import BridgeClient
from kamado.compute.ray_executor import NAMESPACE, RayExecutor
from kamado.compute.ray_gang import group_name
from kamado.compute.taskspec import Resources, TaskHandle, TaskSpec, TaskState
from kamado.core.errors import InvalidSpec, NotFound
from kamado.testing.executor_contract import PY, ExecutorContract, all_logs, wait_for, wait_path
from kamado.testing.ray_cluster import RayCluster

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster(ray_session_cluster: RayCluster) -> RayCluster:
    """The session's shared cluster (tests/ray_fixtures.py): started once for every module that uses one."""
    return ray_session_cluster


@pytest.fixture(scope="module")
def node_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("ray-nodes"))


@pytest.fixture(scope="module")
def shared_client(cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeClient]:
    client = BridgeClient(cluster.address, NAMESPACE, log_path=tmp_path_factory.mktemp("bridge") / "bridge.log")
    yield client
    client.close()


@pytest.fixture
def ray_executor(
    cluster: RayCluster, node_root: str, shared_client: BridgeClient, tmp_path: Path
) -> Iterator[RayExecutor]:
    executor = RayExecutor(cluster.address, tmp_path / "executor-root", node_root=node_root, client=shared_client)
    yield executor
    _stop_everything(executor)


def _stop_everything(executor: RayExecutor) -> None:
    """Teardown: no test leaves a task (or its actor) running on the shared cluster."""
    handles = [executor.attach(_task_id(d), {}) for d in executor.root.iterdir() if (d / "launch.json").exists()]
    for handle in handles:
        executor.cancel(handle, grace_s=0)
    for handle in handles:
        wait_for(executor, handle, timeout=30)
    for book in executor.root.glob(".gangs/*/gang.json"):  # a failed gang test must not keep its reservation
        executor.client.call("remove_gang", name=json.loads(book.read_text())["group"])


def _task_id(state_dir: Path) -> str:
    return str(json.loads((state_dir / "spec.json").read_text())["task_id"])


class TestRayExecutorContract(ExecutorContract):
    @pytest.fixture
    def executor(self, ray_executor: RayExecutor) -> RayExecutor:
        return ray_executor

    def reopen(self, executor: RayExecutor) -> RayExecutor:  # type: ignore[override]
        # A fresh bridge (a new Ray driver) over the same root: what a restarted server has.
        return RayExecutor(executor.address, executor.root, node_root=executor.node_root)

    def kill_supervisor(self, executor: RayExecutor, handle: TaskHandle) -> None:  # type: ignore[override]
        deadline = time.monotonic() + 30
        while "runner_pid" not in (info := executor.describe(handle)):
            assert time.monotonic() < deadline, f"the task's runner never answered: {info}"
            time.sleep(0.05)
        os.kill(int(info["runner_pid"]), signal.SIGKILL)


# ------------------------------------------------------------------------------------- Ray specifics


def test_capacity_is_the_clusters(ray_executor: RayExecutor) -> None:
    cap = ray_executor.capacity()
    assert cap.cpus == 4 and cap.gpus == 0
    assert cap.memory_mb and cap.memory_mb > 0
    assert ray_executor.capabilities.survives_restart


def test_more_than_any_node_has_is_refused_at_submit(ray_executor: RayExecutor, tmp_path: Path) -> None:
    spec = TestRayExecutorContract().make_spec(tmp_path, [PY, "-c", "pass"], resources=Resources(cpus=3, gpus=1))
    with pytest.raises(InvalidSpec) as err:
        ray_executor.submit(spec)
    message = err.value.message
    assert "CPUs 3 (largest node: 2)" in message and "GPUs 1 (largest node: 0)" in message
    assert {d["field"] for d in err.value.details or []} == {"resources.cpus", "resources.gpus"}  # type: ignore[index]
    assert not (ray_executor.root / "contract").exists() and not list(ray_executor.root.glob("*/launch.json"))


def test_resources_come_back_when_the_task_ends(ray_executor: RayExecutor, tmp_path: Path) -> None:
    """The actor that held the task's CPUs exits with the task; the log stays readable until cleanup."""
    spec = TestRayExecutorContract().make_spec(tmp_path, [PY, "-c", "print('held')"], resources=Resources(cpus=2))
    handle = ray_executor.submit(spec)
    assert wait_for(ray_executor, handle).state is TaskState.SUCCEEDED
    deadline = time.monotonic() + 30
    while (available := ray_executor.client.call("capacity")["available"]["CPU"]) < 4:
        assert time.monotonic() < deadline, f"only {available} of 4 CPUs came back"
        time.sleep(0.1)
    assert ray_executor.describe(handle)["actor_state"] == "DEAD"
    assert all_logs(ray_executor, handle) == b"held\n"
    ray_executor.cleanup(handle)
    with pytest.raises(NotFound):
        ray_executor.read_logs(handle, 0)


def test_missing_workdir_is_created_on_the_node(ray_executor: RayExecutor, tmp_path: Path) -> None:
    workdir = tmp_path / "not" / "yet"
    spec = TestRayExecutorContract().make_spec(tmp_path, [PY, "-c", "import os; print(os.getcwd())"])
    handle = ray_executor.submit(replace(spec, workdir=str(workdir)))
    assert wait_for(ray_executor, handle).state is TaskState.SUCCEEDED
    assert all_logs(ray_executor, handle).strip() == str(workdir).encode()


def test_cancel_before_the_actor_is_placed_is_stopped(ray_executor: RayExecutor, tmp_path: Path) -> None:
    """A task still waiting for CPUs is removed from Ray's queue and never runs."""
    blocker = TestRayExecutorContract().make_spec(
        tmp_path,
        [PY, "-c", "import pathlib, time; pathlib.Path('ready').touch(); time.sleep(60)"],
        resources=Resources(cpus=2),
    )
    blockers = [ray_executor.submit(blocker), ray_executor.submit(_other(blocker, tmp_path, "b2"))]
    wait_path(Path(blocker.workdir) / "ready")
    queued = _other(blocker, tmp_path, "queued", command=[PY, "-c", "open('ran', 'w').write('yes')"])
    deadline = time.monotonic() + 30
    while not all(ray_executor.poll(h).state is TaskState.RUNNING for h in blockers):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    handle = ray_executor.submit(queued)
    assert ray_executor.poll(handle).state is TaskState.PENDING
    ray_executor.cancel(handle)
    status = wait_for(ray_executor, handle)
    assert status.state is TaskState.STOPPED and status.reason
    for h in blockers:
        ray_executor.cancel(h, grace_s=0)
    for h in blockers:
        wait_for(ray_executor, h)
    time.sleep(1)
    assert not (Path(queued.workdir) / "ran").exists()


def test_on_task_end_is_told(ray_executor: RayExecutor, tmp_path: Path) -> None:
    ended: list[str] = []
    ray_executor.on_task_end(ended.append)
    handle = ray_executor.submit(TestRayExecutorContract().make_spec(tmp_path, [PY, "-c", "pass"]))
    wait_for(ray_executor, handle)
    deadline = time.monotonic() + 10
    while handle.task_id not in ended:
        assert time.monotonic() < deadline, ended
        time.sleep(0.05)


# ------------------------------------------------------------------------------------- gangs

#: Touches ``started`` in its workdir, then waits (at most 20 s) for its gang mates' ``started`` files.
_MEET = (
    "import os, pathlib, sys, time\n"
    "pathlib.Path('started').touch()\n"
    "mates = [pathlib.Path(p) / 'started' for p in sys.argv[1:]]\n"
    "deadline = time.monotonic() + 20\n"
    "while not all(m.exists() for m in mates):\n"
    "    assert time.monotonic() < deadline, 'a gang mate never started'\n"
    "    time.sleep(0.02)\n"
    "print('met', os.environ['CURRENT_HOST'])\n"
)


def _gang(tmp_path: Path, gang: str, size: int, cpus: float = 1) -> list[TaskSpec]:
    """``size`` alike members of one gang, each in its own workdir, each waiting to meet the others."""
    dirs = [tmp_path / f"{gang}-{i}" for i in range(1, size + 1)]
    for d in dirs:
        d.mkdir()
    return [
        TaskSpec(
            task_id=f"gang/{gang}/algo-{i}",
            command=[PY, "-c", _MEET, *(str(o) for o in dirs if o != d)],
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "CURRENT_HOST": f"algo-{i}"},
            workdir=str(d),
            resources=Resources(cpus=cpus),
            gang=f"gang/{gang}",
            gang_size=size,
        )
        for i, d in enumerate(dirs, start=1)
    ]


def _all_cpus_back(executor: RayExecutor) -> None:
    deadline = time.monotonic() + 30
    while (available := executor.client.call("capacity")["available"]["CPU"]) < 4:
        assert time.monotonic() < deadline, f"only {available} of 4 CPUs came back"
        time.sleep(0.1)


def test_a_gang_runs_together_and_gives_everything_back(ray_executor: RayExecutor, tmp_path: Path) -> None:
    specs = _gang(tmp_path, "pair", 2)
    handles = [ray_executor.submit(spec) for spec in specs]
    assert [ray_executor.submit(spec).data["actor_id"] for spec in specs] == [h.data["actor_id"] for h in handles]
    for i, handle in enumerate(handles, start=1):
        status = wait_for(ray_executor, handle)
        assert status.state is TaskState.SUCCEEDED, status
        assert all_logs(ray_executor, handle) == f"met algo-{i}\n".encode()
    group = group_name(ray_executor.root, "gang/pair")
    assert ray_executor.client.call("gang_state", name=group) in (None, "REMOVED")
    _all_cpus_back(ray_executor)
    for handle in handles:
        ray_executor.cleanup(handle)
    assert not list(ray_executor.root.glob(".gangs/*"))


def test_a_gang_bigger_than_the_cluster_is_refused(ray_executor: RayExecutor, tmp_path: Path) -> None:
    spec = _gang(tmp_path, "huge", 3, cpus=2)[0]
    with pytest.raises(InvalidSpec) as err:
        ray_executor.submit(spec)
    message = err.value.message
    assert "gang 'gang/huge' of 3 instances (CPUs 2 each)" in message, message
    assert "can hold at most 2 of them (2 nodes, CPUs 4 in all)" in message, message
    assert err.value.details == [{"field": "gang_size", "message": "at most 2 of this size"}]
    assert not list(ray_executor.root.glob("*/launch.json")) and not list(ray_executor.root.glob(".gangs/*"))
    assert ray_executor.client.call("gang_state", name=group_name(ray_executor.root, "gang/huge")) is None


def test_a_gang_starts_no_member_until_all_fit(ray_executor: RayExecutor, tmp_path: Path) -> None:
    """3 of 4 CPUs held: one member would fit now, but neither starts until both do."""
    hold = [PY, "-c", "import pathlib, time; pathlib.Path('ready').touch(); time.sleep(60)"]
    base = TestRayExecutorContract().make_spec(tmp_path, hold, resources=Resources(cpus=2))
    big = ray_executor.submit(base)
    small_spec = _other(base, tmp_path, "small")
    small = ray_executor.submit(replace(small_spec, resources=Resources(cpus=1)))
    for spec in (base, small_spec):
        wait_path(Path(spec.workdir) / "ready")
    specs = _gang(tmp_path, "blocked", 2)
    handles = [ray_executor.submit(spec) for spec in specs]
    time.sleep(2)
    assert [ray_executor.poll(h).state for h in handles] == [TaskState.PENDING, TaskState.PENDING]
    assert ray_executor.describe(handles[0])["placement_group_state"] == "PENDING"
    assert not [s.workdir for s in specs if (Path(s.workdir) / "started").exists()], "a member started alone"
    ray_executor.cancel(small, grace_s=0)
    for handle in handles:
        status = wait_for(ray_executor, handle)
        assert status.state is TaskState.SUCCEEDED, status
    ray_executor.cancel(big, grace_s=0)
    wait_for(ray_executor, big)
    wait_for(ray_executor, small)
    _all_cpus_back(ray_executor)


def _other(spec: TaskSpec, tmp_path: Path, name: str, command: list[str] | None = None) -> TaskSpec:
    workdir = tmp_path / name
    workdir.mkdir()
    return replace(spec, task_id=f"{spec.task_id}-{name}", workdir=str(workdir), command=command or spec.command)
