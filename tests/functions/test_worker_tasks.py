"""Warm workers are executor tasks: started, stopped and cleaned up through the executor, never by the server.

Checked against a live server on the local executor: a worker is a ``function/<name>/<id>`` task carrying the
function's memory limit; a worker that dies is reported with the executor's exit code and its log's last
line; a timed-out worker's task is cancelled and cleaned up; deleting the function and closing the server
leave no worker process or task behind; and a server started on a home where a killed server's workers
still run stops them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from kamado.compute.local import LocalExecutor
from kamado.compute.taskspec import TaskState
from kamado.functions.pool import FunctionConfig, Pools
from kamado.sdk.functions import Function
from tests.live_server import LiveServer, start_server, task_visible_dir


def _worker_tasks(executor: LocalExecutor, function: str) -> list[str]:
    return [h.task_id for h in executor.list_tasks() if h.task_id.startswith(f"function/{function}/")]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:  # gone between open and read (ProcessLookupError) or before open
        return False


def _until(what: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not what():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_worker_is_an_executor_task_with_the_functions_limits(live: LiveServer, code_dir: Path) -> None:
    executor = live.app.state.platform.executor
    Function.create("who", code_dir, "app.whoami", memory_mb=384, reserved_concurrency=1, client=live.client)
    pid = live.client.invoke_function("who", {})["Payload"]["pid"]
    (task_id,) = _worker_tasks(executor, "who")
    handle = executor.attach(task_id, {})
    status = executor.poll(handle)
    assert status.state == TaskState.RUNNING and status.pid == pid, "the handler runs in the task's process"
    spec = json.loads((executor.state_dir(task_id) / "spec.json").read_text())
    assert spec["limits"]["memory_mb"] == 384, "the memory limit goes through the TaskSpec"
    assert spec["limits"]["max_runtime_s"] is None, "a warm worker lives as long as its pool"
    assert live.client.invoke_function("who", {})["Payload"]["pid"] == pid, "the worker stays warm"

    live.client.delete_function("who")
    assert _until(lambda: not _alive(pid)), "deleting the function stops its worker"
    assert _until(lambda: _worker_tasks(executor, "who") == []), "and the executor cleaned its task up"


def test_a_dead_worker_is_reported_with_the_executors_reason(live: LiveServer, code_dir: Path) -> None:
    Function.create("die", code_dir, "app.die", reserved_concurrency=1, client=live.client)
    out = live.client.invoke_function("die", {"code": 7})
    assert out["FunctionError"] and out["Payload"]["reason"] == "WorkerDied", out
    message = out["Payload"]["errorMessage"]
    assert "exited with code 7" in message and "goodbye from the handler" in message, message
    executor = live.app.state.platform.executor
    assert _until(lambda: _worker_tasks(executor, "die") == []), "the dead worker's task is cleaned up"


def test_a_timed_out_worker_task_is_cancelled_and_replaced(live: LiveServer, code_dir: Path) -> None:
    executor = live.app.state.platform.executor
    Function.create("sleepy", code_dir, "app.sleepy", timeout_s=0.5, reserved_concurrency=1, client=live.client)
    assert live.client.invoke_function("sleepy", {"s": 0})["Payload"] == "woke"
    (first,) = _worker_tasks(executor, "sleepy")
    pid = executor.poll(executor.attach(first, {})).pid
    assert live.client.invoke_function("sleepy", {"s": 30})["Payload"]["reason"] == "TimedOut"
    assert _until(lambda: not _alive(pid)), "the executor stopped the timed-out worker"
    assert _until(lambda: first not in _worker_tasks(executor, "sleepy")), "and its task was cleaned up"
    assert live.client.invoke_function("sleepy", {"s": 0})["Payload"] == "woke"
    (second,) = _worker_tasks(executor, "sleepy")
    assert second != first


def test_a_new_server_stops_the_workers_a_killed_server_left(tmp_path: Path, code_dir: Path) -> None:
    home = tmp_path / "home"
    # A "previous server" that died without closing its pools: its worker task runs on in the home's executor.
    old = Pools(LocalExecutor(home / "tasks"))
    cfg = FunctionConfig(name="ghost", source_dir=code_dir, handler="app.whoami", memory_mb=256, timeout_s=10)
    pid = old.get(cfg).invoke({})["result"]["pid"]
    assert _alive(pid)
    server, thread, _url, app = start_server(home)
    try:
        executor = app.state.platform.executor
        assert _until(lambda: not _alive(pid)), "the new server stopped the leftover worker"
        assert _until(lambda: _worker_tasks(executor, "ghost") == []), "and cleaned up its task"
    finally:
        server.should_exit = True
        thread.join(30)
        old.close()
    assert not _alive(pid)


def test_closing_the_server_leaves_no_worker_behind(tmp_path: Path, code_dir: Path) -> None:
    home = tmp_path / "home"
    server, thread, url, app = start_server(home)
    from kamado.sdk.client import Client

    client = Client(url)
    try:
        Function.create("who", code_dir, "app.whoami", reserved_concurrency=2, client=client)
        pids = {client.invoke_function("who", {})["Payload"]["pid"] for _ in range(3)}
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
    assert pids and not any(_alive(p) for p in pids), "the server's shutdown stopped its workers"
    assert _worker_tasks(app.state.platform.executor, "who") == []
    assert os.path.isdir(home / "tasks")


def test_a_worker_dying_mid_map_run_loses_no_item(live: LiveServer, code_dir: Path, tmp_path: Path) -> None:
    markers = task_visible_dir()  # the worker user of a root server cannot reach tmp_path
    env = {"MARKERS": str(markers)}
    fn = Function.create(
        "die-once", code_dir, "app.die_once", environment=env, reserved_concurrency=1, client=live.client
    )
    n = 400  # several batches in flight on the one worker when it dies
    run = fn.map([{"x": i} for i in range(n)])
    assert run.wait(poll_s=0.05, timeout_s=60)["Status"] == "Succeeded"
    rows = sorted(run.results(), key=lambda r: r["Index"])
    assert [r["Output"] for r in rows] == list(range(n)), "every item ran, none twice in the results"
    retried = {r["Index"]: r["Attempts"] for r in rows if r["Attempts"] != 1}
    assert retried == {37: 2}, "only the call the worker died in counts an attempt; those behind it just re-ran"


def test_shutdown_stops_a_worker_in_the_middle_of_a_call(tmp_path: Path, code_dir: Path) -> None:
    from kamado.sdk.client import Client

    home = tmp_path / "home"
    server, thread, url, app = start_server(home)
    executor = app.state.platform.executor
    client = Client(url)
    try:
        fn = Function.create("sleepy", code_dir, "app.sleepy", timeout_s=120, reserved_concurrency=1, client=client)
        run = fn.map([{"s": 60}, {"s": 60}], name="long")
        assert _until(lambda: run.progress()["Running"] > 0), "the call started"
        (task_id,) = _worker_tasks(executor, "sleepy")
        pid = executor.poll(executor.attach(task_id, {})).pid
        assert pid is not None and _alive(pid)
    finally:
        client.close()
        t0 = time.monotonic()
        server.should_exit = True
        thread.join(60)
    assert time.monotonic() - t0 < 45, "shutdown did not wait for the 60 s call"
    assert _until(lambda: not _alive(pid), 10), "the busy worker was stopped with the server"
