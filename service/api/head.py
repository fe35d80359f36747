"""HEAD wherever GET exists, and a 405's Allow header that lists every method of the path.

* **HEAD** (RFC 9110 §9.3.2: the same status and headers as GET, without the body). FastAPI registers only
  the methods a route names, so `HEAD /v1/jobs/{id}` would be 405. Rather than doubling every GET route
  (and every OpenAPI operation), this middleware routes a HEAD as a GET and drops the body bytes on the way
  out; the status and headers (Content-Length, Content-Type...) are the GET's. Paths without GET still
  answer 405 for HEAD.
* **Allow.** Each FastAPI route holds one path and its own methods, so for `/v1/jobs/{id}` (GET and
  DELETE, two routes) a 405 lists only the first route's methods. RFC 9110 §15.5.6 wants all of them; the
  middleware recomputes the header from the app's OpenAPI document (the app is `scope["app"]`).
"""

from __future__ import annotations

import functools
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = _allowed_methods(scope)
                if allowed:
                    MutableHeaders(scope=message)["Allow"] = ", ".join(allowed)
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # a streamed body (file download): swallow it chunk by chunk
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"} if head else scope, receive, send_wrapper)


def _allowed_methods(scope: Scope) -> list[str]:
    """Methods documented for the request's path (HEAD is implied by GET and not listed).

    Read from the app's OpenAPI document rather than its route objects: FastAPI nests included routers in
    private wrapper types, while the document is public, cached, and exactly the contract clients see.
    Undocumented paths (or no app) give [], and the router's own header stays.
    """
    app = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return []
    path = scope.get("path", "")
    allowed: set[str] = set()
    for pattern, methods in _path_patterns(app.openapi()):
        if pattern.fullmatch(path):
            allowed.update(methods)
    return sorted(allowed)


@functools.lru_cache(maxsize=4)
def _compiled(paths: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    return [
        (re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))), methods) for template, methods in paths
    ]


def _path_patterns(spec: dict) -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    paths = tuple(
        (template, tuple(m.upper() for m in operations if m in _HTTP_METHODS))
        for template, operations in spec.get("paths", {}).items()
    )
    return _compiled(paths)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "patch", "trace"}
