"""Exclusive GPU assignment for the local executor: each task gets its own devices via
``CUDA_VISIBLE_DEVICES``, and no two running tasks share one.

Which task holds which GPU is kept on disk, next to the task's supervisor state (``gpus.json`` in its
state directory), so the assignment survives a server restart: a GPU is free again once its task has a
final status. Assignment runs under a file lock, so two submits (threads or processes) never pick the
same device. The capacity ledger above already queues tasks until enough GPUs are free; this is the
part that says *which* ones.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path

from kamado.core.errors import InvalidSpec, LimitExceeded

GPU_FILE = "gpus.json"
#: Written by the supervisor when the task ends (see ``compute/shim.py``): its GPUs are free from then on.
STATUS_FILE = "status.json"


def detect_gpu_ids() -> list[str]:
    """The GPUs to hand out: ``KAMADO_GPUS`` (``"0,1"``, or ``"none"``), else the NVIDIA devices present
    (``/dev/nvidia0``...), which needs no driver library."""
    raw = os.environ.get("KAMADO_GPUS")
    if raw is not None:
        return [] if raw.strip().lower() in ("", "none") else [p.strip() for p in raw.split(",") if p.strip()]
    try:
        names = os.listdir("/dev")
    except OSError:
        return []
    return [n[6:] for n in sorted(names, key=lambda n: (len(n), n)) if n.startswith("nvidia") and n[6:].isdigit()]


class GpuAllocator:
    """Hands out GPU ids to tasks whose state directories live under ``root``."""

    def __init__(self, root: Path, ids: Sequence[str]) -> None:
        self.root = root
        self.ids = list(ids)

    def held(self) -> dict[str, str]:
        """GPU id → the task (state directory name) holding it, for every task that has not ended."""
        out: dict[str, str] = {}
        for state_dir in self.root.iterdir():
            record = state_dir / GPU_FILE
            if not record.exists() or (state_dir / STATUS_FILE).exists():
                continue
            try:
                ids = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            for gpu in ids:
                out[str(gpu)] = state_dir.name
        return out

    def assign(self, state_dir: Path, count: int, *, task_id: str) -> list[str]:
        """The ids given to the task in ``state_dir`` (the same ones again if it asked before)."""
        if count <= 0:
            return []
        if count > len(self.ids):
            raise InvalidSpec(
                f"Task '{task_id}' needs {count} GPU(s) but this machine has {len(self.ids)}"
                f"{' (' + ', '.join(self.ids) + ')' if self.ids else ''}; choose a smaller instance type.",
                details=[{"field": "resources.gpus", "message": f"{count} > {len(self.ids)}"}],
            )
        fd = os.open(self.root / ".gpus.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            record = state_dir / GPU_FILE
            if record.exists():
                return [str(g) for g in json.loads(record.read_text())]
            held = self.held()
            free = [g for g in self.ids if g not in held]
            if len(free) < count:
                raise LimitExceeded(
                    f"Task '{task_id}' needs {count} GPU(s); {len(free)} of {len(self.ids)} are free "
                    f"(held by {', '.join(sorted(set(held.values())))}). It can start when one of those ends."
                )
            chosen = free[:count]
            tmp = record.with_suffix(".tmp")
            tmp.write_text(json.dumps(chosen))
            os.replace(tmp, record)
            return chosen
        finally:
            os.close(fd)
