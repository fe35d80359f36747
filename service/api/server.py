"""The HTTP server: uvicorn's h11 protocol with a request-header timeout (slowloris defence).

uvicorn bounds how long an idle keep-alive connection may stay open, but not how long a client may take
to send a request's headers: a client that connects and then sends one header byte every few seconds keeps
its connection (a file descriptor, a protocol object) forever, and a few thousand such clients exhaust the
server. The ASGI app cannot help, because it is only called once the headers are complete. This protocol
therefore starts a timer when a connection opens and whenever a new request begins (its first byte after
the previous response), and cancels it once h11 has parsed the request line and headers; if it fires, the
client gets `408 Request Timeout` and the connection is closed, as nginx's `client_header_timeout` does.

Slow *bodies* are the app's business (`service/api/uploads.py`: a read timeout and a minimum rate), since
only the app knows which requests carry large uploads and can delete the partial file.

`uvicorn_options(settings)` gives the keyword arguments for `uvicorn.run`/`uvicorn.Config`; the protocol
class travels as a `functools.partial` (picklable, so it also works with `--workers N`).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.config import Settings

_TIMEOUT_BODY = b"the request headers were not received in time\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class HeaderTimeoutProtocol(H11Protocol):
    """H11Protocol + `header_timeout_s`: the request line and headers must arrive within that time."""

    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()  # a client that connects and sends nothing is a slow header too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            # Bytes of a request whose headers are still incomplete; between keep-alive requests this is
            # the first byte of the next one. The timer keeps running from that first byte, not the last.
            if self._header_timer is None and self.conn.trailing_data[0]:
                self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer for the idle time until the next request
        self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:  # nothing of ours in flight: the 408 cannot interleave with a response
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that install the header timeout."""
    return {"http": functools.partial(HeaderTimeoutProtocol, header_timeout_s=settings.header_timeout_s)}
