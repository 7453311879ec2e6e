"""Resources for task logs and agent update archives (bodies streamed, never JSON-decoded)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import falcon

from farm_domain.access import Identity
from farm_domain.errors import LogGap, TooLarge
from farm_domain.files import MAX_CHUNK, AgentUpdates, TaskLogs
from farm_http.conversion import body_object, optional_uuid, structure
from farm_http.identity import actor
from farm_http.jobs import _job_id
from farm_http.schemas.files import ChunkJson, LogBody, LogStateBody, UpdateJson, log_json

CHUNK = 64 * 1024
LOG_TYPES = ("text/csv", "text/plain")


def _body(req: falcon.Request) -> Iterator[bytes]:
    """The upload's chunks. A chunked body (no Content-Length) is read to its end: the server
    has de-chunked it, and the store's size limit stops it like any other. A body with neither
    is refused rather than stored empty."""
    if req.content_length is not None:
        read: Callable[[int], bytes] = req.bounded_stream.read
    elif "chunked" in (req.get_header("Transfer-Encoding") or "").lower():
        read = req.stream.read
    else:
        raise falcon.HTTPLengthRequired(
            description="send a Content-Length or a chunked body (Transfer-Encoding: chunked)"
        )
    return _read(read)


def _read(read: Callable[[int], bytes]) -> Iterator[bytes]:
    while chunk := read(CHUNK):
        yield chunk


def _require(req: falcon.Request, *types: str) -> None:
    if (req.content_type or "").split(";")[0].strip().lower() not in types:
        raise falcon.HTTPUnsupportedMediaType(description=f"send the body as {' or '.join(types)}")


class TaskLogsResource:
    def __init__(self, logs: TaskLogs) -> None:
        self._logs = logs

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int, attempt: int
    ) -> None:
        resp.media = [
            log_json(log)
            for log in self._logs.of_attempt(actor(req), _job_id(job), task_id, attempt)
        ]

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, job: str, task_id: int, attempt: int
    ) -> None:
        body = structure(body_object(req), LogBody)
        log, created = self._logs.register(
            actor(req),
            _job_id(job),
            task_id,
            attempt,
            body.identifier,
            optional_uuid(body.agent_id, "agent_id"),
        )
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = log_json(log)


class TaskLogResource:
    def __init__(self, logs: TaskLogs) -> None:
        self._logs = logs

    def on_post(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        job: str,
        task_id: int,
        attempt: int,
        identifier: str,
    ) -> None:
        body = structure(body_object(req), LogStateBody)
        log = self._logs.set_state(
            actor(req), _job_id(job), task_id, attempt, identifier, body.state
        )
        resp.media = log_json(log)


class TaskLogFileResource:
    def __init__(self, logs: TaskLogs) -> None:
        self._logs = logs

    def on_put(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        job: str,
        task_id: int,
        attempt: int,
        identifier: str,
    ) -> None:
        log = self._logs.upload(*_written(req, job, task_id, attempt, identifier), _body(req))
        resp.status = falcon.HTTP_201
        resp.media = log_json(log)

    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        job: str,
        task_id: int,
        attempt: int,
        identifier: str,
    ) -> None:
        resp.stream = self._logs.download(
            actor(req), _job_id(job), task_id, attempt, identifier, _offset(req, required=False)
        )
        # Agent-written text: never rendered by a browser, whatever it contains.
        resp.content_type = "text/plain; charset=utf-8"
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.downloadable_as = identifier


def _written(
    req: falcon.Request, job: str, task_id: int, attempt: int, identifier: str
) -> tuple[Identity, int, int, int, str]:
    """What a request writing a log's text (an upload, a chunk) names: who, and which log.
    Its body must be text (else 415, before anything is read)."""
    _require(req, *LOG_TYPES)
    return actor(req), _job_id(job), task_id, attempt, identifier


def _offset(req: falcon.Request, *, required: bool) -> int:
    return req.get_param_as_int("offset", required=required, min_value=0, max_value=2**31 - 1) or 0


def _chunk(req: falcon.Request) -> bytes:
    """A log chunk's bytes: at most MAX_CHUNK (else TooLarge, before reading it when its
    length says so)."""
    if req.content_length is not None and req.content_length > MAX_CHUNK:
        raise TooLarge(f"a log chunk is at most {MAX_CHUNK} bytes")
    data = bytearray()
    for piece in _body(req):
        data += piece
        if len(data) > MAX_CHUNK:
            raise TooLarge(f"a log chunk is at most {MAX_CHUNK} bytes")
    return bytes(data)


class TaskLogChunksResource:
    """A running frame's log, chunk by chunk: each chunk names its offset in the log, so that
    one sent again is stored once and a missing one is noticed."""

    def __init__(self, logs: TaskLogs) -> None:
        self._logs = logs

    def on_post(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        job: str,
        task_id: int,
        attempt: int,
        identifier: str,
    ) -> None:
        address = _written(req, job, task_id, attempt, identifier)
        offset = _offset(req, required=True)
        try:
            log = self._logs.append(*address, offset, _chunk(req))
        except LogGap as gap:
            resp.status = falcon.HTTP_409
            refused: ChunkJson = {"error": gap.message, "offset": gap.offset}
            resp.media = refused
            return
        answer: ChunkJson = {"offset": log.size or 0}
        resp.media = answer


class AgentUpdateResource:
    def __init__(self, updates: AgentUpdates) -> None:
        self._updates = updates

    def on_put(self, req: falcon.Request, resp: falcon.Response, version: str) -> None:
        _require(req, "application/zip")
        size = self._updates.upload(actor(req), version, _body(req))
        resp.status = falcon.HTTP_201
        stored: UpdateJson = {"version": version, "size": size}
        resp.media = stored

    def on_get(self, req: falcon.Request, resp: falcon.Response, version: str) -> None:
        resp.stream = self._updates.download(actor(req), version)
        resp.content_type = "application/zip"
        resp.downloadable_as = f"pyfarm-agent-{version}.zip"
