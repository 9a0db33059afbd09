"""The router: kamado's inference data plane, as a raw ASGI app.

It serves ``POST /endpoints/{name}/invocations`` for every endpoint and forwards each request to one model-server
worker (``POST {instance.url}/invocations``) chosen from the routing table the control plane publishes. It runs
as its own process (see :mod:`kamado.hosting.router_process`) so the control plane can restart without dropping
a request, and keeps nothing but the table, in-flight counts, held requests and statistics in memory.

Why it is shaped like this:

* **Raw ASGI, no framework.** B1 holds the router to 0.3 ms added over calling a worker directly; a framework's
  routing and request objects cost about that much on their own.
* **Its own small HTTP/1.1 client** (:mod:`kamado.hosting.worker_client`; why not httpx or aiohttp is there).
* **Retries only when nothing was sent.** A connect failure marks the instance unhealthy for
  :data:`UNHEALTHY_S` (a passive health check) and the request goes to another instance. Once bytes are on the
  wire the request is never repeated, because inference need not be idempotent (T8).
* **Cold variants hold requests** (bounded by the endpoint's ``max_pending`` and ``max_wait_s``) until a table
  update brings an instance, so a variant being started, replaced or woken from zero loses nothing; the held
  count is in the stats the autoscaler reads.
* **Model problems are 424 ModelError, never a bare 5xx**, because botocore retries 5xx on its own and would
  re-run a non-idempotent inference (sagemaker-contract.md 4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import random
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from kamado.core.invocation import CUSTOM_ATTRIBUTES_HEADER, ERROR_TYPE_HEADER, MAX_INVOCATION_BYTES
from kamado.hosting.capture import CaptureEvent, CaptureWriter, sampled
from kamado.hosting.router_auth import RouterAuth
from kamado.hosting.router_stats import (
    CLIENT_ERROR,
    DEFAULT_WINDOW_S,
    OK,
    SERVER_ERROR,
    RouterCollector,
    VariantSample,
    VariantStats,
    clamp_window,
)
from kamado.hosting.routing import ADMIN_TOKEN_HEADER, EndpointRoute, RoutingTable, VariantRoute
from kamado.hosting.worker_client import InstancePool, NeverSent, UpstreamLost, UpstreamResponse, UpstreamTimeout

log = logging.getLogger("kamado.router")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: How long an instance that refused a connection is left out of the rotation.
UNHEALTHY_S = 2.0
#: While every instance of a held request's variant is marked unhealthy, how often it looks again.
HOLD_RECHECK_S = 0.25
ADMIN_MAX_BYTES = 16 * 1024 * 1024
ORIGINAL_MESSAGE_CHARS = 2048

_INVOCATIONS_PREFIX = "/endpoints/"
_INVOCATIONS_SUFFIX = "/invocations"
_FORWARDED = frozenset(
    {b"content-type", b"accept", b"x-amzn-sagemaker-custom-attributes", b"x-amzn-sagemaker-inference-id"}
)
_TARGET_VARIANT = b"x-amzn-sagemaker-target-variant"
_CUSTOM_ATTRIBUTES = CUSTOM_ATTRIBUTES_HEADER.lower().encode()
_INVOKED_VARIANT = b"x-amzn-invoked-production-variant"
_ERROR_TYPE = ERROR_TYPE_HEADER.lower().encode()
_TOKEN = ADMIN_TOKEN_HEADER.lower().encode()
_JSON = b"application/json"


# ----------------------------------------------------------------------------------------- routing state


class Instance:
    __slots__ = ("down_until", "in_flight", "instance_id", "pool", "url")

    def __init__(self, instance_id: str, url: str, pool: InstancePool) -> None:
        self.instance_id, self.url, self.pool = instance_id, url, pool
        self.in_flight = 0
        self.down_until = 0.0


class Variant:
    """One variant of one fleet in the current table, with the live :class:`Instance` objects it routes to.

    During a blue/green update an endpoint lists a variant name once per fleet. ``stats`` is shared by every
    entry with the same name (what the autoscaler and ``/metrics`` see, continuous across deployments);
    ``fleet_stats`` is this fleet's own, for alarms that judge the new fleet alone (None outside deployments).
    """

    __slots__ = ("endpoint", "fleet", "fleet_stats", "instances", "key", "name", "name_b", "route", "stats")

    def __init__(
        self,
        endpoint: str,
        route: VariantRoute,
        instances: list[Instance],
        stats: VariantStats,
        fleet_stats: VariantStats | None,
    ) -> None:
        self.endpoint, self.name, self.fleet, self.route = endpoint, route.variant_name, route.fleet, route
        self.key = (route.variant_name, route.fleet)
        self.name_b = route.variant_name.encode()
        self.instances = instances
        self.stats, self.fleet_stats = stats, fleet_stats

    def pick(self, now: float) -> Instance | None:
        """The healthy instance with the fewest outstanding requests; ties broken at random."""
        best: Instance | None = None
        ties = 0
        for inst in self.instances:
            if inst.down_until > now:
                continue
            if best is None or inst.in_flight < best.in_flight:
                best, ties = inst, 1
            elif inst.in_flight == best.in_flight:
                ties += 1
                if random.random() * ties < 1.0:
                    best = inst
        return best

    def next_recovery(self, now: float) -> float | None:
        """When the earliest instance marked unhealthy may be tried again (None if none is marked)."""
        marked = [i.down_until for i in self.instances if i.down_until > now]
        return min(marked) if marked else None


class _Weighted:
    """Random choice in proportion to the weights (``uniform`` when every weight is 0, else no choice)."""

    __slots__ = ("_cumulative", "_items", "_total")

    def __init__(self, items: list[Variant], *, uniform_if_zero: bool = False) -> None:
        self._items = [v for v in items if v.route.weight > 0]
        weights = [v.route.weight for v in self._items]
        if not self._items and uniform_if_zero:
            self._items, weights = list(items), [1.0] * len(items)
        self._cumulative: list[float] = []
        total = 0.0
        for w in weights:
            total += w
            self._cumulative.append(total)
        self._total = total

    def choose(self) -> Variant | None:
        if len(self._items) == 1:
            return self._items[0]
        if self._total <= 0:
            return None
        i = bisect_right(self._cumulative, random.random() * self._total)
        return self._items[min(i, len(self._items) - 1)]


class Endpoint:
    __slots__ = ("_named", "_weighted", "by_name", "name", "route", "variants")

    def __init__(self, route: EndpointRoute, variants: list[Variant]) -> None:
        self.name, self.route, self.variants = route.endpoint_name, route, variants
        self.by_name: dict[str, list[Variant]] = {}
        for v in variants:
            self.by_name.setdefault(v.name, []).append(v)
        self._weighted = _Weighted(variants)
        # A pinned variant (X-Amzn-SageMaker-Target-Variant) may be listed by two fleets mid-deployment: split
        # it between them as the weights say; a variant with weight 0 (a shadow) is still reachable when pinned.
        self._named = {name: _Weighted(vs, uniform_if_zero=True) for name, vs in self.by_name.items()}

    def choose(self) -> Variant | None:
        """A variant at random in proportion to the weights; None when every weight is 0."""
        return self._weighted.choose()

    def choose_named(self, name: str) -> Variant | None:
        named = self._named.get(name)
        return named.choose() if named is not None else None

    def find(self, key: tuple[str, str]) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)


def check_table(table: RoutingTable) -> list[str]:
    """What pydantic cannot see: names that disagree, duplicate variants, instance URLs the router cannot use."""
    problems = []
    for key, ep in table.endpoints.items():
        if key != ep.endpoint_name:
            problems.append(f"endpoints[{key!r}] has endpoint_name {ep.endpoint_name!r}; they must match")
        names = [(v.variant_name, v.fleet) for v in ep.variants]
        if len(set(names)) != len(names):
            problems.append(f"endpoint {key!r} lists a (variant, fleet) twice: {names}")
        for v in ep.variants:
            for inst in v.instances:
                try:
                    InstancePool(inst.url)
                except ValueError as exc:
                    problems.append(f"endpoint {key!r} variant {v.variant_name!r}: {exc}")
    return problems


def write_atomic(path: Path, data: bytes) -> None:
    """tmp + fsync + rename: after a crash the file is the old table or the new one, never half of either."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ replies


@dataclass(slots=True)
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    outcome: int = OK
    model_s: float | None = None


def _error(status: int, error_type: str, fields: dict[str, Any], *extra: tuple[bytes, bytes]) -> Reply:
    headers = [(b"content-type", _JSON), (_ERROR_TYPE, error_type.encode()), *extra]
    outcome = CLIENT_ERROR if status < 500 else SERVER_ERROR
    return Reply(status, headers, json.dumps(fields).encode(), outcome)


def _validation(code: str, message: str, status: int = 400) -> Reply:
    return _error(status, "ValidationError", {"ErrorCode": code, "Message": message})


def _unavailable(message: str) -> Reply:
    return _error(
        503,
        "ServiceUnavailable",
        {"ErrorCode": "SERVICE_UNAVAILABLE", "Message": message},
        (b"retry-after", b"1"),
    )


def _model_error(status: int, message: str, original: str, model_s: float, *, client: bool) -> Reply:
    kind = "client" if client else "server"
    reply = _error(
        424,
        "ModelError",
        {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if client else "SERVER_ERROR_FROM_MODEL",
            "Message": f'Received {kind} error ({status}) from model with message "{message}". '
            "See the endpoint's instance logs for more information.",
            "OriginalStatusCode": status,
            "OriginalMessage": original,
        },
    )
    reply.outcome, reply.model_s = (CLIENT_ERROR if client else SERVER_ERROR), model_s
    return reply


def _shown(name: str) -> str:
    """A client-supplied name as it may appear in a message: ASCII-escaped and short (A16/A18)."""
    shown = ascii(name)[1:-1]
    return shown if len(shown) <= 80 else shown[:77] + "..."


class ClientGone(Exception):
    """The client disconnected before its request body was complete: nothing is sent anywhere."""


async def _receive_body(receive: Receive) -> Message:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    return message


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it exceeds ``limit`` (the rest is left unread)."""
    message = await _receive_body(receive)
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limit else None
    chunks, size = [body], len(body)
    while message.get("more_body"):
        message = await _receive_body(receive)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _respond(send: Send, reply: Reply) -> None:
    headers = [*reply.headers, (b"content-length", str(len(reply.body)).encode())]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


def _json(status: int, data: Any) -> Reply:
    return Reply(status, [(b"content-type", _JSON)], json.dumps(data).encode())


@dataclass(slots=True)
class Invocation:
    """What the router needs from the client's request, read from the headers in one pass."""

    forwarded: bytes
    content_length: int
    content_type: str
    target_variant: str | None
    inference_id: str | None

    @classmethod
    def from_scope(cls, scope: Scope) -> Invocation:
        lines: list[bytes] = []
        length, ctype, target, inference_id = -1, "", None, None
        for name, value in scope["headers"]:
            if name in _FORWARDED:
                lines.append(b"%s: %s\r\n" % (name, value))
                if name == b"content-type":
                    ctype = value.decode("latin-1")
                elif name == b"x-amzn-sagemaker-inference-id":
                    inference_id = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == _TARGET_VARIANT:
                target = value.decode("latin-1")
        return cls(b"".join(lines), length, ctype, target, inference_id)


# ------------------------------------------------------------------------------------------------ the app


# ------------------------------------------------------------------------------------------------ the app


class Router:
    """The router's ASGI app and its state. Everything runs on the event loop's thread: nothing here locks.

    ``routes_path`` is where an accepted table is persisted (atomically, before it takes effect) so that a
    restarted router serves the same endpoints while the control plane is away.
    """

    def __init__(
        self,
        *,
        token: str,
        artifacts_root: Path,
        routes_path: Path | None = None,
        table: RoutingTable | None = None,
        auth: RouterAuth | None = None,
    ) -> None:
        self._token = token.encode()
        #: Who may invoke (router_auth.py); without one, as before: nobody is asked for a token.
        self._auth = auth or RouterAuth()
        self._routes_path = routes_path
        self.table = RoutingTable(version=0)
        self._endpoints: dict[str, Endpoint] = {}
        self._instances: dict[tuple[str, str], Instance] = {}
        self._pools: dict[str, InstancePool] = {}
        #: Keyed (endpoint, variant, fleet); fleet "" is the variant across fleets.
        self._stats: dict[tuple[str, str, str], VariantStats] = {}
        #: Held requests, keyed endpoint, (endpoint, variant, "") and (endpoint, variant, fleet).
        self._pending: dict[str, int] = {}
        self._pending_variant: dict[tuple[str, str, str], int] = {}
        self._unrouted: dict[str, int] = {"no_such_endpoint": 0, "no_such_variant": 0}
        self._unrouted_by_endpoint: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._draining = False
        self._capture = CaptureWriter(artifacts_root, on_drop=self._capture_dropped)
        self._housekeeping: asyncio.Task[None] | None = None
        self.registry = CollectorRegistry()
        self.registry.register(RouterCollector(self._samples, lambda: dict(self._unrouted)))
        if table is not None:
            self._install(table)

    # -- ASGI ---------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(_INVOCATIONS_PREFIX) and path.endswith(_INVOCATIONS_SUFFIX):
                await self._invocation(scope, receive, send, path[len(_INVOCATIONS_PREFIX) : -len(_INVOCATIONS_SUFFIX)])
            else:
                await _respond(send, await self._other(scope, receive, path))
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        self._capture.start()
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep(), name="kamado-router-pools")

    async def close(self) -> None:
        """Flush captured data and close every pooled connection (after uvicorn has drained the requests)."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await self._capture.close()
        for pool in self._pools.values():
            pool.retire()
        self._auth.close()

    def begin_drain(self) -> None:
        """Shutting down: held requests are answered 503 now rather than when the process is gone."""
        self._draining = True
        self._notify()

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for pool in self._pools.values():
                pool.prune(now)
            self._auth.reload()

    # -- the routing table --------------------------------------------------------------------------------

    def _install(self, table: RoutingTable) -> None:
        """Swap in a table, keeping the live state (in-flight counts, health marks, pools) of kept instances."""
        instances: dict[tuple[str, str], Instance] = {}
        pools: dict[str, InstancePool] = {}
        endpoints = {}
        for name, route in table.endpoints.items():
            variants = []
            for vr in route.variants:
                live = []
                for ir in vr.instances:
                    key = (ir.instance_id, ir.url)
                    inst = instances.get(key) or self._instances.get(key)
                    if inst is None:
                        pool = pools.get(ir.url) or self._pools.get(ir.url) or InstancePool(ir.url)
                        inst = Instance(ir.instance_id, ir.url, pool)
                    instances[key], pools[ir.url] = inst, inst.pool
                    live.append(inst)
                stats = self._stats.setdefault((name, vr.variant_name, ""), VariantStats())
                fleet_stats = (
                    self._stats.setdefault((name, vr.variant_name, vr.fleet), VariantStats()) if vr.fleet else None
                )
                variants.append(Variant(name, vr, live, stats, fleet_stats))
            endpoints[name] = Endpoint(route, variants)
        for url, pool in self._pools.items():
            if pools.get(url) is not pool:
                pool.retire()
        self.table, self._endpoints, self._instances, self._pools = table, endpoints, instances, pools
        self._notify()

    def _notify(self) -> None:
        """Wake every held request so it looks at the table again."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- invocations --------------------------------------------------------------------------------------

    async def _invocation(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        started = time.perf_counter()
        if "/" in name or scope["method"] != "POST":
            await _respond(
                send, _json(404 if "/" in name else 405, {"Message": "Use POST /endpoints/NAME/invocations."})
            )
            return
        denied = await self._auth.check(scope, name)  # headers only: before the body, before any instance
        if denied is not None:
            self._unrouted[denied.reason] = self._unrouted.get(denied.reason, 0) + 1
            await _respond(send, _error(denied.status, denied.error_type, denied.body(), *denied.headers()))
            return
        try:
            reply, variant = await self._invoke(scope, receive, name)
        except ClientGone:
            return
        except Exception:  # a router bug, not the model's: say so, and keep serving
            log.exception("invocation of endpoint %s failed inside the router", _shown(name))
            reply, variant = _error(500, "InternalFailure", {"Message": "The router failed; retry."}), None
        await _respond(send, reply)
        if variant is not None:
            overhead = None if reply.model_s is None else max(0.0, time.perf_counter() - started - reply.model_s)
            now = time.time()
            variant.stats.record(now, reply.outcome, reply.model_s, overhead)
            if variant.fleet_stats is not None:
                variant.fleet_stats.record(now, reply.outcome, reply.model_s, overhead)

    async def _invoke(self, scope: Scope, receive: Receive, name: str) -> tuple[Reply, Variant | None]:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            self._unrouted["no_such_endpoint"] += 1
            return _validation("NO_SUCH_ENDPOINT", f"Endpoint {_shown(name)} not found."), None
        req = Invocation.from_scope(scope)
        if req.target_variant is not None:
            variant = endpoint.choose_named(req.target_variant)
            if variant is None:
                self._unrouted["no_such_variant"] += 1
                self._unrouted_by_endpoint[name] = self._unrouted_by_endpoint.get(name, 0) + 1
                return _validation("NO_SUCH_VARIANT", _no_variant_message(endpoint, req.target_variant)), None
        else:
            variant = endpoint.choose()
            if variant is None:
                return _unavailable(f"Endpoint {name} has no variant with a weight above 0; update its weights."), None
        if req.content_length > MAX_INVOCATION_BYTES:
            return _too_large(), variant
        body = await _read_body(receive, MAX_INVOCATION_BYTES)
        if body is None:
            return _too_large(), variant
        return await self._dispatch(endpoint, variant, req, body)

    async def _dispatch(
        self, endpoint: Endpoint, variant: Variant, req: Invocation, body: bytes
    ) -> tuple[Reply, Variant]:
        """Send to an instance of ``variant``; hold while the variant has none that works (bounded)."""
        deadline: float | None = None
        try:
            while True:
                inst = variant.pick(time.monotonic())
                if inst is not None:
                    try:
                        return await self._forward(variant, inst, req, body), variant
                    except NeverSent as exc:
                        inst.down_until = time.monotonic() + UNHEALTHY_S
                        log.warning("instance %s of %s is unreachable: %s", inst.instance_id, variant.name, exc)
                        continue
                if variant.route.desired_instances <= 0:
                    msg = f"Variant {variant.name} of endpoint {endpoint.name} has no instances (desired count 0)"
                    return _unavailable(msg + "; scale it up or send to another variant."), variant
                if deadline is None:
                    refused = self._refuse_hold(endpoint, variant)
                    if refused is not None:
                        return refused, variant
                    deadline = time.monotonic() + endpoint.route.max_wait_s
                    self._hold(variant, +1)
                if not await self._wait(variant, deadline):
                    if self._draining:
                        return _unavailable("The router is restarting; retry."), variant
                    msg = f"No instance of variant {variant.name} of endpoint {endpoint.name} became ready"
                    return _unavailable(f"{msg} within {endpoint.route.max_wait_s:g} s; retry."), variant
                moved = self._reresolve(endpoint.name, variant.key, req.target_variant is not None)
                if isinstance(moved, Reply):
                    return moved, variant
                self._hold(variant, -1)
                endpoint, variant = moved
                self._hold(variant, +1)
        finally:
            if deadline is not None:
                self._hold(variant, -1)

    def _refuse_hold(self, endpoint: Endpoint, variant: Variant) -> Reply | None:
        if self._draining:
            return _unavailable("The router is restarting; retry.")
        if self._pending.get(endpoint.name, 0) >= endpoint.route.max_pending:
            held = f"Endpoint {endpoint.name} already holds {endpoint.route.max_pending} request(s)"
            return _unavailable(f"{held} while variant {variant.name} starts; retry shortly.")
        return None

    def _hold(self, variant: Variant, delta: int) -> None:
        self._pending[variant.endpoint] = self._pending.get(variant.endpoint, 0) + delta
        for fleet in {"", variant.fleet}:
            key = (variant.endpoint, variant.name, fleet)
            self._pending_variant[key] = self._pending_variant.get(key, 0) + delta

    async def _wait(self, variant: Variant, deadline: float) -> bool:
        """Wait for a table update or an unhealthy mark to lapse; False once the deadline passed or draining."""
        now = time.monotonic()
        timeout = deadline - now
        recovery = variant.next_recovery(now)
        if recovery is not None:
            timeout = min(timeout, recovery - now + 0.001)
        event = self._changed
        if timeout > 0 and not self._draining:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await event.wait()
        return not self._draining and (event.is_set() or time.monotonic() < deadline)

    def _reresolve(self, name: str, key: tuple[str, str], pinned: bool) -> Reply | tuple[Endpoint, Variant]:
        """After a wait: the same variant and fleet in the current table or, if that is gone, another choice
        (the same variant name when pinned, by weight otherwise)."""
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            return _validation("NO_SUCH_ENDPOINT", f"Endpoint {name} was deleted while the request waited.")
        variant = endpoint.find(key) or (endpoint.choose_named(key[0]) if pinned else endpoint.choose())
        if variant is None and pinned:
            return _validation("NO_SUCH_VARIANT", _no_variant_message(endpoint, key[0]))
        if variant is None:
            return _unavailable(f"Endpoint {name} has no variant with a weight above 0; update its weights.")
        return endpoint, variant

    async def _forward(self, variant: Variant, inst: Instance, req: Invocation, body: bytes) -> Reply:
        inst.in_flight += 1
        started = time.perf_counter()
        try:
            resp = await inst.pool.post(req.forwarded, body, variant.route.model_timeout_s)
        except UpstreamTimeout:
            timeout = variant.route.model_timeout_s
            where = f"(variant {variant.name}, instance {inst.instance_id})"
            msg = f"Your invocation timed out after {timeout:g} s while waiting for a response from the model {where}"
            msg += ". Make the model faster or raise the variant's model timeout, and try again."
            return _model_error(0, msg, "", time.perf_counter() - started, client=False)
        except UpstreamLost as exc:
            msg = f"{exc} (variant {variant.name}, instance {inst.instance_id})"
            return _model_error(0, msg, "", time.perf_counter() - started, client=False)
        finally:
            inst.in_flight -= 1
        model_s = time.perf_counter() - started
        if 200 <= resp.status < 300:
            if variant.route.capture is not None and sampled(variant.route.capture):
                self._offer_capture(variant, req, body, resp)
            return _success(variant, resp, model_s)
        original = resp.body[: ORIGINAL_MESSAGE_CHARS * 4].decode("utf-8", "replace")[:ORIGINAL_MESSAGE_CHARS]
        return _model_error(resp.status, original[:512], original, model_s, client=400 <= resp.status < 500)

    def _offer_capture(self, variant: Variant, req: Invocation, body: bytes, resp: UpstreamResponse) -> None:
        assert variant.route.capture is not None
        response_type = (resp.content_type or b"").decode("latin-1")
        self._capture.offer(
            CaptureEvent(
                variant.endpoint,
                variant.name,
                variant.route.capture,
                body,
                req.content_type,
                resp.body,
                response_type,
                req.inference_id,
                time.time(),
            )
        )

    def _capture_dropped(self, endpoint: str, variant: str) -> None:
        stats = self._stats.get((endpoint, variant, ""))
        if stats is not None:
            stats.capture_dropped += 1

    # -- admin and the rest -------------------------------------------------------------------------------

    async def _other(self, scope: Scope, receive: Receive, path: str) -> Reply:
        method = scope["method"]
        if path == "/ping" and method in ("GET", "HEAD"):
            return _json(200, {"status": "ok", "version": self.table.version, "auth": self._auth.mode})
        if path == "/metrics" and method in ("GET", "HEAD"):
            return Reply(200, [(b"content-type", CONTENT_TYPE_LATEST.encode())], generate_latest(self.registry))
        if path.startswith("/_kamado/"):
            if not self._authorized(scope):
                msg = f"Send the router's token in the {ADMIN_TOKEN_HEADER} header (HOME/hosting/router.token)."
                return _json(401, {"ErrorCode": "UNAUTHORIZED", "Message": msg})
            if path == "/_kamado/routes" and method == "PUT":
                return await self._put_routes(receive)
            if path == "/_kamado/routes" and method == "GET":
                return Reply(200, [(b"content-type", _JSON)], self.table.model_dump_json().encode())
            if path == "/_kamado/stats" and method == "GET":
                return self._stats_reply(scope)
        return _json(404, {"ErrorCode": "NOT_FOUND", "Message": f"No route {method} {_shown(path)}."})

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == _TOKEN:
                return hmac.compare_digest(value, self._token)
        return False

    async def _put_routes(self, receive: Receive) -> Reply:
        try:
            body = await _read_body(receive, ADMIN_MAX_BYTES)
        except ClientGone:
            return _json(400, {"ErrorCode": "INCOMPLETE_BODY", "Message": "The request body was cut short."})
        if body is None:
            return _json(413, {"ErrorCode": "PAYLOAD_TOO_LARGE", "Message": "The routing table is too large."})
        try:
            table = RoutingTable.model_validate_json(body)
        except ValidationError as exc:
            errors = json.loads(exc.json(include_url=False, include_input=False))
            return _json(400, {"ErrorCode": "INVALID_ROUTING_TABLE", "Message": str(exc), "errors": errors})
        problems = check_table(table)
        if problems:
            return _json(400, {"ErrorCode": "INVALID_ROUTING_TABLE", "Message": "; ".join(problems)})
        async with self._publish_lock:
            current = self.table.version
            if table.version < current:
                msg = f"Table version {table.version} is older than {current}; ignored."
                return _json(409, {"ErrorCode": "STALE_ROUTING_TABLE", "Message": msg, "version": current})
            if self._routes_path is not None:
                await asyncio.to_thread(write_atomic, self._routes_path, table.model_dump_json().encode())
            self._install(table)
        return _json(200, {"version": table.version})

    def _stats_reply(self, scope: Scope) -> Reply:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            window = float(query.get("window", [DEFAULT_WINDOW_S])[0])
            if window != window or window in (float("inf"), float("-inf")):
                raise ValueError(window)
        except ValueError:
            return _json(400, {"ErrorCode": "VALIDATION_ERROR", "Message": "window must be a number of seconds."})
        return _json(200, self.stats(window))

    def stats(self, window_s: float) -> dict[str, Any]:
        """``GET /_kamado/stats``: per variant (across fleets) and, during deployments, per fleet."""
        now = time.time()
        window_s = clamp_window(window_s)
        endpoints = {}
        for name, endpoint in self._endpoints.items():
            variants = {
                vname: self._window(entries[0].stats, entries, (name, vname, ""), window_s, now)
                for vname, entries in endpoint.by_name.items()
            }
            fleets: dict[str, dict[str, Any]] = {}
            for v in endpoint.variants:
                if v.fleet_stats is not None:
                    data = self._window(v.fleet_stats, [v], (name, v.name, v.fleet), window_s, now)
                    fleets.setdefault(v.fleet, {})[v.name] = data
            endpoints[name] = {
                "pending": self._pending.get(name, 0),
                "invocations_4xx_unrouted": self._unrouted_by_endpoint.get(name, 0),
                "variants": variants,
                "fleets": fleets,
            }
        return {"version": self.table.version, "now": now, "endpoints": endpoints}

    def _window(
        self, stats: VariantStats, entries: list[Variant], key: tuple[str, str, str], window_s: float, now: float
    ) -> dict[str, Any]:
        data = stats.window(window_s, now, sum(len(v.instances) for v in entries))
        data["in_flight"] = sum(i.in_flight for v in entries for i in v.instances)
        data["pending"] = self._pending_variant.get(key, 0)
        return data

    def _samples(self) -> list[VariantSample]:
        return [
            VariantSample(name, vname, entries[0].stats, self._pending_variant.get((name, vname, ""), 0))
            for name, endpoint in self._endpoints.items()
            for vname, entries in endpoint.by_name.items()
        ]


def _too_large() -> Reply:
    return _validation(
        "PAYLOAD_TOO_LARGE", f"Request body is larger than {MAX_INVOCATION_BYTES} bytes (6 MB); send less data.", 413
    )


def _no_variant_message(endpoint: Endpoint, name: str) -> str:
    known = ", ".join(endpoint.by_name) or "none"
    return f"Variant {_shown(name)} not found on endpoint {endpoint.name}; its variants are: {known}."


def _success(variant: Variant, resp: UpstreamResponse, model_s: float) -> Reply:
    headers = [(_INVOKED_VARIANT, variant.name_b)]
    if resp.content_type is not None:
        headers.append((b"content-type", resp.content_type))
    if resp.custom_attributes is not None:
        headers.append((_CUSTOM_ATTRIBUTES, resp.custom_attributes))
    return Reply(200, headers, resp.body, OK, model_s)
