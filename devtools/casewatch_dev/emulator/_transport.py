"""The emulator's two transports: an HTTP server on 127.0.0.1, and in process through botocore's events.

Both hand a request to the same `handle(method, path, body, headers) -> (status, headers, payload)` (the
headers carry the SigV4 signature the emulator identifies the caller by).

In process: a `before-send.connectcases` handler on a client's event system answers with a
`botocore.awsrequest.AWSResponse` built from `handle(...)`. botocore uses a response returned by a
`before-send` handler instead of sending the request (moto plugs in the same way), so everything else is
botocore's own: serialization, parsing, modeled exceptions, retries (a 429 is retried exactly as over
HTTP, its back-off slept by botocore) and adaptive mode's rate limiter (also a `before-send` handler,
which still runs: botocore emits the event to every handler).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, Protocol, cast
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

if TYPE_CHECKING:
    from mypy_boto3_connectcases import ConnectCasesClient

logger = logging.getLogger(__name__)

# Where an in-process client points: `.invalid` never resolves, so a detached client cannot reach anything.
IN_PROCESS_ENDPOINT: Final = "http://cases-emulator.invalid"
_EVENT: Final = "before-send.connectcases"
_HANDLER_ID: Final = "casewatch-dev-cases-emulator"


class Handles(Protocol):
    """What a transport serves: one request in, (status, headers, body) out."""

    def handle(
        self, method: str, path: str, body: bytes, request_headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]: ...


# --- HTTP --------------------------------------------------------------------------------------------


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not hold up stop()

    def __init__(self, address: tuple[str, int], target: Handles) -> None:
        super().__init__(address, _HttpHandler)
        self.target = target


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK stalls

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = cast(HttpServer, self.server).target
        status, headers, payload = target.handle(self.command, self.path, body, dict(self.headers))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("cases-emulator %s", format % args)


# --- in process --------------------------------------------------------------------------------------


class _Body:
    """The raw body of an in-process response, read the way botocore reads urllib3's (`stream()`)."""

    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        if self._payload:
            yield self._payload


def _request_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    data = body.read()  # a file-like body
    return data.encode() if isinstance(data, str) else bytes(data)


class InProcessTransport:
    """The `before-send` handler that answers a client's Cases requests from `target` in this process."""

    def __init__(self, target: Handles) -> None:
        self._target = target

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        path = f"{parts.path}?{parts.query}" if parts.query else parts.path
        status, headers, payload = self._target.handle(
            str(request.method),
            path,
            _request_body(request.body),
            {k: str(v) for k, v in request.headers.items()},
        )
        headers = {**headers, "Content-Length": str(len(payload))}
        # AWSResponse makes a HeadersDict of any mapping (the stubs ask for HTTPHeaders).
        return AWSResponse(request.url, status, cast(Any, headers), _Body(payload))

    def attach(self, client: ConnectCasesClient) -> None:
        """Answer `client`'s requests in process from now on (replaces any emulator attached before)."""
        events = client.meta.events
        events.unregister(_EVENT, unique_id=_HANDLER_ID)
        # A `before-send` handler returns the response to use (the stubs type handlers as returning None).
        events.register(_EVENT, cast(Any, self), unique_id=_HANDLER_ID)

    @staticmethod
    def detach(client: ConnectCasesClient) -> None:
        """Let `client` send its requests over the network again."""
        client.meta.events.unregister(_EVENT, unique_id=_HANDLER_ID)


__all__ = ["IN_PROCESS_ENDPOINT", "Handles", "HttpServer", "InProcessTransport"]
