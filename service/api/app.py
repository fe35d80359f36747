"""The FastAPI application: `create_app(settings)` (uvicorn: `service.api.app:create_app --factory`).

Routers are split by concern (jobs, batches, health); shared plumbing lives in deps.py and uploads.py.
One async Redis client with a bounded connection pool serves all requests: a burst of pollers waits for a
connection instead of opening hundreds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics
from service.api import batches, health, jobs, web
from service.api.deps import Context
from service.api.errors import install_error_handlers
from service.api.head import HeadMiddleware
from service.config import Settings
from service.keys import Keys
from service.storage import Storage

log = logging.getLogger("singsong.api")
REDIS_POOL_SIZE = 128
REDIS_SOCKET_TIMEOUT_S = 5.0


class MetricsMiddleware:
    """Request count and latency by route template. Plain ASGI (not BaseHTTPMiddleware), which would add a
    task and a queue per request and does not stream bodies through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(scope["method"], template, str(status[0])).inc()
            metrics.HTTP_LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Pooled connections die with a Redis restart; retrying on a fresh connection hides that from
        # clients. Safe for the Lua scripts too: a replayed ENQUEUE leaves a duplicate stream entry that
        # the worker recognises as stale (its id is not the job's `entry`) and skips.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            decode_responses=True,
            max_connections=REDIS_POOL_SIZE,
            timeout=10,
            # An unreachable host (no RST) must become a 503 in seconds, not hang the request.
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
            retry_on_error=[aioredis.ConnectionError, aioredis.TimeoutError],
        )
        client = aioredis.Redis(connection_pool=pool)
        app.state.context = Context(settings, Keys(settings.redis_prefix), client, Storage(settings.storage_dir))
        if settings.auth == "open":
            log.warning("SINGSONG_AUTH=open: no API keys; do not expose this service beyond localhost")
        try:
            yield
        finally:
            await client.aclose()
            await pool.aclose()

    app = FastAPI(
        title="singsong",
        version="0.1.0",
        summary="Sing a vocal, get an accompaniment: upload, poll, download.",
        description="Authenticate with `Authorization: Bearer <key>` (keys from `singsong service create-key`) "
        "unless the service runs with SINGSONG_AUTH=open.",
        lifespan=lifespan,
    )
    install_error_handlers(app, settings)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.include_router(jobs.router)
    app.include_router(batches.router)
    app.include_router(health.router)
    app.include_router(web.router)
    return app
