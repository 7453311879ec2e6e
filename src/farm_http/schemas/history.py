"""A task's and an agent's history as the API shows it, and its query string."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypedDict

from farm_domain.errors import ValidationError
from farm_domain.history import DEFAULT_HISTORY, MAX_HISTORY, HistoryPage, StateChange
from farm_domain.validation import INT32_MAX
from farm_http.conversion import IsoTime, UuidText, iso_time, url_argument_error
from farm_http.openapi import Json


class HistoryFilters(TypedDict, total=False):
    """A page of history: the newest ``limit`` changes (default 50), older than the change
    ``before`` (the last id of the previous page) when given."""

    limit: Annotated[int, Json(minimum=1, maximum=MAX_HISTORY)]
    before: Annotated[int, Json(minimum=1, maximum=INT32_MAX)]


_ARGUMENTS = tuple(HistoryFilters.__annotations__)


def history_page(params: Mapping[str, str | list[str]]) -> HistoryPage:
    """The page the query string asks for, strictly: unknown or repeated arguments and values
    that are not whole numbers in range are 400s."""
    unknown = sorted(set(params) - set(_ARGUMENTS))
    if unknown:
        raise url_argument_error(unknown[0], f"unknown argument (use {', '.join(_ARGUMENTS)})")
    numbers: dict[str, int] = {}
    for name, value in params.items():
        if isinstance(value, list):
            raise url_argument_error(name, "given more than once")
        if not (value.isascii() and value.isdigit() and len(value) <= 10):
            raise url_argument_error(name, f"{value!r} is not a whole number of 1 to 10 digits")
        numbers[name] = int(value)
    try:
        return HistoryPage(
            limit=numbers.get("limit", DEFAULT_HISTORY), before=numbers.get("before")
        )
    except ValidationError as error:
        raise url_argument_error(error.field or "query", error.message) from None


class TaskChangeJson(TypedDict):
    """One change of a task's state (``queued``, ``assigned``, ``sent``, ``running``,
    ``paused``, ``done``, ``failed``, ``canceled``): when, from what (null: the task's first
    row, its job's submission, reason ``submitted``), to what, why, and the agent it involved."""

    id: int
    at: IsoTime | None
    from_state: str | None
    to_state: str
    reason: str
    task_id: int
    job_id: int
    agent_id: UuidText | None


class AgentChangeJson(TypedDict):
    """One change of an agent's state (``online``, ``running``, ``offline``, ``disabled``):
    when, from what (null: the agent's first row, its registration, reason ``registered``), to
    what, and why."""

    id: int
    at: IsoTime | None
    from_state: str | None
    to_state: str
    reason: str
    agent_id: UuidText


def task_change_json(change: StateChange) -> TaskChangeJson:
    assert change.task_id is not None and change.job_id is not None
    return {
        "id": change.id,
        "at": iso_time(change.at),
        "from_state": change.before,
        "to_state": change.after,
        "reason": change.reason,
        "task_id": change.task_id,
        "job_id": change.job_id,
        "agent_id": None if change.agent_id is None else str(change.agent_id),
    }


def agent_change_json(change: StateChange) -> AgentChangeJson:
    return {
        "id": change.id,
        "at": iso_time(change.at),
        "from_state": change.before,
        "to_state": change.after,
        "reason": change.reason,
        "agent_id": str(change.agent_id),
    }
