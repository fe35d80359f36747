"""Shared request plumbing: the app context, authentication + rate limiting, and atomic enqueueing."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request

from service import metrics
from service.api.uploads import reject
from service.auth import OPEN_OWNER, Principal, digest, owner_of
from service.config import Settings
from service.keys import Keys
from service.scripts import AUTHORIZE, CANCEL, ENQUEUE
from service.storage import Storage


@dataclass
class Context:
    """Everything a request handler needs, built once per app (see app.py's lifespan)."""

    settings: Settings
    keys: Keys
    redis: aioredis.Redis
    storage: Storage

    def __post_init__(self) -> None:
        self.enqueue_script = self.redis.register_script(ENQUEUE)
        self.cancel_script = self.redis.register_script(CANCEL)
        self.authorize_script = self.redis.register_script(AUTHORIZE)


def context(request: Request) -> Context:
    return request.app.state.context


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


async def principal(request: Request) -> Principal:
    """Authenticate (unless open mode) and charge the caller's token bucket: 401, or 429 + Retry-After."""
    ctx = context(request)
    if ctx.settings.auth == "open":
        owner, key_name = OPEN_OWNER, ctx.keys.ratelimit(OPEN_OWNER)
    else:
        api_key = _api_key(request)
        if not api_key:
            raise reject(401, "an API key is required (Authorization: Bearer <key>)")
        key_digest = digest(api_key)
        owner, key_name = owner_of(key_digest), ctx.keys.apikey(key_digest)
    allowed, retry_after, name = await ctx.authorize_script(
        keys=[key_name, ctx.keys.ratelimit(owner)],
        args=[ctx.settings.rate_limit_per_s, ctx.settings.rate_limit_burst, 1, int(ctx.settings.auth == "keys")],
    )
    if int(allowed) == -1:
        raise reject(401, "unknown or revoked API key")
    if int(allowed) == 0:
        metrics.SUBMISSIONS_REJECTED.labels("rate_limit").inc()
        raise reject(429, "rate limit exceeded", retry_after=max(1, math.ceil(float(retry_after))))
    who = Principal(owner, name)
    request.state.principal = who
    return who


async def queued_jobs(ctx: Context) -> tuple[int, int]:
    """(queued jobs, highest seq delivered to a worker); queue position of a job = its seq - delivered.

    O(1) and exact up to one detail: a job cancelled while queued still counts until a worker reaches its
    entry and skips it, because it still occupies a place in the stream.
    """
    enqueued, delivered = await ctx.redis.mget(ctx.keys.seq_enqueued, ctx.keys.seq_delivered)
    delivered_n = int(delivered or 0)
    return int(enqueued or 0) - delivered_n, delivered_n


async def precheck_capacity(ctx: Context, who: Principal, jobs: int) -> None:
    """Cheap early answer (429/503) before receiving a large upload. ENQUEUE re-checks atomically."""
    active = await ctx.redis.scard(ctx.keys.active(who.owner))
    if active + jobs > ctx.settings.max_active_jobs:
        _over_quota(ctx, active)
    queued, _ = await queued_jobs(ctx)
    if queued + jobs > ctx.settings.max_queue_length:
        _queue_full(ctx)


async def enqueue(ctx: Context, who: Principal, jobs: list[dict[str, str]]) -> None:
    """Enqueue all jobs or none (quota and queue bound checked in the same Lua step)."""
    status, value = await ctx.enqueue_script(
        keys=[
            ctx.keys.queue,
            ctx.keys.seq_enqueued,
            ctx.keys.seq_delivered,
            ctx.keys.active(who.owner),
            *(ctx.keys.job(job["id"]) for job in jobs),
        ],
        args=[ctx.settings.max_active_jobs, ctx.settings.max_queue_length, *(json.dumps(job) for job in jobs)],
    )
    if int(status) == -1:
        _over_quota(ctx, int(value))
    if int(status) == -2:
        _queue_full(ctx)
    metrics.JOBS_SUBMITTED.inc(len(jobs))


def _over_quota(ctx: Context, active: int) -> None:
    metrics.SUBMISSIONS_REJECTED.labels("quota").inc()
    limit = ctx.settings.max_active_jobs
    raise reject(
        429,
        f"too many active jobs ({active} queued or running, the limit is {limit} per key)",
        retry_after=ctx.settings.quota_retry_after_s,
    )


def _queue_full(ctx: Context) -> None:
    metrics.SUBMISSIONS_REJECTED.labels("queue_full").inc()
    raise reject(503, "the queue is full, try again later", retry_after=ctx.settings.queue_full_retry_after_s)
