"""Exclusive GPU assignment in the local executor: disjoint CUDA_VISIBLE_DEVICES for running tasks, devices
free again when a task ends, assignments that survive a restart, clear errors. No GPU needed: the ids are
configured, and what is checked is what each task's process sees."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from kamado.compute.gpus import detect_gpu_ids
from kamado.compute.local import LocalExecutor
from kamado.compute.taskspec import Resources, TaskSpec, TaskState
from kamado.core.errors import InvalidSpec, LimitExceeded
from kamado.testing.executor_contract import PY, all_logs, wait_for, wait_path

SHOW = "import os, sys, time\nprint('devices=' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'), flush=True)\n"


def _spec(tmp_path: Path, gpus: int, *, hold: Path | None = None) -> TaskSpec:
    work = tmp_path / uuid.uuid4().hex[:8]
    work.mkdir()
    code = SHOW
    argv = []
    if hold is not None:  # run until the test removes the file; its directory is passed by name, as tasks
        # running as the worker user reach only what they are given (see compute/worker_user.py)
        code += "open('started', 'w').close()\nwhile os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
        argv = [str(hold), str(hold.parent)]
    return TaskSpec(
        task_id=f"gpu-test/{uuid.uuid4().hex[:8]}/1",
        command=[PY, "-c", code, *argv],
        env={"PATH": "/usr/bin:/bin"},
        workdir=str(work),
        resources=Resources(cpus=1, gpus=gpus),
    )


def _devices(executor: LocalExecutor, handle: object) -> str:
    for line in all_logs(executor, handle).decode().splitlines():  # type: ignore[arg-type]
        if line.startswith("devices="):
            return line.split("=", 1)[1]
    raise AssertionError("the task printed no devices line")


def test_running_tasks_get_disjoint_devices_and_free_them_when_they_end(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", gpu_ids=["0", "1", "2"])
    assert executor.capacity().gpus == 3
    hold = tmp_path / "hold" / "on"
    hold.parent.mkdir()
    hold.touch()
    one, two = _spec(tmp_path, 1, hold=hold), _spec(tmp_path, 2, hold=hold)
    a, b = executor.submit(one), executor.submit(two)
    wait_path(Path(one.workdir) / "started")
    wait_path(Path(two.workdir) / "started")
    with pytest.raises(LimitExceeded, match="0 of 3 are free"):
        executor.submit(_spec(tmp_path, 1))
    assert executor.submit(one) == a, "resubmitting a running task keeps its devices"
    hold.unlink()
    assert wait_for(executor, a).state is TaskState.SUCCEEDED and wait_for(executor, b).state is TaskState.SUCCEEDED
    seen_a, seen_b = _devices(executor, a).split(","), _devices(executor, b).split(",")
    assert len(seen_a) == 1 and len(seen_b) == 2 and sorted(seen_a + seen_b) == ["0", "1", "2"]
    # Ended tasks hold nothing: a new task (and a new executor over the same root, as after a restart) can
    # take every device.
    again = LocalExecutor(tmp_path / "tasks", gpu_ids=["0", "1", "2"])
    c = again.submit(_spec(tmp_path, 3))
    assert wait_for(again, c).state is TaskState.SUCCEEDED
    assert sorted(_devices(again, c).split(",")) == ["0", "1", "2"]


def test_assignments_survive_a_restart_of_the_executor(tmp_path: Path) -> None:
    hold = tmp_path / "hold" / "on"
    hold.parent.mkdir()
    hold.touch()
    first = LocalExecutor(tmp_path / "tasks", gpu_ids=["0", "1"])
    spec = _spec(tmp_path, 1, hold=hold)
    handle = first.submit(spec)
    wait_path(Path(spec.workdir) / "started")
    restarted = LocalExecutor(tmp_path / "tasks", gpu_ids=["0", "1"])
    other = _spec(tmp_path, 1)
    h2 = restarted.submit(other)
    assert wait_for(restarted, h2).state is TaskState.SUCCEEDED
    hold.unlink()
    wait_for(first, handle)
    assert {_devices(first, handle), _devices(restarted, h2)} == {"0", "1"}


def test_tasks_without_gpus_see_none_and_impossible_requests_are_refused(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "tasks", gpu_ids=["0"])
    cpu = executor.submit(_spec(tmp_path, 0))
    wait_for(executor, cpu)
    assert _devices(executor, cpu) == "", "a CPU task cannot use another task's GPU"
    with pytest.raises(InvalidSpec, match="needs 2 GPU"):
        executor.submit(_spec(tmp_path, 2))
    bare = LocalExecutor(tmp_path / "bare", gpu_ids=[])
    h = bare.submit(_spec(tmp_path, 0))
    wait_for(bare, h)
    assert _devices(bare, h) == "unset", "on a machine without GPUs nothing is added"
    assert LocalExecutor(tmp_path / "capped", gpu_ids=["0", "1", "2"], max_gpus=1).capacity().gpus == 1


def test_gpu_ids_come_from_the_environment_or_the_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAMADO_GPUS", "2, 3")
    assert detect_gpu_ids() == ["2", "3"]
    monkeypatch.setenv("KAMADO_GPUS", "none")
    assert detect_gpu_ids() == []
    monkeypatch.delenv("KAMADO_GPUS")
    assert all(i.isdigit() for i in detect_gpu_ids())


def test_a_gpu_training_job_sees_its_device_and_sm_num_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kamado.sdk.client import Client
    from tests.live_server import start_server, write_script

    monkeypatch.setenv("KAMADO_GPUS", "7")
    server, thread, url, _ = start_server(tmp_path / "home")
    try:
        with Client(url) as c:
            assert c.info()["capacity"]["gpus"] == 1
            src = write_script(
                tmp_path / "src",
                "import os\nprint('seen', os.environ['CUDA_VISIBLE_DEVICES'], os.environ['SM_NUM_GPUS'], flush=True)\n",
            )
            uri = c.upload_directory(src)
            c.create_training_job(
                {
                    "TrainingJobName": "gpu-job",
                    "HyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{uri}"'},
                    "ResourceConfig": {"InstanceType": "local_gpu", "InstanceCount": 1, "VolumeSizeInGB": 1},
                }
            )
            desc = c.wait_for_training_job("gpu-job", poll_s=0.05, timeout_s=60)
            assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
            logs = "".join(e["Message"] for e in c.training_job_logs("gpu-job")["Events"])
            assert "seen 7 1" in logs
    finally:
        server.should_exit = True
        thread.join(30)
