"""The master's HTTP front: an ASGI application that receives each request's body in full, on the
event loop, before the (WSGI) Falcon app sees the request on one of a bounded pool of threads.

A WSGI server hands a request to a thread as soon as its headers have arrived and the app then
reads the body on that thread: a few clients that send their bodies slowly (or never) hold every
thread and the master answers nobody else. Here, as behind nginx, a slow sender costs a little
memory (a body over ``SPOOL_IN_MEMORY`` goes to a temporary file) and never a thread; a body that
stops arriving for ``body_timeout`` seconds is answered 408. A body over the limit of its route is
answered 413 without being read (a declared Content-Length) or as soon as it goes over (chunked).
The threads also never wait on a slow reader: a streamed response is read on a thread a chunk at
a time and sent from the event loop.

The headers, the query string and the body reach the WSGI app as a WSGI server would give them: a
chunked body still comes without a Content-Length (the app reads it to its end or answers 411).

asgiref's ``WsgiToAsgi`` does the buffering but runs every request on one thread unless told
otherwise, holds its thread while a response streams, never closes the app's iterable and has no
read timeout or limit; what it would save is the environ below.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from tempfile import SpooledTemporaryFile
from typing import IO, Any

import falcon.routing
import orjson

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

SPOOL_IN_MEMORY = 64 * 1024
"""A body larger than this waits for its thread in a temporary file, not in memory."""


class BodyLimits:
    """The largest body a request may send: ``json_bytes`` except on the upload routes."""

    def __init__(self, json_bytes: int, upload_bytes: int, upload_templates: Iterable[str]) -> None:
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes
        # The app's own router type, so that a path matches here exactly as it will there.
        self._uploads = falcon.routing.CompiledRouter()
        for template in upload_templates:
            self._uploads.add_route(template, self)

    def of(self, path: str) -> tuple[int, str]:
        """The limit for a request to ``path`` and the setting that sets it."""
        # The app strips a trailing slash before routing (strip_url_path_trailing_slash).
        if self._uploads.find(path.rstrip("/") or "/") is not None:
            return self.upload_bytes, "FARM_MAX_LOG_BYTES / FARM_MAX_UPDATE_BYTES"
        return self.json_bytes, "FARM_MAX_JSON_BYTES"


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Response:
    """What the app's thread hands back to the event loop: status, headers, and the body's first
    chunks (all of them unless it streams)."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.started = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ]
        return self._write

    def _write(self, data: bytes) -> None:
        raise NotImplementedError("the write() callable of WSGI is not supported")


class BufferedFront:
    """``BufferedFront(wsgi_app, limits, body_timeout, threads)``: the ASGI app served."""

    def __init__(self, app: WsgiApp, limits: BodyLimits, body_timeout: float, threads: int) -> None:
        self._app = app
        self._limits = limits
        self._timeout = body_timeout
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="farm-http")
        return self._pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # Any other scope (websocket) is not served: returning closes it.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    # In-flight requests finish; their threads end with them.
                    self._pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        with SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
            try:
                if not await self._receive_body(scope, receive, body):
                    return  # the client went away
            except _Refused as refused:
                await _refuse(send, refused)
                return
            body.seek(0)
            await self._respond(_environ(scope, body), send)

    async def _receive_body(self, scope: Scope, receive: Receive, body: IO[bytes]) -> bool:
        limit, setting = self._limits.of(scope["path"])
        too_large = _Refused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"the request body is larger than {limit} bytes ({setting})",
        )
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        received = 0
        more = True
        while more:
            try:
                async with asyncio.timeout(self._timeout):
                    message = await receive()
            except TimeoutError:
                raise _Refused(
                    HTTPStatus.REQUEST_TIMEOUT,
                    f"the request body stopped arriving for {self._timeout:g} s "
                    "(FARM_BODY_TIMEOUT_SECONDS)",
                ) from None
            if message["type"] != "http.request":
                return False
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise too_large
            if chunk:
                body.write(chunk)
            more = message.get("more_body", False)
        return True

    async def _respond(self, environ: dict[str, Any], send: Send) -> None:
        loop = asyncio.get_running_loop()
        response = _Response()
        result, chunks, rest = await loop.run_in_executor(self.pool, self._call, environ, response)
        try:
            await send(_start(response))
            if rest is None:
                await send({"type": "http.response.body", "body": b"".join(chunks)})
                return
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # A streamed body (a log download) is read on a thread and sent from here: a slow
            # reader holds no thread. A body that waits for news (the dashboard's live updates)
            # says when its next chunk is ready, and is awaited here, not on a thread.
            ready = getattr(rest, "ready", None)
            while True:
                if ready is not None:
                    await ready()
                piece = await loop.run_in_executor(self.pool, _next, rest)
                if piece is None:
                    break
                if piece:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                await loop.run_in_executor(self.pool, close)

    def _call(
        self, environ: dict[str, Any], response: _Response
    ) -> tuple[Iterable[bytes], list[bytes], Iterator[bytes] | None]:
        """On a thread: run the app; its whole body if it is a list, else its first chunk (a
        WSGI app may start its response there) and the rest to stream."""
        result: Iterable[bytes] = ()
        try:
            result = self._app(environ, response.start_response)
            if isinstance(result, list | tuple):
                return result, list(result), None
            rest = iter(result)
            first = next(rest, None)
            return result, [] if first is None else [first], rest
        except Exception:
            log.exception("the WSGI app raised")
            close = getattr(result, "close", None)
            if close is not None:
                close()
            response.start_response(
                "500 Internal Server Error", [("Content-Type", "application/json")]
            )
            return [], [orjson.dumps({"error": "internal server error"})], None


def _next(rest: Iterator[bytes]) -> bytes | None:
    return next(rest, None)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            text: str = value.decode("latin-1").strip()
            return text
    return None


def _start(response: _Response) -> Message:
    return {"type": "http.response.start", "status": response.status, "headers": response.headers}


async def _refuse(send: Send, refused: _Refused) -> None:
    # The rest of the body is not read: the connection closes after the answer.
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps({"error": refused.message})})


_FIELDS: dict[bytes, str] = {}
"""Header names already translated (every request sends the same few): at most ``_MAX_FIELDS``,
since a client may send any."""
_MAX_FIELDS = 256


def _field(key: bytes) -> str:
    """A header's name in the environ: ``HTTP_X_Y`` for ``x-y``."""
    name = key.decode("latin-1").upper().replace("-", "_")
    field = name if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{name}"
    if len(_FIELDS) < _MAX_FIELDS:
        _FIELDS[key] = field
    return field


def _environ(scope: Scope, body: IO[bytes]) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI http scope."""
    root = scope.get("root_path", "")
    path: str = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        # WSGI strings are bytes as latin-1; ASGI's path is already percent-decoded, as WSGI's.
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    for key, value in scope["headers"]:
        field = _FIELDS.get(key) or _field(key)
        text = value.decode("latin-1")
        if field in environ:
            # Repeated headers are one comma-separated value (RFC 9110), cookies one "; " list.
            text = environ[field] + ("; " if field == "HTTP_COOKIE" else ",") + text
        environ[field] = text
    return environ
