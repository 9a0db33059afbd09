"""The control-plane FastAPI app: validate, persist the desired state, return at once."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

import kamado
from kamado.api.auth import install_security
from kamado.api.errors import install_error_handlers
from kamado.api.hosts import HostAllowlistMiddleware, allowed_hosts
from kamado.api.limits import BodyLimitMiddleware
from kamado.api.openapi import install_openapi
from kamado.api.platform import Platform
from kamado.api.routes import (
    artifacts,
    functions,
    hosting,
    pipelines,
    processing,
    schedules,
    training,
    transform,
    tuning,
)
from kamado.compute.executor import Executor
from kamado.core.settings import Settings
from kamado.functions.service import MAX_PAYLOAD_BYTES
from kamado.web import mount_console

UPLOAD_LIMIT = 10 << 30


def create_app(
    settings: Settings | None = None,
    *,
    executor: Executor | None = None,
    run_reconcilers: bool = True,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    settings = settings or Settings.from_env()
    platform = Platform.open(settings, executor=executor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_reconcilers:
            platform.start()
        try:
            yield
        finally:
            platform.close()
            if on_shutdown is not None:
                on_shutdown()

    app = FastAPI(
        title="kamado",
        version=kamado.__version__,
        description="Self-hostable ML platform with SageMaker-shaped resources.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.last_request = time.monotonic()
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.max_request_bytes,
        upload_limit=UPLOAD_LIMIT,
        upload_prefixes=("/api/v1/trees/",),
        path_limits=((re.compile(r"^/api/v1/functions/[^/]+/invocations$"), MAX_PAYLOAD_BYTES),),
    )

    @app.middleware("http")
    async def _touch(request, call_next):  # type: ignore[no-untyped-def,unused-ignore]
        app.state.last_request = time.monotonic()
        return await call_next(request)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/info", tags=["meta"])
    def info() -> dict[str, object]:
        caps = platform.executor.capabilities
        cap = platform.executor.capacity()
        return {
            "version": kamado.__version__,
            "executor": platform.executor.name,
            "artifactStore": platform.artifacts.root_uri,
            "database": platform.store.url.split("://", 1)[0],
            "capacity": {"cpus": cap.cpus, "memoryMB": cap.memory_mb, "gpus": cap.gpus},
            "privateOptMl": caps.mount_namespaces and settings.opt_ml_namespace != "off",
            "networkIsolation": caps.network_isolation,
            "workerUser": caps.task_user,
        }

    app.include_router(training.router, prefix="/api/v1")
    app.include_router(tuning.router, prefix="/api/v1")
    app.include_router(artifacts.router, prefix="/api/v1")
    app.include_router(hosting.router, prefix="/api/v1")
    app.include_router(transform.router, prefix="/api/v1")
    app.include_router(processing.router, prefix="/api/v1")
    app.include_router(functions.router, prefix="/api/v1")
    app.include_router(pipelines.router, prefix="/api/v1")
    app.include_router(schedules.router, prefix="/api/v1")

    @app.get("/api/v1/runtime", tags=["hosting"])
    def runtime() -> dict[str, str]:
        """Where to send InvokeEndpoint requests: the router (data plane), started here if needed."""
        return {"Url": platform.runtime_url()}

    mount_console(app, connect_to=platform.hoster.router_url)  # the console's test-invoke box calls the router
    install_openapi(app)
    security = install_security(app, platform, settings)  # outermost but one: no unauthorized request reaches a route
    hosts = allowed_hosts(settings.allowed_hosts, tokens_required=security.require_token)
    if hosts is not None:
        app.add_middleware(HostAllowlistMiddleware, allowed=hosts)  # outermost: a rebound name reaches nothing
    return app
