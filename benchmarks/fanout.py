"""Shared parts of B3 and B4: a local server with one function, map runs timed to the end, items files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks import LocalServer

HANDLERS = """
import time

def noop(event, context):
    return event["Items"] if isinstance(event, dict) else event

def burn(event, context):
    # CPU-bound for event["ms"] milliseconds of this process's CPU time
    end = time.process_time() + event["ms"] / 1000.0
    x = 0
    while time.process_time() < end:
        x += 1
    return event["ms"]
"""


def noop(x: Any) -> Any:
    return x


def burn(ms: float) -> float:
    end = time.process_time() + ms / 1000.0
    x = 0
    while time.process_time() < end:
        x += 1
    return ms


class FanoutServer:
    """A real ``kamado server`` with the benchmark's functions registered, each with ``workers`` workers."""

    def __init__(self, tmp: Path, workers: int, *, env: dict[str, str] | None = None, name: str = "home") -> None:
        self.tmp = tmp
        self.workers = workers
        self.server = LocalServer(tmp / name, env=env)

    def __enter__(self) -> FanoutServer:
        from kamado import Client

        self.server.start()
        self.client = Client(self.server.url, autostart=False, timeout=300)
        try:
            self._register()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _register(self) -> None:
        src = self.tmp / f"fn-{self.server.home.name}"
        src.mkdir(exist_ok=True)
        (src / "fns.py").write_text(HANDLERS)
        uri = self.client.upload_directory(src)
        for name in ("noop", "burn"):
            self.client.create_function(
                {
                    "FunctionName": name,
                    "Handler": f"fns.{name}",
                    "Code": {"Uri": uri},
                    "MemorySize": 1024,
                    "Timeout": 60,
                    "ReservedConcurrentExecutions": self.workers,
                }
            )

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.stop()

    def items_uri(self, name: str, items: list[Any]) -> str:
        d = self.tmp / f"items-{self.server.home.name}-{name}"
        d.mkdir(exist_ok=True)
        (d / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
        return f"{self.client.upload_directory(d)}/items.jsonl"

    def map_seconds(self, function: str, items_uri: str, *, batch_size: int = 1) -> tuple[float, dict[str, Any]]:
        """Start a map run over the uploaded items and wait for its end; wall seconds from the start call."""
        t0 = time.perf_counter()
        name = self.client.start_map_run(
            {
                "FunctionName": function,
                "ItemSource": {"Uri": items_uri, "Format": "jsonl"},
                "BatchSize": batch_size,
            }
        )["MapRunName"]
        while True:
            desc = self.client.describe_map_run(name)
            if desc["Status"] != "InProgress":
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        if desc["Status"] != "Succeeded":
            raise RuntimeError(f"map run {name} ended {desc['Status']}: {desc.get('Cause')}")
        return wall, desc
