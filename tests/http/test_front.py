"""The ASGI front: a request reaches the WSGI app only with its whole body, and as a WSGI server
would have given it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest

from farm_http import front as front_module
from farm_http.front import BodyLimits, BufferedFront, Message
from farm_http.routes import ROUTES

UPLOADS = [route.template for route in ROUTES if route.raw_bodies]
LOG = "/api/v1/jobs/1/tasks/2/attempts/1/logs/render.log/logfile"


class Recorder:
    """A WSGI app that keeps what it was given and answers with ``body``."""

    def __init__(self, body: Iterable[bytes] = (b"ok",)) -> None:
        self.environ: dict[str, Any] | None = None
        self.read = b""
        self.body = body

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.environ = environ
        self.read = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self.body


def scope(path: str = "/api/v1/jobtypes", headers: Iterable[tuple[bytes, bytes]] = ()) -> Message:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"state=queued&x=%20",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080"), *headers],
        "client": ("10.1.2.3", "50123"),
        "server": ("127.0.0.1", "8080"),
    }


def run(
    app: Recorder,
    request: Message,
    messages: Iterable[Message],
    *,
    timeout: float = 30,
    json_limit: int = 100,
    upload_limit: int = 1000,
) -> list[Message]:
    sent: list[Message] = []
    incoming = iter(messages)

    async def receive() -> Message:
        try:
            return next(incoming)
        except StopIteration:
            await asyncio.Event().wait()  # a client that sends nothing more
            raise AssertionError("unreachable") from None

    async def send(message: Message) -> None:
        sent.append(message)

    front = BufferedFront(app, BodyLimits(json_limit, upload_limit, UPLOADS), timeout, threads=2)
    asyncio.run(front(request, receive, send))
    return sent


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


def status_and_body(sent: list[Message]) -> tuple[int, bytes]:
    assert sent[0]["type"] == "http.response.start"
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_app_gets_the_whole_body_and_a_complete_environ() -> None:
    app = Recorder()
    request = scope(
        "/api/v1/jobs/caf\u00e9",
        [
            (b"content-type", b"application/json"),
            (b"content-length", b"11"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"x-forwarded-for", b"2.2.2.2"),
        ],
    )
    sent = run(app, request, [body(b'{"a":', more=True), body(b' "b"}')])
    assert status_and_body(sent) == (200, b"ok")
    assert app.read == b'{"a": "b"}'
    environ = app.environ
    assert environ is not None
    assert {key: environ[key] for key in environ if key.isupper()} == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/v1/jobs/caf\u00e9".encode().decode("latin-1"),
        "QUERY_STRING": "state=queued&x=%20",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
        "REMOTE_PORT": "50123",
        "HTTP_HOST": "127.0.0.1:8080",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "11",
        "HTTP_COOKIE": "a=1; b=2",
        "HTTP_X_FORWARDED_FOR": "1.1.1.1,2.2.2.2",
    }
    assert environ["wsgi.url_scheme"] == "http" and environ["wsgi.version"] == (1, 0)


def test_any_number_of_header_names_reach_the_environ_and_the_front_remembers_few() -> None:
    # Header names are translated once and remembered, up to a bound: a client sending new
    # names on every request neither grows the table nor loses a header.
    for batch in range(3):
        app = Recorder()
        names = [f"x-h{batch}-{n}".encode() for n in range(200)]
        run(app, scope(headers=[(name, b"v") for name in names]), [body(b"")])
        assert app.environ is not None
        assert all(app.environ[f"HTTP_X_H{batch}_{n}"] == "v" for n in range(200))
        assert app.environ["HTTP_HOST"] == "127.0.0.1:8080"
    assert len(front_module._FIELDS) <= front_module._MAX_FIELDS


def test_a_chunked_body_comes_without_a_length_as_from_a_wsgi_server() -> None:
    app = Recorder()
    request = scope(LOG, [(b"transfer-encoding", b"chunked")])
    run(app, request, [body(b"x" * 300, more=True), body(b"y" * 300, more=True), body(b"")])
    assert app.environ is not None
    assert "CONTENT_LENGTH" not in app.environ
    assert app.environ["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert app.read == b"x" * 300 + b"y" * 300


def test_a_declared_length_over_the_limit_is_413_without_reading() -> None:
    app = Recorder()
    sent = run(app, scope(headers=[(b"content-length", b"101")]), [])
    status, answer = status_and_body(sent)
    assert status == 413 and "FARM_MAX_JSON_BYTES" in orjson.loads(answer)["error"]
    assert (b"connection", b"close") in sent[0]["headers"]
    assert app.environ is None


def test_a_chunked_body_is_refused_as_soon_as_it_goes_over() -> None:
    app = Recorder()
    request = scope(headers=[(b"transfer-encoding", b"chunked")])
    # No more messages after the one over the limit: the front does not wait for them.
    sent = run(app, request, [body(b"x" * 60, more=True), body(b"x" * 60, more=True)])
    assert status_and_body(sent)[0] == 413
    assert app.environ is None


def test_upload_routes_take_the_upload_limit() -> None:
    limits = BodyLimits(100, 1000, UPLOADS)
    assert limits.of(LOG)[0] == limits.of("/api/v1/agents/updates/1.2/")[0] == 1000
    assert limits.of("/api/v1/agents/1")[0] == limits.of("/api/v1/jobtypes")[0] == 100
    app = Recorder()
    run(app, scope(LOG, [(b"content-length", b"500")]), [body(b"x" * 500)])
    assert app.read == b"x" * 500


def test_a_stalled_body_is_408_and_never_reaches_the_app() -> None:
    app = Recorder()
    request = scope(headers=[(b"content-length", b"50")])
    sent = run(app, request, [body(b"x" * 10, more=True)], timeout=0.05)
    status, answer = status_and_body(sent)
    assert status == 408 and "FARM_BODY_TIMEOUT_SECONDS" in orjson.loads(answer)["error"]
    assert app.environ is None


def test_a_client_that_leaves_mid_body_reaches_nothing() -> None:
    app = Recorder()
    sent = run(app, scope(), [body(b"x", more=True), {"type": "http.disconnect"}])
    assert sent == [] and app.environ is None


class Stream:
    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"one "
        yield b""
        yield b"two"

    def close(self) -> None:
        self.closed = True


def test_a_streamed_response_is_sent_chunk_by_chunk_and_closed() -> None:
    stream = Stream()
    sent = run(Recorder(stream), scope(), [body(b"")])
    assert status_and_body(sent) == (200, b"one two")
    assert [m.get("more_body", False) for m in sent[1:]] == [True, True, False]
    assert stream.closed


def test_an_app_that_raises_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("bug")

    sent: list[Message] = []

    async def receive() -> Message:
        return body(b"")

    async def send(message: Message) -> None:
        sent.append(message)

    front = BufferedFront(broken, BodyLimits(100, 1000, UPLOADS), 30, threads=1)
    asyncio.run(front(scope(), receive, send))
    status, answer = status_and_body(sent)
    assert status == 500 and orjson.loads(answer)["error"]
    assert "the WSGI app raised" in caplog.text


class WaitingStream:
    """A body that says when its next chunk is ready (as the dashboard's live updates do): the
    front awaits ``ready`` before it asks a thread for the chunk."""

    def __init__(self) -> None:
        self.chunks = [b"first ", b"second"]
        self.ready_calls = 0
        self.closed = False

    def __iter__(self) -> WaitingStream:
        return self

    def __next__(self) -> bytes:
        if not self.chunks:
            raise StopIteration
        return self.chunks.pop(0)

    async def ready(self) -> None:
        self.ready_calls += 1
        asyncio.get_running_loop()  # awaited on the event loop, not on a thread
        await asyncio.sleep(0)

    def close(self) -> None:
        self.closed = True


def test_a_body_that_waits_for_news_is_awaited_before_each_chunk() -> None:
    stream = WaitingStream()
    sent = run(Recorder(stream), scope(), [body(b"")])
    assert status_and_body(sent) == (200, b"first second")
    # the first chunk comes with the answer; each later one (and the end) after ``ready``
    assert stream.ready_calls == 2 and stream.closed
