"""Bodies and representation of task logs."""

from __future__ import annotations

from typing import TypedDict

import attrs

from farm_domain.work import TaskLog
from farm_http.conversion import IsoTime, iso_time


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
