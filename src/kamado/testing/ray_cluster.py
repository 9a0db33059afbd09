"""A real multi-node Ray cluster on loopback, for tests: ``ray start`` a head and worker nodes, kill them.

Each node is one ``ray start --block`` process in a session of its own; everything the node runs (GCS,
raylet, workers, and the task processes those start) descends from it. So a node is killed - as if its
machine died - by SIGKILLing that process tree, and the cluster is stopped the same way. ``ray stop`` is
never used: it kills every Ray process on the host, including other people's clusters.

Ports are picked free at start (none of 5432, 6379, 8765), the dashboard is off, usage stats are off, and
the object store is small, because the machines these tests run on are shared. Health checks are tuned so
the head notices a dead node in about two seconds instead of fifteen.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

RAY_CLI = str(Path(sys.executable).with_name("ray"))
_AVOID = {5432, 6379, 8765}
#: How the head finds dead nodes fast (GCS settings, read from the head's environment).
FAST_FAILURE_DETECTION = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "4",
}


@dataclass
class RayNode:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class RayCluster:
    address: str
    temp_dir: Path
    nodes: dict[str, RayNode] = field(default_factory=dict)

    def node(self, name: str) -> RayNode:
        return self.nodes[name]

    def kill_node(self, name: str) -> int:
        """SIGKILL a node and everything it started, as if its machine died; returns how many processes."""
        self.nodes[name].killed = True
        return _kill_tree(self.nodes[name].proc)

    def kill_worker(self, index: int = 1) -> int:
        return self.kill_node(f"worker-{index}")

    def kill_head(self) -> int:
        return self.kill_node("head")

    def add_worker(self, *, num_cpus: int = 2, object_store_mb: int = 200, timeout_s: float = 120.0) -> str:
        """Start one more worker node (e.g. to replace a killed one) and wait until it is alive."""
        name = f"worker-{len(self.nodes)}"
        while name in self.nodes:
            name += "x"
        node = _start_node(name, ["--address", self.address], num_cpus, object_store_mb, self.temp_dir)
        self.nodes[name] = node
        alive = sum(1 for n in self.nodes.values() if n.alive)
        wait_for_nodes(self, alive, timeout_s=timeout_s)
        return name

    def stop(self) -> None:
        for name in sorted(self.nodes, key=lambda n: n == "head"):  # workers first, then the head
            _kill_tree(self.nodes[name].proc)
        for node in self.nodes.values():
            with suppress(subprocess.TimeoutExpired):
                node.proc.wait(10)

    def logs(self) -> str:
        """The tail of every node's ``ray start`` output, for a failing test's message."""
        out = []
        for node in self.nodes.values():
            text = node.log.read_text(errors="replace") if node.log.exists() else ""
            out.append(f"--- {node.name} ---\n{text[-2000:]}")
        return "\n".join(out)


@contextmanager
def ray_cluster(
    *,
    workers: int = 1,
    num_cpus: int = 2,
    object_store_mb: int = 200,
    temp_dir: Path | None = None,
    start_timeout_s: float = 120.0,
) -> Iterator[RayCluster]:
    """A head plus ``workers`` worker nodes on 127.0.0.1, each with ``num_cpus``; stopped on exit."""
    own_temp = temp_dir is None
    # Short: Ray puts unix sockets under it, and their paths may not exceed 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="kray-", dir="/tmp")) if temp_dir is None else temp_dir
    cluster = RayCluster(address="", temp_dir=base)
    try:
        gcs_port = _free_port()
        cluster.address = f"127.0.0.1:{gcs_port}"
        head_args = ["--head", "--port", str(gcs_port), "--temp-dir", str(base / "t"), "--include-dashboard=false"]
        head_args += ["--dashboard-port", str(_free_port()), "--ray-client-server-port", str(_free_port())]
        cluster.nodes["head"] = _start_node("head", head_args, num_cpus, object_store_mb, base)
        for i in range(1, workers + 1):
            args = ["--address", cluster.address]
            cluster.nodes[f"worker-{i}"] = _start_node(f"worker-{i}", args, num_cpus, object_store_mb, base)
        wait_for_nodes(cluster, workers + 1, timeout_s=start_timeout_s)
        yield cluster
    finally:
        cluster.stop()
        if own_temp:
            shutil.rmtree(base, ignore_errors=True)


def wait_for_nodes(cluster: RayCluster, count: int, *, timeout_s: float = 120.0) -> None:
    """Block until ``count`` nodes are alive in the cluster (asked through a short-lived Ray driver)."""
    code = (
        "import sys, time, ray\n"
        "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False, configure_logging=False)\n"
        "deadline = time.monotonic() + float(sys.argv[3])\n"
        "while sum(1 for n in ray.nodes() if n['Alive']) < int(sys.argv[2]):\n"
        "    if time.monotonic() > deadline: sys.exit(3)\n"
        "    time.sleep(0.2)\n"
    )
    deadline = time.monotonic() + timeout_s
    while True:
        dead = [n.name for n in cluster.nodes.values() if not n.alive and not n.killed]
        if dead:
            raise RuntimeError(f"Ray node(s) {dead} exited while starting:\n{cluster.logs()}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"the Ray cluster did not get {count} nodes within {timeout_s:g} s:\n{cluster.logs()}")
        try:
            done = subprocess.run(
                [sys.executable, "-c", code, cluster.address, str(count), str(left)],
                capture_output=True,
                timeout=left + 30,
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )
        except subprocess.TimeoutExpired:
            continue
        if done.returncode == 0:
            return
        time.sleep(0.5)  # e.g. the GCS was not listening yet


def _start_node(name: str, args: list[str], num_cpus: int, object_store_mb: int, base: Path) -> RayNode:
    worker_base = _free_port_range(64)
    common = [
        "--block",
        "--node-ip-address", "127.0.0.1",
        "--num-cpus", str(num_cpus),
        "--num-gpus", "0",
        "--object-store-memory", str(object_store_mb * 1024 * 1024),
        "--disable-usage-stats",
        "--include-log-monitor=false",
        "--node-manager-port", str(_free_port()),
        "--object-manager-port", str(_free_port()),
        "--min-worker-port", str(worker_base),
        "--max-worker-port", str(worker_base + 63),
        "--dashboard-agent-listen-port", str(_free_port()),
        "--dashboard-agent-grpc-port", str(_free_port()),
        "--runtime-env-agent-port", str(_free_port()),
        "--metrics-export-port", str(_free_port()),
    ]  # fmt: skip
    env = {
        **os.environ,
        **FAST_FAILURE_DETECTION,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_enable_worker_prestart": "0",  # no idle workers: the machines are shared
    }
    log = base / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [RAY_CLI, "start", *args, *common],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    return RayNode(name=name, proc=proc, log=log)


#: Every port this process has handed to a node: a port picked "free" stays free until its node binds it,
#: so without this record the next pick (another node's port, or a worker-port range) could take it too,
#: and ``ray start`` refuses to start ("trying to use a port number ... used by other components").
_HANDED_OUT: set[int] = set()


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _AVOID and port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _free_port_range(size: int) -> int:
    """The first of ``size`` consecutive ports that are free now (for the workers of one node)."""
    for _ in range(200):
        start = random.randrange(40000, 60000 - size)
        ports = range(start, start + size)
        if not _HANDED_OUT.intersection(ports) and all(_port_free(p) for p in ports):
            _HANDED_OUT.update(ports)
            return start
    raise RuntimeError(f"found no {size} consecutive free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(b")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _kill_tree(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL ``proc`` and all its descendants (repeated until none is left), then reap ``proc``."""
    killed: set[int] = set()
    for _ in range(20):
        tree = _children()
        todo, found = [proc.pid], []
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(tree.get(pid, []))
        alive = [pid for pid in found if pid not in killed or pid == proc.pid]
        alive = [pid for pid in alive if _running(pid)]
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                continue
        time.sleep(0.05)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    return len(killed)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")
