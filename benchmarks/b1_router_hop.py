"""B1 router hop: what the router adds over calling a model-server worker directly.

The worker is a no-op: a minimal asyncio HTTP/1.1 server (keep-alive, fixed ``{}`` answer) on uvloop, the
cheapest replica there is, so what is measured is the router. One instance sits behind a real router process
(``ensure_router`` on a temporary home, as the control plane starts it). Comparators in the same run: that
worker called directly ("direct", for the added latency), and the same server on the standard asyncio loop,
the "minimal asyncio HTTP/1.1 server" floor of PERFORMANCE.md (the req/s goal is judged against it; the
ratio to the uvloop worker is reported too).

Load: one asyncio client process (this one, on uvloop) holding 1, 8 or 64 keep-alive connections, each sending
``POST`` back to back for a fixed time; latency is measured per request on the client. Direct, routed and floor
runs are interleaved (A B C A B C ...) after one warm-up round, 5 repetitions each. Added latency = routed -
direct, per repetition, then the median. Goal (PERFORMANCE.md): added p50 <= 0.3 ms and p99 <= 1 ms (judged
at 1 connection, where queueing does not dominate), and >= 50 % of the floor's req/s at 64 connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import REPO, log, ratio, smoke, summarize, write_result

NAME = "b1_router_hop"
CONNECTIONS = (1, 8, 64)
GOAL_ADDED_P50_MS = 0.3
GOAL_ADDED_P99_MS = 1.0
GOAL_RPS_FRACTION = 0.5
_NOOP = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


# ------------------------------------------------------------------------------------ the no-op worker


class _NoopProtocol(asyncio.Protocol):
    """Answers every complete request with a fixed 200 ``{}``: the least an HTTP server can do."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(_NOOP)


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _serve_noop() -> None:  # run by ``--serve-noop [--asyncio]``
    server = await asyncio.get_running_loop().create_server(_NoopProtocol, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


@contextlib.contextmanager
def noop_worker(*, uvloop: bool = True) -> Iterator[str]:
    """A no-op worker process (on uvloop, or on the standard asyncio loop); yields its URL."""
    cmd = [sys.executable, "-m", "benchmarks.b1_router_hop", "--serve-noop", *([] if uvloop else ["--asyncio"])]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


# ------------------------------------------------------------------------------------------------ the load


def _request(path: str, body: bytes = b"{}") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _one_connection(
    url: str, request: bytes, stop_at: float, budget: list[int], out: dict[str, Any], variant_header: bytes | None
) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    lat = out["latencies"]
    try:
        while time.perf_counter() < stop_at and budget[0] != 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            low = head.lower()
            at = low.find(b"content-length:")
            await reader.readexactly(int(low[at + 15 :].split(b"\r\n", 1)[0]))
            lat.append(time.perf_counter() - t0)
            if head[9:12] != b"200":
                out["errors"] += 1
            if variant_header is not None:
                at = low.find(variant_header)
                out["variants"][head[at + len(variant_header) :].split(b"\r\n", 1)[0].strip().decode()] += 1
    finally:
        writer.close()


async def _load(
    url: str, path: str, connections: int, seconds: float, requests: int = -1, variant_header: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"latencies": [], "errors": 0, "variants": Counter()}
    budget = [requests]
    header = f"{variant_header.lower()}:".encode() if variant_header else None
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_one_connection(url, _request(path), stop_at, budget, out, header) for _ in range(connections))
    )
    out["elapsed_s"] = time.perf_counter() - started
    return out


def load(url: str, path: str, connections: int, seconds: float, **kw: Any) -> dict[str, Any]:
    """Drive ``connections`` keep-alive connections for ``seconds`` (or ``requests`` in total); one event loop."""
    result: dict[str, Any] = _run(_load(url, path, connections, seconds, **kw))
    return result


def figures(run: dict[str, Any]) -> dict[str, float]:
    lat = sorted(run["latencies"])
    n = len(lat)
    return {
        "requests": n,
        "errors": run["errors"],
        "rps": n / run["elapsed_s"],
        "p50_ms": lat[n // 2] * 1000.0,
        "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1000.0,
    }


# ---------------------------------------------------------------------------------------------- the bench


def _routed_table(worker_url: str) -> Any:
    from kamado.hosting.routing import EndpointRoute, InstanceRoute, RoutingTable, VariantRoute

    variant = VariantRoute(
        variant_name="AllTraffic", weight=1, instances=(InstanceRoute(instance_id="i-0", url=worker_url),)
    )
    return RoutingTable(version=1, endpoints={"b1": EndpointRoute(endpoint_name="b1", variants=(variant,))})


def _measure(targets: dict[str, tuple[str, str]], conns: int, seconds: float, reps: int) -> dict[str, Any]:
    """Interleaved runs of every target (name -> (url, path)); per-target summaries and per-rep ratios."""
    for url, path in targets.values():  # warm-up round
        load(url, path, conns, seconds)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for _ in range(reps):
        for name, (url, path) in targets.items():
            runs[name].append(figures(load(url, path, conns, seconds)))
    med = statistics.median
    direct, routed, floor = runs["direct"], runs["routed"], runs["floor_asyncio"]
    pairs = list(zip(direct, routed, floor, strict=True))
    out: dict[str, Any] = {"connections": conns}
    for name, rows in runs.items():
        out[name] = {k: summarize([r[k] for r in rows], 3) for k in ("rps", "p50_ms", "p99_ms")}
    out.update(
        added_p50_ms=round(med([r["p50_ms"] - d["p50_ms"] for d, r, _ in pairs]), 3),
        added_p99_ms=round(med([r["p99_ms"] - d["p99_ms"] for d, r, _ in pairs]), 3),
        rps_routed_over_direct=round(med([r["rps"] / d["rps"] for d, r, _ in pairs]), 3),
        rps_routed_over_floor_asyncio=round(med([r["rps"] / f["rps"] for _, r, f in pairs]), 3),
        errors=sum(r["errors"] for rows in runs.values() for r in rows),
        requests=sum(r["requests"] for rows in runs.values() for r in rows),
    )
    return out


def run() -> tuple[Path, dict[str, Any]]:
    from kamado.hosting.router_process import RouterClient, ensure_router

    started = time.monotonic()
    tiny = smoke()
    seconds, reps = (0.2, 2) if tiny else (1.5, 5)
    rows: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="kamado-b1-") as tmp,
        noop_worker() as worker,
        noop_worker(uvloop=False) as floor,
    ):
        handle = ensure_router(Path(tmp) / "home")
        admin = RouterClient(handle)
        targets = {
            "direct": (worker, "/invocations"),
            "routed": (handle.url, "/endpoints/b1/invocations"),
            "floor_asyncio": (floor, "/invocations"),
        }
        try:
            admin.publish(_routed_table(worker))
            for conns in CONNECTIONS:
                log(f"{NAME}: {conns} connection(s), {reps} x {seconds:g} s per target")
                rows[str(conns)] = _measure(targets, conns, seconds, reps)
            overhead = admin.stats(300)["endpoints"]["b1"]["variants"]["AllTraffic"]["overhead_latency_p50_ms"]
        finally:
            admin.stop()
    one, many = rows["1"], rows["64"]
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            "no-op asyncio worker process on uvloop; a real router process in front (ensure_router); the same "
            "no-op server on the standard asyncio loop as the floor; one asyncio (uvloop) client process with "
            f"1/8/64 keep-alive connections sending back to back for {seconds:g} s per run; direct, routed and "
            f"floor runs interleaved after a warm-up round, {reps} repetitions; added = routed - direct per "
            "repetition, median reported."
        ),
        "load_generator": "this process: asyncio streams on uvloop (one event loop)",
        "config": {"connections": list(CONNECTIONS), "seconds_per_run": seconds, "repetitions": reps},
        "figures": {
            "per_connections": rows,
            "router_overhead_p50_ms_own_stats": overhead,
        },
        "comparator": {
            "name": "direct: the same no-op worker (uvloop) called without the router; floor_asyncio: the "
            "minimal asyncio HTTP/1.1 server (standard loop)",
            "direct_rps_64": many["direct"]["rps"]["p50"],
            "direct_p50_ms_1": one["direct"]["p50_ms"]["p50"],
            "direct_p99_ms_1": one["direct"]["p99_ms"]["p50"],
            "floor_asyncio_rps_64": many["floor_asyncio"]["rps"]["p50"],
        },
        "added_over_direct": {
            f"{c}_connections": {"p50_ms": rows[str(c)]["added_p50_ms"], "p99_ms": rows[str(c)]["added_p99_ms"]}
            for c in CONNECTIONS
        },
        "ratio": {
            "rps_64_routed_over_floor_asyncio": many["rps_routed_over_floor_asyncio"],
            "rps_64_routed_over_direct_uvloop": many["rps_routed_over_direct"],
            "p50_1_routed_over_direct": ratio(one["routed"]["p50_ms"]["p50"], one["direct"]["p50_ms"]["p50"]),
            "p99_1_routed_over_direct": ratio(one["routed"]["p99_ms"]["p50"], one["direct"]["p99_ms"]["p50"]),
            "meaning": "routed / direct (latency: lower is better, 1.0 = free; req/s: higher is better)",
        },
        "goal": {
            "added_p50_ms_le": GOAL_ADDED_P50_MS,
            "added_p99_ms_le": GOAL_ADDED_P99_MS,
            "rps_64_fraction_of_floor_ge": GOAL_RPS_FRACTION,
            "added_p50_met": one["added_p50_ms"] <= GOAL_ADDED_P50_MS,
            "added_p99_met": one["added_p99_ms"] <= GOAL_ADDED_P99_MS,
            "rps_met": many["rps_routed_over_floor_asyncio"] >= GOAL_RPS_FRACTION,
            "judged_at": "latency at 1 connection against direct; req/s at 64 connections against floor_asyncio",
        },
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve-noop", action="store_true", help="run the no-op worker (prints its port)")
    parser.add_argument("--asyncio", action="store_true", help="with --serve-noop: the standard asyncio loop")
    args = parser.parse_args()
    if args.serve_noop and args.asyncio:
        asyncio.run(_serve_noop())
    elif args.serve_noop:
        _run(_serve_noop())
    else:
        p, r = run()
        print(json.dumps({"path": str(p), "ratio": r["ratio"], "added_over_direct": r["added_over_direct"]}, indent=1))
