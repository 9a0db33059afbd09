"""T11: the bad-input corpus against a real ``kamado server`` subprocess.

Pass criteria (RELIABILITY.md T11): no 5xx; every traversal and SSRF URI refused with a 4xx; nothing read
or written outside the artifact root (a canary file and its directory are watched with inotify, and no
response carries the canary's content); no request reaches a listener on loopback (or a fake metadata
service on 169.254.169.254 where this machine lets the test add that address); the server's RSS grows
by less than 200 MB and it still answers; oversized bodies get 413 within 1 s.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scaleout.server_proc import running_server
from tests.security.bad_input_corpus import (
    CANARY,
    LIST_QUERIES,
    LISTENER,
    Probe,
    asl_attacks,
    body_attacks,
    field_attacks,
    path_values,
    templated,
)

IMDS = "169.254.169.254"
#: Labelled slow so `make soak` (-m slow) runs it with every heavy body; `make test` runs it bounded.
pytestmark = pytest.mark.slow
MAX_RSS_GROWTH_MB = 200


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def _hit(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"listener")

    do_GET = do_POST = do_PUT = do_HEAD = _hit

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _listener(host: str, port: int) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((host, port), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _fake_imds() -> Iterator[bool]:
    """Listen on 169.254.169.254:80 where root may add the address to loopback; yields whether it could."""
    ip = shutil.which("ip")
    added = False
    if ip and os.geteuid() == 0:
        added = subprocess.run([ip, "addr", "add", f"{IMDS}/32", "dev", "lo"], capture_output=True).returncode == 0
    try:
        if not added:
            yield False
            return
        try:
            with _listener(IMDS, 80):
                yield True
        except OSError:
            yield False
    finally:
        if added:
            subprocess.run([ip, "addr", "del", f"{IMDS}/32", "dev", "lo"], capture_output=True)  # type: ignore[list-item]


class _Inotify:
    """Linux inotify through libc: any open, read, write or attribute change of the canary, or any file
    created next to it, is an event."""

    IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_OPEN, IN_CREATE, IN_NONBLOCK = 0x1, 0x2, 0x4, 0x20, 0x100, 0o4000

    def __init__(self, canary: Path) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(self.IN_NONBLOCK)
        assert self.fd >= 0, "inotify is available"
        mask = self.IN_ACCESS | self.IN_MODIFY | self.IN_ATTRIB | self.IN_OPEN
        assert self.libc.inotify_add_watch(self.fd, str(canary).encode(), mask) >= 0
        assert self.libc.inotify_add_watch(self.fd, str(canary.parent).encode(), self.IN_CREATE) >= 0

    def events(self) -> int:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return 0
        count, i = 0, 0
        while i < len(data):
            name_len = int.from_bytes(data[i + 12 : i + 16], "little")
            i += 16 + name_len
            count += 1
        return count

    def close(self) -> None:
        os.close(self.fd)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("t11")
    outside = root / "outside"
    outside.mkdir()
    canary = outside / "canary.txt"
    content = f"kamado-canary-{secrets.token_hex(16)}"
    canary.write_text(content)
    with running_server(root / "home") as url:
        pid = int(json.loads((root / "home" / "server.json").read_text())["pid"])
        yield {"url": url, "pid": pid, "canary": canary, "content": content, "home": root / "home", "root": root}


def _setup(client: httpx.Client, root: Path) -> str:
    """A function and a state machine for probes that need a valid target; returns a real artifact URI."""
    from kamado.sdk.client import Client

    code = root / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("def echo(event, context):\n    return event\n")
    with Client(str(client.base_url)) as sdk:
        uri = sdk.upload_directory(code)
        sdk.create_function({"FunctionName": "echo", "Handler": "app.echo", "Code": {"Uri": uri}})
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    r = client.post("/api/v1/state-machines", json={"name": "ok", "definition": json.dumps(definition)})
    assert r.status_code in (200, 201), r.text
    return uri


def _corpus(openapi: dict[str, Any], uri: str, listener: str, canary: Path) -> list[Probe]:
    probes: list[Probe] = []
    ops = [
        (m.upper(), p, op)
        for p, item in openapi["paths"].items()
        for m, op in item.items()
        if m in ("get", "post", "put", "delete")
    ]
    heavy_left = len(ops) if os.environ.get("KAMADO_SOAK") else 4  # the 50,000-key body on a few routes in CI
    for method, path, op in ops:
        if "requestBody" in op and path != "/api/v1/trees/{digest}":
            concrete = templated(path, "zz-missing")
            heavy_left -= 1
            for attack, body, headers in body_attacks(heavy=heavy_left >= 0):
                probes.append(Probe(attack, method, concrete, body=body, headers=headers))
        if "{" in path and method == "GET":
            for value in path_values():
                probes.append(Probe("A1/A18 path parameter", method, templated(path, value)))
        params = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        if method == "GET" and ({"NextToken", "MaxResults"} & params or "nextToken" in params):
            for query in LIST_QUERIES:
                probes.append(Probe("A13 filter/paging", method, path, params=query))
    for value in path_values():
        probes.append(
            Probe(
                "A1 artifact download",
                "GET",
                "/api/v1/artifacts/content",
                params={"uri": value.replace(CANARY, str(canary))},
            )
        )
    for attack, body in asl_attacks():
        probes.append(
            Probe(
                attack,
                "POST",
                "/api/v1/state-machines",
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
        )
    for attack, path, body in field_attacks(uri):
        text = json.dumps(body).replace(LISTENER, listener).replace(CANARY, str(canary))
        probes.append(Probe(attack, "POST", path, body=text.encode(), headers={"Content-Type": "application/json"}))
    return probes


#: Attacks whose every probe must be refused outright (a 2xx would mean the bad value was accepted).
MUST_REFUSE = ("A1/A4", "A1 artifact", "A7 ", "A6")


def _runtime_caps_hold(client: httpx.Client, probes: list[Probe]) -> None:
    """ASL that is valid at create but would run away is stopped by the runtime caps when it runs."""
    for probe in probes:
        if not probe.attack.startswith("A7-runtime"):
            continue
        name = json.loads(probe.body or b"{}")["name"]
        r = client.post(f"/api/v1/state-machines/{name}/executions", json={"name": "run", "input": "{}"})
        assert r.status_code in (200, 201), r.text
        deadline = time.monotonic() + 30
        while (desc := client.get(f"/api/v1/state-machines/{name}/executions/run").json())["status"] == "RUNNING":
            assert time.monotonic() < deadline, desc
            time.sleep(0.2)
        assert desc["status"] == "FAILED" and desc["error"].startswith("States."), desc
        assert "1000" in desc["cause"] or "1,000" in desc["cause"], desc


def test_bad_input_corpus(server: dict[str, Any]) -> None:
    url, pid, canary, content = server["url"], server["pid"], server["canary"], server["content"]
    _Recorder.hits = []
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        _listener("127.0.0.1", 0) as loopback,
        _fake_imds() as imds_watched,
    ):
        uri = _setup(client, server["root"])
        listener = f"127.0.0.1:{loopback.server_address[1]}"
        probes = _corpus(client.get("/api/v1/openapi.json").json(), uri, listener, canary)
        assert len(probes) >= 300, f"the corpus has {len(probes)} probes; T11 asks for at least 300"
        watch = _Inotify(canary)
        rss_before = _rss_mb(pid)
        server_errors, accepted, leaks = [], [], []
        spent: dict[str, float] = {}
        t0 = time.monotonic()
        for probe in probes:
            t1 = time.monotonic()
            r = client.request(probe.method, probe.path, content=probe.body, params=probe.params, headers=probe.headers)
            spent[probe.attack[:14]] = spent.get(probe.attack[:14], 0.0) + time.monotonic() - t1
            if r.status_code >= 500:
                server_errors.append(f"{probe.label()} {probe.params or ''} -> {r.status_code}: {r.text[:300]}")
            elif r.status_code < 400 and probe.attack.startswith(MUST_REFUSE):
                accepted.append(f"{probe.label()} -> {r.status_code}: {(probe.body or b'')[:200]!r}")
            if content in r.text:
                leaks.append(probe.label())
        elapsed = time.monotonic() - t0
        _runtime_caps_hold(client, probes)
        time.sleep(1.0)  # anything the server started asynchronously (a job fetching a URI) has had its chance
        events = watch.events()
        watch.close()
        rss_after = _rss_mb(pid)
        assert client.get("/healthz").status_code == 200, "the server still answers"
    rss = f"RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    print(f"T11: {len(probes)} probes in {elapsed:.1f} s; {rss}; fake IMDS watched: {imds_watched}")
    print(sorted(((round(v, 1), k) for k, v in spent.items()), reverse=True)[:12])
    assert server_errors == [], "\n".join(server_errors[:40])
    assert accepted == [], "\n".join(accepted[:40])
    assert leaks == [], f"responses carried the canary's content: {leaks[:20]}"
    assert events == 0, f"{events} inotify event(s) on the canary or next to it"
    assert _Recorder.hits == [], f"requests reached a listener: {_Recorder.hits[:20]}"
    assert rss_after - rss_before < MAX_RSS_GROWTH_MB
    assert canary.read_text() == content and sorted(p.name for p in canary.parent.iterdir()) == ["canary.txt"]


def test_oversized_bodies_get_413_within_a_second(server: dict[str, Any]) -> None:
    url = server["url"]
    with httpx.Client(base_url=url, timeout=30) as client:
        big = b'{"TrainingJobName": "x", "pad": "' + b"x" * (2 << 20) + b'"}'
        t0 = time.monotonic()
        r = client.post("/api/v1/training-jobs", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and time.monotonic() - t0 < 1.0, (r.status_code, time.monotonic() - t0)

        def chunks() -> Iterator[bytes]:
            yield b'{"pad": "'
            for _ in range(64):  # 64 MiB if nobody stops it, with no Content-Length
                yield b"x" * (1 << 20)
            yield b'"}'

        t0 = time.monotonic()
        r = client.post("/api/v1/training-jobs", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.status_code
        assert time.monotonic() - t0 < 1.0
        assert client.get("/api/v1/training-jobs").json()["TrainingJobSummaries"] == [], "nothing was created"
