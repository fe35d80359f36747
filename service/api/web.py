"""The browser page: `GET /` and its static assets, served by the API itself (no build step, no CDN).

The page (`service/web/`: one HTML file, ES modules, one stylesheet) is a client of the public `/v1` API
like any other: it records or uploads a vocal, submits it to `POST /v1/jobs`, polls the job and fetches the
results with the user's API key in an `Authorization` header (results therefore play from `blob:` URLs,
since an `<audio src>` request cannot carry that header).

Security: every response here carries a strict Content-Security-Policy - scripts, styles, fonts and fetches
only from this origin, media also from `blob:` (the local recording and the fetched results), no plugins,
no framing, no `<base>` rewriting - and `X-Content-Type-Options: nosniff`. The page has no inline script or
style, so the policy needs no `'unsafe-inline'`; the scripts put user-supplied text (file names, API error
messages) into the page with `textContent` only. Assets are served from a fixed list read at import time:
a request names an entry of that list, never a path, so nothing outside `service/web/` can be reached.

`GET /web/config.json` tells the page what this deployment allows (auth mode, limits) so it can show the
API-key field only when keys are needed and cap the options; none of it is secret.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from service.api.deps import context
from service.api.uploads import reject

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Every asset the page may load, by file name (the page itself, index.html, is served at `/`).
ASSETS = {p.name: p for p in sorted(WEB_DIR.iterdir()) if p.is_file() and p.suffix in MEDIA_TYPES}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The microphone for this origin only; nothing else the page does not use.
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=(), payment=(), usb=()",
    # Revalidate on every load (ETag/Last-Modified make that cheap), so an upgraded service never runs a
    # stale script against a newer API.
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["web"], include_in_schema=False)


def _asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise reject(404, "no such file")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/")
async def page() -> FileResponse:
    return _asset("index.html")


@router.get("/web/config.json")
async def web_config(request: Request) -> JSONResponse:
    settings = context(request).settings
    body = {
        "auth": settings.auth,
        "max_seconds": settings.max_seconds,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_takes": settings.max_takes,
    }
    return JSONResponse(body, headers=SECURITY_HEADERS)


@router.get("/web/{name}")
async def asset(name: str) -> FileResponse:
    return _asset(name)
