"""Liveness, readiness and Prometheus metrics (no authentication: probes and scrapers have no keys).

/healthz says only that the process serves HTTP (restart me if not); /readyz says whether jobs submitted
now would be processed: Redis answers and at least one worker sent a heartbeat recently (send me traffic
if so). Keeping the two apart stops an orchestrator from restarting healthy API containers because the
workers are down.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import metrics
from service.api.deps import context, queued_jobs
from service.api.schemas import Health, Readiness
from service.keys import GROUP

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


async def _live_workers(request: Request) -> int:
    ctx = context(request)
    seconds, micros = await ctx.redis.time()
    now = seconds + micros / 1e6
    return int(await ctx.redis.zcount(ctx.keys.workers, now - ctx.settings.heartbeat_ttl_s, "+inf"))


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> Response:
    problems, workers, redis_ok = [], 0, False
    try:
        await context(request).redis.ping()
        redis_ok = True
        workers = await _live_workers(request)
        if workers == 0:
            problems.append("no worker heartbeat")
    except (aioredis.RedisError, OSError) as error:
        problems.append(f"redis unreachable ({type(error).__name__})")
    body = Readiness(
        status="ready" if not problems else "not ready", redis=redis_ok, live_workers=workers, problems=problems
    )
    return JSONResponse(body.model_dump(), status_code=200 if not problems else 503)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    ctx = context(request)
    try:
        queued, _ = await queued_jobs(ctx)
        metrics.QUEUE_DEPTH.set(queued)
        try:
            pending = await ctx.redis.xpending(ctx.keys.queue, GROUP)
            metrics.JOBS_PENDING.set(int(pending["pending"]))
        except aioredis.ResponseError:  # no group yet: no worker has ever started
            metrics.JOBS_PENDING.set(0)
        metrics.DEAD_LETTERS.set(await ctx.redis.xlen(ctx.keys.dead))
        metrics.LIVE_WORKERS.set(await _live_workers(request))
    except (aioredis.RedisError, OSError):
        pass  # still export the process's own metrics; the queue gauges keep their last values
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
