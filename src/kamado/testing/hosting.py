"""Stop what hosting leaves running under a home: instance tasks (endpoints' and transform jobs') and the router.

Endpoints outlive the control plane on purpose (the router and model servers are detached), so a
test, a benchmark or the demo that created endpoints must stop them itself when it is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from kamado.compute.local import LocalExecutor


def stop_hosting_processes(home: Path, *, grace_s: float = 2.0, wait_s: float = 10.0) -> None:
    tasks = home / "tasks"
    if tasks.is_dir():
        executor = LocalExecutor(tasks)
        handles = [h for h in executor.list_tasks() if h.task_id.startswith(("endpoint/", "transform-job/"))]
        for handle in handles:
            with contextlib.suppress(Exception):
                if not executor.poll(handle).state.is_terminal():
                    executor.cancel(handle, grace_s)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(not executor.poll(h).state.is_terminal() for h in handles):
            time.sleep(0.05)
    record = home / "hosting" / "router.json"
    if record.exists():
        with contextlib.suppress(Exception):
            pid = int(json.loads(record.read_text())["pid"])
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
