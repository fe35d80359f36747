"""HEAD wherever GET exists (RFC 9110 §9.3.2: the same status and headers as GET, without the body).

FastAPI registers only the methods a route names, so `HEAD /v1/jobs/{id}` would be 405. Rather than
doubling every GET route (and every OpenAPI operation), this middleware routes a HEAD as a GET and drops
the body bytes on the way out; the status and headers (Content-Length, Content-Type, ETag...) are the
GET's. Routes without GET still answer 405 for HEAD, with an Allow header from the router.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # a streamed body (file download): swallow it chunk by chunk
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
