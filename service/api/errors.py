"""Exception handlers: every error the API answers is `{"detail": "<one sentence>"}` with a 4xx or 503.

* **Redis unreachable -> 503 + Retry-After.** Redis holds every job; while it is down (a restart, a network
  blip) no request can be answered correctly, but nothing is wrong with the request either. A 500 would
  tell clients and their retry logic the opposite; `/readyz` already says 503 for the same condition.
  The pool retries a dropped connection a few times first (app.py), so only a real outage gets here.
* **Request validation -> 422 with a sentence.** FastAPI's default 422 body is a list of error objects;
  the few parameters FastAPI validates itself (`?take=`) answer in the same shape as everything else, which
  is what the OpenAPI schema promises (`ErrorBody`).
"""

from __future__ import annotations

import logging

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.config import Settings

log = logging.getLogger("singsong.api")


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("%s %s: Redis unavailable (%s)", request.method, request.url.path, type(error).__name__)
        return JSONResponse(
            {"detail": f"the job store is unavailable ({type(error).__name__}); try again shortly"},
            status_code=503,
            headers={"Retry-After": str(settings.redis_retry_after_s)},
        )

    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in error.errors()
        )
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)

    # RedisError covers connection loss, timeouts, a Redis still loading its AOF after a restart (BusyLoading)
    # and refusals such as OOM or READONLY: all "the store cannot serve now", none the client's fault.
    app.add_exception_handler(redis.exceptions.RedisError, redis_unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
