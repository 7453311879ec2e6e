"""Bodies and representation of task logs."""

from __future__ import annotations

from typing import Annotated, NotRequired, TypedDict

import attrs

from farm_domain.validation import INT32_MAX
from farm_domain.work import TaskLog
from farm_http.conversion import IsoTime, iso_time
from farm_http.openapi import Json

Offset = Annotated[int, Json(minimum=0, maximum=INT32_MAX)]


@attrs.frozen
class LogBody:
    identifier: str
    agent_id: str | None = None
    created_on: str | None = None  # sent by some PyFarm agents; the master keeps its own time


@attrs.frozen
class LogStateBody:
    state: str


class LogJson(TypedDict):
    """A task log of one attempt; its file is uploaded and downloaded at ``.../logfile``."""

    identifier: str
    task_id: int
    attempt: int
    agent_id: str | None
    created_on: IsoTime | None
    size: int | None
    state: str | None


class ChunkQuery(TypedDict):
    """Where a log chunk starts in the log (bytes)."""

    offset: Offset


class LogFileQuery(TypedDict, total=False):
    """Where to start reading a log (bytes): a viewer asks only for what is new."""

    offset: Offset


class ChunkJson(TypedDict):
    """The log's size once the chunk is in (where the next chunk starts); or, answered 409, the
    size it has, short of the chunk's offset (a gap), with the error: resend from it."""

    offset: int
    error: NotRequired[str]
    """Only with 409: a chunk that leaves a gap, refused."""


class UpdateJson(TypedDict):
    """An agent update archive as stored."""

    version: str
    size: int


def log_json(log: TaskLog) -> LogJson:
    return {
        "identifier": log.identifier,
        "task_id": log.task_id,
        "attempt": log.attempt,
        "agent_id": None if log.agent_id is None else str(log.agent_id),
        "created_on": iso_time(log.created_on),
        "size": log.size,
        "state": log.state,
    }
